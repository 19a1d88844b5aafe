/*
 * bench/tb_bench.c - the benchmark driver: each subcommand measures one
 * figure through the library's C API (or, for raw-*, its baseline in raw.c)
 * and prints "RESULT <key> <value>" lines.  bench/run calls it several
 * times and prints the table; see bench/README.md.
 *
 *   tb-bench seed PATH [--tickets N] [--orders N] [--due N] [--users N] [--events N]
 *                 [--real-clock]  (orders expire an hour from now, for the server)
 *   tb-bench order PATH [--threads N] [--secs S] [--ckpt-ms MS] [--tickets N]
 *   tb-bench raw-order PATH [--secs S] [--ckpt-ms MS] [--tickets N]
 *   tb-bench flash PATH [--threads N] [--secs S] [--hot N]
 *   tb-bench raw-flash PATH [--threads N] [--secs S] [--hot N]
 *   tb-bench tick PATH --live N [--due N] [--reps R]
 *   tb-bench pay PATH [--secs S] / raw-pay PATH [--secs S]
 *   tb-bench events PATH / raw-events PATH
 *
 * PATH is a database file the subcommand creates (or, with --reuse, a file
 * an earlier `seed` made).
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw.h"
#include "util.h"

typedef struct opts {
	const char *cmd, *path;
	unsigned int threads, hot, users, reps;
	double secs;
	int ckpt_ms, reuse, real_clock;
	uint64_t tickets, orders, due, live, events;
} opts;

/* ---- row 1: the order (lock) rate ----------------------------------------- */

typedef struct order_worker {
	pthread_t th;
	tb_market *m;
	unsigned int idx, n;
	uint64_t tickets, done;
	double end;
} order_worker;

static void *order_main(void *arg)
{
	order_worker *w = arg;
	char buyer[TB_ID_SIZE], ticket[TB_ID_SIZE];

	bench_id(buyer, ID_USER, 1 + w->idx);
	for (uint64_t i = w->idx; i < w->tickets; i += w->n) {
		tb_order *o = NULL;

		bench_id(ticket, ID_TICKET, i);
		bench_check(tb_order_create(&o, w->m, buyer, ticket), "order");
		tb_order_free(o);
		w->done++;
		if ((w->done & 31) == 0 && bench_now() >= w->end)
			break;
	}
	return NULL;
}

static void cmd_order(const opts *o)
{
	bench_seed spec = { o->threads, o->tickets, 0, 0, 0, 0 };
	bench_market bm;
	order_worker *w = calloc(o->threads, sizeof *w);
	uint64_t done = 0;

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	bench_market_open(&bm, o->path, 1);
	bench_ckpt *ck = bench_ckpt_start(bm.m, o->path, o->ckpt_ms);
	double t0 = bench_now();
	for (unsigned int i = 0; i < o->threads; i++) {
		w[i] = (order_worker){ .m = bm.m, .idx = i, .n = o->threads, .tickets = o->tickets,
			.end = t0 + o->secs };
		pthread_create(&w[i].th, NULL, order_main, &w[i]);
	}
	for (unsigned int i = 0; i < o->threads; i++) {
		pthread_join(w[i].th, NULL);
		done += w[i].done;
	}
	double el = bench_now() - t0;
	bench_ckpt_stop(ck);
	bench_market_close(&bm);
	char key[64];
	snprintf(key, sizeof key, "order_t%u_per_s", o->threads);
	bench_result(key, (double)done / el);
	free(w);
}

static void cmd_raw_order(const opts *o)
{
	bench_seed spec = { 1, o->tickets, 0, 0, 0, 0 };

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	raw_order_bench(o->path, o->secs, o->ckpt_ms, o->tickets);
}

/* ---- row 2: the contended flash sale ---------------------------------------- */

typedef struct flash_worker {
	pthread_t th;
	tb_market *m;
	unsigned int idx, hot;
	double end;
	uint64_t attempts, won, refused;
	bench_lat lat;
} flash_worker;

static void *flash_main(void *arg)
{
	flash_worker *w = arg;
	char buyer[TB_ID_SIZE], ticket[TB_ID_SIZE];
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (w->idx + 1);

	bench_id(buyer, ID_USER, 1 + w->idx);
	while (bench_now() < w->end) {
		tb_order *o = NULL, *c = NULL;

		bench_id(ticket, ID_TICKET, bench_rand(&rng) % w->hot);
		double t0 = bench_now();
		tb_status st = tb_order_create(&o, w->m, buyer, ticket);
		bench_lat_add(&w->lat, bench_now() - t0);
		w->attempts++;
		if (st == TB_ELOCKED) {
			w->refused++;
			continue;
		}
		bench_check(st, "flash order");
		w->won++;
		/* The winner lets go at once, so the sale goes on for the whole run. */
		bench_check(tb_order_cancel(&c, w->m, buyer, tb_order_id(o)), "flash cancel");
		tb_order_free(c);
		tb_order_free(o);
	}
	return NULL;
}

