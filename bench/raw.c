/*
 * bench/raw.c - the baselines: plain C programs doing the same SQLite
 * transactions as the library, with prepared statements on one connection
 * per thread, on a database seeded exactly like the library's run (the
 * library's own schema and indexes), WAL, synchronous=NORMAL, foreign keys
 * on.  No JSON library, no allocation per operation, no vtable, no error
 * detail: what the storage allows.
 */
#define _POSIX_C_SOURCE 200809L

#include "raw.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the order (lock) transaction ------------------------------------------ */

typedef struct raw_conn {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *user_get, *ticket_get, *order_insert, *ticket_lock, *event_append;
	sqlite3_stmt *order_get, *order_set_status, *ticket_unlock;
	uint64_t next_order;
	char seller[TB_ID_SIZE];
} raw_conn;

static void raw_conn_open(raw_conn *c, const char *path, unsigned int thread)
{
	memset(c, 0, sizeof *c);
	c->db = bench_sqlite_open(path);
	c->begin = bench_prepare(c->db, "BEGIN IMMEDIATE");
	c->commit = bench_prepare(c->db, "COMMIT");
	c->rollback = bench_prepare(c->db, "ROLLBACK");
	c->user_get = bench_prepare(c->db, "SELECT id FROM users WHERE id = ?1");
	c->ticket_get = bench_prepare(c->db, "SELECT owner_id, order_id, locked_until, status,"
		" version, price_minor, currency FROM tickets WHERE id = ?1");
	c->order_insert = bench_prepare(c->db, "INSERT INTO orders (id, ticket_id, buyer_id,"
		" seller_id, status, expires_at, price_minor, currency, version, created_at, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, 0, ?8, ?8)");
	c->ticket_lock = bench_prepare(c->db, "UPDATE tickets SET order_id = ?2, locked_until = ?3,"
		" version = ?4, updated_at = ?5 WHERE id = ?1 AND version = ?4 - 1");
	c->event_append = bench_prepare(c->db, "INSERT INTO events (type, aggregate_id,"
		" aggregate_version, occurred_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)");
	c->order_get = bench_prepare(c->db, "SELECT ticket_id, status, version FROM orders WHERE id = ?1");
	c->order_set_status = bench_prepare(c->db, "UPDATE orders SET status = ?2, version = ?3,"
		" updated_at = ?4 WHERE id = ?1 AND version = ?3 - 1");
	c->ticket_unlock = bench_prepare(c->db, "UPDATE tickets SET order_id = '', locked_until = 0,"
		" version = version + 1, updated_at = ?2 WHERE id = ?1 AND order_id = ?3");
	c->next_order = (uint64_t)thread << 40;
	bench_id(c->seller, ID_USER, 0);
}

static void raw_conn_close(raw_conn *c)
{
	sqlite3_stmt *all[] = { c->begin, c->commit, c->rollback, c->user_get, c->ticket_get,
		c->order_insert, c->ticket_lock, c->event_append, c->order_get, c->order_set_status,
		c->ticket_unlock };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(c->db);
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc;
}

static int append_event(raw_conn *c, int type, const char *agg, int64_t version, int64_t now,
	const char *payload, size_t len)
{
	sqlite3_bind_int(c->event_append, 1, type);
	sqlite3_bind_text(c->event_append, 2, agg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->event_append, 3, version);
	sqlite3_bind_int64(c->event_append, 4, now);
	sqlite3_bind_text(c->event_append, 5, payload, (int)len, SQLITE_STATIC);
	return step_done(c->event_append);
}

static void rollback(raw_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		step_done(c->rollback);
}

/*
 * The library's order transaction, statement for statement: the buyer
 * exists; the ticket is listed, not the buyer's and not locked; insert the
 * order (the partial unique index guards one live order per ticket); lock
 * the ticket (version-checked); append OrderCreated and TicketUpdated with
 * the same JSON text the library writes; commit.
 * Returns 0 on success, 1 when the ticket is taken, -1 on busy.
 */
