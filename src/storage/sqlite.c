/*
 * src/storage/sqlite.c - the SQLite storage adapter (see storage.h and
 * docs/storage-sqlite.md).
 *
 * Connections.  One writer connection, handed out under a gate (a mutex
 * and a condition: one write transaction at a time in this process, BEGIN
 * IMMEDIATE so its reads cannot be changed under it), plus a pool of
 * read-only connections for read transactions, which in WAL mode read a
 * committed snapshot without waiting for the writer.  Every connection is
 * opened SQLITE_OPEN_NOMUTEX: our gate and pool already guarantee that one
 * thread at a time uses it.  A further connection runs checkpoints, so a
 * host's checkpoint never waits for, nor blocks, the writer.
 *
 * ":memory:" opens one private database per connection, so a pool would
 * see nothing.  Shared cache ("file:x?mode=memory&cache=shared") would let
 * connections share one database, but it replaces WAL snapshots with
 * table-level locks that fail with SQLITE_LOCKED (not covered by the busy
 * timeout) and SQLite discourages it.  So an in-memory adapter has only the
 * writer connection, and read transactions take the gate too: they
 * serialise with writes, which costs little at in-memory speeds.  It also
 * means that on ":memory:" a thread holding any transaction must not begin
 * another; begin reports TB_EINTERNAL instead of deadlocking.
 *
 * Statements.  Each connection prepares a statement the first time it runs
 * it (SQLITE_PREPARE_PERSISTENT) and keeps it until destroy; every use ends
 * with reset + clear_bindings.  Rows are bound and read through a small
 * column table per row struct (struct tb_rowtype), checked against each
 * statement when it is prepared.
 *
 * List calls read all matching rows (at most `limit`), reset the statement,
 * and only then run the callbacks, so a callback may use the same
 * transaction, even the same list method.
 */
#define _POSIX_C_SOURCE 200809L

#include "ticketyboo/storage.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "rows.h"
#include "sqlite_schema.sql.h"
#include "sqlite_vfs.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
/* Page cache of the writer, KiB (SQLite's default is 2000): see conn_open. */
#define CACHE_KIB 16384u
/*
 * The readers share a budget: each gets READER_CACHE_BUDGET_KIB / readers,
 * between READER_CACHE_MIN_KIB and CACHE_KIB.  Four readers (the default)
 * get 16 MiB each, as before; a host with a reader per thread (the reference
 * server: 16) gets 4 MiB each instead of 256 MiB in all.
 */
#define READER_CACHE_BUDGET_KIB 65536u
#define READER_CACHE_MIN_KIB 2048u
/*
 * WAL frames written since the last checkpoint before after_commit runs
 * one: SQLite's own autocheckpoint threshold, so the WAL stays as small as
 * with SQLite's defaults, but the copy happens off the writer's path.
 */
#define CHECKPOINT_FRAMES 1000
/*
 * A checkpoint that runs beside the writer never catches up with it, and
 * SQLite only starts the WAL again from its beginning once everything in
 * it was copied.  So when the WAL holds this many frames (63 MiB of 4 KiB
 * pages, just under WAL_SIZE_LIMIT), after_commit copies what is left while
 * holding the writer, once per this many frames instead of once per
 * CHECKPOINT_FRAMES.  That copy and its two fsyncs stall every writer (20-30
 * ms on the development machine), hence as rarely as the size limit allows.
 * It is a RESTART checkpoint, which also waits (RESTART_WAIT_MS at most) for
 * the readers still on the old WAL: only then does the next write start the
 * WAL again.  When a reader outlasts the wait, the writer is held again only
 * WAL_RESTART_FRAMES / 4 frames later.
 */
#define WAL_RESTART_FRAMES 16000
/* A WAL that grew past this (a host that held a long read) is truncated back when it restarts. */
#define WAL_SIZE_LIMIT "67108864"
/*
 * How long the checkpoint that restarts the WAL (writer held) waits for
 * readers still on the old WAL: they finish in microseconds, and idle kept
 * snapshots are ended while it waits.  A reader that takes longer (another
 * process) makes it give up; the next one tries again.
 */
#define RESTART_WAIT_MS 100
#define DEFAULT_READERS 4u
/* How long a reader may serve a snapshot when this process committed nothing since (see begin). */
#define DEFAULT_SNAPSHOT_REUSE_MS 2
#define MAX_READERS 64u

/* ---------------------------------------------------------------------
 * Statements: one enum, one table of SQL.
 */

enum stmt_id {
	ST_BEGIN, ST_BEGIN_IMMEDIATE, ST_COMMIT, ST_ROLLBACK,
	ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_USER_INSERT, ST_USER_GET, ST_USER_GET_BY_EMAIL, ST_USER_UPDATE, ST_USER_EXISTS,
	ST_SESSION_INSERT, ST_SESSION_GET, ST_SESSION_DELETE, ST_SESSION_DELETE_FOR_USER,
	ST_TICKET_INSERT, ST_TICKET_GET, ST_TICKET_UPDATE, ST_TICKET_UPDATE_SAME_KEYS, ST_TICKET_EXISTS,
	ST_TICKET_LIST_ALL, ST_TICKET_LIST_AVAILABLE, ST_TICKET_LIST_OWNER,
	ST_ORDER_INSERT, ST_ORDER_GET, ST_ORDER_UPDATE, ST_ORDER_UPDATE_SAME_KEYS, ST_ORDER_EXISTS,
	ST_ORDER_LIST_BY_BUYER, ST_ORDER_LIST_DUE, ST_ORDER_MIN_EXPIRY,
	ST_CHARGE_INSERT, ST_CHARGE_GET, ST_CHARGE_UPDATE, ST_CHARGE_EXISTS,
	ST_CHARGE_LATEST_FOR_ORDER, ST_CHARGE_BY_PROVIDER_ID, ST_CHARGE_LIST_DUE,
	ST_CHARGE_MIN_NEXT_ATTEMPT,
	ST_EVENT_APPEND, ST_EVENT_READ, ST_EVENT_LAST_SEQ,
	ST_CURSOR_GET, ST_CURSOR_SET, ST_SEEN_INSERT,
	ST_COUNT
};

struct stmt_def {
	const char *name;               /* for error messages */
	const char *sql;
	bool writes;                    /* refused in a read transaction */
	const struct tb_rowtype *binds; /* parameters ?1..?n are this row's columns */
	const struct tb_rowtype *reads; /* result columns start with this row's columns */
	int exists;                     /* updates: the statement telling "no such row" from "stale" */
};

#define R(name, sql, reads) { name, sql, false, NULL, reads, -1 }
#define W(name, sql, binds) { name, sql, true, binds, NULL, -1 }
#define U(name, sql, binds, exists) { name, sql, true, binds, NULL, exists }

/*
 * Version-checked updates set every column but id and created_at, where
 * the stored version is the new one minus one.
 */
