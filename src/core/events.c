/*
 * The outbox: events appended in the caller's transaction, replay, and
 * named durable subscribers delivered at least once, in order.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct type_info {
	const char *name;
	const char *subject;
} type_info;

static const type_info types[] = {
	[TB_EVENT_USER_CREATED] = { "UserCreated", "user:created" },
	[TB_EVENT_USER_UPDATED] = { "UserUpdated", "user:updated" },
	[TB_EVENT_TICKET_CREATED] = { "TicketCreated", "ticket:created" },
	[TB_EVENT_TICKET_UPDATED] = { "TicketUpdated", "ticket:updated" },
	[TB_EVENT_ORDER_CREATED] = { "OrderCreated", "order:created" },
	[TB_EVENT_ORDER_CANCELLED] = { "OrderCancelled", "order:cancelled" },
	[TB_EVENT_ORDER_EXPIRED] = { "OrderExpired", "order:expired" },
	[TB_EVENT_CHARGE_CREATED] = { "ChargeCreated", "charge:created" },
	[TB_EVENT_CHARGE_REFUNDED] = { "ChargeRefunded", "charge:refunded" },
	[TB_EVENT_ORDER_AWAITING_PAYMENT] = { "OrderAwaitingPayment", "order:awaiting_payment" },
	[TB_EVENT_ORDER_COMPLETED] = { "OrderCompleted", "order:completed" },
	[TB_EVENT_CHARGE_SUCCEEDED] = { "ChargeSucceeded", "charge:succeeded" },
	[TB_EVENT_CHARGE_FAILED] = { "ChargeFailed", "charge:failed" },
	[TB_EVENT_ORDER_REFUNDED] = { "OrderRefunded", "order:refunded" },
};

static const type_info *type_of(int type)
{
	if (type <= 0 || (size_t)type >= sizeof(types) / sizeof(types[0]))
		return NULL;
	return &types[type];
}

const char *tb_event_type_name(tb_event_type type)
{
	const type_info *t = type_of((int)type);
	return t ? t->name : "Unknown";
}

const char *tb_event_type_subject(tb_event_type type)
{
	const type_info *t = type_of((int)type);
	return t ? t->subject : "unknown";
}

/* Append one event whose payload is `len` bytes of JSON text. */
static tb_status append_payload(tb_market *m, tb_storage_txn *txn, tb_event_type type,
	const char *aggregate_id, int64_t aggregate_version, const char *text, size_t len)
{
	tb_event_row row;
	memset(&row, 0, sizeof(row));
	row.type = (int)type;
	tb_str__copy(row.aggregate_id, sizeof(row.aggregate_id), aggregate_id);
	row.aggregate_version = aggregate_version;
	row.occurred_at_ms = tb_market__now(m);
	row.payload = text;
	row.payload_len = len;
	return m->storage->event_append(txn, &row);
}

tb_status tb_event__append(tb_market *m, tb_storage_txn *txn, tb_event_type type,
	const char *aggregate_id, int64_t aggregate_version, json_t *payload)
{
	if (!payload)
		return tb_error__oom();
	json_object_set_new(payload, "version", json_integer(aggregate_version));
	char *text = json_dumps(payload, JSON_COMPACT);
	json_decref(payload);
	if (!text)
		return tb_error__oom();
	tb_status st = append_payload(m, txn, type, aggregate_id, aggregate_version, text, strlen(text));
	free(text);
	return st;
}

tb_status tb_event__append_text(tb_market *m, tb_storage_txn *txn, tb_event_type type,
	const char *aggregate_id, int64_t aggregate_version, tb_jbuf *b)
{
	tb_jbuf__raw(b, "}", 1);
	tb_status st = b->oom ? tb_error__oom()
		: append_payload(m, txn, type, aggregate_id, aggregate_version, b->p, b->len);
	tb_jbuf__free(b);
	return st;
}

/* ---- reading ------------------------------------------------------------------- */

static tb_status event_copy(tb_event *dst, const tb_event_row *row)
{
	dst->row = *row;
	dst->payload = malloc(row->payload_len + 1);
	if (!dst->payload)
		return tb_error__oom();
	memcpy(dst->payload, row->payload, row->payload_len);
	dst->payload[row->payload_len] = '\0';
	dst->row.payload = dst->payload;
	return TB_OK;
}

static void page_clear(tb_vec *v)
{
	for (size_t i = 0; i < v->count; i++)
		free(((tb_event *)v->items)[i].payload);
	tb_vec__free_items(v);
}

static tb_status collect_event(const tb_event_row *row, void *payload)
{
	tb_vec *v = payload;
	tb_event *e = tb_vec__push(v);
	if (!e)
		return tb_error__oom();
	tb_status st = event_copy(e, row);
	if (st != TB_OK)
		v->count--;
	return st;
}

