/*
 * tests/test_storage_postgres.c - the PostgreSQL adapter: the storage
 * contract suite, then what only PostgreSQL promises: schema versions,
 * error mapping, and several nodes (adapters, markets) on one database:
 * row locks across nodes, SKIP LOCKED ticks, one winner per ticket, and an
 * outbox that never loses an event committed out of seq order.
 *
 * The server: see support/tb_pg.h ($TB_PG_CONNINFO, or the ctest fixture
 * tb_postgres); without one the test is skipped (exit 77).  Every case
 * works in a fresh schema of its own (the adapter's search_path), so cases
 * never see each other's rows.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/tb_pg.h"
#include "support/tb_test.h"
#include "support/storage_contract.h"
#include "ticketyboo/ticketyboo.h"

#define T0 INT64_C(1700000000000)

/* ---------------------------------------------------------------------
 * The server and fresh schemas.
 */

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static tb_storage *open_in(const char *conninfo, const tb_postgres_options *opts)
{
	tb_storage *s = NULL;

	assert_tb_ok(tb_storage_postgres_open(&s, conninfo, opts));
	return s;
}

/* The contract's factory: a fresh schema for every case. */
static tb_storage *open_fresh(void *ctx)
{
	char name[64], conninfo[4096];
	tb_storage *s = NULL;

	(void)ctx;
	tbt_pg_schema(name, conninfo, sizeof conninfo, NULL, 0);
	return tb_storage_postgres_open(&s, conninfo, NULL) == TB_OK ? s : NULL;
}

/* Count rows of a table of a schema. */
static long long count_rows(const char *schema, const char *table, const char *where)
{
	char sql[512];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s%s%s", schema, table,
		where ? " WHERE " : "", where ? where : "");
	return tbt_pg_sql(sql);
}

/* Wait until `n` sessions of this database wait for a lock (at most 10 s). */
static void wait_for_lock_waiters(int n)
{
	for (int i = 0; i < 1000; i++) {
		if (tbt_pg_sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
			" AND wait_event_type = 'Lock'") >= n)
			return;
		msleep(10);
	}
	fail_msg("no session started waiting for a lock");
}

/* ---------------------------------------------------------------------
 * Rows.
 */

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

static tb_ticket_row ticket_row(unsigned int n, const char *owner_id)
{
	tb_ticket_row t;

	memset(&t, 0, sizeof t);
	snprintf(t.id, sizeof t.id, "00000002-0000-7000-8000-%012x", n);
	snprintf(t.title, sizeof t.title, "Ticket %u", n);
	t.price_minor = 100;
	snprintf(t.currency, sizeof t.currency, "GBP");
	snprintf(t.owner_id, sizeof t.owner_id, "%s", owner_id);
	t.status = TB_TICKET_LISTED;
	t.version = 1;
	t.created_at_ms = T0;
	t.updated_at_ms = T0;
	return t;
}

static tb_order_row order_row(unsigned int n, const tb_ticket_row *t, const char *buyer_id,
	int64_t expires_at_ms)
{
	tb_order_row o;

	memset(&o, 0, sizeof o);
	snprintf(o.id, sizeof o.id, "00000003-0000-7000-8000-%012x", n);
	memcpy(o.ticket_id, t->id, sizeof o.ticket_id);
	snprintf(o.buyer_id, sizeof o.buyer_id, "%s", buyer_id);
	memcpy(o.seller_id, t->owner_id, sizeof o.seller_id);
	o.status = TB_ORDER_CREATED;
	o.expires_at_ms = expires_at_ms;
	o.price_minor = t->price_minor;
	memcpy(o.currency, t->currency, sizeof o.currency);
	o.version = 1;
	o.created_at_ms = T0;
	o.updated_at_ms = T0;
	return o;
}

static tb_storage_txn *begin_txn(tb_storage *s, int write)
{
	tb_storage_txn *t = NULL;

	assert_tb_ok(s->begin(s, write, &t));
	return t;
}

/* A seller (user 1), a buyer (user 2) and tickets 1..n of the seller, committed. */
static void seed(tb_storage *s, unsigned int n, tb_ticket_row *tickets)
{
	tb_storage_txn *t = begin_txn(s, 1);
	tb_user_row seller = user_row(1), buyer = user_row(2);

	assert_tb_ok(s->user_insert(t, &seller));
	assert_tb_ok(s->user_insert(t, &buyer));
	for (unsigned int i = 0; i < n; i++) {
		tickets[i] = ticket_row(i + 1, seller.id);
		assert_tb_ok(s->ticket_insert(t, &tickets[i]));
	}
	assert_tb_ok(s->commit(t));
}