static const struct stmt_def stmt_defs[ST_COUNT] = {
	[ST_BEGIN] = R("begin", "BEGIN", NULL),
	[ST_BEGIN_IMMEDIATE] = R("begin", "BEGIN IMMEDIATE", NULL),
	[ST_COMMIT] = R("commit", "COMMIT", NULL),
	[ST_ROLLBACK] = R("rollback", "ROLLBACK", NULL),
	[ST_SAVEPOINT] = R("savepoint", "SAVEPOINT tb_op", NULL),
	[ST_RELEASE] = R("savepoint_release", "RELEASE tb_op", NULL),
	[ST_ROLLBACK_TO] = R("savepoint_rollback", "ROLLBACK TO tb_op", NULL),

	[ST_USER_INSERT] = W("user_insert",
		"INSERT INTO users (" TB_USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		&tb_storage__user_rt),
	[ST_USER_GET] = R("user_get",
		"SELECT " TB_USER_COLS " FROM users WHERE id = ?1", &tb_storage__user_rt),
	[ST_USER_GET_BY_EMAIL] = R("user_get_by_email",
		"SELECT " TB_USER_COLS " FROM users WHERE email = ?1", &tb_storage__user_rt),
	[ST_USER_UPDATE] = U("user_update",
		"UPDATE users SET email = ?2, password_hash = ?3, version = ?4, updated_at = ?6"
		" WHERE id = ?1 AND version = ?4 - 1", &tb_storage__user_rt, ST_USER_EXISTS),
	[ST_USER_EXISTS] = R("user_update", "SELECT 1 FROM users WHERE id = ?1", NULL),

	[ST_SESSION_INSERT] = W("session_insert",
		"INSERT INTO sessions (" TB_SESSION_COLS ") VALUES (?1, ?2, ?3, ?4)",
		&tb_storage__session_rt),
	[ST_SESSION_GET] = R("session_get",
		"SELECT " TB_SESSION_COLS " FROM sessions WHERE token_hash = ?1", &tb_storage__session_rt),
	[ST_SESSION_DELETE] = W("session_delete",
		"DELETE FROM sessions WHERE token_hash = ?1", NULL),
	[ST_SESSION_DELETE_FOR_USER] = W("session_delete_for_user",
		"DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR token_hash <> ?2)", NULL),

	[ST_TICKET_INSERT] = W("ticket_insert",
		"INSERT INTO tickets (" TB_TICKET_COLS ")"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", &tb_storage__ticket_rt),
	[ST_TICKET_GET] = R("ticket_get",
		"SELECT " TB_TICKET_COLS " FROM tickets WHERE id = ?1", &tb_storage__ticket_rt),
	[ST_TICKET_UPDATE] = U("ticket_update",
		"UPDATE tickets SET title = ?2, price_minor = ?3, currency = ?4, owner_id = ?5,"
		" order_id = ?6, locked_until = ?7, status = ?8, version = ?9, updated_at = ?11"
		" WHERE id = ?1 AND version = ?9 - 1", &tb_storage__ticket_rt, ST_TICKET_EXISTS),
	/*
	 * The same update when the indexed columns keep their values (a lock
	 * taken or released): SQLite rewrites the entries of every index whose
	 * columns appear in SET, changed or not, so this form, which leaves
	 * them out, writes two index pages fewer.  No row changed: the full
	 * form runs (see row_update_keeping_keys).
	 */
	[ST_TICKET_UPDATE_SAME_KEYS] = W("ticket_update",
		"UPDATE tickets SET title = ?2, price_minor = ?3, currency = ?4, order_id = ?6,"
		" locked_until = ?7, version = ?9, updated_at = ?11"
		" WHERE id = ?1 AND version = ?9 - 1 AND owner_id = ?5 AND status = ?8", &tb_storage__ticket_rt),
	[ST_TICKET_EXISTS] = R("ticket_update", "SELECT 1 FROM tickets WHERE id = ?1", NULL),
	/*
	 * Three shapes of ticket_list, so each can walk an index in id order:
	 * the primary key, the partial index of listed tickets, or (owner_id, id).
	 * instr(), not LIKE: a title filter holding % or _ means those characters.
	 */
	[ST_TICKET_LIST_ALL] = R("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets"
		" WHERE id > :after AND (:title IS NULL OR instr(lower(title), lower(:title)) > 0)"
		" ORDER BY id LIMIT :limit", &tb_storage__ticket_rt),
	/*
	 * Available = free, or locked by a lock that lapsed before any tick ran:
	 * two index walks merged in id order (schema version 2), so a page costs
	 * the same however many tickets are locked.
	 */
	[ST_TICKET_LIST_AVAILABLE] = R("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets"
		" WHERE status = 1 AND order_id = '' AND id > :after"
		" AND (:title IS NULL OR instr(lower(title), lower(:title)) > 0)"
		" UNION ALL"
		" SELECT " TB_TICKET_COLS " FROM tickets INDEXED BY tickets_lapsing"
		" WHERE status = 1 AND order_id <> '' AND locked_until <= :now AND id > :after"
		" AND (:title IS NULL OR instr(lower(title), lower(:title)) > 0)"
		" ORDER BY id LIMIT :limit", &tb_storage__ticket_rt),
	[ST_TICKET_LIST_OWNER] = R("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets"
		" WHERE owner_id = :owner AND id > :after"
		" AND (:available = 0 OR (status = 1 AND (order_id = '' OR locked_until <= :now)))"
		" AND (:title IS NULL OR instr(lower(title), lower(:title)) > 0)"
		" ORDER BY id LIMIT :limit", &tb_storage__ticket_rt),

	[ST_ORDER_INSERT] = W("order_insert",
		"INSERT INTO orders (" TB_ORDER_COLS ")"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", &tb_storage__order_rt),
	[ST_ORDER_GET] = R("order_get",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE id = ?1", &tb_storage__order_rt),
	[ST_ORDER_UPDATE] = U("order_update",
		"UPDATE orders SET ticket_id = ?2, buyer_id = ?3, seller_id = ?4, status = ?5,"
		" expires_at = ?6, price_minor = ?7, currency = ?8, version = ?9, updated_at = ?11"
		" WHERE id = ?1 AND version = ?9 - 1", &tb_storage__order_rt, ST_ORDER_EXISTS),
	/* As for tickets: the buyer's index is left alone when ticket, buyer and seller stay. */
	[ST_ORDER_UPDATE_SAME_KEYS] = W("order_update",
		"UPDATE orders SET status = ?5, expires_at = ?6, price_minor = ?7, currency = ?8,"
		" version = ?9, updated_at = ?11"
		" WHERE id = ?1 AND version = ?9 - 1 AND ticket_id = ?2 AND buyer_id = ?3"
		" AND seller_id = ?4", &tb_storage__order_rt),
	[ST_ORDER_EXISTS] = R("order_update", "SELECT 1 FROM orders WHERE id = ?1", NULL),
	[ST_ORDER_LIST_BY_BUYER] = R("order_list_by_buyer",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE buyer_id = ?1 AND id > ?2"
		" ORDER BY id LIMIT ?3", &tb_storage__order_rt),
	[ST_ORDER_LIST_DUE] = R("order_list_due",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE status = ?1 AND expires_at <= ?2"
		" ORDER BY expires_at, id LIMIT ?3", &tb_storage__order_rt),
	[ST_ORDER_MIN_EXPIRY] = R("order_min_expiry",
		"SELECT expires_at FROM orders WHERE status = ?1 ORDER BY expires_at LIMIT 1", NULL),

	[ST_CHARGE_INSERT] = W("charge_insert",
		"INSERT INTO charges (" TB_CHARGE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
		" ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)", &tb_storage__charge_rt),
	[ST_CHARGE_GET] = R("charge_get",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE id = ?1", &tb_storage__charge_rt),
	[ST_CHARGE_UPDATE] = U("charge_update",
		"UPDATE charges SET order_id = ?2, status = ?3, amount_minor = ?4, currency = ?5,"
		" provider = ?6, payment_token = ?7, provider_charge_id = ?8,"
		" provider_refund_id = ?9, idempotency_key = ?10, refund_key = ?11,"
		" failure_code = ?12, decline_code = ?13, failure_message = ?14,"
		" refund_reason = ?15, attempts = ?16, next_attempt_at = ?17, version = ?18,"
		" updated_at = ?20 WHERE id = ?1 AND version = ?18 - 1", &tb_storage__charge_rt,
		ST_CHARGE_EXISTS),
	[ST_CHARGE_EXISTS] = R("charge_update", "SELECT 1 FROM charges WHERE id = ?1", NULL),
	[ST_CHARGE_LATEST_FOR_ORDER] = R("charge_get_latest_for_order",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE order_id = ?1"
		" ORDER BY created_at DESC, id DESC LIMIT 1", &tb_storage__charge_rt),
	[ST_CHARGE_BY_PROVIDER_ID] = R("charge_get_by_provider_id",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE provider_charge_id = ?1"
		" ORDER BY created_at DESC, id DESC LIMIT 1", &tb_storage__charge_rt),
	[ST_CHARGE_LIST_DUE] = R("charge_list_due",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE next_attempt_at > 0"
		" AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2", &tb_storage__charge_rt),
	[ST_CHARGE_MIN_NEXT_ATTEMPT] = R("charge_min_next_attempt",
		"SELECT next_attempt_at FROM charges WHERE next_attempt_at > 0"
		" ORDER BY next_attempt_at LIMIT 1", NULL),

	[ST_EVENT_APPEND] = W("event_append",
		"INSERT INTO events (type, aggregate_id, aggregate_version, occurred_at, payload)"
		" VALUES (?1, ?2, ?3, ?4, ?5)", NULL),
	[ST_EVENT_READ] = R("event_read",
		"SELECT " TB_EVENT_COLS " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
		&tb_storage__event_rt),
	[ST_EVENT_LAST_SEQ] = R("event_last_seq", "SELECT coalesce(max(seq), 0) FROM events", NULL),

	[ST_CURSOR_GET] = R("cursor_get", "SELECT seq FROM cursors WHERE name = ?1", NULL),
	[ST_CURSOR_SET] = W("cursor_set",
		"INSERT INTO cursors (name, seq) VALUES (?1, ?2)"
		" ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", NULL),
	[ST_SEEN_INSERT] = W("seen_insert",
		"INSERT OR IGNORE INTO seen_keys (key, at) VALUES (?1, ?2)", NULL),
};

/* ---------------------------------------------------------------------
 * The adapter, its connections and transactions.
 */

struct sq;
struct conn;

/* One per connection: a connection carries at most one transaction. */
struct tb_storage_txn {
	struct sq *sq;
	struct conn *conn;
	bool write;
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT]; /* prepared on first use */
	tb_storage_txn txn;
	/* A reader whose read transaction commit() left open for reuse (see begin). */
	bool kept;
	uint64_t kept_epoch;   /* commit_epoch read before its BEGIN */
	int64_t kept_since_ns; /* monotonic time of that BEGIN */
};

/*
 * Bumped after every write COMMIT of any SQLite adapter in this process,
 * before the committer returns: a reader whose snapshot began at the same
 * epoch has seen every commit this process made that anyone can know of.
 */
static _Atomic uint64_t commit_epoch;

/* Admits one holder at a time; may be left from another thread than it was entered on. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool held;
	pthread_t owner;
};

struct sq {
	tb_storage base; /* first: a tb_storage * is a struct sq * */
	char *path;
	bool memory;
	int busy_timeout_ms;
	tb_sync_level sync;
	int64_t reuse_ns;       /* snapshot reuse window; < 0: never */

	struct conn writer;
	struct gate writer_gate;

	struct conn *readers;   /* nreaders, none for :memory: */
	unsigned int nreaders;
	unsigned int *idle;     /* indices of idle readers, nidle of them */
	unsigned int nidle;
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;

	struct conn checkpointer; /* file databases only */
	pthread_mutex_t checkpoint_mu;
	/* Frames in the WAL after the last commit (the writer's WAL hook), and how many were backfilled. */
	atomic_int wal_frames;
	atomic_int wal_backfilled;
	int restart_retry_at;      /* under checkpoint_mu: no restart before this many frames (0: none) */

	bool sync_ready;
};

/* ---------------------------------------------------------------------
 * Errors.
 */

static tb_status invalid(const char *what)
{
	return tb_error_set(TB_EINVAL, NULL, "sqlite storage: %s", what);
}

/* Map an SQLite result code that is not a constraint violation. */
static tb_status fail(sqlite3 *db, int rc, const char *what)
{
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return tb_error_set(TB_EBUSY, NULL, "sqlite %s: database is busy: %s", what, msg);
	case SQLITE_NOMEM:
		return tb_error_set(TB_ENOMEM, NULL, "sqlite %s: out of memory", what);
	default:
		return tb_error_set(TB_ESTORAGE, NULL, "sqlite %s: %s", what, msg);
	}
}

/*
 * How a write maps SQLite's UNIQUE violations (those of non-primary-key
 * unique indexes): users.email -> TB_EEXISTS, the orders' one-live-order
 * index -> TB_ELOCKED.  A duplicate primary key is always TB_EEXISTS.
 */
struct on_unique {
	tb_status status;
	const char *message;
};

static const struct on_unique unique_is_exists = { TB_EEXISTS, "already exists" };
static const struct on_unique email_taken = { TB_EEXISTS, "the email is already in use" };
static const struct on_unique ticket_has_live_order = {
	TB_ELOCKED, "the ticket already has a live order"
};

static tb_status fail_write(sqlite3 *db, int rc, const char *what, const struct on_unique *uq)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return tb_error_set(TB_EEXISTS, NULL, "sqlite %s: already exists (%s)", what,
			sqlite3_errmsg(db));
	case SQLITE_CONSTRAINT_UNIQUE:
		return tb_error_set(uq->status, NULL, "sqlite %s: %s (%s)", what, uq->message,
			sqlite3_errmsg(db));
	default:
		return fail(db, rc, what);
	}
}

