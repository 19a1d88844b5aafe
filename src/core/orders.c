/*
 * Orders: creating one locks its ticket; expiry, lazily and on tick;
 * cancellation.  The rules of the order state machine live here.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Expiry works through due orders this many per transaction. */
#define EXPIRE_BATCH 1000

bool tb_order__live_status(int status)
{
	return status == TB_ORDER_CREATED || status == TB_ORDER_AWAITING_PAYMENT;
}

int64_t tb_order__deadline(const tb_order_row *o, int64_t grace_ms)
{
	return o->status == TB_ORDER_AWAITING_PAYMENT ? o->expires_at_ms + grace_ms : o->expires_at_ms;
}

/* An order is live until its deadline: at expires_at - 1 ms it is, at expires_at it is not. */
static int effective_status(const tb_order_row *o, int64_t now_ms, int64_t grace_ms)
{
	if (tb_order__live_status(o->status) && now_ms >= tb_order__deadline(o, grace_ms))
		return TB_ORDER_EXPIRED;
	return o->status;
}

void tb_order__view(tb_order *out, const tb_order_row *row, int64_t now_ms, int64_t grace_ms)
{
	out->row = *row;
	out->effective_status = effective_status(row, now_ms, grace_ms);
}

tb_status tb_order__new_from_row(tb_order **out, const tb_order_row *row, const tb_market *m)
{
	tb_order *o = malloc(sizeof(*o));
	if (!o)
		return tb_error__oom();
	tb_order__view(o, row, tb_market__now(m), m->payment_grace_ms);
	*out = o;
	return TB_OK;
}

/* The order's JSON, plus "reason" if given, opened in b for more members. */
static void order_payload(tb_jbuf *b, const tb_order_row *o, const char *reason)
{
	tb_jbuf__init(b);
	tb_json__order_text(b, o, o->status);
	if (reason) {
		tb_jbuf__key(b, "reason");
		tb_jbuf__str(b, reason);
	}
}

static tb_status order_save(tb_market *m, tb_storage_txn *txn, tb_order_row *o, int status, int64_t now_ms,
	tb_event_type event, const char *reason)
{
	o->status = status;
	o->version++;
	o->updated_at_ms = now_ms;
	tb_status st = m->storage->order_update(txn, o);
	if (st != TB_OK)
		return st;
	tb_jbuf p;
	order_payload(&p, o, reason);
	return tb_event__append_text(m, txn, event, o->id, o->version, &p);
}

tb_status tb_order__expire(tb_market *m, tb_storage_txn *txn, tb_order_row *o, int64_t now_ms)
{
	tb_status st = order_save(m, txn, o, TB_ORDER_EXPIRED, now_ms, TB_EVENT_ORDER_EXPIRED, NULL);
	if (st != TB_OK)
		return st;
	return tb_ticket__release(m, txn, o->ticket_id, o->id, now_ms, "unlocked");
}

/* ---- create ------------------------------------------------------------------ */

typedef struct create_ctx {
	const unsigned char *session_hash; /* the buyer is this session's user (create_by_session_txn) */
	char session_user[TB_ID_SIZE];
	const char *buyer_id;
	const char *ticket_id;
	int64_t now;
	char order_id[TB_ID_SIZE]; /* made before the transaction: no random-number call inside it */
	tb_order_row row;
	tb_ticket_row ticket; /* as the order left it */
} create_ctx;