static void append_event(tb_storage *s, tb_storage_txn *t, const char *payload, int64_t *seq)
{
	tb_event_row e;

	memset(&e, 0, sizeof e);
	e.type = TB_EVENT_TICKET_UPDATED;
	snprintf(e.aggregate_id, sizeof e.aggregate_id, "00000002-0000-7000-8000-000000000001");
	e.aggregate_version = 1;
	e.occurred_at_ms = T0;
	e.payload = payload;
	e.payload_len = strlen(payload);
	assert_tb_ok(s->event_append(t, &e));
	*seq = e.seq;
}

struct read_events {
	size_t n;
	int64_t seq[16];
	char payload[16][32];
};

static tb_status collect_event(const tb_event_row *row, void *payload)
{
	struct read_events *r = payload;

	if (r->n == 16 || row->payload_len >= sizeof r->payload[0])
		return TB_EINTERNAL;
	r->seq[r->n] = row->seq;
	memcpy(r->payload[r->n], row->payload, row->payload_len);
	r->payload[r->n][row->payload_len] = '\0';
	r->n++;
	return TB_OK;
}

/* What a reader following "seq greater than the last one" gets next. */
static struct read_events read_after(tb_storage *s, int64_t after)
{
	struct read_events r;
	tb_storage_txn *t = begin_txn(s, 0);

	memset(&r, 0, sizeof r);
	assert_tb_ok(s->event_read(t, after, 16, collect_event, &r));
	assert_tb_ok(s->commit(t));
	return r;
}

/* ---------------------------------------------------------------------
 * Opening and schema versions.
 */

static void postgres_open__rejects_bad_arguments(void **state)
{
	tb_postgres_options opts = TB_POSTGRES_OPTIONS_INIT;
	tb_storage *s = (tb_storage *)1;

	(void)state;
	assert_tb_status(tb_storage_postgres_open(NULL, tbt_pg_conninfo(), NULL), TB_EINVAL);
	assert_tb_status(tb_storage_postgres_open(&s, NULL, NULL), TB_EINVAL);
	assert_null(s);
	assert_tb_status(tb_storage_postgres_open(&s, "", NULL), TB_EINVAL);
	opts.version = 99;
	assert_tb_status(tb_storage_postgres_open(&s, tbt_pg_conninfo(), &opts), TB_EVERSION);
	opts.version = TB_POSTGRES_OPTIONS_VERSION;
	opts.pool_size = 100000;
	assert_tb_status(tb_storage_postgres_open(&s, tbt_pg_conninfo(), &opts), TB_EINVAL);
	assert_string_equal(tbt_field(), "pool_size");
	opts.pool_size = 0;
	opts.lock_timeout_ms = -1;
	assert_tb_status(tb_storage_postgres_open(&s, tbt_pg_conninfo(), &opts), TB_EINVAL);
	opts.lock_timeout_ms = 0;
	opts.statement_timeout_ms = -1;
	assert_tb_status(tb_storage_postgres_open(&s, tbt_pg_conninfo(), &opts), TB_EINVAL);
	opts.statement_timeout_ms = 0;
	opts.acquire_timeout_ms = -1;
	assert_tb_status(tb_storage_postgres_open(&s, tbt_pg_conninfo(), &opts), TB_EINVAL);
	/* Nobody listens there. */
	assert_tb_status(tb_storage_postgres_open(&s, "host=/nonexistent port=1 connect_timeout=2",
		NULL), TB_ESTORAGE);
	assert_non_null(strstr(tb_last_error()->message, "cannot connect"));
	assert_null(s);
}