/* ---------------------------------------------------------------------
 * Statements.
 */

/* Check that a statement's shape matches the row table it reads or binds. */
static tb_status stmt_check(sqlite3_stmt *s, const struct stmt_def *def)
{
	if (def->binds && (size_t)sqlite3_bind_parameter_count(s) != def->binds->ncols)
		return tb_error_set(TB_EINTERNAL, NULL, "sqlite %s: %d parameters for %zu columns",
			def->name, sqlite3_bind_parameter_count(s), def->binds->ncols);
	if (def->reads) {
		const struct tb_rowtype *rt = def->reads;

		if ((size_t)sqlite3_column_count(s) < rt->ncols)
			return tb_error_set(TB_EINTERNAL, NULL, "sqlite %s: too few columns", def->name);
		for (size_t i = 0; i < rt->ncols; i++) {
			const char *name = sqlite3_column_name(s, (int)i);

			if (!name || strcmp(name, rt->cols[i].name) != 0)
				return tb_error_set(TB_EINTERNAL, NULL,
					"sqlite %s: column %zu is %s, expected %s", def->name, i,
					name ? name : "?", rt->cols[i].name);
		}
	}
	return TB_OK;
}

static tb_status stmt_prepare(struct conn *c, enum stmt_id id)
{
	const struct stmt_def *def = &stmt_defs[id];
	sqlite3_stmt *s = NULL;
	tb_status st;
	int rc;

	if (!def->sql)
		return tb_error_set(TB_EINTERNAL, NULL, "sqlite: statement %d has no SQL", (int)id);
	rc = sqlite3_prepare_v3(c->db, def->sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(c->db, rc, def->name);
	st = stmt_check(s, def);
	if (st != TB_OK) {
		sqlite3_finalize(s);
		return st;
	}
	c->stmt[id] = s;
	return TB_OK;
}

/* The connection's statement `id`, ready to bind; end its use with stmt_done(). */
static tb_status stmt_get(tb_storage_txn *txn, enum stmt_id id, sqlite3_stmt **out)
{
	struct conn *c = txn->conn;

	*out = NULL;
	if (stmt_defs[id].writes && !txn->write)
		return tb_error_set(TB_ESTORAGE, NULL, "sqlite %s: write in a read-only transaction",
			stmt_defs[id].name);
	if (!c->stmt[id]) {
		tb_status st = stmt_prepare(c, id);

		if (st != TB_OK)
			return st;
	}
	*out = c->stmt[id];
	return TB_OK;
}

static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement that returns no rows, e.g. BEGIN; quiet: no error detail. */
static int run_quiet(tb_storage_txn *txn, enum stmt_id id)
{
	sqlite3_stmt *s;
	int rc;

	if (!txn->conn->stmt[id] && stmt_prepare(txn->conn, id) != TB_OK)
		return SQLITE_ERROR;
	s = txn->conn->stmt[id];
	rc = sqlite3_step(s);
	stmt_done(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---------------------------------------------------------------------
 * Binding and reading rows.
 */

static tb_status bind_text(sqlite3_stmt *s, int idx, const char *text, const char *what)
{
	int rc = text ? sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC) : sqlite3_bind_null(s, idx);

	return rc == SQLITE_OK ? TB_OK : fail(sqlite3_db_handle(s), rc, what);
}

static tb_status bind_i64(sqlite3_stmt *s, int idx, int64_t v, const char *what)
{
	int rc = sqlite3_bind_int64(s, idx, v);

	return rc == SQLITE_OK ? TB_OK : fail(sqlite3_db_handle(s), rc, what);
}

static tb_status bind_blob(sqlite3_stmt *s, int idx, const void *blob, size_t len,
	const char *what)
{
	int rc = blob ? sqlite3_bind_blob(s, idx, blob, (int)len, SQLITE_STATIC)
		: sqlite3_bind_null(s, idx);

	return rc == SQLITE_OK ? TB_OK : fail(sqlite3_db_handle(s), rc, what);
}

/* Named parameters (ticket_list): a shape without the parameter ignores it. */
static tb_status bind_named_text(sqlite3_stmt *s, const char *name, const char *text)
{
	int idx = sqlite3_bind_parameter_index(s, name);

	return idx ? bind_text(s, idx, text, "ticket_list") : TB_OK;
}

static tb_status bind_named_i64(sqlite3_stmt *s, const char *name, int64_t v)
{
	int idx = sqlite3_bind_parameter_index(s, name);

	return idx ? bind_i64(s, idx, v, "ticket_list") : TB_OK;
}

/* Bind every column of `row` to ?1..?n.  Text fields must be NUL-terminated in their buffer. */
static tb_status bind_row(sqlite3_stmt *s, const struct tb_rowtype *rt, const void *row,
	const char *what)
{
	const unsigned char *base = row;
	tb_status st = TB_OK;

	for (size_t i = 0; i < rt->ncols && st == TB_OK; i++) {
		const struct tb_col *c = &rt->cols[i];
		const void *field = base + c->off;
		int idx = (int)i + 1;

		switch (c->kind) {
		case TB_COL_TEXT:
			if (strnlen(field, c->size) == c->size)
				return tb_error_set(TB_EINVAL, c->name, "sqlite %s: %s.%s is not NUL-terminated",
					what, rt->table, c->name);
			st = bind_text(s, idx, field, what);
			break;
		case TB_COL_I64: {
			int64_t v;

			memcpy(&v, field, sizeof v);
			st = bind_i64(s, idx, v, what);
			break;
		}
		case TB_COL_INT: {
			int v;

			memcpy(&v, field, sizeof v);
			st = bind_i64(s, idx, v, what);
			break;
		}
		case TB_COL_BLOB:
			st = bind_blob(s, idx, field, c->size, what);
			break;
		}
	}
	return st;
}

static tb_status read_row(sqlite3_stmt *s, const struct tb_rowtype *rt, void *row)
{
	unsigned char *base = row;

	for (size_t i = 0; i < rt->ncols; i++) {
		const struct tb_col *c = &rt->cols[i];
		unsigned char *field = base + c->off;
		int ci = (int)i;

		switch (c->kind) {
		case TB_COL_TEXT: {
			const unsigned char *text = sqlite3_column_text(s, ci);
			size_t n = (size_t)sqlite3_column_bytes(s, ci);

			if (n >= c->size)
				return tb_error_set(TB_ESTORAGE, NULL, "sqlite: %s.%s is longer than %zu bytes",
					rt->table, c->name, c->size - 1);
			if (n)
				memcpy(field, text, n);
			field[n] = '\0';
			break;
		}
		case TB_COL_I64: {
			int64_t v = sqlite3_column_int64(s, ci);

			memcpy(field, &v, sizeof v);
			break;
		}
		case TB_COL_INT: {
			int64_t v = sqlite3_column_int64(s, ci);
			int iv;

			if (v < INT_MIN || v > INT_MAX)
				return tb_error_set(TB_ESTORAGE, NULL, "sqlite: %s.%s is out of range",
					rt->table, c->name);
			iv = (int)v;
			memcpy(field, &iv, sizeof iv);
			break;
		}
		case TB_COL_BLOB: {
			const void *blob = sqlite3_column_blob(s, ci);

			if ((size_t)sqlite3_column_bytes(s, ci) != c->size || !blob)
				return tb_error_set(TB_ESTORAGE, NULL, "sqlite: %s.%s is not %zu bytes",
					rt->table, c->name, c->size);
			memcpy(field, blob, c->size);
			break;
		}
		}
	}
	return TB_OK;
}

/* ---------------------------------------------------------------------
 * Generic operations on rows.
 */

static tb_status run_write(sqlite3_stmt *s, const char *what, const struct on_unique *uq)
{
	int rc = sqlite3_step(s);

	return rc == SQLITE_DONE ? TB_OK : fail_write(sqlite3_db_handle(s), rc, what, uq);
}

static tb_status row_insert(tb_storage_txn *txn, enum stmt_id id, const void *row,
	const struct on_unique *uq)
{
	const struct stmt_def *def = &stmt_defs[id];
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !row)
		return invalid("NULL transaction or row");
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	st = bind_row(s, def->binds, row, def->name);
	if (st == TB_OK)
		st = run_write(s, def->name, uq);
	stmt_done(s);
	return st;
}

/* Step a bound statement that yields at most one row of `rt`; resets it. */
static tb_status fetch_one(sqlite3_stmt *s, const struct stmt_def *def, void *out)
{
	int rc = sqlite3_step(s);
	tb_status st;

	if (rc == SQLITE_ROW)
		st = read_row(s, def->reads, out);
	else if (rc == SQLITE_DONE)
		st = tb_error_set(TB_ENOTFOUND, NULL, "sqlite %s: no such row in %s", def->name,
			def->reads->table);
	else
		st = fail(sqlite3_db_handle(s), rc, def->name);
	stmt_done(s);
	return st;
}

static tb_status row_get(tb_storage_txn *txn, enum stmt_id id, const char *key, void *out)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !key || !out)
		return invalid("NULL transaction, key or row");
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	st = bind_text(s, 1, key, stmt_defs[id].name);
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_one(s, &stmt_defs[id], out);
}