static tb_status create_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	create_ctx *c = vctx;
	tb_user_row buyer;
	tb_ticket_row t;
	tb_status st = m->storage->user_get(txn, c->buyer_id, &buyer);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "user not found");
	if (st != TB_OK)
		return st;
	st = m->storage->ticket_get(txn, c->ticket_id, &t);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "ticket not found");
	if (st != TB_OK)
		return st;
	if (t.order_id[0] && t.locked_until_ms > c->now)
		return tb_error_set(TB_ELOCKED, NULL, "ticket is already reserved");
	if (strcmp(t.owner_id, c->buyer_id) == 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "you cannot order your own ticket");
	if (t.status != TB_TICKET_LISTED)
		return tb_error_set(TB_ESTATE, NULL, "ticket is not for sale");
	if (t.order_id[0]) {
		/* The lock lapsed but no tick has run yet: expire that order first. */
		tb_order_row old;
		st = m->storage->order_get(txn, t.order_id, &old);
		if (st == TB_OK && tb_order__live_status(old.status))
			st = tb_order__expire(m, txn, &old, c->now);
		if (st != TB_OK && st != TB_ENOTFOUND)
			return st;
		if ((st = m->storage->ticket_get(txn, c->ticket_id, &t)) != TB_OK)
			return st;
	}

	tb_order_row *o = &c->row;
	memset(o, 0, sizeof(*o));
	memcpy(o->id, c->order_id, sizeof(o->id));
	tb_str__copy(o->ticket_id, sizeof(o->ticket_id), t.id);
	tb_str__copy(o->buyer_id, sizeof(o->buyer_id), c->buyer_id);
	tb_str__copy(o->seller_id, sizeof(o->seller_id), t.owner_id);
	o->status = TB_ORDER_CREATED;
	o->expires_at_ms = c->now + m->lock_ms;
	o->price_minor = t.price_minor;
	tb_str__copy(o->currency, sizeof(o->currency), t.currency);
	o->created_at_ms = o->updated_at_ms = c->now;
	st = m->storage->order_insert(txn, o);
	if (st == TB_ELOCKED)
		return tb_error_set(TB_ELOCKED, NULL, "ticket is already reserved");
	if (st != TB_OK)
		return st;
	tb_jbuf payload;
	order_payload(&payload, o, NULL);
	tb_jbuf__key(&payload, "ticket");
	tb_jbuf__raw(&payload, "{", 1);
	tb_jbuf__key(&payload, "id");
	tb_jbuf__str(&payload, t.id);
	tb_jbuf__key(&payload, "price_minor");
	tb_jbuf__int(&payload, t.price_minor);
	tb_jbuf__key(&payload, "currency");
	tb_jbuf__str(&payload, t.currency);
	tb_jbuf__key(&payload, "version");
	tb_jbuf__int(&payload, t.version + 1);
	tb_jbuf__raw(&payload, "}", 1);
	if ((st = tb_event__append_text(m, txn, TB_EVENT_ORDER_CREATED, o->id, o->version, &payload)) != TB_OK)
		return st;

	tb_str__copy(t.order_id, sizeof(t.order_id), o->id);
	t.locked_until_ms = o->expires_at_ms;
	t.version++;
	t.updated_at_ms = c->now;
	if ((st = m->storage->ticket_update(txn, &t)) != TB_OK)
		return st;
	c->ticket = t;
	tb_jbuf tp;
	tb_jbuf__init(&tp);
	tb_json__ticket_text(&tp, &t, c->now);
	tb_jbuf__key(&tp, "reason");
	tb_jbuf__str(&tp, "locked");
	return tb_event__append_text(m, txn, TB_EVENT_TICKET_UPDATED, t.id, t.version, &tp);
}

/* create_txn for the user of a session, resolved in the same transaction. */
static tb_status create_by_session_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	create_ctx *c = vctx;
	tb_status st = tb_session__user_id(m, txn, c->session_hash, c->now, c->session_user);
	if (st != TB_OK)
		return st;
	c->buyer_id = c->session_user;
	return create_txn(m, txn, c);
}

/*
 * tb_order_create, and the ticket too when ticket_out is not NULL; with
 * session_hash, the buyer is that session's user (buyer_id is ignored).
 */
static tb_status order_create(tb_order **out, tb_ticket **ticket_out, tb_market *market, const char *buyer_id,
	const unsigned char *session_hash, const char *ticket_id)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK ||
	    (!session_hash && (st = tb_check__id(buyer_id, "buyer_id", "user")) != TB_OK) ||
	    (st = tb_check__id(ticket_id, "ticket_id", "ticket")) != TB_OK)
		return st;
	create_ctx c;
	memset(&c, 0, sizeof(c));
	c.session_hash = session_hash;
	c.buyer_id = buyer_id;
	c.ticket_id = ticket_id;
	c.now = tb_market__now(market);
	tb_id__new(c.order_id);
	st = tb_market__run(market, 1, session_hash ? create_by_session_txn : create_txn, &c);
	if (st == TB_OK)
		st = tb_order__new_from_row(out, &c.row, market);
	if (st == TB_OK && ticket_out && (st = tb_ticket__new_from_row(ticket_out, &c.ticket, c.now)) != TB_OK) {
		/* The order is committed all the same; only its copy here ran out of memory. */
		tb_order_free(*out);
		*out = NULL;
	}
	return st;
}

