/*
 * tests/test_storage_sqlite.c - the SQLite adapter: the storage contract
 * suite on ":memory:" and on files, then what only SQLite promises
 * (schema versioning, reopening a file, WAL snapshots, :memory: threading).
 *
 * Files go to a fresh directory under $TB_TEST_TMPDIR (or /tmp), removed
 * at the end.
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "support/tb_test.h"
#include "support/storage_contract.h"
#include "ticketyboo/ticketyboo.h"
/* The shipped migrations, to build files as older versions left them. */
#include "storage/sqlite_schema.sql.h"

#define T0 INT64_C(1700000000000)

static char tmpdir[4096];
static unsigned int file_counter;

/* A fresh path in the scratch directory. */
static void next_path(char *out, size_t size)
{
	snprintf(out, size, "%s/db-%u.sqlite", tmpdir, ++file_counter);
}

static tb_storage *open_memory(void *ctx)
{
	tb_storage *s = NULL;

	(void)ctx;
	return tb_storage_sqlite_open(&s, ":memory:", NULL) == TB_OK ? s : NULL;
}

static tb_storage *open_file(void *ctx)
{
	tb_storage *s = NULL;
	char path[4200];

	(void)ctx;
	next_path(path, sizeof path);
	return tb_storage_sqlite_open(&s, path, NULL) == TB_OK ? s : NULL;
}

static tb_user_row user_row(unsigned int n)
{
	tb_user_row u;

	memset(&u, 0, sizeof u);
	snprintf(u.id, sizeof u.id, "00000001-0000-7000-8000-%012x", n);
	snprintf(u.email, sizeof u.email, "user%u@example.com", n);
	snprintf(u.password_hash, sizeof u.password_hash, "$argon2id$x");
	u.version = 1;
	u.created_at_ms = T0;
	u.updated_at_ms = T0;
	return u;
}

static void insert_user(tb_storage *s, unsigned int n)
{
	tb_user_row u = user_row(n);
	tb_storage_txn *t = NULL;

	assert_tb_ok(s->begin(s, 1, &t));
	assert_tb_ok(s->user_insert(t, &u));
	assert_tb_ok(s->commit(t));
}

/* Run one SQL statement on a file with a plain SQLite connection; the first integer result. */
static int64_t raw_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void sqlite_open__reopened_file_keeps_rows_and_schema_version(void **state)
{
	char path[4200];
	tb_storage *s = NULL;
	tb_user_row got, want = user_row(5);
	tb_storage_txn *t = NULL;

	(void)state;
	next_path(path, sizeof path);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	insert_user(s, 5);
	tb_storage_free(s);
	assert_int_equal(raw_sql(path, "PRAGMA user_version"), SCHEMA_VERSION);

	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	assert_tb_ok(s->begin(s, 0, &t));
	assert_tb_ok(s->user_get(t, want.id, &got));
	assert_tb_ok(s->commit(t));
	tb_storage_free(s);
	assert_string_equal(got.email, want.email);
	assert_int_equal(raw_sql(path, "PRAGMA user_version"), SCHEMA_VERSION);
}

/* A ticket whose owner does not exist is refused: foreign_keys = ON. */
static void assert_orphan_ticket_refused(tb_storage *s)
{
	tb_ticket_row tk;
	tb_storage_txn *t = NULL;

	memset(&tk, 0, sizeof tk);
	snprintf(tk.id, sizeof tk.id, "00000002-0000-7000-8000-000000000001");
	snprintf(tk.title, sizeof tk.title, "Orphan");
	tk.price_minor = 100;
	snprintf(tk.currency, sizeof tk.currency, "GBP");
	snprintf(tk.owner_id, sizeof tk.owner_id, "00000001-0000-7000-8000-00000000dead");
	tk.status = 1;
	tk.version = 1;
	assert_tb_ok(s->begin(s, 1, &t));
	assert_tb_status(s->ticket_insert(t, &tk), TB_ESTORAGE);
	s->rollback(t);
}

/* Run a script of SQL statements on a file with a plain SQLite connection. */
static void raw_script(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("raw_script: %s", err ? err : "?");
	sqlite3_close(db);
}