/* Step a bound statement yielding one integer; `if_none` when it yields no row. */
static tb_status fetch_i64(sqlite3_stmt *s, const char *what, int64_t if_none, int64_t *out)
{
	int rc = sqlite3_step(s);
	tb_status st = TB_OK;

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		*out = if_none;
	else
		st = fail(sqlite3_db_handle(s), rc, what);
	stmt_done(s);
	return st;
}

/* Whether the row with primary key `key` exists (to explain an update that changed nothing). */
static tb_status row_exists(tb_storage_txn *txn, enum stmt_id id, const char *key, bool *out)
{
	sqlite3_stmt *s;
	int64_t found = 0;
	tb_status st = stmt_get(txn, id, &s);

	if (st != TB_OK)
		return st;
	st = bind_text(s, 1, key, stmt_defs[id].name);
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	st = fetch_i64(s, stmt_defs[id].name, 0, &found);
	*out = found != 0;
	return st;
}

/*
 * Version-checked update: writes only where the stored version is
 * row->version - 1.  The key is the row's first column (its id).
 */
static tb_status row_update(tb_storage_txn *txn, enum stmt_id id, const void *row,
	const struct on_unique *uq)
{
	const struct stmt_def *def = &stmt_defs[id];
	const char *key = (const char *)row + def->binds->cols[0].off;
	bool exists = false;
	tb_status st = row_insert(txn, id, row, uq);

	if (st != TB_OK || sqlite3_changes(txn->conn->db) > 0)
		return st;
	st = row_exists(txn, (enum stmt_id)def->exists, key, &exists);
	if (st != TB_OK)
		return st;
	if (!exists)
		return tb_error_set(TB_ENOTFOUND, NULL, "sqlite %s: no such row in %s", def->name,
			def->binds->table);
	return tb_error_set(TB_ECONFLICT, NULL, "sqlite %s: stale version of the row in %s",
		def->name, def->binds->table);
}

/*
 * A version-checked update that first tries `same_keys`, the form that
 * leaves out the columns of the row's secondary indexes (and only matches
 * when they are unchanged), then the full form.
 */
static tb_status row_update_keeping_keys(tb_storage_txn *txn, enum stmt_id same_keys, enum stmt_id id,
	const void *row, const struct on_unique *uq)
{
	tb_status st = row_insert(txn, same_keys, row, uq);

	if (st != TB_OK || sqlite3_changes(txn->conn->db) > 0)
		return st;
	return row_update(txn, id, row, uq);
}

/* Grow a buffer of `*cap` items of `size` bytes so it holds `need`. */
static tb_status grow(void **buf, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return TB_OK;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size || !(p = realloc(*buf, n * size)))
		return tb_error_set(TB_ENOMEM, NULL, "sqlite storage: out of memory");
	*buf = p;
	*cap = n;
	return TB_OK;
}

/*
 * Step a bound statement to the end collecting rows, reset it, then hand
 * the rows to the sink until it returns non-OK (which is returned).
 */
static tb_status fetch_list(sqlite3_stmt *s, const struct stmt_def *def, const struct tb_sink *k)
{
	const struct tb_rowtype *rt = def->reads;
	void *rows = NULL;
	size_t n = 0, cap = 0;
	tb_status st = TB_OK;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		st = grow(&rows, &cap, n + 1, rt->size);
		if (st == TB_OK)
			st = read_row(s, rt, (unsigned char *)rows + n * rt->size);
		if (st != TB_OK)
			break;
		n++;
	}
	if (st == TB_OK && rc != SQLITE_DONE)
		st = fail(sqlite3_db_handle(s), rc, def->name);
	stmt_done(s);
	for (size_t i = 0; i < n && st == TB_OK; i++)
		st = k->emit(k, (unsigned char *)rows + i * rt->size);
	free(rows);
	return st;
}

/* ---------------------------------------------------------------------
 * Connections, the writer gate and the reader pool.
 */

static tb_status gate_enter(struct gate *g)
{
	pthread_t self = pthread_self();

	pthread_mutex_lock(&g->mu);
	if (g->held && pthread_equal(g->owner, self)) {
		pthread_mutex_unlock(&g->mu);
		return tb_error_set(TB_EINTERNAL, NULL, "sqlite begin: this thread already holds the "
			"writer connection (a nested transaction would deadlock)");
	}
	while (g->held)
		pthread_cond_wait(&g->cv, &g->mu);
	g->held = true;
	g->owner = self;
	pthread_mutex_unlock(&g->mu);
	return TB_OK;
}

static void gate_leave(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->held = false;
	pthread_mutex_unlock(&g->mu);
	pthread_cond_signal(&g->cv);
}

static struct conn *reader_take(struct sq *sq)
{
	struct conn *c;

	pthread_mutex_lock(&sq->pool_mu);
	while (sq->nidle == 0)
		pthread_cond_wait(&sq->pool_cv, &sq->pool_mu);
	c = &sq->readers[sq->idle[--sq->nidle]];
	pthread_mutex_unlock(&sq->pool_mu);
	return c;
}

static void conn_release(struct conn *c)
{
	struct sq *sq = c->txn.sq;

	if (c == &sq->writer) {
		gate_leave(&sq->writer_gate);
		return;
	}
	pthread_mutex_lock(&sq->pool_mu);
	sq->idle[sq->nidle++] = (unsigned int)(c - sq->readers);
	pthread_mutex_unlock(&sq->pool_mu);
	pthread_cond_signal(&sq->pool_cv);
}

static tb_status exec_sql(sqlite3 *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? TB_OK : fail(db, rc, what);
}

