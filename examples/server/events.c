/*
 * events.c - the server's durable subscriber "server-log".
 *
 * Every event the market commits reaches this callback at least once, in
 * order.  It writes the event as one JSON line to stdout and to the
 * --events-log file, feeds the metrics, and pushes a small public notice to
 * the browsers: type, record id and version only.  Payloads stay on the
 * server, since they may name users; a page that cares refetches through
 * the API, which checks who is asking.
 *
 * Delivery runs on a dispatcher thread of its own: a request that changed
 * something only wakes it (tbs_events_kick) and replies at once.  One pass
 * of the dispatcher delivers every event committed so far and stores the
 * cursor once, so under load one cursor write covers the events of many
 * requests instead of each request delivering (and writing the cursor) on
 * its own thread.  The ticker's ticks deliver too (expiries, settled
 * payments, and whatever a failed pass left: at most a tick period later).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* Only listings, orders and charges interest the web UI. */
static bool is_public(tb_event_type type)
{
	return type != TB_EVENT_USER_CREATED && type != TB_EVENT_USER_UPDATED;
}

static void push_to_browsers(tbs_server *srv, const tb_event *event)
{
	size_t len = 0;
	char *frame;

	if (!is_public(tb_event_type_get(event)) || tbs_sse_clients(srv->hub) == 0)
		return; /* nobody to tell: not even the frame is built */
	frame = tbs_event_frame(event, &len);
	if (frame)
		tbs_sse_broadcast(srv->hub, frame, len);
	free(frame);
}

static tb_status on_event(const tb_event *event, void *payload)
{
	tbs_server *srv = payload;
	char *line = NULL;
	tb_status st = tb_event_to_json(&line, event);
	bool ok = true;

	if (st != TB_OK)
		return st; /* delivered again on the next tick */
	pthread_mutex_lock(&srv->log_mu);
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	if (srv->events_log) {
		ok = fputs(line, srv->events_log) >= 0 && fputc('\n', srv->events_log) != EOF &&
			fflush(srv->events_log) == 0;
		if (!ok)
			tbs_log("cannot append to the events log; event %lld will be retried",
				(long long)tb_event_seq(event));
	}
	pthread_mutex_unlock(&srv->log_mu);
	tb_free(line);
	if (!ok)
		return TB_ESTORAGE;
	tbs_metrics_event(srv->metrics, event);
	push_to_browsers(srv, event);
	return TB_OK;
}

struct tbs_dispatcher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool pending; /* kicked since the current pass began */
	bool stop;
};

static void *dispatcher_main(void *arg)
{
	tbs_server *srv = arg;
	struct tbs_dispatcher *d = srv->dispatcher;

	pthread_setname_np(pthread_self(), "tbs-events"); /* for top -H, perf and gdb */

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->pending && !d->stop)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stop)
			break;
		/* Kicks from now on ask for another pass: this one may read too early for them. */
		d->pending = false;
		pthread_mutex_unlock(&d->mu);
		if (tb_event_dispatch(srv->market, NULL) != TB_OK)
			tbs_log("event dispatch failed (the tick retries): %s", tb_last_error()->message);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

tb_status tbs_events_start(tbs_server *srv)
{
	struct tbs_dispatcher *d;
	tb_status st = tb_event_subscribe(srv->market, TBS_SUBSCRIBER_NAME, on_event, srv);

	if (st != TB_OK)
		return st;
	if (!(d = calloc(1, sizeof *d)))
		return TB_ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->pending = true; /* deliver what the last run left behind */
	srv->dispatcher = d;
	if (pthread_create(&d->thread, NULL, dispatcher_main, srv) != 0) {
		srv->dispatcher = NULL;
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
		free(d);
		return TB_ENOMEM;
	}
	return TB_OK;
}

void tbs_events_kick(tbs_server *srv)
{
	struct tbs_dispatcher *d = srv->dispatcher;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	if (!d->pending) {
		d->pending = true;
		pthread_cond_signal(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
}

void tbs_events_stop(tbs_server *srv)
{
	struct tbs_dispatcher *d = srv->dispatcher;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
	srv->dispatcher = NULL;
}