/* A file as version `version` of the schema left it, with a sale in it. */
static void make_old_file(const char *path, int version)
{
	char sql[64];

	for (int v = 0; v < version; v++)
		raw_script(path, migrations[v]);
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
	raw_script(path, sql);
	raw_script(path,
		"INSERT INTO users VALUES ('u1', 'seller@example.com', 'h', 1, 1, 1),"
		" ('u2', 'buyer@example.com', 'h', 1, 1, 1);"
		"INSERT INTO tickets VALUES ('t1', 'Free one', 1000, 'GBP', 'u1', '', 0, 1, 1, 1, 1),"
		" ('t2', 'Locked one', 2000, 'GBP', 'u1', 'o1', 5000, 1, 2, 1, 2),"
		" ('t3', 'Sold one', 3000, 'GBP', 'u2', '', 0, 2, 4, 1, 3);"
		"INSERT INTO orders VALUES ('o1', 't2', 'u2', 'u1', 1, 5000, 2000, 'GBP', 1, 2, 2),"
		" ('o0', 't3', 'u2', 'u1', 3, 4000, 3000, 'GBP', 3, 1, 3);"
		"INSERT INTO charges VALUES ('c0', 'o0', 2, 3000, 'GBP', 'fake', 'tok', 'ch_1', '', 'k',"
		" '', '', '', '', '', 1, 0, 2, 1, 3);");
}

static void assert_version_3_shape(const char *path)
{
	assert_int_equal(raw_sql(path, "PRAGMA user_version"), SCHEMA_VERSION);
	/* Tickets and orders are WITHOUT ROWID tables from version 3 on. */
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
		" AND name IN ('tickets', 'orders') AND sql LIKE '%WITHOUT ROWID'"), 2);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
		" ('tickets_owner', 'tickets_free', 'tickets_lapsing', 'orders_one_live_per_ticket',"
		" 'orders_due', 'orders_buyer')"), 6);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v3'"
		" OR name = 'tickets_listed'"), 0);
}

static void sqlite_open__migrates_a_version_1_file(void **state)
{
	char path[4200];
	tb_storage *s = NULL;

	(void)state;
	next_path(path, sizeof path);
	make_old_file(path, 1);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	tb_storage_free(s);
	assert_version_3_shape(path);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM tickets"), 3);
}

static void sqlite_open__migrates_a_version_2_file_keeping_every_row(void **state)
{
	char path[4200];
	tb_storage *s = NULL;
	tb_storage_txn *t = NULL;
	tb_ticket_row tk;
	tb_order_row o;

	(void)state;
	next_path(path, sizeof path);
	make_old_file(path, 2);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	assert_version_3_shape(path);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM tickets"), 3);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM orders"), 2);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM charges"), 1);

	/* The rows read back through the adapter, every column intact. */
	assert_tb_ok(s->begin(s, 0, &t));
	assert_tb_ok(s->ticket_get(t, "t2", &tk));
	assert_tb_ok(s->order_get(t, "o1", &o));
	assert_tb_ok(s->commit(t));
	assert_string_equal(tk.title, "Locked one");
	assert_int_equal(tk.price_minor, 2000);
	assert_string_equal(tk.order_id, "o1");
	assert_int_equal(tk.locked_until_ms, 5000);
	assert_int_equal(tk.version, 2);
	assert_string_equal(o.ticket_id, "t2");
	assert_string_equal(o.buyer_id, "u2");
	assert_int_equal(o.expires_at_ms, 5000);
	assert_int_equal(o.price_minor, 2000);

	/* The guard of one live order per ticket still holds... */
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM orders WHERE ticket_id = 't2'"
		" AND status IN (1, 2)"), 1);
	raw_sql(path, "INSERT INTO orders VALUES ('o2', 't2', 'u2', 'u1', 1, 9000, 2000, 'GBP', 1, 3, 3)");
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM orders WHERE ticket_id = 't2'"), 1);
	/* ...and the adapter's connections still enforce foreign keys. */
	assert_orphan_ticket_refused(s);
	tb_storage_free(s);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
}