static tb_status conn_open(struct sq *sq, struct conn *c, int flags, unsigned int cache_kib)
{
	int rc = sqlite3_open_v2(sq->path, &c->db, flags | SQLITE_OPEN_NOMUTEX, tb_sqlite__vfs());
	static const char *const sync_pragma[] = {
		[TB_SYNC_DEFAULT] = "PRAGMA synchronous = NORMAL",
		[TB_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
		[TB_SYNC_FULL] = "PRAGMA synchronous = FULL",
		[TB_SYNC_OFF] = "PRAGMA synchronous = OFF",
	};
	tb_status st;

	c->txn.sq = sq;
	c->txn.conn = c;
	if (rc != SQLITE_OK) {
		st = tb_error_set(TB_ESTORAGE, NULL, "sqlite: cannot open %s: %s", sq->path,
			c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		c->db = NULL;
		return st;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, sq->busy_timeout_ms);
	/*
	 * A page cache of megabytes per connection instead of SQLite's 2 MiB:
	 * lookups by id over a million tickets then find their index pages in
	 * memory instead of asking the kernel for them (1.7x the GET rate with
	 * 16 MiB for each of 4 readers).
	 */
	char pragma[48];
	snprintf(pragma, sizeof pragma, "PRAGMA cache_size = -%u", cache_kib);
	st = exec_sql(c->db, pragma, "open");
	if (st != TB_OK)
		return st;
	if (flags & SQLITE_OPEN_READONLY)
		return TB_OK;
	st = exec_sql(c->db, "PRAGMA foreign_keys = ON", "open");
	if (st == TB_OK)
		st = exec_sql(c->db, sync_pragma[sq->sync], "open");
	return st;
}

static void kept_end(struct conn *c);

static void conn_close(struct conn *c)
{
	if (c->db)
		kept_end(c);
	for (size_t i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
}

/* Run one query returning a single text value into buf (e.g. PRAGMA journal_mode). */
static tb_status query_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	tb_status st = TB_OK;

	buf[0] = '\0';
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(s, 0);

		snprintf(buf, size, "%s", text ? (const char *)text : "");
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		st = fail(db, rc, "open");
	sqlite3_finalize(s);
	return st;
}

/* After a migration: no row may point at a missing parent (PRAGMA foreign_key_check). */
static tb_status check_foreign_keys(sqlite3 *db)
{
	char buf[160];
	tb_status st = query_text(db, "SELECT \"table\" || ' -> ' || parent"
		" FROM pragma_foreign_key_check LIMIT 1", buf, sizeof buf);

	if (st == TB_OK && buf[0])
		st = tb_error_set(TB_ESTORAGE, NULL, "sqlite migrate: a row of %s is missing its parent", buf);
	return st;
}

/*
 * Bring the schema to SCHEMA_VERSION, all or nothing.  Foreign keys are off
 * while migrations run (SQLite's procedure for rebuilding a table: with them
 * on, dropping the old tickets table would trip orders' references) and
 * checked before COMMIT; the pragma is a no-op inside a transaction, so it
 * brackets BEGIN and COMMIT.
 */
static tb_status migrate(struct sq *sq)
{
	sqlite3 *db = sq->writer.db;
	char buf[32];
	char sql[64];
	long version;
	tb_status st = exec_sql(db, "PRAGMA foreign_keys = OFF", "migrate");

	if (st == TB_OK)
		st = exec_sql(db, "BEGIN IMMEDIATE", "migrate");
	if (st != TB_OK)
		return st;
	st = query_text(db, "PRAGMA user_version", buf, sizeof buf);
	if (st != TB_OK)
		goto out;
	version = strtol(buf, NULL, 10);
	if (version > SCHEMA_VERSION || version < 0) {
		st = tb_error_set(TB_ESTORAGE, NULL, "database schema version %ld is newer than "
			"this library (%d)", version, SCHEMA_VERSION);
		goto out;
	}
	for (long v = version; v < SCHEMA_VERSION && st == TB_OK; v++)
		st = exec_sql(db, migrations[v], "migrate");
	if (st == TB_OK && version < SCHEMA_VERSION) {
		st = check_foreign_keys(db);
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
		if (st == TB_OK)
			st = exec_sql(db, sql, "migrate");
	}
	if (st == TB_OK)
		st = exec_sql(db, "COMMIT", "migrate");
out:
	if (st != TB_OK && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (st == TB_OK)
		st = exec_sql(db, "PRAGMA foreign_keys = ON", "migrate");
	else
		sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	return st;
}

static void sync_destroy(struct sq *sq)
{
	if (!sq->sync_ready)
		return;
	pthread_mutex_destroy(&sq->writer_gate.mu);
	pthread_cond_destroy(&sq->writer_gate.cv);
	pthread_mutex_destroy(&sq->pool_mu);
	pthread_cond_destroy(&sq->pool_cv);
	pthread_mutex_destroy(&sq->checkpoint_mu);
	sq->sync_ready = false;
}

static tb_status sync_init(struct sq *sq)
{
	int done = 0;

	if (pthread_mutex_init(&sq->writer_gate.mu, NULL) == 0 && ++done &&
	    pthread_cond_init(&sq->writer_gate.cv, NULL) == 0 && ++done &&
	    pthread_mutex_init(&sq->pool_mu, NULL) == 0 && ++done &&
	    pthread_cond_init(&sq->pool_cv, NULL) == 0 && ++done &&
	    pthread_mutex_init(&sq->checkpoint_mu, NULL) == 0) {
		sq->sync_ready = true;
		return TB_OK;
	}
	if (done > 3)
		pthread_cond_destroy(&sq->pool_cv);
	if (done > 2)
		pthread_mutex_destroy(&sq->pool_mu);
	if (done > 1)
		pthread_cond_destroy(&sq->writer_gate.cv);
	if (done > 0)
		pthread_mutex_destroy(&sq->writer_gate.mu);
	return tb_error_set(TB_ENOMEM, NULL, "sqlite storage: cannot create locks");
}

/* ---------------------------------------------------------------------
 * Transactions.
 */

/*
 * Snapshot reuse.  A read transaction costs SQLite a shared lock on a WAL
 * read mark and its release (fcntl calls on the -shm file, a mutex) even
 * for one lookup: a profile of GET /api/tickets/:id put 10-15% of the
 * server's time there.  So commit() of a read leaves a reader's transaction
 * open, and the next begin() on that reader reuses the snapshot when no
 * write committed in this process since (commit_epoch) and it is younger
 * than the reuse window (other processes' commits are not seen sooner than
 * that).  A snapshot is ended, and a fresh one begun, otherwise; idle
 * readers' snapshots are ended before every checkpoint so that they never
 * hold back the copy into the database or the WAL's restart.
 */
static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool kept_is_current(const struct sq *sq, const struct conn *c)
{
	return sq->reuse_ns >= 0 && !sqlite3_get_autocommit(c->db) &&
		c->kept_epoch == atomic_load(&commit_epoch) &&
		monotonic_ns() - c->kept_since_ns < sq->reuse_ns;
}

/* End a kept read transaction (nothing to write back: errors are moot). */
static void kept_end(struct conn *c)
{
	if (c->kept && !sqlite3_get_autocommit(c->db))
		run_quiet(&c->txn, ST_COMMIT);
	c->kept = false;
}

/* Before a checkpoint: the idle readers let go of their snapshots. */
static void end_idle_snapshots(struct sq *sq)
{
	pthread_mutex_lock(&sq->pool_mu);
	for (unsigned int i = 0; i < sq->nidle; i++)
		kept_end(&sq->readers[sq->idle[i]]);
	pthread_mutex_unlock(&sq->pool_mu);
}

static tb_status begin(tb_storage *self, int write, tb_storage_txn **out)
{
	struct sq *sq = (struct sq *)self;
	struct conn *c;
	int rc;

	if (out)
		*out = NULL;
	if (!self || !out)
		return invalid("begin: NULL storage or out");
	if (write || sq->memory) {
		tb_status st = gate_enter(&sq->writer_gate);

		if (st != TB_OK)
			return st;
		c = &sq->writer;
	} else {
		c = reader_take(sq);
		if (c->kept && kept_is_current(sq, c)) {
			*out = &c->txn; /* the snapshot this reader kept is still the latest */
			return TB_OK;
		}
		kept_end(c);
		c->kept_epoch = atomic_load(&commit_epoch);
		c->kept_since_ns = monotonic_ns();
	}
	c->txn.write = write != 0;
	rc = run_quiet(&c->txn, write ? ST_BEGIN_IMMEDIATE : ST_BEGIN);
	if (rc != SQLITE_OK) {
		tb_status st = fail(c->db, rc, "begin");

		conn_release(c);
		return st;
	}
	*out = &c->txn;
	return TB_OK;
}

static tb_status commit(tb_storage_txn *txn)
{
	struct conn *c;
	tb_status st = TB_OK;
	int rc;

	if (!txn)
		return invalid("commit: NULL transaction");
	c = txn->conn;
	if (!txn->write && c != &txn->sq->writer && kept_is_current(txn->sq, c)) {
		c->kept = true; /* end it later: a read-only COMMIT changes nothing */
		conn_release(c);
		return TB_OK;
	}
	c->kept = false;
	rc = run_quiet(txn, ST_COMMIT);
	if (rc == SQLITE_OK && txn->write)
		atomic_fetch_add(&commit_epoch, 1);
	if (rc != SQLITE_OK) {
		st = fail(c->db, rc, "commit");
		/* A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY). */
		if (!sqlite3_get_autocommit(c->db))
			run_quiet(txn, ST_ROLLBACK);
	}
	conn_release(c);
	return st;
}

static void rollback(tb_storage_txn *txn)
{
	if (!txn)
		return;
	txn->conn->kept = false;
	if (!sqlite3_get_autocommit(txn->conn->db))
		run_quiet(txn, ST_ROLLBACK);
	conn_release(txn->conn);
}

/*
 * One level of savepoint (group commit).  ROLLBACK TO undoes the writes and
 * keeps the savepoint open, so a RELEASE follows it.  Rolling back also
 * restores sqlite_sequence, so the events' AUTOINCREMENT seqs are handed
 * out again and the outbox stays gap-free.
 */
static tb_status savepoint_step(tb_storage_txn *txn, enum stmt_id id)
{
	int rc;

	if (!txn)
		return invalid("savepoint: NULL transaction");
	if (!txn->write)
		return tb_error_set(TB_ESTORAGE, NULL, "sqlite %s: not in a write transaction",
			stmt_defs[id].name);
	rc = run_quiet(txn, id);
	return rc == SQLITE_OK ? TB_OK : fail(txn->conn->db, rc, stmt_defs[id].name);
}

static tb_status savepoint(tb_storage_txn *txn)
{
	return savepoint_step(txn, ST_SAVEPOINT);
}

static tb_status savepoint_release(tb_storage_txn *txn)
{
	return savepoint_step(txn, ST_RELEASE);
}

static tb_status savepoint_rollback(tb_storage_txn *txn)
{
	tb_status st = savepoint_step(txn, ST_ROLLBACK_TO);

	if (st == TB_OK)
		st = savepoint_step(txn, ST_RELEASE);
	/* SQLite may have dropped the whole transaction (I/O error, out of memory). */
	if (st == TB_OK && sqlite3_get_autocommit(txn->conn->db))
		st = tb_error_set(TB_ESTORAGE, NULL, "sqlite savepoint_rollback: the transaction was lost");
	return st;
}

/* ---------------------------------------------------------------------
 * Users and sessions.
 */

static tb_status user_insert(tb_storage_txn *txn, const tb_user_row *row)
{
	return row_insert(txn, ST_USER_INSERT, row, &email_taken);
}

static tb_status user_get(tb_storage_txn *txn, const char *id, tb_user_row *out)
{
	return row_get(txn, ST_USER_GET, id, out);
}

static tb_status user_get_by_email(tb_storage_txn *txn, const char *email, tb_user_row *out)
{
	return row_get(txn, ST_USER_GET_BY_EMAIL, email, out);
}

static tb_status user_update(tb_storage_txn *txn, const tb_user_row *row)
{
	return row_update(txn, ST_USER_UPDATE, row, &email_taken);
}

static tb_status session_insert(tb_storage_txn *txn, const tb_session_row *row)
{
	return row_insert(txn, ST_SESSION_INSERT, row, &unique_is_exists);
}

static tb_status session_get(tb_storage_txn *txn, const unsigned char *token_hash,
	tb_session_row *out)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !token_hash || !out)
		return invalid("session_get: NULL transaction, hash or row");
	st = stmt_get(txn, ST_SESSION_GET, &s);
	if (st != TB_OK)
		return st;
	st = bind_blob(s, 1, token_hash, TB_TOKEN_HASH_SIZE, "session_get");
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_one(s, &stmt_defs[ST_SESSION_GET], out);
}

static tb_status session_delete(tb_storage_txn *txn, const unsigned char *token_hash)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !token_hash)
		return invalid("session_delete: NULL transaction or hash");
	st = stmt_get(txn, ST_SESSION_DELETE, &s);
	if (st != TB_OK)
		return st;
	st = bind_blob(s, 1, token_hash, TB_TOKEN_HASH_SIZE, "session_delete");
	if (st == TB_OK)
		st = run_write(s, "session_delete", &unique_is_exists);
	stmt_done(s);
	return st;
}

