/*
 * bench/util.c - see util.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tb-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

void bench_check(tb_status st, const char *what)
{
	if (st != TB_OK)
		bench_die("%s: %s: %s", what, tb_status_name(st), tb_last_error()->message);
}

void bench_result(const char *key, double value)
{
	printf("RESULT %s %.6g\n", key, value);
	fflush(stdout);
}

void bench_id(char out[TB_ID_SIZE], unsigned int kind, uint64_t n)
{
	snprintf(out, TB_ID_SIZE, "%08x-0000-7000-8000-%012" PRIx64, kind & 0xffffu,
		n & UINT64_C(0xffffffffffff));
}

void bench_lat_add(bench_lat *l, double s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		double *v = realloc(l->v, cap * sizeof *v);

		if (!v)
			bench_die("out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
}

void bench_lat_merge(bench_lat *dst, const bench_lat *src)
{
	for (size_t i = 0; i < src->n; i++)
		bench_lat_add(dst, src->v[i]);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_lat_quantile(bench_lat *l, double q)
{
	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof *l->v, cmp_double);
	size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
	return l->v[i < l->n ? i : l->n - 1];
}

void bench_lat_free(bench_lat *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

/* ---- raw SQLite ------------------------------------------------------------ */

void bench_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		bench_die("sqlite: %s: %s", sql, err ? err : "?");
}

sqlite3_stmt *bench_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		bench_die("sqlite prepare: %s: %s", sql, sqlite3_errmsg(db));
	return s;
}

sqlite3 *bench_sqlite_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
		    NULL) != SQLITE_OK)
		bench_die("sqlite open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 5000);
	bench_exec(db, "PRAGMA journal_mode = WAL");
	bench_exec(db, "PRAGMA synchronous = NORMAL");
	bench_exec(db, "PRAGMA foreign_keys = ON");
	return db;
}

/* ---- payloads -------------------------------------------------------------- */

static void iso(char out[32], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char buf[96];

	gmtime_r(&secs, &tm);
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	snprintf(out, 32, "%.31s", buf);
}

size_t bench_order_payload(char *buf, size_t size, const char *order_id, const char *ticket_id,
	const char *buyer_id, const char *seller_id, int64_t now, int64_t version)
{
	char exp[32], created[32];
	int64_t expires = now + 15 * 60 * 1000;

	iso(exp, expires);
	iso(created, now);
	int n = snprintf(buf, size,
		"{\"id\":\"%s\",\"ticket_id\":\"%s\",\"buyer_id\":\"%s\",\"seller_id\":\"%s\","
		"\"status\":\"created\",\"expires_at\":\"%s\",\"expires_at_ms\":%" PRId64 ","
		"\"price_minor\":5000,\"currency\":\"USD\",\"version\":%" PRId64 ",\"created_at\":\"%s\"}",
		order_id, ticket_id, buyer_id, seller_id, exp, expires, version, created);
	return n < 0 ? 0 : (size_t)n;
}

/* ---- seeding --------------------------------------------------------------- */