static void postgres_open__reopened_schema_keeps_rows_and_version(void **state)
{
	char name[64], conninfo[4096];
	tb_user_row want = user_row(5), got;
	tb_storage *s;
	tb_storage_txn *t;

	(void)state;
	tbt_pg_schema(name, conninfo, sizeof conninfo, NULL, 0);
	s = open_in(conninfo, NULL);
	assert_string_equal(s->name, "postgres");
	t = begin_txn(s, 1);
	assert_tb_ok(s->user_insert(t, &want));
	assert_tb_ok(s->commit(t));
	tb_storage_free(s);
	assert_int_equal(count_rows(name, "schema_version", "version = 1"), 1);

	s = open_in(conninfo, NULL);
	t = begin_txn(s, 0);
	assert_tb_ok(s->user_get(t, want.id, &got));
	assert_tb_ok(s->commit(t));
	tb_storage_free(s);
	assert_string_equal(got.email, want.email);
	assert_int_equal(count_rows(name, "schema_version", NULL), 1);
}

static void postgres_open__refuses_newer_schema_version(void **state)
{
	char name[64], conninfo[4096], sql[256];
	tb_storage *s = (tb_storage *)1;

	(void)state;
	tbt_pg_schema(name, conninfo, sizeof conninfo, NULL, 0);
	snprintf(sql, sizeof sql, "CREATE TABLE %s.schema_version (id integer PRIMARY KEY,"
		" version integer NOT NULL); INSERT INTO %s.schema_version VALUES (1, 2)", name, name);
	tbt_pg_sql(sql);
	assert_tb_status(tb_storage_postgres_open(&s, conninfo, NULL), TB_ESTORAGE);
	assert_null(s);
	assert_non_null(strstr(tb_last_error()->message, "schema version 2 is newer"));
	/* Refusing leaves the schema as it was. */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", name);
	assert_int_equal(tbt_pg_sql(sql), 1);
}

struct opener {
	pthread_t thread;
	const char *conninfo;
	tb_storage *s;
	tb_status status;
};

static void *open_main(void *arg)
{
	struct opener *o = arg;

	o->status = tb_storage_postgres_open(&o->s, o->conninfo, NULL);
	return NULL;
}