/* The ticket an order event names: OrderCreated/Cancelled/Expired carry ticket_id. */
static const char *payload_ticket(json_t *p)
{
	return json_string_value(json_object_get(p, "ticket_id"));
}

/*
 * Replay the whole outbox in seq order and check that no ticket ever had
 * two live orders: an OrderCreated for a ticket that already holds a live
 * order is a violation; OrderCancelled/OrderExpired end the live order.
 * Returns the number of violations; *created_out counts OrderCreated.
 */
static uint64_t verify_one_live(tb_market *m, unsigned int hot, uint64_t *created_out)
{
	char (*live)[TB_ID_SIZE] = calloc(hot, TB_ID_SIZE);
	char ticket[TB_ID_SIZE];
	int64_t after = 0, prev = 0;
	uint64_t bad = 0, created = 0;

	for (;;) {
		tb_event_page *page = NULL;

		bench_check(tb_event_read(&page, m, after, TB_EVENT_READ_MAX), "event read");
		size_t n = tb_event_page_count(page);
		for (size_t i = 0; i < n; i++) {
			const tb_event *e = tb_event_page_at(page, i);
			tb_event_type type = tb_event_type_get(e);

			after = tb_event_seq(e);
			if (after != prev + 1)
				bad++; /* the outbox must be gap-free */
			prev = after;
			if (type != TB_EVENT_ORDER_CREATED && type != TB_EVENT_ORDER_CANCELLED &&
			    type != TB_EVENT_ORDER_EXPIRED)
				continue;
			json_t *p = json_loads(tb_event_payload(e), 0, NULL);
			const char *tid = p ? payload_ticket(p) : NULL;
			const char *oid = tb_event_aggregate_id(e);
			unsigned int k = hot;
			for (unsigned int j = 0; tid && j < hot; j++) {
				bench_id(ticket, ID_TICKET, j);
				if (strcmp(ticket, tid) == 0) {
					k = j;
					break;
				}
			}
			if (k == hot) {
				bad++;
			} else if (type == TB_EVENT_ORDER_CREATED) {
				created++;
				if (live[k][0])
					bad++;
				snprintf(live[k], TB_ID_SIZE, "%s", oid);
			} else if (strcmp(live[k], oid) == 0) {
				live[k][0] = '\0';
			} else {
				bad++;
			}
			json_decref(p);
		}
		tb_event_page_free(page);
		if (n < TB_EVENT_READ_MAX)
			break;
	}
	free(live);
	*created_out = created;
	return bad;
}

