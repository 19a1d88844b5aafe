/*
 * ticker.c - the timer thread that drives the market's time.
 *
 * The library starts no thread and never sleeps; the host calls
 * tb_market_tick() when tb_market_next_deadline() says something is due.
 * This thread sleeps until that deadline (at most 250 ms at a time, so a
 * deadline that appears meanwhile is never missed by more than that), and
 * a condition variable wakes it early for shutdown, or for a new deadline
 * earlier than its planned wake-up (an order with a lock shorter than the
 * sleep).  A new order's deadline is almost always later: waking the thread
 * for each one cost every POST /api/orders a deadline query, and often a
 * whole tick.  It also sends the SSE heartbeat.
 */
#include "server.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define MAX_SLEEP_MS 250
/* When a tick leaves work due at once (a subscriber failing), pause this long. */
#define BUSY_PAUSE_MS 50
#define HEARTBEAT_S 15.0

struct tbs_ticker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool woken;
	int64_t wake_at_ms; /* market time of the planned wake-up; INT64_MIN while awake */
};

static void run_tick(tbs_server *srv)
{
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	tb_status st = tb_market_tick(srv->market, &stats);

	if (st != TB_OK)
		tbs_log("tick failed (retrying): %s", tb_last_error()->message);
	tbs_metrics_tick(srv->metrics, &stats, st);
}

static void *ticker_main(void *arg)
{
	tbs_server *srv = arg;
	struct tbs_ticker *t = srv->ticker;
	double last_heartbeat = tbs_monotonic();
	bool ticked_due = false;

	pthread_setname_np(pthread_self(), "tbs-ticker"); /* for top -H, perf and gdb */

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		int64_t deadline = TB_NO_DEADLINE, now, wait_ms;

		t->wake_at_ms = INT64_MIN; /* a deadline that appears now may be missed by the query */
		pthread_mutex_unlock(&t->mu);
		if (tb_market_next_deadline(srv->market, &deadline) != TB_OK)
			deadline = TB_NO_DEADLINE;
		now = tb_market_now_ms(srv->market);
		if (deadline <= now && !ticked_due) {
			run_tick(srv);
			ticked_due = true;
			wait_ms = 0;
		} else {
			wait_ms = deadline <= now ? BUSY_PAUSE_MS
				: (deadline - now < MAX_SLEEP_MS ? deadline - now : MAX_SLEEP_MS);
			ticked_due = false;
		}
		if (tbs_monotonic() - last_heartbeat >= HEARTBEAT_S) {
			static const char ping[] = ": ping\n\n";
			tbs_sse_broadcast(srv->hub, ping, sizeof ping - 1);
			last_heartbeat = tbs_monotonic();
		}
		pthread_mutex_lock(&t->mu);
		if (wait_ms > 0 && !t->stop && !t->woken) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += (time_t)(wait_ms / 1000);
			until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			t->wake_at_ms = now + wait_ms;
			pthread_cond_timedwait(&t->cv, &t->mu, &until);
		}
		t->woken = false;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int tbs_ticker_start(tbs_server *srv)
{
	struct tbs_ticker *t = calloc(1, sizeof *t);
	pthread_condattr_t attr;

	if (!t)
		return -1;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &attr);
	pthread_condattr_destroy(&attr);
	srv->ticker = t;
	if (pthread_create(&t->thread, NULL, ticker_main, srv) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		srv->ticker = NULL;
		return -1;
	}
	return 0;
}

void tbs_ticker_wake_by(tbs_server *srv, int64_t deadline_ms)
{
	struct tbs_ticker *t = srv->ticker;

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	if (deadline_ms < t->wake_at_ms || t->wake_at_ms == INT64_MIN) {
		t->woken = true;
		pthread_cond_signal(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
}

void tbs_ticker_stop(tbs_server *srv)
{
	struct tbs_ticker *t = srv->ticker;

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
	srv->ticker = NULL;
	run_tick(srv); /* the final tick: expire what is due, deliver what is pending */
}