static void postgres_open__nodes_opening_at_once_migrate_once(void **state)
{
	char name[64], conninfo[4096];
	struct opener o[4];

	(void)state;
	tbt_pg_schema(name, conninfo, sizeof conninfo, NULL, 0);
	for (int i = 0; i < 4; i++) {
		o[i].conninfo = conninfo;
		o[i].s = NULL;
		assert_int_equal(pthread_create(&o[i].thread, NULL, open_main, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(o[i].thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		assert_tb_ok(o[i].status);
		tb_storage_free(o[i].s);
	}
	assert_int_equal(count_rows(name, "schema_version", "version = 1"), 1);
	assert_int_equal(count_rows(name, "event_counter", NULL), 1);
}

/* ---------------------------------------------------------------------
 * Errors.
 */

static void ticket_insert__refuses_bad_price_and_unknown_owner(void **state)
{
	tb_storage *s = open_fresh(NULL);
	tb_user_row owner = user_row(1);
	tb_ticket_row tk = ticket_row(1, owner.id);
	tb_storage_txn *t;

	(void)state;
	t = begin_txn(s, 1);
	assert_tb_status(s->ticket_insert(t, &tk), TB_ESTORAGE); /* no such owner */
	s->rollback(t);
	t = begin_txn(s, 1);
	assert_tb_ok(s->user_insert(t, &owner));
	tk.price_minor = 0;
	assert_tb_status(s->ticket_insert(t, &tk), TB_ESTORAGE); /* CHECK (price_minor > 0) */
	s->rollback(t);
	tb_storage_free(s);
}

static void commit__after_a_failed_statement_fails_and_keeps_nothing(void **state)
{
	tb_storage *s = open_fresh(NULL);
	tb_user_row a = user_row(1), b = user_row(2), got;
	tb_storage_txn *t;

	(void)state;
	t = begin_txn(s, 1);
	assert_tb_ok(s->user_insert(t, &a));
	assert_tb_ok(s->commit(t));
	t = begin_txn(s, 1);
	assert_tb_ok(s->user_insert(t, &b));
	assert_tb_status(s->user_insert(t, &a), TB_EEXISTS);
	/* PostgreSQL aborted the transaction: later statements and the commit fail. */
	assert_tb_status(s->user_get(t, a.id, &got), TB_ESTORAGE);
	assert_tb_status(s->commit(t), TB_ESTORAGE);
	t = begin_txn(s, 0);
	assert_tb_status(s->user_get(t, b.id, &got), TB_ENOTFOUND);
	assert_tb_ok(s->commit(t));
	tb_storage_free(s);
}

static void event_append__leaves_no_gap_after_a_rollback(void **state)
{
	tb_storage *s = open_fresh(NULL);
	tb_storage_txn *t;
	int64_t first, second;

	(void)state;
	t = begin_txn(s, 1);
	append_event(s, t, "{}", &first);
	s->rollback(t);
	t = begin_txn(s, 1);
	append_event(s, t, "{}", &second);
	assert_tb_ok(s->commit(t));
	assert_int_equal(first, 1);
	assert_int_equal(second, 1);
	tb_storage_free(s);
}

/* ---------------------------------------------------------------------
 * Two nodes on one database.
 */

struct node_pair {
	char schema[64];
	char conninfo[4096];
	char uri[4096];
	tb_storage *a, *b;
};

static void open_pair(struct node_pair *p, const tb_postgres_options *opts_b)
{
	tbt_pg_schema(p->schema, p->conninfo, sizeof p->conninfo, p->uri, sizeof p->uri);
	p->a = open_in(p->conninfo, NULL);
	p->b = open_in(p->conninfo, opts_b);
}

static void close_pair(struct node_pair *p)
{
	tb_storage_free(p->a);
	tb_storage_free(p->b);
}

static void ticket_get__in_a_write_txn_locks_the_row_against_other_nodes(void **state)
{
	tb_postgres_options quick = TB_POSTGRES_OPTIONS_INIT;
	struct node_pair p;
	tb_ticket_row tk[1], got;
	tb_storage_txn *ta, *tb;

	(void)state;
	quick.lock_timeout_ms = 100;
	open_pair(&p, &quick);
	seed(p.a, 1, tk);
	ta = begin_txn(p.a, 1);
	assert_tb_ok(p.a->ticket_get(ta, tk[0].id, &got));
	/* Node b cannot take the row for writing while node a holds it... */
	tb = begin_txn(p.b, 1);
	assert_tb_status(p.b->ticket_get(tb, tk[0].id, &got), TB_EBUSY);
	p.b->rollback(tb);
	/* ...but reads it in a read transaction. */
	tb = begin_txn(p.b, 0);
	assert_tb_ok(p.b->ticket_get(tb, tk[0].id, &got));
	assert_tb_ok(p.b->commit(tb));
	got.version++;
	assert_tb_ok(p.a->ticket_update(ta, &got));
	assert_tb_ok(p.a->commit(ta));
	/* Released at commit; node b sees the new version. */
	tb = begin_txn(p.b, 1);
	assert_tb_ok(p.b->ticket_get(tb, tk[0].id, &got));
	assert_int_equal(got.version, 2);
	assert_tb_ok(p.b->commit(tb));
	close_pair(&p);
}

struct locker {
	pthread_t thread;
	tb_storage *s;
	const char *first, *second;
	tb_status status;
};

/* Lock `first`, then `second`, in one write transaction; commit if both worked. */
static void *lock_two(void *arg)
{
	struct locker *l = arg;
	tb_storage_txn *t = NULL;
	tb_ticket_row row;

	l->status = l->s->begin(l->s, 1, &t);
	if (l->status != TB_OK)
		return NULL;
	l->status = l->s->ticket_get(t, l->first, &row);
	if (l->status == TB_OK) {
		/* Both hold their first row before either asks for its second. */
		msleep(200);
		l->status = l->s->ticket_get(t, l->second, &row);
	}
	if (l->status == TB_OK)
		l->status = l->s->commit(t);
	else
		l->s->rollback(t);
	return NULL;
}

static void begin__deadlock_between_nodes_is_busy_for_one_of_them(void **state)
{
	struct node_pair p;
	tb_ticket_row tk[2];
	struct locker l[2];

	(void)state;
	open_pair(&p, NULL);
	seed(p.a, 2, tk);
	l[0] = (struct locker){ .s = p.a, .first = tk[0].id, .second = tk[1].id };
	l[1] = (struct locker){ .s = p.b, .first = tk[1].id, .second = tk[0].id };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&l[i].thread, NULL, lock_two, &l[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(l[i].thread, NULL), 0);
	/* PostgreSQL breaks the cycle; the loser may retry the whole operation. */
	assert_true((l[0].status == TB_OK && l[1].status == TB_EBUSY) ||
		(l[0].status == TB_EBUSY && l[1].status == TB_OK));
	close_pair(&p);
}

static void begin__waits_for_a_pooled_connection_then_reports_busy(void **state)
{
	tb_postgres_options one = TB_POSTGRES_OPTIONS_INIT;
	char name[64], conninfo[4096];
	tb_storage *s;
	tb_storage_txn *t, *u = (tb_storage_txn *)1;

	(void)state;
	one.pool_size = 1;
	one.acquire_timeout_ms = 50;
	tbt_pg_schema(name, conninfo, sizeof conninfo, NULL, 0);
	s = open_in(conninfo, &one);
	t = begin_txn(s, 1);
	assert_tb_status(s->begin(s, 0, &u), TB_EBUSY);
	assert_null(u);
	assert_tb_ok(s->commit(t));
	u = begin_txn(s, 0);
	assert_tb_ok(s->commit(u));
	tb_storage_free(s);
}

static tb_status count_order(const tb_order_row *row, void *payload)
{
	size_t *n = payload;

	(void)row;
	(*n)++;
	return TB_OK;
}

static void order_list_due__two_nodes_ticking_take_disjoint_batches(void **state)
{
	struct node_pair p;
	tb_ticket_row tk[5];
	tb_user_row buyer = user_row(2);
	tb_storage_txn *ta, *tb, *t;
	size_t seen_a = 0, seen_b = 0;

	(void)state;
	open_pair(&p, NULL);
	seed(p.a, 5, tk);
	t = begin_txn(p.a, 1);
	for (unsigned int i = 0; i < 5; i++) {
		tb_order_row o = order_row(i + 1, &tk[i], buyer.id, T0 + i);

		assert_tb_ok(p.a->order_insert(t, &o));
	}
	assert_tb_ok(p.a->commit(t));

	ta = begin_txn(p.a, 1);
	assert_tb_ok(p.a->order_list_due(ta, TB_ORDER_CREATED, T0 + 100, 3, count_order, &seen_a));
	tb = begin_txn(p.b, 1);
	assert_tb_ok(p.b->order_list_due(tb, TB_ORDER_CREATED, T0 + 100, 10, count_order, &seen_b));
	assert_int_equal(seen_a, 3);
	assert_int_equal(seen_b, 2); /* node a's three are skipped, not waited for */
	p.b->rollback(tb);
	p.a->rollback(ta);
	/* A read transaction lists them all and locks nothing. */
	seen_a = 0;
	ta = begin_txn(p.a, 1);
	assert_tb_ok(p.a->order_list_due(ta, TB_ORDER_CREATED, T0 + 100, 10, count_order, &seen_a));
	seen_b = 0;
	tb = begin_txn(p.b, 0);
	assert_tb_ok(p.b->order_list_due(tb, TB_ORDER_CREATED, T0 + 100, 10, count_order, &seen_b));
	assert_tb_ok(p.b->commit(tb));
	p.a->rollback(ta);
	assert_int_equal(seen_a, 5);
	assert_int_equal(seen_b, 5);
	close_pair(&p);
}

/* ---------------------------------------------------------------------
 * The outbox across nodes.
 */

struct appender {
	pthread_t thread;
	tb_storage *s;
	int64_t seq;
	tb_status status;
	volatile int done;
};

/* Node b: append one event and commit. */
static void *append_and_commit(void *arg)
{
	struct appender *ap = arg;
	tb_storage_txn *t = NULL;
	tb_event_row e;

	memset(&e, 0, sizeof e);
	e.type = TB_EVENT_TICKET_UPDATED;
	snprintf(e.aggregate_id, sizeof e.aggregate_id, "00000002-0000-7000-8000-000000000002");
	e.payload = "{\"by\":\"b\"}";
	e.payload_len = strlen(e.payload);
	ap->status = ap->s->begin(ap->s, 1, &t);
	if (ap->status == TB_OK)
		ap->status = ap->s->event_append(t, &e);
	if (ap->status == TB_OK)
		ap->status = ap->s->commit(t);
	else if (t)
		ap->s->rollback(t);
	ap->seq = e.seq;
	__atomic_store_n(&ap->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * Transaction A appends first; B appends after it.  B's append waits for A
 * to end, so B can never commit a higher seq while A's lower one is still
 * invisible: a reader that looked while A was open saw neither, and after
 * A commits it gets A's event, then B's, with no gap.
 */
static void event_append__waits_for_an_earlier_appender_so_no_reader_skips(void **state)
{
	struct node_pair p;
	struct appender b;
	tb_storage_txn *ta;
	struct read_events r;
	int64_t seq_a;

	(void)state;
	open_pair(&p, NULL);
	ta = begin_txn(p.a, 1);
	append_event(p.a, ta, "{\"by\":\"a\"}", &seq_a);
	memset(&b, 0, sizeof b);
	b.s = p.b;
	assert_int_equal(pthread_create(&b.thread, NULL, append_and_commit, &b), 0);
	wait_for_lock_waiters(1);
	assert_false(__atomic_load_n(&b.done, __ATOMIC_SEQ_CST));
	r = read_after(p.a, 0);
	assert_int_equal(r.n, 0);
	assert_tb_ok(p.a->commit(ta));
	assert_int_equal(pthread_join(b.thread, NULL), 0);
	assert_tb_ok(b.status);
	assert_int_equal(seq_a, 1);
	assert_int_equal(b.seq, 2);
	r = read_after(p.a, 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.seq[0], 1);
	assert_string_equal(r.payload[0], "{\"by\":\"a\"}");
	assert_int_equal(r.seq[1], 2);
	assert_string_equal(r.payload[1], "{\"by\":\"b\"}");
	close_pair(&p);
}

/*
 * Transaction A starts (and writes) first but appends last; B appends and
 * commits meanwhile, and a reader takes B's event.  A's event must still
 * reach that reader: its seq follows B's, because seqs are handed out in
 * commit order, not in the order transactions began.
 */
static void event_read__delivers_an_event_whose_txn_began_first_and_committed_last(void **state)
{
	struct node_pair p;
	struct appender b;
	tb_ticket_row tk[1], row;
	tb_storage_txn *ta;
	struct read_events r;
	int64_t cursor = 0, seq_a;

	(void)state;
	open_pair(&p, NULL);
	seed(p.a, 1, tk);
	ta = begin_txn(p.a, 1);
	assert_tb_ok(p.a->ticket_get(ta, tk[0].id, &row));
	row.version++;
	assert_tb_ok(p.a->ticket_update(ta, &row));

	memset(&b, 0, sizeof b);
	b.s = p.b;
	append_and_commit(&b);
	assert_tb_ok(b.status);
	r = read_after(p.b, cursor);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.payload[0], "{\"by\":\"b\"}");
	cursor = r.seq[0];

	append_event(p.a, ta, "{\"by\":\"a\"}", &seq_a);
	assert_tb_ok(p.a->commit(ta));
	r = read_after(p.b, cursor);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.seq[0], seq_a);
	assert_int_equal(seq_a, cursor + 1);
	assert_string_equal(r.payload[0], "{\"by\":\"a\"}");
	close_pair(&p);
}

/* ---------------------------------------------------------------------
 * Two markets (nodes) on one database.
 */

enum { NODES = 2, RACERS = 4, TICKETS = 16 };

struct two_markets {
	struct node_pair p;
	tb_clock_manual *clock;
	tb_payment_provider *pay;
	tb_market *m[NODES];
	char *seller;
	char *buyers[RACERS];
	char *tickets[TICKETS];
};

static char *signup(tb_market *m, const char *email)
{
	tb_user *u = NULL;
	char *id;

	assert_tb_ok(tb_user_signup(&u, NULL, m, email, "correct horse battery"));
	id = strdup(tb_user_id(u));
	tb_user_free(u);
	return id;
}

static void open_markets(struct two_markets *w)
{
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_clock clock = TB_CLOCK_INIT;

	memset(w, 0, sizeof *w);
	open_pair(&w->p, NULL);
	assert_tb_ok(tb_clock_manual_new(&w->clock, T0));
	assert_tb_ok(tb_payment_fake_new(&w->pay));
	tb_clock_manual_bind(w->clock, &clock);
	opts.clock = &clock;
	opts.payments = w->pay;
	opts.password_cost = TB_PASSWORD_COST_MIN;
	opts.lock_ms = TBT_LOCK_MS;
	assert_tb_ok(tb_market_open_take(&w->m[0], w->p.a, &opts));
	assert_tb_ok(tb_market_open_take(&w->m[1], w->p.b, &opts));
	w->seller = signup(w->m[0], "seller@example.com");
	for (int i = 0; i < RACERS; i++) {
		char email[64];

		snprintf(email, sizeof email, "buyer%d@example.com", i);
		w->buyers[i] = signup(w->m[i % NODES], email);
	}
	for (int i = 0; i < TICKETS; i++) {
		tb_ticket *t = NULL;

		assert_tb_ok(tb_ticket_create(&t, w->m[i % NODES], w->seller, "Hot", 100, NULL));
		w->tickets[i] = strdup(tb_ticket_id(t));
		tb_ticket_free(t);
	}
}

static void close_markets(struct two_markets *w)
{
	for (int i = 0; i < NODES; i++)
		tb_market_close(w->m[i]); /* and its adapter */
	tb_payment_provider_free(w->pay);
	tb_clock_manual_free(w->clock);
	free(w->seller);
	for (int i = 0; i < RACERS; i++)
		free(w->buyers[i]);
	for (int i = 0; i < TICKETS; i++)
		free(w->tickets[i]);
}

/* Every event once, seqs 1..n with no gap; how many of `type`. */
static size_t count_events(tb_market *m, tb_event_type type)
{
	size_t n = 0;
	int64_t after = 0;

	for (;;) {
		tb_event_page *page = NULL;
		size_t count;

		assert_tb_ok(tb_event_read(&page, m, after, 100));
		count = tb_event_page_count(page);
		for (size_t i = 0; i < count; i++) {
			const tb_event *e = tb_event_page_at(page, i);

			assert_int_equal(tb_event_seq(e), after + 1);
			after = tb_event_seq(e);
			n += tb_event_type_get(e) == type;
		}
		tb_event_page_free(page);
		if (count < 100)
			return n;
	}
}

struct racer {
	pthread_t thread;
	struct two_markets *w;
	pthread_barrier_t *start;
	int index;
	int wins[TICKETS];
	int unexpected;
	tb_status last;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	tb_market *m = r->w->m[r->index % NODES];

	pthread_barrier_wait(r->start);
	for (int k = 0; k < TICKETS; k++) {
		int ticket = (k + r->index * 5) % TICKETS; /* different orders: real contention */
		tb_order *o = NULL;
		tb_status st = tb_order_create(&o, m, r->w->buyers[r->index], r->w->tickets[ticket]);

		if (st == TB_OK)
			r->wins[ticket]++;
		else if (st != TB_ELOCKED) {
			r->unexpected++;
			r->last = st;
		}
		tb_order_free(o);
	}
	return NULL;
}

static void order_create__two_nodes_racing_give_one_winner_per_ticket(void **state)
{
	struct two_markets w;
	struct racer r[RACERS];
	pthread_barrier_t start;

	(void)state;
	open_markets(&w);
	memset(r, 0, sizeof r);
	assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		r[i].w = &w;
		r[i].start = &start;
		r[i].index = i;
		assert_int_equal(pthread_create(&r[i].thread, NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_join(r[i].thread, NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < RACERS; i++) {
		if (r[i].unexpected)
			print_error("racer %d: %d unexpected, last %s\n", i, r[i].unexpected,
				tb_status_name(r[i].last));
		assert_int_equal(r[i].unexpected, 0);
	}
	for (int k = 0; k < TICKETS; k++) {
		int winners = 0;

		for (int i = 0; i < RACERS; i++)
			winners += r[i].wins[k];
		assert_int_equal(winners, 1);
	}
	assert_int_equal(count_events(w.m[1], TB_EVENT_ORDER_CREATED), TICKETS);
	assert_int_equal(count_rows(w.p.schema, "orders", "status IN (1, 2)"), TICKETS);
	close_markets(&w);
}

struct ticker {
	pthread_t thread;
	tb_market *m;
	pthread_barrier_t *start;
	tb_tick_stats stats;
	tb_status status;
};

static void *tick_main(void *arg)
{
	struct ticker *t = arg;

	pthread_barrier_wait(t->start);
	t->status = tb_market_tick(t->m, &t->stats);
	return NULL;
}

static void tick__two_nodes_at_once_expire_each_order_exactly_once(void **state)
{
	struct two_markets w;
	struct ticker t[NODES];
	pthread_barrier_t start;
	size_t expired = 0;

	(void)state;
	open_markets(&w);
	for (int k = 0; k < TICKETS; k++) {
		tb_order *o = NULL;

		assert_tb_ok(tb_order_create(&o, w.m[k % NODES], w.buyers[k % RACERS], w.tickets[k]));
		tb_order_free(o);
	}
	tb_clock_manual_advance(w.clock, TBT_LOCK_MS);
	assert_int_equal(pthread_barrier_init(&start, NULL, NODES), 0);
	for (int i = 0; i < NODES; i++) {
		t[i].m = w.m[i];
		t[i].start = &start;
		t[i].stats = (tb_tick_stats)TB_TICK_STATS_INIT;
		assert_int_equal(pthread_create(&t[i].thread, NULL, tick_main, &t[i]), 0);
	}
	for (int i = 0; i < NODES; i++)
		assert_int_equal(pthread_join(t[i].thread, NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < NODES; i++) {
		assert_tb_ok(t[i].status);
		expired += t[i].stats.orders_expired;
	}
	assert_int_equal(expired, TICKETS);
	assert_int_equal(count_events(w.m[0], TB_EVENT_ORDER_EXPIRED), TICKETS);
	/* Nothing is left for a later tick on either node. */
	for (int i = 0; i < NODES; i++) {
		tb_tick_stats stats = TB_TICK_STATS_INIT;

		assert_tb_ok(tb_market_tick(w.m[i], &stats));
		assert_int_equal(stats.orders_expired, 0);
	}
	close_markets(&w);
}

static void market_open__opens_postgres_from_a_uri(void **state)
{
	char name[64], conninfo[4096], uri[4096];
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_market *m = NULL;
	char *id;

	(void)state;
	tbt_pg_schema(name, conninfo, sizeof conninfo, uri, sizeof uri);
	opts.db = uri;
	opts.password_cost = TB_PASSWORD_COST_MIN;
	assert_tb_ok(tb_market_open(&m, &opts));
	id = signup(m, "uri@example.com");
	tb_market_close(m);
	assert_int_equal(count_rows(name, "users", "email = 'uri@example.com'"), 1);
	free(id);
	/* The prefix decides, not what follows: this is no SQLite path. */
	opts.db = "postgresql://nobody@/nonexistent?host=/nonexistent&port=1";
	assert_tb_status(tb_market_open(&m, &opts), TB_ESTORAGE);
	assert_null(m);
}

/* ---------------------------------------------------------------------
 * Main.
 */

int main(void)
{
	const struct CMUnitTest cases[] = {
		cmocka_unit_test(postgres_open__rejects_bad_arguments),
		cmocka_unit_test(postgres_open__reopened_schema_keeps_rows_and_version),
		cmocka_unit_test(postgres_open__refuses_newer_schema_version),
		cmocka_unit_test(postgres_open__nodes_opening_at_once_migrate_once),
		cmocka_unit_test(ticket_insert__refuses_bad_price_and_unknown_owner),
		cmocka_unit_test(commit__after_a_failed_statement_fails_and_keeps_nothing),
		cmocka_unit_test(event_append__leaves_no_gap_after_a_rollback),
		cmocka_unit_test(ticket_get__in_a_write_txn_locks_the_row_against_other_nodes),
		cmocka_unit_test(begin__deadlock_between_nodes_is_busy_for_one_of_them),
		cmocka_unit_test(begin__waits_for_a_pooled_connection_then_reports_busy),
		cmocka_unit_test(order_list_due__two_nodes_ticking_take_disjoint_batches),
		cmocka_unit_test(event_append__waits_for_an_earlier_appender_so_no_reader_skips),
		cmocka_unit_test(event_read__delivers_an_event_whose_txn_began_first_and_committed_last),
		cmocka_unit_test(order_create__two_nodes_racing_give_one_winner_per_ticket),
		cmocka_unit_test(tick__two_nodes_at_once_expire_each_order_exactly_once),
		cmocka_unit_test(market_open__opens_postgres_from_a_uri),
	};
	int failed = 0;

	if (!tbt_pg_conninfo()) {
		printf("test_storage_postgres: skipped: no server (set TB_PG_CONNINFO, or run "
			"under ctest, whose fixture starts one)\n");
		return 77;
	}
	failed += tb_storage_contract_run("postgres", open_fresh, NULL);
	failed += cmocka_run_group_tests_name("postgres adapter", cases, NULL, NULL);
	tbt_pg_close();
	return failed != 0;
}