tb_status tb_order_create(tb_order **out, tb_market *market, const char *buyer_id, const char *ticket_id)
{
	return order_create(out, NULL, market, buyer_id, NULL, ticket_id);
}

tb_status tb_order_create_with_ticket(tb_order **order_out, tb_ticket **ticket_out, tb_market *market,
	const char *buyer_id, const char *ticket_id)
{
	tb_status st = tb_check__out(ticket_out);
	if (st != TB_OK) {
		if (order_out)
			*order_out = NULL;
		return st;
	}
	*ticket_out = NULL;
	return order_create(order_out, ticket_out, market, buyer_id, NULL, ticket_id);
}

tb_status tb_order_create_by_session(tb_order **order_out, tb_ticket **ticket_out, tb_market *market,
	const char *session_token, const char *ticket_id)
{
	if (ticket_out)
		*ticket_out = NULL;
	if (!session_token || !tb_token__valid(session_token)) {
		tb_status st = tb_check__out(order_out);
		if (st != TB_OK)
			return st;
		*order_out = NULL;
		return tb_error_set(TB_EUNAUTH, NULL, "session is unknown, revoked or expired");
	}
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	tb_token__hash(session_token, hash);
	return order_create(order_out, ticket_out, market, NULL, hash, ticket_id);
}

/* tb_order_create_by_session_async: the context lives until its completion. */
typedef struct async_ctx {
	create_ctx c;
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	char ticket_id[TB_ID_SIZE];
	tb_market *market;
	tb_order_done_cb done;
	void *arg;
} async_ctx;

static void create_async_done(tb_status st, void *vctx)
{
	async_ctx *a = vctx;
	tb_order *order = NULL;
	tb_ticket *ticket = NULL;

	if (st == TB_OK && (st = tb_order__new_from_row(&order, &a->c.row, a->market)) == TB_OK &&
	    (st = tb_ticket__new_from_row(&ticket, &a->c.ticket, a->c.now)) != TB_OK) {
		/* The order is committed all the same; only its copies here ran out of memory. */
		tb_order_free(order);
		order = NULL;
	}
	a->done(st, order, ticket, a->arg);
	free(a);
}

tb_status tb_order_create_by_session_async(tb_market *market, const char *session_token, const char *ticket_id,
	tb_order_done_cb done, void *arg)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (!done)
		return tb_error_set(TB_EINVAL, "done", "done must not be NULL");
	if ((st = tb_check__id(ticket_id, "ticket_id", "ticket")) != TB_OK)
		return st;
	if (!session_token || !tb_token__valid(session_token))
		return tb_error_set(TB_EUNAUTH, NULL, "session is unknown, revoked or expired");
	async_ctx *a = calloc(1, sizeof(*a));
	if (!a)
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	tb_token__hash(session_token, a->hash);
	tb_str__copy(a->ticket_id, sizeof(a->ticket_id), ticket_id);
	a->market = market;
	a->done = done;
	a->arg = arg;
	a->c.session_hash = a->hash;
	a->c.ticket_id = a->ticket_id;
	a->c.now = tb_market__now(market);
	tb_id__new(a->c.order_id);
	if ((st = tb_group__submit(market, create_by_session_txn, &a->c, create_async_done, a)) != TB_OK)
		free(a);
	return st;
}

/* ---- get / list ------------------------------------------------------------------ */

typedef struct get_ctx {
	const char *user_id;
	const char *order_id;
	tb_order_row row;
} get_ctx;

tb_status tb_order__load(tb_market *m, tb_storage_txn *txn, const char *id, tb_order_row *out)
{
	tb_status st = m->storage->order_get(txn, id, out);
	return st == TB_ENOTFOUND ? tb_error_set(TB_ENOTFOUND, NULL, "order not found") : st;
}

static tb_status get_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	get_ctx *c = vctx;
	tb_status st = tb_order__load(m, txn, c->order_id, &c->row);
	if (st != TB_OK)
		return st;
	if (strcmp(c->row.buyer_id, c->user_id) != 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "this order belongs to someone else");
	return TB_OK;
}

tb_status tb_order_get(tb_order **out, tb_market *market, const char *user_id, const char *order_id)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK ||
	    (st = tb_check__id(order_id, "order_id", "order")) != TB_OK)
		return st;
	get_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = user_id;
	c.order_id = order_id;
	st = tb_market__run(market, 0, get_txn, &c);
	if (st == TB_OK)
		st = tb_order__new_from_row(out, &c.row, market);
	return st;
}