static tb_status session_delete_for_user(tb_storage_txn *txn, const char *user_id,
	const unsigned char *keep_hash)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !user_id)
		return invalid("session_delete_for_user: NULL transaction or user id");
	st = stmt_get(txn, ST_SESSION_DELETE_FOR_USER, &s);
	if (st != TB_OK)
		return st;
	st = bind_text(s, 1, user_id, "session_delete_for_user");
	if (st == TB_OK)
		st = bind_blob(s, 2, keep_hash, TB_TOKEN_HASH_SIZE, "session_delete_for_user");
	if (st == TB_OK)
		st = run_write(s, "session_delete_for_user", &unique_is_exists);
	stmt_done(s);
	return st;
}

/* ---------------------------------------------------------------------
 * Tickets.
 */

static tb_status ticket_insert(tb_storage_txn *txn, const tb_ticket_row *row)
{
	return row_insert(txn, ST_TICKET_INSERT, row, &unique_is_exists);
}

static tb_status ticket_get(tb_storage_txn *txn, const char *id, tb_ticket_row *out)
{
	return row_get(txn, ST_TICKET_GET, id, out);
}

static tb_status ticket_update(tb_storage_txn *txn, const tb_ticket_row *row)
{
	return row_update_keeping_keys(txn, ST_TICKET_UPDATE_SAME_KEYS, ST_TICKET_UPDATE, row,
		&unique_is_exists);
}

static tb_status ticket_list(tb_storage_txn *txn, const tb_ticket_filter *filter,
	tb_ticket_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__ticket_sink(cb, payload);
	enum stmt_id id;
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !filter || !cb)
		return invalid("ticket_list: NULL transaction, filter or callback");
	if (filter->owner_id)
		id = ST_TICKET_LIST_OWNER;
	else if (filter->available_only)
		id = ST_TICKET_LIST_AVAILABLE;
	else
		id = ST_TICKET_LIST_ALL;
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	st = bind_named_text(s, ":after", filter->after_id ? filter->after_id : "");
	if (st == TB_OK)
		st = bind_named_text(s, ":title", filter->title_contains);
	if (st == TB_OK)
		st = bind_named_i64(s, ":limit", filter->limit);
	if (st == TB_OK)
		st = bind_named_i64(s, ":now", filter->now_ms);
	if (st == TB_OK)
		st = bind_named_text(s, ":owner", filter->owner_id);
	if (st == TB_OK)
		st = bind_named_i64(s, ":available", filter->available_only != 0);
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_list(s, &stmt_defs[id], &k);
}

/* ---------------------------------------------------------------------
 * Orders.
 */

static tb_status order_insert(tb_storage_txn *txn, const tb_order_row *row)
{
	return row_insert(txn, ST_ORDER_INSERT, row, &ticket_has_live_order);
}

static tb_status order_get(tb_storage_txn *txn, const char *id, tb_order_row *out)
{
	return row_get(txn, ST_ORDER_GET, id, out);
}

static tb_status order_update(tb_storage_txn *txn, const tb_order_row *row)
{
	return row_update_keeping_keys(txn, ST_ORDER_UPDATE_SAME_KEYS, ST_ORDER_UPDATE, row,
		&ticket_has_live_order);
}

static tb_status order_list_by_buyer(tb_storage_txn *txn, const char *buyer_id,
	const char *after_id, unsigned int limit, tb_order_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__order_sink(cb, payload);
	const char *what = stmt_defs[ST_ORDER_LIST_BY_BUYER].name;
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !buyer_id || !cb)
		return invalid("order_list_by_buyer: NULL transaction, buyer or callback");
	st = stmt_get(txn, ST_ORDER_LIST_BY_BUYER, &s);
	if (st != TB_OK)
		return st;
	st = bind_text(s, 1, buyer_id, what);
	if (st == TB_OK)
		st = bind_text(s, 2, after_id ? after_id : "", what);
	if (st == TB_OK)
		st = bind_i64(s, 3, limit, what);
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_list(s, &stmt_defs[ST_ORDER_LIST_BY_BUYER], &k);
}

/* Bind integers to ?1..?nargs and list the rows through `k`. */
static tb_status list_by_ints(tb_storage_txn *txn, enum stmt_id id, const int64_t *args,
	int nargs, const struct tb_sink *k)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn)
		return invalid("NULL transaction");
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	for (int i = 0; i < nargs && st == TB_OK; i++)
		st = bind_i64(s, i + 1, args[i], stmt_defs[id].name);
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_list(s, &stmt_defs[id], k);
}

static tb_status order_list_due(tb_storage_txn *txn, int status, int64_t cutoff_ms,
	unsigned int limit, tb_order_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__order_sink(cb, payload);
	const int64_t args[] = { status, cutoff_ms, limit };

	if (!cb)
		return invalid("order_list_due: NULL callback");
	return list_by_ints(txn, ST_ORDER_LIST_DUE, args, 3, &k);
}

/* Run a statement with optional integer ?1 and one integer result. */
static tb_status scalar_i64(tb_storage_txn *txn, enum stmt_id id, const int64_t *arg,
	int64_t if_none, int64_t *out)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !out)
		return invalid("NULL transaction or out");
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	if (arg && (st = bind_i64(s, 1, *arg, stmt_defs[id].name)) != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_i64(s, stmt_defs[id].name, if_none, out);
}

static tb_status order_min_expiry(tb_storage_txn *txn, int status, int64_t *out)
{
	const int64_t arg = status;

	return scalar_i64(txn, ST_ORDER_MIN_EXPIRY, &arg, TB_NO_DEADLINE, out);
}

/* ---------------------------------------------------------------------
 * Charges.
 */

static tb_status charge_insert(tb_storage_txn *txn, const tb_charge_row *row)
{
	return row_insert(txn, ST_CHARGE_INSERT, row, &unique_is_exists);
}

static tb_status charge_get(tb_storage_txn *txn, const char *id, tb_charge_row *out)
{
	return row_get(txn, ST_CHARGE_GET, id, out);
}

static tb_status charge_update(tb_storage_txn *txn, const tb_charge_row *row)
{
	return row_update(txn, ST_CHARGE_UPDATE, row, &unique_is_exists);
}

static tb_status charge_get_latest_for_order(tb_storage_txn *txn, const char *order_id,
	tb_charge_row *out)
{
	return row_get(txn, ST_CHARGE_LATEST_FOR_ORDER, order_id, out);
}

static tb_status charge_get_by_provider_id(tb_storage_txn *txn, const char *provider_charge_id,
	tb_charge_row *out)
{
	/* "" means "none" in a row: it never names a charge. */
	if (provider_charge_id && !provider_charge_id[0])
		return tb_error_set(TB_ENOTFOUND, NULL, "sqlite charge_get_by_provider_id: empty id");
	return row_get(txn, ST_CHARGE_BY_PROVIDER_ID, provider_charge_id, out);
}

static tb_status charge_list_due(tb_storage_txn *txn, int64_t now_ms, unsigned int limit,
	tb_charge_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__charge_sink(cb, payload);
	const int64_t args[] = { now_ms, limit };

	if (!cb)
		return invalid("charge_list_due: NULL callback");
	return list_by_ints(txn, ST_CHARGE_LIST_DUE, args, 2, &k);
}

static tb_status charge_min_next_attempt(tb_storage_txn *txn, int64_t *out)
{
	return scalar_i64(txn, ST_CHARGE_MIN_NEXT_ATTEMPT, NULL, TB_NO_DEADLINE, out);
}

/* ---------------------------------------------------------------------
 * Events, cursors, seen keys.
 */