/* Sign up the seller through the API, so the password hash is real; return it. */
static void seed_schema(const char *path, char hash[TB_HASH_SIZE])
{
	bench_market bm;
	tb_user *u = NULL;
	tb_session *s = NULL;

	bench_market_open(&bm, path, 1);
	bench_check(tb_user_signup(&u, &s, bm.m, "template@bench.test", BENCH_PASSWORD), "signup");
	tb_session_free(s);
	bench_market_close(&bm);

	sqlite3 *db = bench_sqlite_open(path);
	sqlite3_stmt *q = bench_prepare(db, "SELECT password_hash FROM users WHERE id = ?1");
	sqlite3_bind_text(q, 1, tb_user_id(u), -1, SQLITE_TRANSIENT);
	if (sqlite3_step(q) != SQLITE_ROW)
		bench_die("seed: template user missing");
	snprintf(hash, TB_HASH_SIZE, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
	tb_user_free(u);
}

void bench_seed_db(const char *path, const bench_seed *spec)
{
	char hash[TB_HASH_SIZE], id[TB_ID_SIZE], tid[TB_ID_SIZE], oid[TB_ID_SIZE], uid[TB_ID_SIZE];
	char seller[TB_ID_SIZE], email[96], title[64], payload[1024];
	int64_t t0 = spec->t0 ? spec->t0 : BENCH_T0;

	remove(path);
	seed_schema(path, hash);
	sqlite3 *db = bench_sqlite_open(path);
	bench_exec(db, "PRAGMA synchronous = OFF");
	bench_exec(db, "PRAGMA cache_size = -262144");
	bench_exec(db, "BEGIN");

	sqlite3_stmt *u = bench_prepare(db, "INSERT INTO users (id, email, password_hash, version,"
		" created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?4)");
	bench_id(seller, ID_USER, 0);
	for (unsigned int i = 0; i <= spec->users; i++) {
		bench_id(id, ID_USER, i);
		snprintf(email, sizeof email, "user%u@bench.test", i);
		sqlite3_bind_text(u, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(u, 2, email, -1, SQLITE_STATIC);
		sqlite3_bind_text(u, 3, hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(u, 4, t0);
		if (sqlite3_step(u) != SQLITE_DONE)
			bench_die("seed user: %s", sqlite3_errmsg(db));
		sqlite3_reset(u);
	}
	sqlite3_finalize(u);

	sqlite3_stmt *t = bench_prepare(db, "INSERT INTO tickets (id, title, price_minor, currency,"
		" owner_id, order_id, locked_until, status, version, created_at, updated_at)"
		" VALUES (?1, ?2, 5000, 'USD', ?3, ?4, ?5, 1, ?6, ?7, ?7)");
	sqlite3_stmt *o = bench_prepare(db, "INSERT INTO orders (id, ticket_id, buyer_id, seller_id,"
		" status, expires_at, price_minor, currency, version, created_at, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, 1, ?5, 5000, 'USD', 0, ?6, ?6)");
	for (uint64_t i = 0; i < spec->tickets; i++) {
		bool locked = i < spec->orders;
		int64_t expires = i < spec->orders_due ? t0 - 1 : t0 + BENCH_HOUR_MS;

		bench_id(tid, ID_TICKET, i);
		bench_id(oid, ID_ORDER, i);
		snprintf(title, sizeof title, "Bench ticket %" PRIu64, i);
		sqlite3_bind_text(t, 1, tid, -1, SQLITE_STATIC);
		sqlite3_bind_text(t, 2, title, -1, SQLITE_STATIC);
		sqlite3_bind_text(t, 3, seller, -1, SQLITE_STATIC);
		sqlite3_bind_text(t, 4, locked ? oid : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(t, 5, locked ? expires : 0);
		sqlite3_bind_int64(t, 6, locked ? 2 : 1);
		sqlite3_bind_int64(t, 7, t0 - BENCH_HOUR_MS);
		if (sqlite3_step(t) != SQLITE_DONE)
			bench_die("seed ticket: %s", sqlite3_errmsg(db));
		sqlite3_reset(t);
		if (!locked)
			continue;
		bench_id(uid, ID_USER, 1 + i % (spec->users ? spec->users : 1));
		sqlite3_bind_text(o, 1, oid, -1, SQLITE_STATIC);
		sqlite3_bind_text(o, 2, tid, -1, SQLITE_STATIC);
		sqlite3_bind_text(o, 3, uid, -1, SQLITE_STATIC);
		sqlite3_bind_text(o, 4, seller, -1, SQLITE_STATIC);
		sqlite3_bind_int64(o, 5, expires);
		sqlite3_bind_int64(o, 6, t0 - BENCH_HOUR_MS);
		if (sqlite3_step(o) != SQLITE_DONE)
			bench_die("seed order: %s", sqlite3_errmsg(db));
		sqlite3_reset(o);
	}
	sqlite3_finalize(t);
	sqlite3_finalize(o);

	sqlite3_stmt *e = bench_prepare(db, "INSERT INTO events (type, aggregate_id,"
		" aggregate_version, occurred_at, payload) VALUES (?1, ?2, 1, ?3, ?4)");
	for (uint64_t i = 0; i < spec->events; i++) {
		bench_id(oid, ID_ORDER, i);
		bench_id(tid, ID_TICKET, i);
		bench_id(uid, ID_USER, 1);
		size_t n = bench_order_payload(payload, sizeof payload, oid, tid, uid, seller, t0, 1);
		sqlite3_bind_int(e, 1, TB_EVENT_ORDER_CREATED);
		sqlite3_bind_text(e, 2, oid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(e, 3, t0);
		sqlite3_bind_text(e, 4, payload, (int)n, SQLITE_STATIC);
		if (sqlite3_step(e) != SQLITE_DONE)
			bench_die("seed event: %s", sqlite3_errmsg(db));
		sqlite3_reset(e);
	}
	sqlite3_finalize(e);
	bench_exec(db, "COMMIT");
	bench_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
}

/* ---- markets --------------------------------------------------------------- */

void bench_market_open(bench_market *bm, const char *path, int manual_clock)
{
	tb_market_options o = TB_MARKET_OPTIONS_INIT;
	tb_clock clock;

	memset(bm, 0, sizeof *bm);
	o.db = path;
	o.sync = TB_SYNC_NORMAL;
	o.password_cost = TB_PASSWORD_COST_MIN;
	if (manual_clock) {
		bench_check(tb_clock_manual_new(&bm->clock, BENCH_T0), "manual clock");
		tb_clock_manual_bind(bm->clock, &clock);
		o.clock = &clock;
	}
	bench_check(tb_payment_fake_new(&bm->pay), "fake provider");
	o.payments = bm->pay;
	bench_check(tb_market_open(&bm->m, &o), "market open");
}

void bench_market_close(bench_market *bm)
{
	tb_market_close(bm->m);
	tb_payment_provider_free(bm->pay);
	tb_clock_manual_free(bm->clock);
	memset(bm, 0, sizeof *bm);
}

/* ---- the host's checkpoint thread ------------------------------------------ */

struct bench_ckpt {
	pthread_t thread;
	tb_market *market;
	sqlite3 *db;
	int ms;
	volatile int stop;
};

static void *ckpt_main(void *arg)
{
	bench_ckpt *c = arg;

	while (!c->stop) {
		bench_sleep_ms(c->ms);
		if (c->market) {
			if (tb_market_checkpoint(c->market) != TB_OK)
				bench_die("checkpoint: %s", tb_last_error()->message);
		} else {
			sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		}
	}
	return NULL;
}

bench_ckpt *bench_ckpt_start(tb_market *market, const char *path, int ms)
{
	if (ms <= 0)
		return NULL;
	bench_ckpt *c = calloc(1, sizeof *c);
	if (!c)
		bench_die("out of memory");
	c->market = market;
	c->ms = ms;
	if (!market)
		c->db = bench_sqlite_open(path);
	if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0)
		bench_die("pthread_create");
	return c;
}

void bench_ckpt_stop(bench_ckpt *c)
{
	if (!c)
		return;
	c->stop = 1;
	pthread_join(c->thread, NULL);
	sqlite3_close(c->db);
	free(c);
}
