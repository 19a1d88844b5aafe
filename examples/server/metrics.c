/*
 * metrics.c - Prometheus metrics: requests by route and status, a latency
 * histogram per route, orders by state, events, ticks.
 *
 * Request counters are lock-free atomics indexed by route and status.
 * "Orders by state" is exact, not estimated: at start the whole event log is
 * replayed into a map order id -> state, and every later event moves one
 * order; an event whose seq was already applied is skipped, so redelivery
 * (at least once) never double counts.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned int codes[] = {
	200, 201, 202, 204, 304, 400, 401, 402, 403, 404, 405, 409, 413, 416, 500, 502, 503,
};
#define NCODES (sizeof codes / sizeof codes[0])

static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

#define NSTATES 7 /* tb_order_status 1..6 */
#define NEVENT_TYPES 32

struct slot {
	_Atomic uint64_t by_code[NCODES + 1]; /* last: any other code */
	_Atomic uint64_t hist[NBUCKETS + 1];  /* per bucket, not cumulative; last: +Inf */
	_Atomic uint64_t sum_us;
	_Atomic uint64_t observed;
};

struct order_entry {
	char id[TB_ID_LEN + 1];
	unsigned char state; /* 0 = empty slot */
};

struct tbs_metrics {
	size_t nslots;         /* routes, then static, then not found */
	struct slot *slots;
	double started_at;     /* unix seconds */

	pthread_mutex_t mu;    /* guards everything below */
	struct order_entry *orders;
	size_t orders_cap, orders_len;
	uint64_t by_state[NSTATES];
	int64_t applied_seq;
	uint64_t events[NEVENT_TYPES];
	uint64_t ticks, tick_failures, expired, retried, resolved, refunds;
};

struct tbs_metrics *tbs_metrics_new(void)
{
	struct tbs_metrics *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	m->nslots = tbs_routes_count() + 2;
	m->slots = calloc(m->nslots, sizeof *m->slots);
	if (!m->slots) {
		free(m);
		return NULL;
	}
	m->started_at = (double)tb_clock_real_now_ms() / 1000.0;
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void tbs_metrics_free(struct tbs_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->orders);
	free(m->slots);
	free(m);
}

static size_t slot_index(const struct tbs_metrics *m, int route)
{
	if (route >= 0 && (size_t)route < m->nslots - 2)
		return (size_t)route;
	return route == TBS_ROUTE_STATIC ? m->nslots - 2 : m->nslots - 1;
}

void tbs_metrics_request(struct tbs_metrics *m, int route, unsigned int status,
	double seconds, bool observe_latency)
{
	struct slot *s = &m->slots[slot_index(m, route)];
	size_t c = NCODES, b = 0;

	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == status)
			c = i;
	atomic_fetch_add(&s->by_code[c], 1);
	if (!observe_latency)
		return;
	while (b < NBUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add(&s->hist[b], 1);
	atomic_fetch_add(&s->sum_us, (uint64_t)(seconds * 1e6));
	atomic_fetch_add(&s->observed, 1);
}

/* ---- orders by state ------------------------------------------------------ */

static uint64_t hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return h;
}

/* Caller holds m->mu.  The entry for `id`, created empty if new; NULL when out of memory. */
static struct order_entry *order_slot(struct tbs_metrics *m, const char *id)
{
	size_t i;

	if (strlen(id) != TB_ID_LEN)
		return NULL;
	if ((m->orders_len + 1) * 10 > m->orders_cap * 7) {
		size_t cap = m->orders_cap ? m->orders_cap * 2 : 1024;
		struct order_entry *fresh = calloc(cap, sizeof *fresh), *old = m->orders;
		if (!fresh)
			return NULL;
		for (size_t j = 0; j < m->orders_cap; j++) {
			if (!old[j].state)
				continue;
			for (i = hash_id(old[j].id) & (cap - 1); fresh[i].state; i = (i + 1) & (cap - 1))
				;
			fresh[i] = old[j];
		}
		free(old);
		m->orders = fresh;
		m->orders_cap = cap;
	}
	for (i = hash_id(id) & (m->orders_cap - 1); m->orders[i].state; i = (i + 1) & (m->orders_cap - 1))
		if (strcmp(m->orders[i].id, id) == 0)
			return &m->orders[i];
	memcpy(m->orders[i].id, id, TB_ID_LEN + 1);
	return &m->orders[i];
}