static int raw_order(raw_conn *c, const char *buyer, const char *ticket, int64_t now,
	char order_out[TB_ID_SIZE])
{
	char payload[1024], tp[1024];
	char owner[TB_ID_SIZE], currency[4];
	int64_t locked_until, version, price;
	int status, taken = 0, rc;

	if (step_done(c->begin) != SQLITE_DONE)
		return -1;
	sqlite3_bind_text(c->user_get, 1, buyer, -1, SQLITE_STATIC);
	rc = sqlite3_step(c->user_get);
	sqlite3_reset(c->user_get);
	if (rc != SQLITE_ROW)
		bench_die("raw order: buyer missing");
	sqlite3_bind_text(c->ticket_get, 1, ticket, -1, SQLITE_STATIC);
	if (sqlite3_step(c->ticket_get) != SQLITE_ROW)
		bench_die("raw order: ticket missing");
	snprintf(owner, sizeof owner, "%s", (const char *)sqlite3_column_text(c->ticket_get, 0));
	taken = sqlite3_column_bytes(c->ticket_get, 1) > 0;
	locked_until = sqlite3_column_int64(c->ticket_get, 2);
	status = sqlite3_column_int(c->ticket_get, 3);
	version = sqlite3_column_int64(c->ticket_get, 4);
	price = sqlite3_column_int64(c->ticket_get, 5);
	snprintf(currency, sizeof currency, "%s", (const char *)sqlite3_column_text(c->ticket_get, 6));
	sqlite3_reset(c->ticket_get);
	if ((taken && locked_until > now) || status != 1 || strcmp(owner, buyer) == 0) {
		rollback(c);
		return 1;
	}

	bench_id(order_out, ID_RAW, c->next_order++);
	int64_t expires = now + 15 * 60 * 1000;
	sqlite3_bind_text(c->order_insert, 1, order_out, -1, SQLITE_STATIC);
	sqlite3_bind_text(c->order_insert, 2, ticket, -1, SQLITE_STATIC);
	sqlite3_bind_text(c->order_insert, 3, buyer, -1, SQLITE_STATIC);
	sqlite3_bind_text(c->order_insert, 4, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->order_insert, 5, expires);
	sqlite3_bind_int64(c->order_insert, 6, price);
	sqlite3_bind_text(c->order_insert, 7, currency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->order_insert, 8, now);
	rc = step_done(c->order_insert);
	if (rc == SQLITE_CONSTRAINT_UNIQUE || (rc & 0xff) == SQLITE_CONSTRAINT) {
		rollback(c);
		return 1;
	}
	if (rc != SQLITE_DONE)
		goto busy;
	size_t n = bench_order_payload(payload, sizeof payload, order_out, ticket, buyer, owner, now, 0);
	if (append_event(c, TB_EVENT_ORDER_CREATED, order_out, 0, now, payload, n) != SQLITE_DONE)
		goto busy;
	sqlite3_bind_text(c->ticket_lock, 1, ticket, -1, SQLITE_STATIC);
	sqlite3_bind_text(c->ticket_lock, 2, order_out, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->ticket_lock, 3, expires);
	sqlite3_bind_int64(c->ticket_lock, 4, version + 1);
	sqlite3_bind_int64(c->ticket_lock, 5, now);
	if (step_done(c->ticket_lock) != SQLITE_DONE || sqlite3_changes(c->db) != 1)
		goto busy;
	/* TicketUpdated: a ticket payload is about as long as an order's. */
	n = bench_order_payload(tp, sizeof tp, ticket, order_out, owner, c->seller, now, version + 1);
	if (append_event(c, TB_EVENT_TICKET_UPDATED, ticket, version + 1, now, tp, n) != SQLITE_DONE)
		goto busy;
	if (step_done(c->commit) != SQLITE_DONE)
		goto busy;
	return 0;
busy:
	rollback(c);
	return -1;
}

