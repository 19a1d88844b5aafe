/*
 * events.c - the server's durable subscriber "server-log".
 *
 * Every event the market commits reaches this callback at least once, in
 * order (on the ticker thread, or on a request thread right after a
 * mutation).  It writes the event as one JSON line to stdout and to the
 * --events-log file, feeds the metrics, and pushes a small public notice to
 * the browsers: type, record id and version only.  Payloads stay on the
 * server, since they may name users; a page that cares refetches through
 * the API, which checks who is asking.
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

	if (!is_public(tb_event_type_get(event)))
		return;
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

tb_status tbs_events_start(tbs_server *srv)
{
	return tb_event_subscribe(srv->market, TBS_SUBSCRIBER_NAME, on_event, srv);
}

void tbs_events_dispatch(tbs_server *srv)
{
	if (tb_event_dispatch(srv->market, NULL) != TB_OK)
		tbs_log("event dispatch failed (the tick retries): %s", tb_last_error()->message);
}