static tb_order_status state_after(tb_event_type type)
{
	switch (type) {
	case TB_EVENT_ORDER_CREATED: return TB_ORDER_CREATED;
	case TB_EVENT_ORDER_AWAITING_PAYMENT: return TB_ORDER_AWAITING_PAYMENT;
	case TB_EVENT_ORDER_COMPLETED: return TB_ORDER_COMPLETE;
	case TB_EVENT_ORDER_CANCELLED: return TB_ORDER_CANCELLED;
	case TB_EVENT_ORDER_EXPIRED: return TB_ORDER_EXPIRED;
	case TB_EVENT_ORDER_REFUNDED: return TB_ORDER_REFUNDED;
	default: return (tb_order_status)0;
	}
}

/* Caller holds m->mu. */
static void apply(struct tbs_metrics *m, const tb_event *event)
{
	tb_event_type type = tb_event_type_get(event);
	tb_order_status to = state_after(type);
	struct order_entry *e;

	if (tb_event_seq(event) <= m->applied_seq)
		return;
	m->applied_seq = tb_event_seq(event);
	if ((unsigned int)type < NEVENT_TYPES)
		m->events[type]++;
	if (!to || !(e = order_slot(m, tb_event_aggregate_id(event))))
		return;
	if (e->state)
		m->by_state[e->state]--;
	else
		m->orders_len++;
	e->state = (unsigned char)to;
	m->by_state[to]++;
}

tb_status tbs_metrics_replay(struct tbs_metrics *m, tb_market *market)
{
	int64_t after = 0;
	tb_event_page *page = NULL;
	tb_status st;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		st = tb_event_read(&page, market, after, TB_EVENT_READ_MAX);
		if (st != TB_OK || tb_event_page_count(page) == 0)
			break;
		for (size_t i = 0; i < tb_event_page_count(page); i++) {
			const tb_event *e = tb_event_page_at(page, i);
			apply(m, e);
			after = tb_event_seq(e);
		}
		tb_event_page_free(page);
		page = NULL;
	}
	tb_event_page_free(page);
	/* events_total counts what happened since start; the replay only set the state. */
	memset(m->events, 0, sizeof m->events);
	pthread_mutex_unlock(&m->mu);
	return st;
}

void tbs_metrics_event(struct tbs_metrics *m, const tb_event *event)
{
	pthread_mutex_lock(&m->mu);
	apply(m, event);
	pthread_mutex_unlock(&m->mu);
}

void tbs_metrics_tick(struct tbs_metrics *m, const tb_tick_stats *stats, tb_status st)
{
	pthread_mutex_lock(&m->mu);
	m->ticks++;
	if (st != TB_OK)
		m->tick_failures++;
	m->expired += stats->orders_expired;
	m->retried += stats->payments_retried;
	m->resolved += stats->payments_resolved;
	m->refunds += stats->refunds_issued;
	pthread_mutex_unlock(&m->mu);
}

/* ---- exposition ----------------------------------------------------------- */