typedef struct list_ctx {
	const char *buyer_id;
	const char *after;
	unsigned int limit;
	int64_t now, grace;
	tb_vec v;
} list_ctx;

static tb_status collect_order(const tb_order_row *row, void *payload)
{
	list_ctx *c = payload;
	tb_order *o = tb_vec__push(&c->v);
	if (!o)
		return tb_error__oom();
	tb_order__view(o, row, c->now, c->grace);
	return TB_OK;
}

static tb_status list_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	list_ctx *c = vctx;
	c->v.count = 0;
	return m->storage->order_list_by_buyer(txn, c->buyer_id, c->after, c->limit + 1, collect_order, c);
}

tb_status tb_order_list(tb_order_page **out, tb_market *market, const char *buyer_id, const char *after,
	unsigned int limit)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(buyer_id, "buyer_id", "user")) != TB_OK)
		return st;
	if (limit > TB_PAGE_MAX)
		return tb_error_set(TB_EINVAL, "limit", "limit must be at most %d", TB_PAGE_MAX);
	if (after && !tb_id__valid(after))
		return tb_error_set(TB_EINVAL, "after", "malformed cursor");
	list_ctx c;
	memset(&c, 0, sizeof(c));
	c.buyer_id = buyer_id;
	c.after = after;
	c.limit = limit ? limit : 50;
	c.now = tb_market__now(market);
	c.grace = market->payment_grace_ms;
	c.v.item_size = sizeof(tb_order);
	if ((st = tb_market__run(market, 0, list_txn, &c)) != TB_OK) {
		tb_vec__free_items(&c.v);
		return st;
	}
	*out = tb_vec__into_page(&c.v, c.limit);
	return *out ? TB_OK : tb_error__oom();
}

size_t tb_order_page_count(const tb_order_page *page) { return page ? page->v.count : 0; }

const tb_order *tb_order_page_at(const tb_order_page *page, size_t i) { return page ? tb_vec__at(&page->v, i) : NULL; }
const char *tb_order_page_next_cursor(const tb_order_page *page) { return page ? tb_vec__cursor(&page->v) : NULL; }

void tb_order_page_free(tb_order_page *page)
{
	if (!page)
		return;
	tb_vec__free_items(&page->v);
	free(page);
}

/* ---- cancel ---------------------------------------------------------------------- */

typedef struct cancel_ctx {
	get_ctx get;
	int64_t now;
} cancel_ctx;

static tb_status cancel_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	cancel_ctx *c = vctx;
	tb_status st = get_txn(m, txn, &c->get);
	if (st != TB_OK)
		return st;
	tb_order_row *o = &c->get.row;
	switch (effective_status(o, c->now, m->payment_grace_ms)) {
	case TB_ORDER_CANCELLED:
		return TB_OK; /* already cancelled: nothing to do */
	case TB_ORDER_EXPIRED:
		return tb_error_set(TB_EEXPIRED, NULL, "order has expired");
	case TB_ORDER_COMPLETE:
		return tb_error_set(TB_ESTATE, NULL, "a complete order cannot be cancelled");
	case TB_ORDER_REFUNDED:
		return tb_error_set(TB_ESTATE, NULL, "a refunded order cannot be cancelled");
	default:
		break;
	}
	/*
	 * Cancelling while a payment is in flight is allowed: if that payment
	 * later succeeds, the order can no longer complete and it is refunded.
	 */
	st = order_save(m, txn, o, TB_ORDER_CANCELLED, c->now, TB_EVENT_ORDER_CANCELLED, "buyer");
	if (st != TB_OK)
		return st;
	return tb_ticket__release(m, txn, o->ticket_id, o->id, c->now, "unlocked");
}

tb_status tb_order_cancel(tb_order **out, tb_market *market, const char *user_id, const char *order_id)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK ||
	    (st = tb_check__id(order_id, "order_id", "order")) != TB_OK)
		return st;
	cancel_ctx c;
	memset(&c, 0, sizeof(c));
	c.get.user_id = user_id;
	c.get.order_id = order_id;
	c.now = tb_market__now(market);
	st = tb_market__run(market, 1, cancel_txn, &c);
	if (st == TB_OK)
		st = tb_order__new_from_row(out, &c.get.row, market);
	return st;
}