static tb_status event_append(tb_storage_txn *txn, tb_event_row *row)
{
	const char *what = "event_append";
	sqlite3_stmt *s;
	tb_status st;
	int rc;

	if (!txn || !row || (!row->payload && row->payload_len))
		return invalid("event_append: NULL transaction, row or payload");
	if (row->payload_len > INT_MAX || strnlen(row->aggregate_id, TB_ID_SIZE) == TB_ID_SIZE)
		return tb_error_set(TB_EINVAL, NULL, "sqlite event_append: payload or id too long");
	st = stmt_get(txn, ST_EVENT_APPEND, &s);
	if (st != TB_OK)
		return st;
	if ((st = bind_i64(s, 1, row->type, what)) == TB_OK &&
	    (st = bind_text(s, 2, row->aggregate_id, what)) == TB_OK &&
	    (st = bind_i64(s, 3, row->aggregate_version, what)) == TB_OK &&
	    (st = bind_i64(s, 4, row->occurred_at_ms, what)) == TB_OK) {
		rc = sqlite3_bind_text(s, 5, row->payload ? row->payload : "", (int)row->payload_len,
			SQLITE_STATIC);
		st = rc == SQLITE_OK ? run_write(s, what, &unique_is_exists)
			: fail(txn->conn->db, rc, what);
	}
	stmt_done(s);
	if (st == TB_OK)
		row->seq = sqlite3_last_insert_rowid(txn->conn->db);
	return st;
}

/* Collected events: rows, and their payloads end to end in one buffer. */
struct event_batch {
	tb_event_row *rows;
	size_t *offsets; /* of each payload in text */
	size_t n, cap, offsets_cap;
	char *text;
	size_t text_len, text_cap;
};

static tb_status event_collect(struct event_batch *b, sqlite3_stmt *s)
{
	const unsigned char *payload;
	size_t len;
	tb_status st = grow((void **)&b->rows, &b->cap, b->n + 1, sizeof *b->rows);

	if (st == TB_OK)
		st = grow((void **)&b->offsets, &b->offsets_cap, b->n + 1, sizeof *b->offsets);
	if (st == TB_OK)
		st = read_row(s, &tb_storage__event_rt, &b->rows[b->n]);
	if (st != TB_OK)
		return st;
	payload = sqlite3_column_text(s, TB_EVENT_PAYLOAD_COL);
	len = (size_t)sqlite3_column_bytes(s, TB_EVENT_PAYLOAD_COL);
	/* Each payload keeps a NUL after it, for callers that want a C string. */
	st = grow((void **)&b->text, &b->text_cap, b->text_len + len + 1, 1);
	if (st != TB_OK)
		return st;
	if (len)
		memcpy(b->text + b->text_len, payload, len);
	b->text[b->text_len + len] = '\0';
	b->offsets[b->n] = b->text_len;
	b->rows[b->n].payload_len = len;
	b->text_len += len + 1;
	b->n++;
	return TB_OK;
}