typedef struct read_ctx {
	const char *cursor; /* read from this subscriber's cursor on, in the same transaction; or NULL */
	int64_t after;
	unsigned int limit;
	tb_vec v;
} read_ctx;

static tb_status read_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	read_ctx *c = vctx;
	page_clear(&c->v); /* the runner may retry */
	c->v.item_size = sizeof(tb_event);
	tb_status st = c->cursor ? m->storage->cursor_get(txn, c->cursor, &c->after) : TB_OK;
	return st == TB_OK ? m->storage->event_read(txn, c->after, c->limit, collect_event, &c->v) : st;
}

/* Events after *after (or, with `cursor`, after that subscriber's cursor, stored into *after). */
static tb_status read_events(tb_market *m, const char *cursor, int64_t *after, unsigned int limit, tb_vec *out)
{
	read_ctx c;
	memset(&c, 0, sizeof(c));
	c.cursor = cursor;
	c.after = *after;
	c.limit = limit;
	c.v.item_size = sizeof(tb_event);
	tb_status st = tb_market__run(m, 0, read_txn, &c);
	if (st != TB_OK) {
		page_clear(&c.v);
		return st;
	}
	*after = c.after;
	*out = c.v;
	return TB_OK;
}

tb_status tb_event_read(tb_event_page **out, tb_market *market, int64_t after_seq, unsigned int limit)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK)
		return st;
	if (after_seq < 0)
		return tb_error_set(TB_EINVAL, "after_seq", "after_seq must not be negative");
	if (limit > TB_EVENT_READ_MAX)
		return tb_error_set(TB_EINVAL, "limit", "limit must be at most %d", TB_EVENT_READ_MAX);
	tb_event_page *page = calloc(1, sizeof(*page));
	if (!page)
		return tb_error__oom();
	st = read_events(market, NULL, &after_seq, limit ? limit : 100, &page->v);
	if (st != TB_OK) {
		free(page);
		return st;
	}
	*out = page;
	return TB_OK;
}

static tb_status last_seq_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	return m->storage->event_last_seq(txn, vctx);
}

tb_status tb_event_last_seq(int64_t *out, tb_market *market)
{
	tb_status st = tb_check__out(out);
	if (st == TB_OK)
		st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	return tb_market__run(market, 0, last_seq_txn, out);
}

size_t tb_event_page_count(const tb_event_page *page) { return page ? page->v.count : 0; }

const tb_event *tb_event_page_at(const tb_event_page *page, size_t i) { return page ? tb_vec__at(&page->v, i) : NULL; }

void tb_event_page_free(tb_event_page *page)
{
	if (!page)
		return;
	page_clear(&page->v);
	free(page);
}

int64_t tb_event_seq(const tb_event *e) { return e ? e->row.seq : 0; }
tb_event_type tb_event_type_get(const tb_event *e) { return e ? (tb_event_type)e->row.type : (tb_event_type)0; }
const char *tb_event_name(const tb_event *e) { return e ? tb_event_type_name((tb_event_type)e->row.type) : NULL; }
const char *tb_event_aggregate_id(const tb_event *e) { return e ? e->row.aggregate_id : NULL; }
int64_t tb_event_aggregate_version(const tb_event *e) { return e ? e->row.aggregate_version : 0; }
int64_t tb_event_occurred_at_ms(const tb_event *e) { return e ? e->row.occurred_at_ms : 0; }
const char *tb_event_payload(const tb_event *e) { return e ? e->payload : NULL; }

tb_status tb_event_to_json(char **out, const tb_event *e)
{
	if (!e) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "event", "event must not be NULL");
	}
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	char at[32];
	tb_json__iso(at, e->row.occurred_at_ms);
	size_t len = strlen(e->payload);
	if (tb_json__canonical(e->payload, len)) {
		/*
		 * What json_dumps would make of the parsed payload is the payload
		 * itself: embed it as it is, without building a json_t (the event
		 * log of a busy server writes a line per event).
		 */
		tb_jbuf b;
		tb_jbuf__init(&b);
		tb_jbuf__raw(&b, "{\"seq\":", 7);
		tb_jbuf__int(&b, e->row.seq);
		tb_jbuf__key(&b, "type");
		tb_jbuf__str(&b, tb_event_name(e));
		tb_jbuf__key(&b, "subject");
		tb_jbuf__str(&b, tb_event_type_subject((tb_event_type)e->row.type));
		tb_jbuf__key(&b, "aggregate_id");
		tb_jbuf__str(&b, e->row.aggregate_id);
		tb_jbuf__key(&b, "aggregate_version");
		tb_jbuf__int(&b, e->row.aggregate_version);
		tb_jbuf__key(&b, "occurred_at");
		tb_jbuf__str(&b, at);
		tb_jbuf__key(&b, "data");
		tb_jbuf__raw(&b, e->payload, len);
		tb_jbuf__raw(&b, "}", 1);
		return tb_jbuf__take(out, &b);
	}
	json_t *data = json_loads(e->payload, 0, NULL);
	return tb_json__dump(out, json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:o}",
		"seq", (json_int_t)e->row.seq, "type", tb_event_name(e),
		"subject", tb_event_type_subject((tb_event_type)e->row.type),
		"aggregate_id", e->row.aggregate_id, "aggregate_version", (json_int_t)e->row.aggregate_version,
		"occurred_at", at, "data", data ? data : json_null()));
}

