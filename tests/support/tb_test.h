/*
 * Shared helpers for the cmocka suites: a market on a manual clock with the
 * fake payment provider, and assertions that print the library's detail.
 */
#ifndef TB_TEST_H
#define TB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <ticketyboo/ticketyboo.h>

/* 2023-11-14T22:13:20Z: a fixed start for every manual clock. */
#define TBT_T0 INT64_C(1700000000000)
#define TBT_LOCK_MS (15 * 60 * 1000)

typedef struct tbt {
	tb_market *m;
	tb_clock_manual *clock;
	tb_payment_provider *pay;
	char db[512];                 /* "" = :memory:; a postgresql:// URI under TB_TEST_MARKET_DB=postgres */
	tb_market_options opts;
} tbt;

#define assert_tb_ok(expr) \
	do { \
		tb_status s_ = (expr); \
		if (s_ != TB_OK) \
			fail_msg("%s -> %s: %s", #expr, tb_status_name(s_), tb_last_error()->message); \
	} while (0)

#define assert_tb_status(expr, want) \
	do { \
		tb_status s_ = (expr); \
		if (s_ != (want)) \
			fail_msg("%s -> %s (%s), wanted %s", #expr, tb_status_name(s_), \
				tb_last_error()->message, tb_status_name(want)); \
	} while (0)

/* The failing field of the last error, or "" */
const char *tbt_field(void);

/*
 * A market on a manual clock at TBT_T0 with a fresh fake provider and the
 * minimum password cost.  file != 0 puts it in a file under TB_TEST_TMPDIR.
 * With TB_TEST_MARKET_DB=postgres (ctest's <suite>_postgres runs) every
 * market goes to a fresh schema on the PostgreSQL server of tb_pg.h instead.
 */
tbt *tbt_new(int file);
/* Same, after customising options: call tbt_prepare, edit t->opts, tbt_open. */
tbt *tbt_prepare(int file);
void tbt_open(tbt *t);
/* Close and reopen the market on the same database (a restart). */
void tbt_reopen(tbt *t);
void tbt_free(tbt *t);

int tbt_setup(void **state);      /* in-memory */
int tbt_setup_file(void **state); /* on a file */
int tbt_teardown(void **state);

/* Sign up a user; returns its id (free with free()). */
char *tbt_user(tbt *t, const char *email);
/* List a ticket; returns its id (free with free()). */
char *tbt_ticket(tbt *t, const char *owner, const char *title, int64_t price_minor);
/* Order a ticket; returns the order id or NULL with the status in *st. */
char *tbt_order(tbt *t, const char *buyer, const char *ticket, tb_status *st);

/* How many events of a type exist (0 = all types). */
size_t tbt_event_count(tbt *t, tb_event_type type);
/* The newest event's seq. */
int64_t tbt_last_seq(tbt *t);
/* The type of the n-th newest event (0 = newest). */
tb_event_type tbt_event_back(tbt *t, size_t n);

void tbt_advance(tbt *t, int64_t ms);
int64_t tbt_now(tbt *t);

#endif
