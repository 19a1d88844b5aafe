/*
 * bench/util.h - shared helpers of the benchmark programs: time, statistics,
 * deterministic ids, and seeding a database with direct SQL.
 *
 * Every benchmark prints its figures as lines "RESULT <key> <value>" on
 * stdout; bench/run collects them over several runs and prints the table.
 */
#ifndef TB_BENCH_UTIL_H
#define TB_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>
#include <ticketyboo/ticketyboo.h>

/* The fixed "now" of every seeded database and manual clock. */
#define BENCH_T0 INT64_C(1700000000000)
#define BENCH_HOUR_MS INT64_C(3600000)
/* Every seeded user's password (the server benchmark signs in with it). */
#define BENCH_PASSWORD "bench-password-1"

/* Monotonic seconds. */
double bench_now(void);
void bench_sleep_ms(int ms);
void bench_die(const char *fmt, ...);
/* Exit with the library's detail when st is not TB_OK. */
void bench_check(tb_status st, const char *what);
void bench_result(const char *key, double value);

/* Deterministic ids in the library's UUID text shape, one namespace per kind. */
enum { ID_USER = 1, ID_TICKET = 2, ID_ORDER = 3, ID_CHARGE = 4, ID_RAW = 5 };
void bench_id(char out[TB_ID_SIZE], unsigned int kind, uint64_t n);

/* Latency samples in seconds. */
typedef struct bench_lat {
	double *v;
	size_t n, cap;
} bench_lat;
void bench_lat_add(bench_lat *l, double s);
void bench_lat_merge(bench_lat *dst, const bench_lat *src);
/* q in [0, 1]; sorts the samples. */
double bench_lat_quantile(bench_lat *l, double q);
void bench_lat_free(bench_lat *l);

/* xorshift64*: cheap per-thread randomness. */
uint64_t bench_rand(uint64_t *state);

/*
 * What seed() writes, all with direct SQL in one transaction on a database
 * the library created (so schema and indexes are the library's own):
 * user 0 is the seller and owns every ticket; users 1..users are buyers.
 * Ticket i (0-based) is listed.  The first `orders` tickets are locked by
 * order i of buyer 1 + i % users, status created; the first `orders_due` of
 * them expire at t0 - 1 (due), the rest at t0 + 1 h (t0 defaults to BENCH_T0).
 * `events` rows of a realistic payload are appended to the outbox.
 */
typedef struct bench_seed {
	unsigned int users;
	uint64_t tickets;
	uint64_t orders;
	uint64_t orders_due;
	uint64_t events;
	int64_t t0;          /* "now" of the seeded rows; 0 = BENCH_T0 */
} bench_seed;
void bench_seed_db(const char *path, const bench_seed *spec);

/* Open a market on `path` the way every benchmark does (sync NORMAL, fake payments). */
typedef struct bench_market {
	tb_market *m;
	tb_clock_manual *clock; /* NULL: real clock */
	tb_payment_provider *pay;
} bench_market;
void bench_market_open(bench_market *bm, const char *path, int manual_clock);
void bench_market_close(bench_market *bm);

/* A raw SQLite connection set up like the library's writer (WAL, NORMAL, foreign keys). */
sqlite3 *bench_sqlite_open(const char *path);
void bench_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *bench_prepare(sqlite3 *db, const char *sql);

/*
 * A thread that runs a PASSIVE checkpoint every `ms` milliseconds, as a
 * host's tick thread would: through tb_market_checkpoint() when `market` is
 * set, else on its own connection to `path`.  ms == 0 starts nothing.
 */
typedef struct bench_ckpt bench_ckpt;
bench_ckpt *bench_ckpt_start(tb_market *market, const char *path, int ms);
void bench_ckpt_stop(bench_ckpt *c);

/* Payload texts of the size the library writes for an order's events. */
size_t bench_order_payload(char *buf, size_t size, const char *order_id, const char *ticket_id,
	const char *buyer_id, const char *seller_id, int64_t now, int64_t version);

#endif