/* ---- expiry on tick ----------------------------------------------------------------- */

typedef struct expire_ctx {
	int status;
	int64_t cutoff, now;
	tb_vec due;
	size_t expired;
} expire_ctx;

static tb_status collect_due(const tb_order_row *row, void *payload)
{
	tb_vec *v = payload;
	tb_order_row *slot = tb_vec__push(v);
	if (!slot)
		return tb_error__oom();
	*slot = *row;
	return TB_OK;
}

static tb_status expire_batch_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	expire_ctx *c = vctx;
	c->due.count = 0;
	c->expired = 0;
	tb_status st = m->storage->order_list_due(txn, c->status, c->cutoff, EXPIRE_BATCH, collect_due, &c->due);
	if (st != TB_OK)
		return st;
	for (size_t i = 0; i < c->due.count; i++) {
		tb_order_row *o = &((tb_order_row *)c->due.items)[i];
		if ((st = tb_order__expire(m, txn, o, c->now)) != TB_OK)
			return st;
		c->expired++;
	}
	return TB_OK;
}

tb_status tb_orders__expire_due(tb_market *m, int64_t now_ms, size_t *expired_out)
{
	static const int live[] = { TB_ORDER_CREATED, TB_ORDER_AWAITING_PAYMENT };
	expire_ctx c;
	memset(&c, 0, sizeof(c));
	c.due.item_size = sizeof(tb_order_row);
	c.now = now_ms;
	size_t total = 0;
	tb_status st = TB_OK;
	for (size_t k = 0; k < 2 && st == TB_OK; k++) {
		c.status = live[k];
		/* Due means deadline <= now; awaiting_payment gets the grace period. */
		c.cutoff = live[k] == TB_ORDER_AWAITING_PAYMENT ? now_ms - m->payment_grace_ms : now_ms;
		do {
			st = tb_market__run(m, 1, expire_batch_txn, &c);
			total += st == TB_OK ? c.expired : 0;
		} while (st == TB_OK && c.expired == EXPIRE_BATCH);
	}
	tb_vec__free_items(&c.due);
	*expired_out = total;
	return st;
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *tb_order_id(const tb_order *o) { return o ? o->row.id : NULL; }
const char *tb_order_ticket_id(const tb_order *o) { return o ? o->row.ticket_id : NULL; }
const char *tb_order_buyer_id(const tb_order *o) { return o ? o->row.buyer_id : NULL; }
const char *tb_order_seller_id(const tb_order *o) { return o ? o->row.seller_id : NULL; }
tb_order_status tb_order_status_get(const tb_order *o) { return o ? (tb_order_status)o->effective_status : (tb_order_status)0; }
int64_t tb_order_expires_at_ms(const tb_order *o) { return o ? o->row.expires_at_ms : 0; }
int64_t tb_order_price_minor(const tb_order *o) { return o ? o->row.price_minor : 0; }
const char *tb_order_currency(const tb_order *o) { return o ? o->row.currency : NULL; }
int64_t tb_order_version(const tb_order *o) { return o ? o->row.version : 0; }
int64_t tb_order_created_at_ms(const tb_order *o) { return o ? o->row.created_at_ms : 0; }

const char *tb_order_status_name(tb_order_status status)
{
	switch (status) {
	case TB_ORDER_CREATED: return "created";
	case TB_ORDER_AWAITING_PAYMENT: return "awaiting_payment";
	case TB_ORDER_COMPLETE: return "complete";
	case TB_ORDER_CANCELLED: return "cancelled";
	case TB_ORDER_EXPIRED: return "expired";
	case TB_ORDER_REFUNDED: return "refunded";
	}
	return "unknown";
}

tb_status tb_order_to_json(char **out, const tb_order *o)
{
	if (!o) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "order", "order must not be NULL");
	}
	return tb_json__dump(out, tb_json__order(&o->row, o->effective_status));
}

tb_status tb_order_dup(tb_order **out, const tb_order *o)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if (!o)
		return tb_error_set(TB_EINVAL, "order", "order must not be NULL");
	tb_order *copy = malloc(sizeof(*copy));
	if (!copy)
		return tb_error__oom();
	*copy = *o;
	*out = copy;
	return TB_OK;
}

void tb_order_free(tb_order *o)
{
	free(o);
}