/* The buyer cancels: order cancelled, ticket unlocked, two events. */
static int raw_cancel(raw_conn *c, const char *order, int64_t now)
{
	char payload[1024], ticket[TB_ID_SIZE];
	int64_t version;

	if (step_done(c->begin) != SQLITE_DONE)
		return -1;
	sqlite3_bind_text(c->order_get, 1, order, -1, SQLITE_STATIC);
	if (sqlite3_step(c->order_get) != SQLITE_ROW)
		bench_die("raw cancel: order missing");
	snprintf(ticket, sizeof ticket, "%s", (const char *)sqlite3_column_text(c->order_get, 0));
	version = sqlite3_column_int64(c->order_get, 2);
	sqlite3_reset(c->order_get);
	sqlite3_bind_text(c->order_set_status, 1, order, -1, SQLITE_STATIC);
	sqlite3_bind_int(c->order_set_status, 2, 4);
	sqlite3_bind_int64(c->order_set_status, 3, version + 1);
	sqlite3_bind_int64(c->order_set_status, 4, now);
	if (step_done(c->order_set_status) != SQLITE_DONE)
		goto busy;
	size_t n = bench_order_payload(payload, sizeof payload, order, ticket, c->seller, c->seller,
		now, version + 1);
	if (append_event(c, TB_EVENT_ORDER_CANCELLED, order, version + 1, now, payload, n) != SQLITE_DONE)
		goto busy;
	sqlite3_bind_text(c->ticket_unlock, 1, ticket, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->ticket_unlock, 2, now);
	sqlite3_bind_text(c->ticket_unlock, 3, order, -1, SQLITE_STATIC);
	if (step_done(c->ticket_unlock) != SQLITE_DONE)
		goto busy;
	if (append_event(c, TB_EVENT_TICKET_UPDATED, ticket, version + 1, now, payload, n) != SQLITE_DONE)
		goto busy;
	if (step_done(c->commit) != SQLITE_DONE)
		goto busy;
	return 0;
busy:
	rollback(c);
	return -1;
}

void raw_order_bench(const char *path, double secs, int ckpt_ms, uint64_t tickets)
{
	raw_conn c;
	char buyer[TB_ID_SIZE], ticket[TB_ID_SIZE], order[TB_ID_SIZE];
	uint64_t done = 0;

	raw_conn_open(&c, path, 0);
	bench_id(buyer, ID_USER, 1);
	bench_ckpt *ck = bench_ckpt_start(NULL, path, ckpt_ms);
	double t0 = bench_now(), end = t0 + secs, t1 = t0;
	for (uint64_t i = 0; i < tickets; i++) {
		bench_id(ticket, ID_TICKET, i);
		int rc = raw_order(&c, buyer, ticket, BENCH_T0, order);
		if (rc != 0)
			bench_die("raw order %" PRIu64 " failed (%d): %s", i, rc, sqlite3_errmsg(c.db));
		done++;
		if ((done & 63) == 0 && (t1 = bench_now()) >= end)
			break;
	}
	t1 = bench_now();
	bench_ckpt_stop(ck);
	raw_conn_close(&c);
	bench_result("raw_order_per_s", (double)done / (t1 - t0));
}

/* ---- the contended flash sale -------------------------------------------- */

typedef struct raw_flash_worker {
	pthread_t th;
	const char *path;
	unsigned int idx, hot;
	double end;
	uint64_t attempts, won, refused, busy;
	bench_lat lat;
} raw_flash_worker;

static void *raw_flash_main(void *arg)
{
	raw_flash_worker *w = arg;
	raw_conn c;
	char buyer[TB_ID_SIZE], ticket[TB_ID_SIZE], order[TB_ID_SIZE];
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (w->idx + 1);

	raw_conn_open(&c, w->path, w->idx + 1);
	bench_id(buyer, ID_USER, 1 + w->idx);
	while (bench_now() < w->end) {
		bench_id(ticket, ID_TICKET, bench_rand(&rng) % w->hot);
		double t0 = bench_now();
		int rc = raw_order(&c, buyer, ticket, BENCH_T0, order);
		bench_lat_add(&w->lat, bench_now() - t0);
		w->attempts++;
		if (rc == 0) {
			w->won++;
			while (raw_cancel(&c, order, BENCH_T0) != 0)
				;
		} else if (rc == 1) {
			w->refused++;
		} else {
			w->busy++;
		}
	}
	raw_conn_close(&c);
	return NULL;
}