/* At the end, straight from the database: no ticket has two live orders. */
static uint64_t db_double_live(const char *path)
{
	sqlite3 *db = bench_sqlite_open(path);
	sqlite3_stmt *q = bench_prepare(db, "SELECT count(*) FROM (SELECT ticket_id FROM orders"
		" WHERE status IN (1, 2) GROUP BY ticket_id HAVING count(*) > 1)");
	uint64_t n = sqlite3_step(q) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 1;

	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void cmd_flash(const opts *o)
{
	bench_seed spec = { o->threads, o->tickets, 0, 0, 0, 0 };
	bench_market bm;
	flash_worker *w = calloc(o->threads, sizeof *w);
	bench_lat all = { 0 };
	uint64_t attempts = 0, won = 0, refused = 0, created = 0;

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	bench_market_open(&bm, o->path, 1);
	double t0 = bench_now();
	for (unsigned int i = 0; i < o->threads; i++) {
		w[i] = (flash_worker){ .m = bm.m, .idx = i, .hot = o->hot, .end = t0 + o->secs };
		pthread_create(&w[i].th, NULL, flash_main, &w[i]);
	}
	for (unsigned int i = 0; i < o->threads; i++) {
		pthread_join(w[i].th, NULL);
		attempts += w[i].attempts;
		won += w[i].won;
		refused += w[i].refused;
		bench_lat_merge(&all, &w[i].lat);
		bench_lat_free(&w[i].lat);
	}
	double el = bench_now() - t0;
	uint64_t bad = verify_one_live(bm.m, o->hot, &created);
	bench_market_close(&bm);
	bad += db_double_live(o->path);
	if (created != won)
		bad++;
	bench_result("flash_attempts_per_s", (double)attempts / el);
	bench_result("flash_orders_per_s", (double)won / el);
	bench_result("flash_refused_share", attempts ? (double)refused / (double)attempts : 0);
	bench_result("flash_p50_ms", bench_lat_quantile(&all, 0.50) * 1e3);
	bench_result("flash_p99_ms", bench_lat_quantile(&all, 0.99) * 1e3);
	bench_result("flash_violations", (double)bad);
	bench_lat_free(&all);
	free(w);
}

static void cmd_raw_flash(const opts *o)
{
	bench_seed spec = { o->threads, o->tickets, 0, 0, 0, 0 };

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	raw_flash_bench(o->path, o->secs, o->threads, o->hot);
}

/* ---- row 3: expiry tick scaling ------------------------------------------------ */

/*
 * The database holds `live` created orders: `due` of them past their lock,
 * the rest an hour away.  Each repetition opens the market on a manual
 * clock, times one tb_market_tick() (which must expire exactly `due`),
 * closes it, and puts the due orders back with SQL for the next one.
 */
static void tick_reset(const char *path, uint64_t due)
{
	sqlite3 *db = bench_sqlite_open(path);
	char lo[TB_ID_SIZE], hi[TB_ID_SIZE];

	bench_id(lo, ID_ORDER, 0);
	bench_id(hi, ID_ORDER, due);
	sqlite3_stmt *u = bench_prepare(db, "UPDATE orders SET status = 1, version = 0"
		" WHERE id >= ?1 AND id < ?2");
	sqlite3_stmt *t = bench_prepare(db, "UPDATE tickets SET order_id = '00000003'"
		" || substr(id, 9), locked_until = ?3, version = 2 WHERE id >= ?1 AND id < ?2");
	bench_exec(db, "BEGIN");
	sqlite3_bind_text(u, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(u, 2, hi, -1, SQLITE_STATIC);
	if (sqlite3_step(u) != SQLITE_DONE)
		bench_die("tick reset: %s", sqlite3_errmsg(db));
	bench_id(lo, ID_TICKET, 0);
	bench_id(hi, ID_TICKET, due);
	sqlite3_bind_text(t, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(t, 2, hi, -1, SQLITE_STATIC);
	sqlite3_bind_int64(t, 3, BENCH_T0 - 1);
	if (sqlite3_step(t) != SQLITE_DONE)
		bench_die("tick reset: %s", sqlite3_errmsg(db));
	bench_exec(db, "DELETE FROM events");
	bench_exec(db, "COMMIT");
	bench_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_finalize(u);
	sqlite3_finalize(t);
	sqlite3_close(db);
}

static void cmd_tick(const opts *o)
{
	bench_seed spec = { 16, o->live, o->live, o->due, 0, 0 };
	char key[64];

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	snprintf(key, sizeof key, "tick_%" PRIu64 "_live_ms", o->live);
	for (unsigned int r = 0; r < o->reps; r++) {
		bench_market bm;
		tb_tick_stats stats = TB_TICK_STATS_INIT;

		bench_market_open(&bm, o->path, 1);
		double t0 = bench_now();
		bench_check(tb_market_tick(bm.m, &stats), "tick");
		double el = bench_now() - t0;
		bench_market_close(&bm);
		if (stats.orders_expired != o->due)
			bench_die("tick expired %zu orders, expected %" PRIu64, stats.orders_expired, o->due);
		bench_result(key, el * 1e3);
		tick_reset(o->path, o->due);
	}
}

/* ---- row 4: payment completion ------------------------------------------------ */

static void cmd_pay(const opts *o)
{
	bench_seed spec = { o->users, o->orders, o->orders, 0, 0, 0 };
	bench_market bm;
	char buyer[TB_ID_SIZE], order[TB_ID_SIZE];
	uint64_t done = 0;

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	bench_market_open(&bm, o->path, 1);
	double t0 = bench_now(), end = t0 + o->secs;
	for (uint64_t i = 0; i < o->orders; i++) {
		tb_charge *c = NULL;

		bench_id(order, ID_ORDER, i);
		bench_id(buyer, ID_USER, 1 + i % o->users);
		bench_check(tb_order_pay(&c, bm.m, buyer, order, "tok_visa"), "pay");
		if (tb_charge_status_get(c) != TB_CHARGE_SUCCEEDED)
			bench_die("pay: charge not succeeded");
		tb_charge_free(c);
		done++;
		if ((done & 15) == 0 && bench_now() >= end)
			break;
	}
	double el = bench_now() - t0;
	bench_market_close(&bm);
	bench_result("pay_per_s", (double)done / el);
}

static void cmd_raw_pay(const opts *o)
{
	bench_seed spec = { o->users, o->orders, o->orders, 0, 0, 0 };

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	raw_pay_bench(o->path, o->secs, o->orders, o->users);
}

/* ---- row 5: event replay --------------------------------------------------------- */

static void cmd_events(const opts *o)
{
	bench_seed spec = { 1, 0, 0, 0, o->events, 0 };
	bench_market bm;
	int64_t after = 0;
	uint64_t n = 0, bytes = 0;

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	bench_market_open(&bm, o->path, 1);
	double t0 = bench_now();
	for (;;) {
		tb_event_page *page = NULL;

		bench_check(tb_event_read(&page, bm.m, after, TB_EVENT_READ_MAX), "event read");
		size_t got = tb_event_page_count(page);
		for (size_t i = 0; i < got; i++) {
			const tb_event *e = tb_event_page_at(page, i);
			after = tb_event_seq(e);
			bytes += (uint64_t)tb_event_type_get(e) + strlen(tb_event_aggregate_id(e));
			bytes += (uint64_t)tb_event_payload(e)[0];
		}
		tb_event_page_free(page);
		n += got;
		if (got < TB_EVENT_READ_MAX)
			break;
	}
	double el = bench_now() - t0;
	bench_market_close(&bm);
	if (n < o->events || bytes == 0)
		bench_die("events: read %" PRIu64 " of %" PRIu64, n, o->events);
	bench_result("events_per_s", (double)n / el);
}

static void cmd_raw_events(const opts *o)
{
	bench_seed spec = { 1, 0, 0, 0, o->events, 0 };

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
	raw_events_bench(o->path, TB_EVENT_READ_MAX);
}

/* ---- seed (for the server benchmarks) ----------------------------------------------- */

static void cmd_seed(const opts *o)
{
	bench_seed spec = { o->users, o->tickets, o->orders, o->due, o->events,
		o->real_clock ? tb_clock_real_now_ms() : 0 };

	if (!o->reuse)
		bench_seed_db(o->path, &spec);
}

/* ---- main ------------------------------------------------------------------------ */

static uint64_t num(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'k')
		v *= 1e3;
	else if (*end == 'M')
		v *= 1e6;
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	opts o = { .threads = 1, .hot = 100, .users = 16, .reps = 1, .secs = 2.0, .ckpt_ms = 0,
		.tickets = 200000, .orders = 50000, .due = 10000, .live = 10000, .events = 1000000 };

	if (argc < 3)
		bench_die("usage: tb-bench COMMAND PATH [options] (see the comment at the top of tb_bench.c)");
	o.cmd = argv[1];
	o.path = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--reuse") == 0) {
			o.reuse = 1;
			continue;
		}
		if (strcmp(a, "--real-clock") == 0) {
			o.real_clock = 1;
			continue;
		}
		if (!v)
			bench_die("%s needs a value", a);
		i++;
		if (strcmp(a, "--threads") == 0) o.threads = (unsigned int)num(v);
		else if (strcmp(a, "--secs") == 0) o.secs = strtod(v, NULL);
		else if (strcmp(a, "--ckpt-ms") == 0) o.ckpt_ms = (int)num(v);
		else if (strcmp(a, "--tickets") == 0) o.tickets = num(v);
		else if (strcmp(a, "--orders") == 0) o.orders = num(v);
		else if (strcmp(a, "--users") == 0) o.users = (unsigned int)num(v);
		else if (strcmp(a, "--hot") == 0) o.hot = (unsigned int)num(v);
		else if (strcmp(a, "--live") == 0) o.live = num(v);
		else if (strcmp(a, "--due") == 0) o.due = num(v);
		else if (strcmp(a, "--reps") == 0) o.reps = (unsigned int)num(v);
		else if (strcmp(a, "--events") == 0) o.events = num(v);
		else bench_die("unknown option %s", a);
	}
	if (o.threads == 0 || o.users == 0 || o.hot == 0)
		bench_die("--threads, --users and --hot must be positive");
	if (o.threads > o.users)
		o.users = o.threads;

	static const struct { const char *name; void (*fn)(const opts *); } cmds[] = {
		{ "seed", cmd_seed }, { "order", cmd_order }, { "raw-order", cmd_raw_order },
		{ "flash", cmd_flash }, { "raw-flash", cmd_raw_flash }, { "tick", cmd_tick },
		{ "pay", cmd_pay }, { "raw-pay", cmd_raw_pay }, { "events", cmd_events },
		{ "raw-events", cmd_raw_events },
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(o.cmd, cmds[i].name) == 0) {
			cmds[i].fn(&o);
			return 0;
		}
	}
	bench_die("unknown command %s", o.cmd);
	return 2;
}