static void sqlite_open__refuses_to_migrate_a_file_with_broken_references(void **state)
{
	char path[4200];
	tb_storage *s = (tb_storage *)1;

	(void)state;
	next_path(path, sizeof path);
	make_old_file(path, 2);
	/* An order of a ticket that is not there (written with foreign keys off). */
	raw_script(path, "INSERT INTO orders VALUES ('o9', 'gone', 'u2', 'u1', 3, 1, 1, 'GBP', 1, 1, 1)");
	assert_tb_status(tb_storage_sqlite_open(&s, path, NULL), TB_ESTORAGE);
	assert_null(s);
	assert_non_null(strstr(tb_last_error()->message, "missing its parent"));
	/* All or nothing: the file is still version 2, rows and all. */
	assert_int_equal(raw_sql(path, "PRAGMA user_version"), 2);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tickets'"
		" AND sql LIKE '%WITHOUT ROWID'"), 0);
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM orders"), 3);
}

static void sqlite_open__refuses_newer_schema_version(void **state)
{
	char path[4200];
	tb_storage *s = (tb_storage *)1;

	(void)state;
	next_path(path, sizeof path);
	raw_sql(path, "PRAGMA user_version = 99");
	assert_tb_status(tb_storage_sqlite_open(&s, path, NULL), TB_ESTORAGE);
	assert_null(s);
	assert_non_null(strstr(tb_last_error()->message, "schema version 99 is newer"));
	/* Refusing leaves the file as it was. */
	assert_int_equal(raw_sql(path, "SELECT count(*) FROM sqlite_master"), 0);
}

static void sqlite_open__refuses_a_file_that_is_not_a_database(void **state)
{
	char path[4200];
	tb_storage *s = NULL;
	FILE *f;

	(void)state;
	next_path(path, sizeof path);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 64; i++)
		fputs("this is not an SQLite database, just text.\n", f);
	fclose(f);
	assert_tb_status(tb_storage_sqlite_open(&s, path, NULL), TB_ESTORAGE);
	assert_null(s);
}

static void sqlite_open__rejects_bad_arguments(void **state)
{
	tb_sqlite_options opts = TB_SQLITE_OPTIONS_INIT;
	tb_storage *s = NULL;

	(void)state;
	assert_tb_status(tb_storage_sqlite_open(NULL, ":memory:", NULL), TB_EINVAL);
	assert_tb_status(tb_storage_sqlite_open(&s, NULL, NULL), TB_EINVAL);
	assert_tb_status(tb_storage_sqlite_open(&s, "", NULL), TB_EINVAL);
	opts.version = 99;
	assert_tb_status(tb_storage_sqlite_open(&s, ":memory:", &opts), TB_EVERSION);
	opts.version = TB_SQLITE_OPTIONS_VERSION;
	opts.busy_timeout_ms = -1;
	assert_tb_status(tb_storage_sqlite_open(&s, ":memory:", &opts), TB_EINVAL);
	opts.busy_timeout_ms = 0;
	opts.sync = (tb_sync_level)7;
	assert_tb_status(tb_storage_sqlite_open(&s, ":memory:", &opts), TB_EINVAL);
	opts.sync = TB_SYNC_DEFAULT;
	opts.snapshot_reuse_ms = -2;
	assert_tb_status(tb_storage_sqlite_open(&s, ":memory:", &opts), TB_EINVAL);
	assert_string_equal(tb_last_error()->field, "snapshot_reuse_ms");
	opts.snapshot_reuse_ms = 1001;
	assert_tb_status(tb_storage_sqlite_open(&s, ":memory:", &opts), TB_EINVAL);
	assert_null(s);
	/* Version 1 options (no snapshot_reuse_ms) are still accepted; the field is not read. */
	opts.version = 1;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", &opts));
	tb_storage_free(s);
	s = NULL;
	tb_storage_free(NULL);
}