void raw_flash_bench(const char *path, double secs, unsigned int threads, unsigned int hot)
{
	raw_flash_worker *w = calloc(threads, sizeof *w);
	bench_lat all = { 0 };
	uint64_t attempts = 0, won = 0, refused = 0, busy = 0;

	double t0 = bench_now();
	for (unsigned int i = 0; i < threads; i++) {
		w[i].path = path;
		w[i].idx = i;
		w[i].hot = hot;
		w[i].end = t0 + secs;
		pthread_create(&w[i].th, NULL, raw_flash_main, &w[i]);
	}
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(w[i].th, NULL);
		attempts += w[i].attempts;
		won += w[i].won;
		refused += w[i].refused;
		busy += w[i].busy;
		bench_lat_merge(&all, &w[i].lat);
		bench_lat_free(&w[i].lat);
	}
	double el = bench_now() - t0;
	bench_result("raw_flash_attempts_per_s", (double)attempts / el);
	bench_result("raw_flash_orders_per_s", (double)won / el);
	bench_result("raw_flash_refused_share", attempts ? (double)(refused + busy) / (double)attempts : 0);
	bench_result("raw_flash_p50_ms", bench_lat_quantile(&all, 0.50) * 1e3);
	bench_result("raw_flash_p99_ms", bench_lat_quantile(&all, 0.99) * 1e3);
	bench_lat_free(&all);
	free(w);
}

/* ---- payment ----------------------------------------------------------------- */

/* Run a statement binding (text id, int status, int64 version, int64 now); dies on failure. */
static void set_status(sqlite3_stmt *s, const char *id, int status, int64_t version, int64_t now)
{
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, status);
	sqlite3_bind_int64(s, 3, version);
	sqlite3_bind_int64(s, 4, now);
	if (step_done(s) != SQLITE_DONE)
		bench_die("raw pay: %s", sqlite3_errmsg(sqlite3_db_handle(s)));
}

/* Read the row `id` with `s` (one text parameter); returns column `col` as an integer. */
static int64_t read_row(sqlite3_stmt *s, const char *id, int col)
{
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW)
		bench_die("raw pay: row %s missing", id);
	int64_t v = col >= 0 ? sqlite3_column_int64(s, col) : 0;
	sqlite3_reset(s);
	return v;
}

/*
 * The library's payment, as two transactions around the provider call:
 * (1) read the order; insert a pending charge; ChargeCreated; order ->
 * awaiting_payment; OrderAwaitingPayment; extend the ticket's lock;
 * TicketUpdated.  (2) read the charge; charge -> succeeded; ChargeSucceeded;
 * read the order; order -> complete; OrderCompleted; read the ticket;
 * transfer it; TicketUpdated.
 */