static tb_status event_read(tb_storage_txn *txn, int64_t after_seq, unsigned int limit,
	tb_event_row_cb cb, void *payload)
{
	const char *what = "event_read";
	struct event_batch b = { NULL, NULL, 0, 0, 0, NULL, 0, 0 };
	sqlite3_stmt *s;
	tb_status st;
	int rc = SQLITE_DONE;

	if (!txn || !cb)
		return invalid("event_read: NULL transaction or callback");
	st = stmt_get(txn, ST_EVENT_READ, &s);
	if (st != TB_OK)
		return st;
	if ((st = bind_i64(s, 1, after_seq, what)) == TB_OK &&
	    (st = bind_i64(s, 2, limit, what)) == TB_OK) {
		while (st == TB_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
			st = event_collect(&b, s);
		if (st == TB_OK && rc != SQLITE_DONE)
			st = fail(txn->conn->db, rc, what);
	}
	stmt_done(s);
	for (size_t i = 0; i < b.n && st == TB_OK; i++) {
		b.rows[i].payload = b.text + b.offsets[i];
		st = cb(&b.rows[i], payload);
	}
	free(b.rows);
	free(b.offsets);
	free(b.text);
	return st;
}

static tb_status event_last_seq(tb_storage_txn *txn, int64_t *out)
{
	return scalar_i64(txn, ST_EVENT_LAST_SEQ, NULL, 0, out);
}

static tb_status cursor_get(tb_storage_txn *txn, const char *name, int64_t *out)
{
	sqlite3_stmt *s;
	tb_status st;

	if (!txn || !name || !out)
		return invalid("cursor_get: NULL transaction, name or out");
	st = stmt_get(txn, ST_CURSOR_GET, &s);
	if (st != TB_OK)
		return st;
	st = bind_text(s, 1, name, "cursor_get");
	if (st != TB_OK) {
		stmt_done(s);
		return st;
	}
	return fetch_i64(s, "cursor_get", 0, out);
}

/* INSERT of (?1 text, ?2 integer); returns the number of rows it added in *changes. */
static tb_status put_text_i64(tb_storage_txn *txn, enum stmt_id id, const char *key,
	int64_t value, int *changes)
{
	const char *what = stmt_defs[id].name;
	sqlite3_stmt *s;
	tb_status st;

	*changes = 0;
	if (!txn || !key)
		return invalid("NULL transaction or key");
	st = stmt_get(txn, id, &s);
	if (st != TB_OK)
		return st;
	if ((st = bind_text(s, 1, key, what)) == TB_OK && (st = bind_i64(s, 2, value, what)) == TB_OK)
		st = run_write(s, what, &unique_is_exists);
	stmt_done(s);
	*changes = st == TB_OK ? sqlite3_changes(txn->conn->db) : 0;
	return st;
}

static tb_status cursor_set(tb_storage_txn *txn, const char *name, int64_t seq)
{
	int changes;

	return put_text_i64(txn, ST_CURSOR_SET, name, seq, &changes);
}

static tb_status seen_insert(tb_storage_txn *txn, const char *key, int64_t at_ms)
{
	int changes;
	tb_status st = put_text_i64(txn, ST_SEEN_INSERT, key, at_ms, &changes);

	if (st == TB_OK && changes == 0)
		return tb_error_set(TB_EEXISTS, NULL, "sqlite seen_insert: key seen before");
	return st;
}

/* ---------------------------------------------------------------------
 * Housekeeping, open and destroy.
 */

/*
 * The checkpoint connection's busy handler during a RESTART checkpoint:
 * readers that began on the old WAL hold it; a reader that kept its
 * snapshot (snapshot_reuse_ms) holds it even while idle, and more of them
 * keep one while no commit moves the epoch, which is all the time the writer
 * is held.  So end idle snapshots, then wait a little, up to RESTART_WAIT_MS.
 */
static int restart_busy(void *arg, int count)
{
	struct sq *sq = arg;
	struct timespec step = { 0, 200 * 1000 };

	if ((long)count * 200 >= RESTART_WAIT_MS * 1000L)
		return 0;
	end_idle_snapshots(sq);
	nanosleep(&step, NULL);
	return 1;
}

/*
 * A checkpoint on the checkpoint connection; checkpoint_mu is held.
 * SQLITE_CHECKPOINT_PASSIVE copies what no reader still needs and never
 * waits.  SQLITE_CHECKPOINT_RESTART (only with the writer gate held: it would
 * wait for the writer) copies everything, then waits for the readers still
 * on the old WAL (restart_busy), so that the next write starts the WAL from
 * its beginning.  A PASSIVE copy in its place let the WAL grow on whenever a
 * reader had begun during the copy, and every following checkpoint held the
 * writer again: measured under POST /api/orders, two gated checkpoints in
 * three restarted nothing.
 */
static tb_status checkpoint_locked(struct sq *sq, int mode, bool *busy_out)
{
	int logged = -1, backfilled = -1;
	int rc;

	end_idle_snapshots(sq);
	if (mode == SQLITE_CHECKPOINT_RESTART)
		sqlite3_busy_handler(sq->checkpointer.db, restart_busy, sq);
	rc = sqlite3_wal_checkpoint_v2(sq->checkpointer.db, NULL, mode, &logged, &backfilled);
	if (mode == SQLITE_CHECKPOINT_RESTART)
		sqlite3_busy_timeout(sq->checkpointer.db, sq->busy_timeout_ms);

	if (busy_out)
		*busy_out = rc == SQLITE_BUSY;
	/*
	 * Busy: another connection (another process) is checkpointing right now,
	 * or (RESTART) a reader stayed on the old WAL; what was copied counts.
	 */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return fail(sq->checkpointer.db, rc, "checkpoint");
	if (backfilled >= 0)
		atomic_store(&sq->wal_backfilled, backfilled);
	return TB_OK;
}

static tb_status checkpoint(tb_storage *self)
{
	struct sq *sq = (struct sq *)self;
	tb_status st;

	if (!self)
		return invalid("checkpoint: NULL storage");
	if (sq->memory)
		return TB_OK;
	/* PASSIVE: copies what no reader still needs; never waits, never blocks the writer. */
	pthread_mutex_lock(&sq->checkpoint_mu);
	st = checkpoint_locked(sq, SQLITE_CHECKPOINT_PASSIVE, NULL);
	pthread_mutex_unlock(&sq->checkpoint_mu);
	return st;
}

/*
 * The writer's WAL hook, called inside COMMIT: it replaces SQLite's
 * autocheckpoint (which would copy pages and fsync twice right there,
 * holding the writer) with a note of how big the WAL has grown.
 */
static int wal_hook(void *payload, sqlite3 *db, const char *name, int frames)
{
	struct sq *sq = payload;

	(void)db;
	(void)name;
	atomic_store(&sq->wal_frames, frames);
	return SQLITE_OK;
}

/*
 * After a commit, with the writer free again: when CHECKPOINT_FRAMES have
 * been written since the last checkpoint, copy them now, on the calling
 * thread, while other threads go on writing.  If another thread is already
 * checkpointing, there is nothing to add.  Errors are left for the next
 * explicit checkpoint to report; the caller's error detail is kept.
 */
static void after_commit(tb_storage *self)
{
	struct sq *sq = (struct sq *)self;
	int frames = atomic_load(&sq->wal_frames);
	int base = atomic_load(&sq->wal_backfilled);
	bool busy = false;

	if (sq->memory)
		return;
	if (frames < base)
		base = 0; /* the WAL restarted from its beginning */
	if (frames - base < CHECKPOINT_FRAMES || pthread_mutex_trylock(&sq->checkpoint_mu) != 0)
		return;
	if (frames < sq->restart_retry_at - WAL_RESTART_FRAMES)
		sq->restart_retry_at = 0; /* the WAL restarted since the last attempt */
	if (checkpoint_locked(sq, SQLITE_CHECKPOINT_PASSIVE, NULL) == TB_OK &&
	    (frames = atomic_load(&sq->wal_frames)) >= WAL_RESTART_FRAMES && frames >= sq->restart_retry_at &&
	    gate_enter(&sq->writer_gate) == TB_OK) {
		/* No commit can add frames now: this copies the rest, and the next write restarts the WAL. */
		if (checkpoint_locked(sq, SQLITE_CHECKPOINT_RESTART, &busy) == TB_OK)
			/* A reader outlasted RESTART_WAIT_MS: hold the writer again only a while later. */
			sq->restart_retry_at = busy ? frames + WAL_RESTART_FRAMES / 4 : 0;
		gate_leave(&sq->writer_gate);
	}
	pthread_mutex_unlock(&sq->checkpoint_mu);
}

static void destroy(tb_storage *self)
{
	struct sq *sq = (struct sq *)self;

	if (!sq)
		return;
	for (unsigned int i = 0; sq->readers && i < sq->nreaders; i++)
		conn_close(&sq->readers[i]);
	conn_close(&sq->checkpointer);
	conn_close(&sq->writer); /* last: the last connection to close removes the WAL */
	sync_destroy(sq);
	free(sq->readers);
	free(sq->idle);
	free(sq->path);
	free(sq);
}

static const tb_storage sqlite_methods = {
	.version = TB_STORAGE_VERSION,
	.name = "sqlite",
	.begin = begin,
	.commit = commit,
	.rollback = rollback,
	.user_insert = user_insert,
	.user_get = user_get,
	.user_get_by_email = user_get_by_email,
	.user_update = user_update,
	.session_insert = session_insert,
	.session_get = session_get,
	.session_delete = session_delete,
	.session_delete_for_user = session_delete_for_user,
	.ticket_insert = ticket_insert,
	.ticket_get = ticket_get,
	.ticket_update = ticket_update,
	.ticket_list = ticket_list,
	.order_insert = order_insert,
	.order_get = order_get,
	.order_update = order_update,
	.order_list_by_buyer = order_list_by_buyer,
	.order_list_due = order_list_due,
	.order_min_expiry = order_min_expiry,
	.charge_insert = charge_insert,
	.charge_get = charge_get,
	.charge_update = charge_update,
	.charge_get_latest_for_order = charge_get_latest_for_order,
	.charge_get_by_provider_id = charge_get_by_provider_id,
	.charge_list_due = charge_list_due,
	.charge_min_next_attempt = charge_min_next_attempt,
	.event_append = event_append,
	.event_read = event_read,
	.event_last_seq = event_last_seq,
	.cursor_get = cursor_get,
	.cursor_set = cursor_set,
	.seen_insert = seen_insert,
	.checkpoint = checkpoint,
	.destroy = destroy,
	.savepoint = savepoint,
	.savepoint_release = savepoint_release,
	.savepoint_rollback = savepoint_rollback,
	.after_commit = after_commit,
};

static tb_status check_options(const tb_sqlite_options *opts)
{
	if (opts->version < 1 || opts->version > TB_SQLITE_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, NULL, "sqlite options version %u is unknown",
			opts->version);
	if ((unsigned int)opts->sync > TB_SYNC_OFF)
		return tb_error_set(TB_EINVAL, "sync", "unknown sync level %d", (int)opts->sync);
	if (opts->busy_timeout_ms < 0)
		return tb_error_set(TB_EINVAL, "busy_timeout_ms", "busy_timeout_ms must be >= 0");
	if (opts->readers > MAX_READERS)
		return tb_error_set(TB_EINVAL, "readers", "at most %u readers", MAX_READERS);
	if (opts->version >= 2 && (opts->snapshot_reuse_ms < -1 || opts->snapshot_reuse_ms > 1000))
		return tb_error_set(TB_EINVAL, "snapshot_reuse_ms",
			"snapshot_reuse_ms must be -1 (never), 0 (default) or 1..1000");
	return TB_OK;
}

/* Open the readers and the checkpoint connection of a file database. */
static tb_status open_file_extras(struct sq *sq, unsigned int readers)
{
	tb_status st;

	sq->readers = calloc(readers, sizeof *sq->readers);
	sq->idle = calloc(readers, sizeof *sq->idle);
	if (!sq->readers || !sq->idle)
		return tb_error_set(TB_ENOMEM, NULL, "sqlite storage: out of memory");
	unsigned int cache_kib = READER_CACHE_BUDGET_KIB / readers;
	if (cache_kib > CACHE_KIB)
		cache_kib = CACHE_KIB;
	if (cache_kib < READER_CACHE_MIN_KIB)
		cache_kib = READER_CACHE_MIN_KIB;
	for (unsigned int i = 0; i < readers; i++) {
		/* Counted first, so destroy closes a half-opened one. */
		sq->nreaders = i + 1;
		st = conn_open(sq, &sq->readers[i], SQLITE_OPEN_READONLY, cache_kib);
		if (st != TB_OK)
			return st;
		sq->idle[sq->nidle++] = i;
	}
	return conn_open(sq, &sq->checkpointer, SQLITE_OPEN_READWRITE, CACHE_KIB);
}

TB_API tb_status tb_storage_sqlite_open(tb_storage **out, const char *path,
	const tb_sqlite_options *opts)
{
	static const tb_sqlite_options defaults = TB_SQLITE_OPTIONS_INIT;
	char mode[32];
	struct sq *sq;
	size_t len;
	int reuse_ms;
	tb_status st;

	if (out)
		*out = NULL;
	if (!out || !path || !path[0])
		return tb_error_set(TB_EINVAL, "path", "sqlite open: NULL out or empty path");
	if (!opts)
		opts = &defaults;
	if ((st = check_options(opts)) != TB_OK)
		return st;
	if (!sqlite3_threadsafe())
		return tb_error_set(TB_ESTORAGE, NULL, "sqlite open: libsqlite3 lacks thread support");
	if (sqlite3_libversion_number() < 3024000)
		return tb_error_set(TB_ESTORAGE, NULL, "sqlite open: libsqlite3 %s is older than 3.24",
			sqlite3_libversion());

	sq = calloc(1, sizeof *sq);
	len = strlen(path);
	if (!sq || !(sq->path = malloc(len + 1))) {
		free(sq);
		return tb_error_set(TB_ENOMEM, NULL, "sqlite open: out of memory");
	}
	memcpy(sq->path, path, len + 1);
	sq->base = sqlite_methods;
	sq->memory = strcmp(path, ":memory:") == 0;
	sq->busy_timeout_ms = opts->busy_timeout_ms ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
	sq->sync = opts->sync;
	reuse_ms = opts->version >= 2 ? opts->snapshot_reuse_ms : 0;
	sq->reuse_ns = reuse_ms < 0 ? -1 : (int64_t)(reuse_ms ? reuse_ms : DEFAULT_SNAPSHOT_REUSE_MS) * 1000000;

	st = sync_init(sq);
	if (st == TB_OK)
		st = conn_open(sq, &sq->writer, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, CACHE_KIB);
	/*
	 * Savepoints and statement journals keep the pages they may have to undo
	 * in a sub-journal, which SQLite spills to a temporary file past 64 KiB:
	 * a file created, written and unlinked inside the writer's transaction.
	 * In memory it is a few copies of pages, freed at each release.
	 */
	if (st == TB_OK)
		st = exec_sql(sq->writer.db, "PRAGMA temp_store = MEMORY", "open");
	if (st == TB_OK && !sq->memory) {
		st = query_text(sq->writer.db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
		if (st == TB_OK && strcmp(mode, "wal") != 0)
			st = tb_error_set(TB_ESTORAGE, NULL, "sqlite open: cannot use WAL mode on %s "
				"(journal mode is %s)", path, mode);
		/* Checkpoints run after commits (after_commit) or when the host asks, not inside COMMIT. */
		if (st == TB_OK)
			st = exec_sql(sq->writer.db, "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT, "open");
		if (st == TB_OK)
			sqlite3_wal_hook(sq->writer.db, wal_hook, sq);
	}
	if (st == TB_OK)
		st = migrate(sq);
	if (st == TB_OK && !sq->memory)
		st = open_file_extras(sq, opts->readers ? opts->readers : DEFAULT_READERS);
	if (st != TB_OK) {
		destroy(&sq->base);
		return st;
	}
	*out = &sq->base;
	return TB_OK;
}