static void sqlite_open__uses_wal_and_honours_options(void **state)
{
	static const tb_sync_level levels[] = {
		TB_SYNC_DEFAULT, TB_SYNC_NORMAL, TB_SYNC_FULL, TB_SYNC_OFF
	};
	char path[4200];

	(void)state;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		tb_sqlite_options opts = TB_SQLITE_OPTIONS_INIT;
		tb_storage *s = NULL;

		opts.sync = levels[i];
		opts.readers = (unsigned int)i + 1;
		opts.busy_timeout_ms = 100;
		next_path(path, sizeof path);
		assert_tb_ok(tb_storage_sqlite_open(&s, path, &opts));
		assert_string_equal(s->name, "sqlite");
		insert_user(s, 1);
		assert_tb_ok(s->checkpoint(s));
		tb_storage_free(s);
		assert_int_equal(raw_sql(path, "SELECT count(*) FROM users"), 1);
	}
	/* journal_mode=WAL is stored in the file. */
	assert_int_equal(raw_sql(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

/* Does a read transaction on `s` find user n? */
static bool sees_user(tb_storage *s, unsigned int n)
{
	tb_user_row want = user_row(n), got;
	tb_storage_txn *t = NULL;
	tb_status st;

	assert_tb_ok(s->begin(s, 0, &t));
	st = s->user_get(t, want.id, &got);
	assert_true(st == TB_OK || st == TB_ENOTFOUND);
	assert_tb_ok(s->commit(t));
	return st == TB_OK;
}

static tb_storage *open_with_reuse(const char *path, int reuse_ms)
{
	tb_sqlite_options opts = TB_SQLITE_OPTIONS_INIT;
	tb_storage *s = NULL;

	opts.snapshot_reuse_ms = reuse_ms;
	opts.readers = 1; /* every read goes through the same reader and its kept snapshot */
	assert_tb_ok(tb_storage_sqlite_open(&s, path, &opts));
	return s;
}

static void begin__kept_snapshot_sees_every_commit_of_this_process(void **state)
{
	char path[4200];
	tb_storage *a, *b;

	(void)state;
	next_path(path, sizeof path);
	/* A long window: only a commit in this process can refresh the snapshot in time. */
	a = open_with_reuse(path, 1000);
	b = open_with_reuse(path, 1000);
	assert_false(sees_user(a, 1)); /* a's reader keeps this snapshot */
	insert_user(a, 1);
	assert_true(sees_user(a, 1)); /* its own commit */
	assert_false(sees_user(a, 2));
	insert_user(b, 2);
	assert_true(sees_user(a, 2)); /* another adapter's commit in this process */
	tb_storage_free(b);
	tb_storage_free(a);
}

static void begin__other_process_commits_show_after_the_reuse_window(void **state)
{
	char path[4200];
	tb_storage *never, *windowed;
	struct timespec pause = { 0, 60 * 1000 * 1000 };

	(void)state;
	next_path(path, sizeof path);
	never = open_with_reuse(path, -1);
	windowed = open_with_reuse(path, 20);
	insert_user(never, 1);
	assert_false(sees_user(never, 2));
	assert_false(sees_user(windowed, 2));
	/* A plain connection stands for another process: no epoch of ours moves. */
	raw_script(path, "INSERT INTO users VALUES ('00000001-0000-7000-8000-000000000002',"
		" 'user2@example.com', 'h', 1, 1, 1)");
	assert_true(sees_user(never, 2)); /* -1: every read is a fresh snapshot */
	nanosleep(&pause, NULL);          /* longer than the 20 ms window */
	assert_true(sees_user(windowed, 2));
	tb_storage_free(windowed);
	tb_storage_free(never);
}

/* (frames in the WAL, frames copied into the database) from a PASSIVE checkpoint. */
static void wal_state(const char *path, int *logged, int *copied)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*logged = sqlite3_column_int(st, 1);
	*copied = sqlite3_column_int(st, 2);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void checkpoint__is_not_held_back_by_a_kept_snapshot(void **state)
{
	char path[4200];
	tb_storage *s;
	int logged = 0, copied = 0;

	(void)state;
	next_path(path, sizeof path);
	s = open_with_reuse(path, 1000);
	insert_user(s, 1);
	assert_true(sees_user(s, 1)); /* the reader keeps a snapshot from here... */
	for (unsigned int i = 2; i < 40; i++)
		insert_user(s, i);        /* ...while the WAL grows past it */
	assert_tb_ok(s->checkpoint(s));
	wal_state(path, &logged, &copied);
	assert_true(logged > 0);
	assert_int_equal(copied, logged); /* everything copied: the kept snapshot let go */
	assert_true(sees_user(s, 39));
	tb_storage_free(s);
}

/* A thread that reads through s (its one reader keeps its snapshot) until told to stop. */
struct read_loop {
	tb_storage *s;
	atomic_bool stop;
	atomic_long reads, failures;
};

static void *read_loop_main(void *arg)
{
	struct read_loop *l = arg;
	tb_user_row want = user_row(1), got;

	while (!atomic_load(&l->stop)) {
		tb_storage_txn *t = NULL;
		if (l->s->begin(l->s, 0, &t) != TB_OK || l->s->user_get(t, want.id, &got) != TB_OK ||
		    l->s->commit(t) != TB_OK)
			atomic_fetch_add(&l->failures, 1);
		atomic_fetch_add(&l->reads, 1);
	}
	return NULL;
}

/*
 * Once the WAL passed its restart size, the checkpoint after a commit holds
 * the writer and copies the rest; the next write must then start the WAL
 * from its beginning even though a reader kept reading (and keeping its
 * snapshot) all along.  Before, that copy was PASSIVE and readers that began
 * during it kept the WAL, so it went on growing.
 */
static void after_commit__restarts_the_wal_while_readers_keep_reading(void **state)
{
	char path[4200];
	tb_storage *s;
	struct read_loop loop = { 0 };
	pthread_t reader;
	int logged = 0, copied = 0;

	(void)state;
	next_path(path, sizeof path);
	s = open_with_reuse(path, 1000);
	insert_user(s, 1);
	/* Another connection (with no checkpoint of its own) writes 17,000 pages to the WAL. */
	raw_script(path, "PRAGMA wal_autocheckpoint = 0; CREATE TABLE pad(x BLOB);"
		" WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 17000)"
		" INSERT INTO pad SELECT zeroblob(3000) FROM c;");
	loop.s = s;
	assert_int_equal(pthread_create(&reader, NULL, read_loop_main, &loop), 0);
	while (atomic_load(&loop.reads) < 100)
		sched_yield();
	insert_user(s, 2); /* the writer's WAL hook now counts over 17,000 frames */
	s->after_commit(s);
	atomic_store(&loop.stop, true);
	pthread_join(reader, NULL);
	assert_int_equal(atomic_load(&loop.failures), 0);
	insert_user(s, 3);
	wal_state(path, &logged, &copied);
	assert_true(logged > 0);
	assert_true(logged < 100); /* this write began a new WAL, not frame 17,000-odd */
	assert_true(sees_user(s, 3));
	tb_storage_free(s);
}

static void ticket_insert__refuses_non_positive_price(void **state)
{
	tb_storage *s = NULL;
	tb_ticket_row tk;
	tb_storage_txn *t = NULL;
	tb_user_row owner = user_row(1);

	(void)state;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	insert_user(s, 1);
	memset(&tk, 0, sizeof tk);
	snprintf(tk.id, sizeof tk.id, "00000002-0000-7000-8000-000000000001");
	snprintf(tk.title, sizeof tk.title, "Free");
	snprintf(tk.currency, sizeof tk.currency, "GBP");
	snprintf(tk.owner_id, sizeof tk.owner_id, "%s", owner.id);
	tk.status = 1;
	tk.version = 1;
	assert_tb_ok(s->begin(s, 1, &t));
	assert_tb_status(s->ticket_insert(t, &tk), TB_ESTORAGE);
	s->rollback(t);
	tb_storage_free(s);
}

static void ticket_insert__refuses_unknown_owner(void **state)
{
	tb_storage *s = NULL;

	(void)state;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	assert_orphan_ticket_refused(s);
	tb_storage_free(s);
}

static void begin__read_txn_sees_committed_snapshot_beside_open_writer(void **state)
{
	char path[4200];
	tb_storage *s = NULL;
	tb_storage_txn *w = NULL, *r = NULL;
	tb_user_row u = user_row(3), got;

	(void)state;
	next_path(path, sizeof path);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	assert_tb_ok(s->begin(s, 1, &w));
	assert_tb_ok(s->user_insert(w, &u));
	/* On a file, readers have their own connections: no wait, no dirty read. */
	assert_tb_ok(s->begin(s, 0, &r));
	assert_tb_status(s->user_get(r, u.id, &got), TB_ENOTFOUND);
	s->rollback(r);
	assert_tb_ok(s->commit(w));
	assert_tb_ok(s->begin(s, 0, &r));
	assert_tb_ok(s->user_get(r, u.id, &got));
	assert_tb_ok(s->commit(r));
	tb_storage_free(s);
}

static void begin__nested_txn_on_memory_fails_instead_of_deadlocking(void **state)
{
	tb_storage *s = NULL;
	tb_storage_txn *w = NULL, *r = (tb_storage_txn *)1;

	(void)state;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	assert_tb_ok(s->begin(s, 1, &w));
	assert_tb_status(s->begin(s, 0, &r), TB_EINTERNAL);
	assert_null(r);
	assert_tb_status(s->begin(s, 1, &r), TB_EINTERNAL);
	assert_tb_ok(s->commit(w));
	/* Released: this thread may begin again. */
	assert_tb_ok(s->begin(s, 0, &r));
	assert_tb_ok(s->commit(r));
	tb_storage_free(s);
}

struct waiter {
	tb_storage *s;
	tb_status status;
};

static void *begin_and_commit(void *arg)
{
	struct waiter *wt = arg;
	tb_storage_txn *t = NULL;

	wt->status = wt->s->begin(wt->s, 0, &t);
	if (wt->status == TB_OK)
		wt->status = wt->s->commit(t);
	return NULL;
}

static void begin__memory_read_from_another_thread_waits_for_the_writer(void **state)
{
	tb_storage *s = NULL;
	tb_storage_txn *w = NULL;
	struct waiter wt;
	pthread_t th;

	(void)state;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	assert_tb_ok(s->begin(s, 1, &w));
	wt.s = s;
	wt.status = TB_EINTERNAL;
	assert_int_equal(pthread_create(&th, NULL, begin_and_commit, &wt), 0);
	nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
	assert_tb_ok(s->commit(w));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_tb_ok(wt.status);
	tb_storage_free(s);
}

static void event_append__leaves_no_gap_after_a_rollback(void **state)
{
	tb_storage *s = NULL;
	tb_storage_txn *t = NULL;
	tb_event_row e;
	int64_t first, second;

	(void)state;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	memset(&e, 0, sizeof e);
	e.type = 1;
	e.payload = "{}";
	e.payload_len = 2;
	assert_tb_ok(s->begin(s, 1, &t));
	assert_tb_ok(s->event_append(t, &e));
	first = e.seq;
	s->rollback(t);
	assert_tb_ok(s->begin(s, 1, &t));
	assert_tb_ok(s->event_append(t, &e));
	second = e.seq;
	assert_tb_ok(s->commit(t));
	assert_int_equal(first, second);
	tb_storage_free(s);
}

/* ---- the WAL-batching VFS shim (src/storage/sqlite_vfs.c) ---------------------------- */

#define SHIM_VFS "tb-walbatch"

/* The shim is registered by the first open (SQLite 3.31 and newer); NULL when it is not in use. */
static const char *shim_vfs(void)
{
	return sqlite3_vfs_find(SHIM_VFS) ? SHIM_VFS : NULL;
}

static sqlite3 *raw_open(const char *path, const char *vfs)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
		SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/*
 * Commits of one frame and of far more than the shim holds back (120 KiB):
 * a plain connection of the default VFS, open all along and reading the WAL
 * through its own file handle, sees each one as soon as commit returns.
 */
static void wal_batch__every_commit_is_in_the_file_when_commit_returns(void **state)
{
	static char payload[8192];
	char path[4200];
	tb_storage *s = NULL;
	tb_storage_txn *t = NULL;
	sqlite3 *plain;

	(void)state;
	memset(payload, 'x', sizeof payload);
	next_path(path, sizeof path);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL));
	if (sqlite3_libversion_number() >= 3031000)
		assert_non_null(shim_vfs());
	plain = raw_open(path, NULL);
	for (unsigned int round = 1; round <= 3; round++) {
		unsigned int n = round == 2 ? 60 : 1; /* 60 events of 8 KiB: ~500 KiB of frames */

		assert_tb_ok(s->begin(s, 1, &t));
		for (unsigned int i = 0; i < n; i++) {
			tb_event_row e;

			memset(&e, 0, sizeof e);
			e.type = 1;
			e.payload = payload;
			e.payload_len = sizeof payload;
			assert_tb_ok(s->event_append(t, &e));
		}
		assert_tb_ok(s->commit(t));
		assert_int_equal(raw_int(plain, "SELECT count(*) FROM events"), round == 1 ? 1 : round == 2 ? 61 : 62);
	}
	assert_int_equal(raw_int(plain, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	sqlite3_close(plain);
	tb_storage_free(s);
}

/*
 * A transaction that spills pages into the WAL (a tiny page cache) and then
 * rolls back leaves frames behind that nothing references.  Held back in the
 * shim, they must reach the file before the write lock is given up, or they
 * would land later on top of another connection's committed frames.
 */
static void wal_batch__spilled_frames_of_a_rollback_never_overwrite_later_commits(void **state)
{
	char path[4200];
	tb_storage *s = NULL;
	sqlite3 *a, *b, *plain;

	(void)state;
	next_path(path, sizeof path);
	assert_tb_ok(tb_storage_sqlite_open(&s, path, NULL)); /* registers the shim, creates the file */
	tb_storage_free(s);
	a = raw_open(path, shim_vfs());
	b = raw_open(path, shim_vfs());
	raw_exec(a, "PRAGMA cache_size = 10");
	raw_exec(a, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
	raw_exec(a, "BEGIN IMMEDIATE");
	raw_exec(a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
		" INSERT INTO t SELECT i, zeroblob(3000) FROM n");
	raw_exec(a, "ROLLBACK");
	/* b commits as many frames, over the same stretch of the WAL. */
	raw_exec(b, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
		" INSERT INTO t SELECT i, randomblob(3000) FROM n");
	raw_exec(a, "INSERT INTO t VALUES (1000, x'03')"); /* a's next write: anything still held goes out now */
	sqlite3_close(a);
	sqlite3_close(b);
	plain = raw_open(path, NULL);
	assert_int_equal(raw_int(plain, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	assert_int_equal(raw_int(plain, "SELECT count(*) FROM t WHERE length(v) = 3000 AND v <> zeroblob(3000)"), 300);
	assert_int_equal(raw_int(plain, "SELECT hex(v) = '03' FROM t WHERE k = 1000"), 1);
	sqlite3_close(plain);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	const struct CMUnitTest sqlite_cases[] = {
		cmocka_unit_test(sqlite_open__reopened_file_keeps_rows_and_schema_version),
		cmocka_unit_test(sqlite_open__migrates_a_version_1_file),
		cmocka_unit_test(sqlite_open__migrates_a_version_2_file_keeping_every_row),
		cmocka_unit_test(sqlite_open__refuses_to_migrate_a_file_with_broken_references),
		cmocka_unit_test(sqlite_open__refuses_newer_schema_version),
		cmocka_unit_test(sqlite_open__refuses_a_file_that_is_not_a_database),
		cmocka_unit_test(sqlite_open__rejects_bad_arguments),
		cmocka_unit_test(sqlite_open__uses_wal_and_honours_options),
		cmocka_unit_test(ticket_insert__refuses_non_positive_price),
		cmocka_unit_test(ticket_insert__refuses_unknown_owner),
		cmocka_unit_test(begin__read_txn_sees_committed_snapshot_beside_open_writer),
		cmocka_unit_test(begin__nested_txn_on_memory_fails_instead_of_deadlocking),
		cmocka_unit_test(begin__memory_read_from_another_thread_waits_for_the_writer),
		cmocka_unit_test(event_append__leaves_no_gap_after_a_rollback),
		cmocka_unit_test(begin__kept_snapshot_sees_every_commit_of_this_process),
		cmocka_unit_test(begin__other_process_commits_show_after_the_reuse_window),
		cmocka_unit_test(checkpoint__is_not_held_back_by_a_kept_snapshot),
		cmocka_unit_test(after_commit__restarts_the_wal_while_readers_keep_reading),
		cmocka_unit_test(wal_batch__every_commit_is_in_the_file_when_commit_returns),
		cmocka_unit_test(wal_batch__spilled_frames_of_a_rollback_never_overwrite_later_commits),
	};
	const char *base = getenv("TB_TEST_TMPDIR");
	int failed = 0;

	snprintf(tmpdir, sizeof tmpdir, "%s/tb-storage-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	failed += tb_storage_contract_run("sqlite :memory:", open_memory, NULL);
	failed += tb_storage_contract_run("sqlite file", open_file, NULL);
	failed += cmocka_run_group_tests_name("sqlite adapter", sqlite_cases, NULL, NULL);
	nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed != 0;
}