void raw_pay_bench(const char *path, double secs, uint64_t orders, unsigned int users)
{
	sqlite3 *db = bench_sqlite_open(path);
	sqlite3_stmt *begin = bench_prepare(db, "BEGIN IMMEDIATE");
	sqlite3_stmt *commit = bench_prepare(db, "COMMIT");
	sqlite3_stmt *order_get = bench_prepare(db, "SELECT id, ticket_id, buyer_id, seller_id, status,"
		" expires_at, price_minor, currency, version, created_at, updated_at FROM orders WHERE id = ?1");
	sqlite3_stmt *charge_insert = bench_prepare(db, "INSERT INTO charges (id, order_id, status,"
		" amount_minor, currency, provider, payment_token, provider_charge_id, provider_refund_id,"
		" idempotency_key, refund_key, failure_code, decline_code, failure_message, refund_reason,"
		" attempts, next_attempt_at, version, created_at, updated_at) VALUES (?1, ?2, 1, ?3, 'USD',"
		" 'fake', 'tok_visa', '', '', ?4, '', '', '', '', '', 0, ?5, 0, ?6, ?6)");
	sqlite3_stmt *charge_get = bench_prepare(db, "SELECT id, order_id, status, amount_minor, currency,"
		" provider, payment_token, provider_charge_id, provider_refund_id, idempotency_key, refund_key,"
		" failure_code, decline_code, failure_message, refund_reason, attempts, next_attempt_at,"
		" version, created_at, updated_at FROM charges WHERE id = ?1");
	sqlite3_stmt *charge_done = bench_prepare(db, "UPDATE charges SET status = 2,"
		" provider_charge_id = ?2, next_attempt_at = 0, version = ?3, updated_at = ?4"
		" WHERE id = ?1 AND version = ?3 - 1");
	sqlite3_stmt *order_set = bench_prepare(db, "UPDATE orders SET status = ?2, version = ?3,"
		" updated_at = ?4 WHERE id = ?1 AND version = ?3 - 1");
	sqlite3_stmt *ticket_get = bench_prepare(db, "SELECT id, title, price_minor, currency, owner_id,"
		" order_id, locked_until, status, version, created_at, updated_at FROM tickets WHERE id = ?1");
	sqlite3_stmt *ticket_extend = bench_prepare(db, "UPDATE tickets SET locked_until = ?2,"
		" version = ?3, updated_at = ?4 WHERE id = ?1 AND version = ?3 - 1");
	sqlite3_stmt *ticket_transfer = bench_prepare(db, "UPDATE tickets SET owner_id = ?2,"
		" order_id = '', locked_until = 0, status = 2, version = ?3, updated_at = ?4"
		" WHERE id = ?1 AND version = ?3 - 1");
	sqlite3_stmt *ev = bench_prepare(db, "INSERT INTO events (type, aggregate_id,"
		" aggregate_version, occurred_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)");
	char oid[TB_ID_SIZE], cid[TB_ID_SIZE], tid[TB_ID_SIZE], buyer[TB_ID_SIZE], key[64], payload[1024];
	int64_t now = BENCH_T0;
	uint64_t done = 0;

	(void)users;
#define EV(type, agg, ver) do { \
		size_t n_ = bench_order_payload(payload, sizeof payload, oid, tid, buyer, cid, now, (ver)); \
		sqlite3_bind_int(ev, 1, (type)); sqlite3_bind_text(ev, 2, (agg), -1, SQLITE_STATIC); \
		sqlite3_bind_int64(ev, 3, (ver)); sqlite3_bind_int64(ev, 4, now); \
		sqlite3_bind_text(ev, 5, payload, (int)n_, SQLITE_STATIC); \
		if (step_done(ev) != SQLITE_DONE) bench_die("raw pay: event: %s", sqlite3_errmsg(db)); \
	} while (0)