tb_status tb_event_dup(tb_event **out, const tb_event *e)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if (!e)
		return tb_error_set(TB_EINVAL, "event", "event must not be NULL");
	tb_event *copy = malloc(sizeof(*copy));
	if (!copy)
		return tb_error__oom();
	if ((st = event_copy(copy, &e->row)) != TB_OK) {
		free(copy);
		return st;
	}
	*out = copy;
	return TB_OK;
}

void tb_event_free(tb_event *e)
{
	if (!e)
		return;
	free(e->payload);
	free(e);
}

/* ---- subscribers ------------------------------------------------------------- */

#define SUBSCRIBER_NAME_MAX 128
#define DISPATCH_BATCH 256

struct tb_subscriber {
	char name[SUBSCRIBER_NAME_MAX + 1];
	tb_event_cb cb;
	void *payload;
	bool busy;     /* a thread is delivering to it: deliveries never overlap */
	pthread_t deliverer; /* that thread, while busy */
	_Atomic bool removed; /* unsubscribed: stop delivering */
	bool freed_by_deliverer; /* unsubscribed from its own callback */
	int64_t cursor_hint; /* last acknowledged seq known to this process, -1 unknown */
	tb_subscriber *next;
};

typedef struct cursor_ctx {
	const char *name;
	int64_t seq;
} cursor_ctx;

static tb_status cursor_get_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	cursor_ctx *c = vctx;
	return m->storage->cursor_get(txn, c->name, &c->seq);
}

static tb_status cursor_set_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	cursor_ctx *c = vctx;
	return m->storage->cursor_set(txn, c->name, c->seq);
}

static tb_status check_name(const char *name)
{
	if (!name || !*name)
		return tb_error_set(TB_EINVAL, "name", "subscriber name is required");
	size_t len = strnlen(name, SUBSCRIBER_NAME_MAX + 1);
	if (len > SUBSCRIBER_NAME_MAX)
		return tb_error_set(TB_EINVAL, "name", "subscriber name is longer than %d bytes", SUBSCRIBER_NAME_MAX);
	if (!tb_utf8__valid(name, len, NULL))
		return tb_error_set(TB_EINVAL, "name", "subscriber name is not valid UTF-8");
	return TB_OK;
}

tb_status tb_event_subscribe(tb_market *market, const char *name, tb_event_cb cb, void *payload)
{
	tb_status st = tb_check__market(market);
	if (st == TB_OK)
		st = check_name(name);
	if (st != TB_OK)
		return st;
	if (!cb)
		return tb_error_set(TB_EINVAL, "cb", "callback must not be NULL");
	tb_subscriber *s = calloc(1, sizeof(*s));
	if (!s)
		return tb_error__oom();
	tb_str__copy(s->name, sizeof(s->name), name);
	s->cb = cb;
	s->payload = payload;
	s->cursor_hint = -1;
	pthread_mutex_lock(&market->subs_lock);
	for (tb_subscriber *it = market->subs; it; it = it->next) {
		if (!it->removed && strcmp(it->name, name) == 0) {
			pthread_mutex_unlock(&market->subs_lock);
			free(s);
			return tb_error_set(TB_EEXISTS, "name", "a subscriber named '%s' already exists", name);
		}
	}
	s->next = market->subs;
	market->subs = s;
	pthread_mutex_unlock(&market->subs_lock);
	return TB_OK;
}

static void unlink_subscriber(tb_market *m, tb_subscriber *s)
{
	for (tb_subscriber **p = &m->subs; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			return;
		}
	}
}