static void labels(FILE *f, const struct tbs_metrics *m, size_t i)
{
	if (i < m->nslots - 2)
		fprintf(f, "method=\"%s\",route=\"%s\"", tbs_route_method(i), tbs_route_template(i));
	else if (i == m->nslots - 2)
		fputs("method=\"GET\",route=\"static\"", f);
	else
		fputs("method=\"any\",route=\"unmatched\"", f);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_http(FILE *f, struct tbs_metrics *m)
{
	header(f, "ticketyboo_http_requests_total", "counter",
		"HTTP requests answered, by route template and status code.");
	for (size_t i = 0; i < m->nslots; i++) {
		for (size_t c = 0; c <= NCODES; c++) {
			uint64_t n = atomic_load(&m->slots[i].by_code[c]);
			if (!n)
				continue;
			fputs("ticketyboo_http_requests_total{", f);
			labels(f, m, i);
			if (c < NCODES)
				fprintf(f, ",code=\"%u\"} %llu\n", codes[c], (unsigned long long)n);
			else
				fprintf(f, ",code=\"other\"} %llu\n", (unsigned long long)n);
		}
	}
	header(f, "ticketyboo_http_request_duration_seconds", "histogram",
		"Time from a request's headers to its completed reply, by route template.");
	for (size_t i = 0; i < m->nslots; i++) {
		uint64_t total = atomic_load(&m->slots[i].observed), cumulative = 0;
		if (!total)
			continue;
		for (size_t b = 0; b <= NBUCKETS; b++) {
			cumulative += atomic_load(&m->slots[i].hist[b]);
			fputs("ticketyboo_http_request_duration_seconds_bucket{", f);
			labels(f, m, i);
			if (b < NBUCKETS)
				fprintf(f, ",le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cumulative);
			else
				fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
		}
		fputs("ticketyboo_http_request_duration_seconds_sum{", f);
		labels(f, m, i);
		fprintf(f, "} %.6f\n", (double)atomic_load(&m->slots[i].sum_us) / 1e6);
		fputs("ticketyboo_http_request_duration_seconds_count{", f);
		labels(f, m, i);
		fprintf(f, "} %llu\n", (unsigned long long)cumulative);
	}
}

static void render_market(FILE *f, struct tbs_metrics *m)
{
	pthread_mutex_lock(&m->mu);
	header(f, "ticketyboo_orders", "gauge", "Orders by state, from the event log.");
	for (int s = 1; s < NSTATES; s++)
		fprintf(f, "ticketyboo_orders{state=\"%s\"} %llu\n",
			tb_order_status_name((tb_order_status)s), (unsigned long long)m->by_state[s]);
	header(f, "ticketyboo_events_total", "counter", "Events delivered to the server since it started, by type.");
	for (unsigned int t = 1; t < NEVENT_TYPES; t++)
		if (m->events[t])
			fprintf(f, "ticketyboo_events_total{type=\"%s\"} %llu\n",
				tb_event_type_name((tb_event_type)t), (unsigned long long)m->events[t]);
	header(f, "ticketyboo_event_seq", "gauge", "Sequence number of the last event the server applied.");
	fprintf(f, "ticketyboo_event_seq %lld\n", (long long)m->applied_seq);
	header(f, "ticketyboo_ticks_total", "counter", "Market ticks run by the timer thread.");
	fprintf(f, "ticketyboo_ticks_total %llu\n", (unsigned long long)m->ticks);
	header(f, "ticketyboo_tick_failures_total", "counter", "Ticks that returned an error.");
	fprintf(f, "ticketyboo_tick_failures_total %llu\n", (unsigned long long)m->tick_failures);
	header(f, "ticketyboo_orders_expired_total", "counter", "Orders expired by ticks.");
	fprintf(f, "ticketyboo_orders_expired_total %llu\n", (unsigned long long)m->expired);
	header(f, "ticketyboo_payments_retried_total", "counter", "Unknown payments asked again by ticks.");
	fprintf(f, "ticketyboo_payments_retried_total %llu\n", (unsigned long long)m->retried);
	header(f, "ticketyboo_payments_resolved_total", "counter", "Retried payments that got a final answer.");
	fprintf(f, "ticketyboo_payments_resolved_total %llu\n", (unsigned long long)m->resolved);
	header(f, "ticketyboo_refunds_issued_total", "counter", "Late payments refunded by ticks.");
	fprintf(f, "ticketyboo_refunds_issued_total %llu\n", (unsigned long long)m->refunds);
	pthread_mutex_unlock(&m->mu);
}

char *tbs_metrics_render(struct tbs_metrics *m, const tbs_server *srv, size_t *len_out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	render_http(f, m);
	header(f, "ticketyboo_http_requests_in_flight", "gauge", "Requests being handled now.");
	fprintf(f, "ticketyboo_http_requests_in_flight %ld\n", atomic_load(&srv->inflight));
	header(f, "ticketyboo_sse_clients", "gauge", "Browsers connected to the event stream.");
	fprintf(f, "ticketyboo_sse_clients %zu\n", tbs_sse_clients(srv->hub));
	render_market(f, m);
	header(f, "ticketyboo_build_info", "gauge", "Library version.");
	fprintf(f, "ticketyboo_build_info{version=\"%s\"} 1\n", tb_version());
	header(f, "process_start_time_seconds", "gauge", "Start time of the process since the epoch.");
	fprintf(f, "process_start_time_seconds %.3f\n", m->started_at);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len_out = len;
	return buf;
}