#define STEP(s) do { if (step_done(s) != SQLITE_DONE) bench_die("raw pay: %s", sqlite3_errmsg(db)); } while (0)

	double t0 = bench_now(), end = t0 + secs, t1 = t0;
	for (uint64_t i = 0; i < orders; i++) {
		int64_t ov, tv;

		bench_id(oid, ID_ORDER, i);
		bench_id(cid, ID_CHARGE, i);
		snprintf(key, sizeof key, "tbc_%s", cid);
		/* (1) record the attempt */
		STEP(begin);
		sqlite3_bind_text(order_get, 1, oid, -1, SQLITE_STATIC);
		if (sqlite3_step(order_get) != SQLITE_ROW || sqlite3_column_int(order_get, 4) != 1)
			bench_die("raw pay: order %s not payable", oid);
		snprintf(tid, sizeof tid, "%s", (const char *)sqlite3_column_text(order_get, 1));
		snprintf(buyer, sizeof buyer, "%s", (const char *)sqlite3_column_text(order_get, 2));
		ov = sqlite3_column_int64(order_get, 8);
		sqlite3_reset(order_get);
		sqlite3_bind_text(charge_insert, 1, cid, -1, SQLITE_STATIC);
		sqlite3_bind_text(charge_insert, 2, oid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(charge_insert, 3, 5000);
		sqlite3_bind_text(charge_insert, 4, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(charge_insert, 5, now + 1000);
		sqlite3_bind_int64(charge_insert, 6, now);
		STEP(charge_insert);
		EV(TB_EVENT_CHARGE_CREATED, cid, 0);
		set_status(order_set, oid, 2, ov + 1, now);
		EV(TB_EVENT_ORDER_AWAITING_PAYMENT, oid, ov + 1);
		tv = read_row(ticket_get, tid, 8);
		sqlite3_bind_text(ticket_extend, 1, tid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ticket_extend, 2, now + 20 * 60 * 1000);
		sqlite3_bind_int64(ticket_extend, 3, tv + 1);
		sqlite3_bind_int64(ticket_extend, 4, now);
		STEP(ticket_extend);
		EV(TB_EVENT_TICKET_UPDATED, tid, tv + 1);
		STEP(commit);
		/* (2) the provider said yes: record it */
		STEP(begin);
		read_row(charge_get, cid, -1);
		sqlite3_bind_text(charge_done, 1, cid, -1, SQLITE_STATIC);
		sqlite3_bind_text(charge_done, 2, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(charge_done, 3, 1);
		sqlite3_bind_int64(charge_done, 4, now);
		STEP(charge_done);
		EV(TB_EVENT_CHARGE_SUCCEEDED, cid, 1);
		read_row(order_get, oid, -1);
		set_status(order_set, oid, 3, ov + 2, now);
		EV(TB_EVENT_ORDER_COMPLETED, oid, ov + 2);
		read_row(ticket_get, tid, -1);
		sqlite3_bind_text(ticket_transfer, 1, tid, -1, SQLITE_STATIC);
		sqlite3_bind_text(ticket_transfer, 2, buyer, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ticket_transfer, 3, tv + 2);
		sqlite3_bind_int64(ticket_transfer, 4, now);
		STEP(ticket_transfer);
		EV(TB_EVENT_TICKET_UPDATED, tid, tv + 2);
		STEP(commit);
		done++;
		if ((done & 15) == 0 && (t1 = bench_now()) >= end)
			break;
	}
#undef EV
#undef STEP
	t1 = bench_now();
	sqlite3_stmt *all[] = { begin, commit, order_get, charge_insert, charge_get, charge_done,
		order_set, ticket_get, ticket_extend, ticket_transfer, ev };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(db);
	bench_result("raw_pay_per_s", (double)done / (t1 - t0));
}

/* ---- event replay -------------------------------------------------------------- */

/*
 * Page through the outbox in seq order, 10000 rows a query (the library's
 * largest page) on a read transaction, touching every column.
 */
void raw_events_bench(const char *path, unsigned int page)
{
	sqlite3 *db = bench_sqlite_open(path);
	sqlite3_stmt *q = bench_prepare(db, "SELECT seq, type, aggregate_id, aggregate_version,"
		" occurred_at, payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
	int64_t after = 0;
	uint64_t n = 0, bytes = 0;

	double t0 = bench_now();
	for (;;) {
		uint64_t got = 0;

		bench_exec(db, "BEGIN");
		sqlite3_bind_int64(q, 1, after);
		sqlite3_bind_int(q, 2, (int)page);
		while (sqlite3_step(q) == SQLITE_ROW) {
			after = sqlite3_column_int64(q, 0);
			bytes += (uint64_t)sqlite3_column_int(q, 1);
			bytes += (uint64_t)sqlite3_column_bytes(q, 2);
			bytes += (uint64_t)sqlite3_column_int64(q, 3) + (uint64_t)sqlite3_column_int64(q, 4);
			const unsigned char *p = sqlite3_column_text(q, 5);
			bytes += (uint64_t)sqlite3_column_bytes(q, 5) + (p ? p[0] : 0);
			got++;
		}
		sqlite3_reset(q);
		bench_exec(db, "COMMIT");
		n += got;
		if (got < page)
			break;
	}
	double el = bench_now() - t0;
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (bytes == 0)
		bench_die("raw events: nothing read");
	bench_result("raw_events_per_s", (double)n / el);
}