tb_status tb_event_unsubscribe(tb_market *market, const char *name)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (!name)
		return tb_error_set(TB_EINVAL, "name", "subscriber name is required");
	pthread_mutex_lock(&market->subs_lock);
	tb_subscriber *s = market->subs;
	while (s && (s->removed || strcmp(s->name, name) != 0))
		s = s->next;
	if (!s) {
		pthread_mutex_unlock(&market->subs_lock);
		return tb_error_set(TB_ENOTFOUND, "name", "no subscriber named '%s'", name);
	}
	s->removed = true;
	if (s->busy && pthread_equal(s->deliverer, pthread_self())) {
		/* Called from its own callback: the delivering frame frees it. */
		s->freed_by_deliverer = true;
		pthread_mutex_unlock(&market->subs_lock);
		return TB_OK;
	}
	while (s->busy)
		pthread_cond_wait(&market->subs_cond, &market->subs_lock);
	unlink_subscriber(market, s);
	pthread_mutex_unlock(&market->subs_lock);
	free(s);
	return TB_OK;
}

tb_status tb_event_cursor(int64_t *out, tb_market *market, const char *name)
{
	tb_status st = tb_check__out(out);
	if (st == TB_OK)
		st = tb_check__market(market);
	if (st == TB_OK)
		st = check_name(name);
	if (st != TB_OK)
		return st;
	cursor_ctx c = { name, 0 };
	st = tb_market__run(market, 0, cursor_get_txn, &c);
	if (st == TB_OK)
		*out = c.seq;
	return st;
}

/*
 * Deliver to one subscriber, batch by batch, storing the cursor after each
 * batch.  A crash between a callback and the cursor write redelivers those
 * events: at least once, never skipped.
 */
static tb_status deliver(tb_market *m, tb_subscriber *s, size_t *delivered, bool *failed)
{
	cursor_ctx c = { s->name, 0 };
	tb_status st;
	/* The first batch is read in the transaction that reads the cursor: one read, not two. */
	for (bool first = true;; first = false) {
		tb_vec v;
		if ((st = read_events(m, first ? s->name : NULL, &c.seq, DISPATCH_BATCH, &v)) != TB_OK)
			return st;
		int64_t acked = c.seq;
		size_t n = 0;
		for (size_t i = 0; i < v.count; i++) {
			const tb_event *e = &((tb_event *)v.items)[i];
			if (s->removed)
				break; /* unsubscribed from its own callback */
			if (s->cb(e, s->payload) != TB_OK) {
				*failed = true;
				break;
			}
			acked = e->row.seq;
			n++;
		}
		size_t batch = v.count;
		page_clear(&v);
		if (acked != c.seq) {
			c.seq = acked;
			if ((st = tb_market__run(m, 1, cursor_set_txn, &c)) != TB_OK)
				return st;
		}
		s->cursor_hint = c.seq;
		*delivered += n;
		if (*failed || s->removed || batch < DISPATCH_BATCH)
			return TB_OK;
	}
}

tb_status tb_events__dispatch_all(tb_market *m, size_t *delivered_out, size_t *failures_out)
{
	size_t delivered = 0, failures = 0;
	tb_status result = TB_OK;
	pthread_mutex_lock(&m->subs_lock);
	tb_subscriber *s = m->subs;
	while (s) {
		if (s->busy || s->removed) {
			s = s->next;
			continue;
		}
		s->busy = true;
		s->deliverer = pthread_self();
		pthread_mutex_unlock(&m->subs_lock);
		bool failed = false;
		tb_status st = deliver(m, s, &delivered, &failed);
		if (failed)
			failures++;
		if (st != TB_OK && result == TB_OK)
			result = st;
		pthread_mutex_lock(&m->subs_lock);
		s->busy = false;
		tb_subscriber *next = s->next;
		if (s->freed_by_deliverer) {
			unlink_subscriber(m, s);
			free(s);
		}
		pthread_cond_broadcast(&m->subs_cond);
		s = next;
	}
	pthread_mutex_unlock(&m->subs_lock);
	if (delivered_out)
		*delivered_out = delivered;
	if (failures_out)
		*failures_out = failures;
	return result;
}

tb_status tb_event_dispatch(tb_market *market, size_t *delivered_out)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	return tb_events__dispatch_all(market, delivered_out, NULL);
}

bool tb_events__any_behind(tb_market *m)
{
	pthread_mutex_lock(&m->subs_lock);
	bool any = m->subs != NULL;
	int64_t min_hint = INT64_MAX;
	for (tb_subscriber *s = m->subs; s; s = s->next)
		if (s->cursor_hint < min_hint)
			min_hint = s->cursor_hint;
	pthread_mutex_unlock(&m->subs_lock);
	if (!any)
		return false;
	int64_t last = 0;
	if (tb_market__run(m, 0, last_seq_txn, &last) != TB_OK)
		return true;
	return min_hint < last;
}

void tb_events__free_subscribers(tb_market *m)
{
	pthread_mutex_lock(&m->subs_lock);
	tb_subscriber *s = m->subs;
	m->subs = NULL;
	pthread_mutex_unlock(&m->subs_lock);
	while (s) {
		tb_subscriber *next = s->next;
		free(s);
		s = next;
	}
}
