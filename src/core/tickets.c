/*
 * Tickets: the rules for listing and editing.  "Can this ticket be edited"
 * lives here and nowhere else.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- rules ------------------------------------------------------------------ */

static tb_status title_normalise(char out[TB_TITLE_SIZE], const char *title)
{
	if (!title)
		return tb_error_set(TB_EINVAL, "title", "title is required");
	size_t len = strnlen(title, 4 * TB_TITLE_MAX_CHARS + 64);
	if (len > 4 * TB_TITLE_MAX_CHARS + 32)
		return tb_error_set(TB_EINVAL, "title", "title is longer than %d characters", TB_TITLE_MAX_CHARS);
	char buf[4 * TB_TITLE_MAX_CHARS + 64];
	memcpy(buf, title, len);
	buf[len] = '\0';
	char *t = tb_str__trim(buf);
	len = strlen(t);
	size_t chars = 0;
	if (!tb_utf8__valid(t, len, &chars))
		return tb_error_set(TB_EINVAL, "title", "title is not valid UTF-8");
	if (chars == 0)
		return tb_error_set(TB_EINVAL, "title", "title is required");
	if (chars > TB_TITLE_MAX_CHARS)
		return tb_error_set(TB_EINVAL, "title", "title is longer than %d characters", TB_TITLE_MAX_CHARS);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c < 0x20 || c == 0x7f)
			return tb_error_set(TB_EINVAL, "title", "title must not contain control characters");
	}
	tb_str__copy(out, TB_TITLE_SIZE, t);
	return TB_OK;
}

static tb_status price_check(int64_t price_minor)
{
	if (price_minor <= 0)
		return tb_error_set(TB_EINVAL, "price", "price must be greater than 0");
	if (price_minor > TB_PRICE_MAX_MINOR)
		return tb_error_set(TB_EINVAL, "price", "price must be at most %lld minor units",
			(long long)TB_PRICE_MAX_MINOR);
	return TB_OK;
}

static tb_status currency_normalise(char out[TB_CURRENCY_SIZE], const char *currency, const tb_market *m)
{
	if (!currency) {
		tb_str__copy(out, TB_CURRENCY_SIZE, m->default_currency);
		return TB_OK;
	}
	if (tb_currency_exponent(currency) < 0)
		return tb_error_set(TB_EINVAL, "currency", "currency must be a three-letter ISO 4217 code");
	for (int i = 0; i < 3; i++)
		out[i] = (char)(currency[i] & ~0x20);
	out[3] = '\0';
	return TB_OK;
}

/* A ticket is locked while a live order holds it and its lock has not lapsed. */
static bool ticket_locked(const tb_ticket_row *t, int64_t now_ms)
{
	return t->order_id[0] != '\0' && t->locked_until_ms > now_ms;
}

/*
 * Who may change a ticket and when: the owner only, never while locked.
 * A lapsed lock is released first (the order expires in this transaction).
 */
static tb_status ticket_editable(tb_market *m, tb_storage_txn *txn, tb_ticket_row *t,
	const char *user_id, int64_t now_ms)
{
	/* The lock is checked before ownership, as the seed's API does. */
	if (ticket_locked(t, now_ms))
		return tb_error_set(TB_ELOCKED, NULL, "cannot edit a reserved ticket");
	if (strcmp(t->owner_id, user_id) != 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "only the ticket's owner may change it");
	if (t->order_id[0]) {
		tb_order_row o;
		tb_status st = m->storage->order_get(txn, t->order_id, &o);
		if (st == TB_OK && tb_order__live_status(o.status))
			st = tb_order__expire(m, txn, &o, now_ms);
		if (st != TB_OK && st != TB_ENOTFOUND)
			return st;
		if ((st = m->storage->ticket_get(txn, t->id, t)) != TB_OK)
			return st;
	}
	return TB_OK;
}

/* ---- records ------------------------------------------------------------------ */

void tb_ticket__view(tb_ticket *out, const tb_ticket_row *row, int64_t now_ms)
{
	out->row = *row;
	out->locked = ticket_locked(row, now_ms);
	if (!out->locked) {
		out->row.order_id[0] = '\0';
		out->row.locked_until_ms = 0;
	}
}

tb_status tb_ticket__new_from_row(tb_ticket **out, const tb_ticket_row *row, int64_t now_ms)
{
	tb_ticket *t = malloc(sizeof(*t));
	if (!t)
		return tb_error__oom();
	tb_ticket__view(t, row, now_ms);
	*out = t;
	return TB_OK;
}

static json_t *ticket_payload(const tb_ticket_row *row, int64_t now_ms, const char *reason)
{
	json_t *p = tb_json__ticket(row, now_ms);
	if (p && reason)
		json_object_set_new(p, "reason", json_string(reason));
	return p;
}

static tb_status ticket_save(tb_market *m, tb_storage_txn *txn, tb_ticket_row *t, int64_t now_ms,
	const char *reason)
{
	t->version++;
	t->updated_at_ms = now_ms;
	tb_status st = m->storage->ticket_update(txn, t);
	if (st == TB_ECONFLICT)
		return tb_error_set(TB_ECONFLICT, NULL, "the ticket changed meanwhile; reload it");
	if (st != TB_OK)
		return st;
	return tb_event__append(m, txn, TB_EVENT_TICKET_UPDATED, t->id, t->version,
		ticket_payload(t, now_ms, reason));
}

tb_status tb_ticket__release(tb_market *m, tb_storage_txn *txn, const char *ticket_id,
	const char *order_id, int64_t now_ms, const char *reason)
{
	tb_ticket_row t;
	tb_status st = m->storage->ticket_get(txn, ticket_id, &t);
	if (st != TB_OK)
		return st;
	if (strcmp(t.order_id, order_id) != 0)
		return TB_OK; /* someone else holds it now, or nobody */
	t.order_id[0] = '\0';
	t.locked_until_ms = 0;
	return ticket_save(m, txn, &t, now_ms, reason);
}

/* ---- create ------------------------------------------------------------------- */

typedef struct create_ctx {
	tb_ticket_row row;
} create_ctx;

static tb_status create_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	create_ctx *c = vctx;
	tb_user_row owner;
	tb_status st = m->storage->user_get(txn, c->row.owner_id, &owner);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "user not found");
	if (st != TB_OK)
		return st;
	if ((st = m->storage->ticket_insert(txn, &c->row)) != TB_OK)
		return st;
	return tb_event__append(m, txn, TB_EVENT_TICKET_CREATED, c->row.id, c->row.version,
		ticket_payload(&c->row, c->row.created_at_ms, NULL));
}

tb_status tb_ticket_create(tb_ticket **out, tb_market *market, const char *owner_id, const char *title,
	int64_t price_minor, const char *currency)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(owner_id, "owner_id", "user")) != TB_OK)
		return st;
	create_ctx c;
	memset(&c, 0, sizeof(c));
	if ((st = title_normalise(c.row.title, title)) != TB_OK || (st = price_check(price_minor)) != TB_OK ||
	    (st = currency_normalise(c.row.currency, currency, market)) != TB_OK)
		return st;
	tb_id__new(c.row.id);
	tb_str__copy(c.row.owner_id, sizeof(c.row.owner_id), owner_id);
	c.row.price_minor = price_minor;
	c.row.status = TB_TICKET_LISTED;
	c.row.created_at_ms = c.row.updated_at_ms = tb_market__now(market);
	st = tb_market__run(market, 1, create_txn, &c);
	if (st == TB_OK)
		st = tb_ticket__new_from_row(out, &c.row, c.row.created_at_ms);
	return st;
}

/* ---- get ------------------------------------------------------------------------ */

typedef struct get_ctx {
	const char *id;
	tb_ticket_row row;
} get_ctx;

static tb_status get_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	get_ctx *c = vctx;
	tb_status st = m->storage->ticket_get(txn, c->id, &c->row);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "ticket not found");
	return st;
}

tb_status tb_ticket_get(tb_ticket **out, tb_market *market, const char *ticket_id)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(ticket_id, "ticket_id", "ticket")) != TB_OK)
		return st;
	get_ctx c;
	memset(&c, 0, sizeof(c));
	c.id = ticket_id;
	st = tb_market__run(market, 0, get_txn, &c);
	if (st == TB_OK)
		st = tb_ticket__new_from_row(out, &c.row, tb_market__now(market));
	return st;
}

/* ---- update / set_listed ------------------------------------------------------- */

typedef struct update_ctx {
	const char *user_id;
	const char *ticket_id;
	const char *title;       /* normalised, or NULL */
	int64_t price_minor;     /* or TB_KEEP */
	int64_t expected_version;
	int listed;              /* -1 keep */
	int64_t now;
	tb_ticket_row row;
} update_ctx;

static tb_status update_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	update_ctx *c = vctx;
	tb_status st = m->storage->ticket_get(txn, c->ticket_id, &c->row);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "ticket not found");
	if (st != TB_OK)
		return st;
	if ((st = ticket_editable(m, txn, &c->row, c->user_id, c->now)) != TB_OK)
		return st;
	if (c->expected_version != TB_ANY_VERSION && c->row.version != c->expected_version)
		return tb_error_set(TB_ECONFLICT, "version", "ticket is at version %lld, not %lld",
			(long long)c->row.version, (long long)c->expected_version);
	bool changed = false;
	if (c->title && strcmp(c->title, c->row.title) != 0) {
		tb_str__copy(c->row.title, sizeof(c->row.title), c->title);
		changed = true;
	}
	if (c->price_minor != TB_KEEP && c->price_minor != c->row.price_minor) {
		c->row.price_minor = c->price_minor;
		changed = true;
	}
	if (c->listed >= 0) {
		int status = c->listed ? TB_TICKET_LISTED : TB_TICKET_UNLISTED;
		if (status != c->row.status) {
			c->row.status = status;
			changed = true;
		}
	}
	if (!changed)
		return TB_OK;
	return ticket_save(m, txn, &c->row, c->now, c->listed >= 0 ? (c->listed ? "listed" : "unlisted") : "edited");
}

static tb_status update_ticket(tb_ticket **out, tb_market *market, update_ctx *c)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(c->user_id, "user_id", "user")) != TB_OK ||
	    (st = tb_check__id(c->ticket_id, "ticket_id", "ticket")) != TB_OK)
		return st;
	c->now = tb_market__now(market);
	st = tb_market__run(market, 1, update_txn, c);
	if (st == TB_OK)
		st = tb_ticket__new_from_row(out, &c->row, c->now);
	return st;
}

tb_status tb_ticket_update(tb_ticket **out, tb_market *market, const char *user_id, const char *ticket_id,
	const char *title, int64_t price_minor, int64_t expected_version)
{
	if (out)
		*out = NULL;
	char norm[TB_TITLE_SIZE];
	tb_status st;
	if (title && (st = title_normalise(norm, title)) != TB_OK)
		return st;
	if (price_minor != TB_KEEP && (st = price_check(price_minor)) != TB_OK)
		return st;
	if (expected_version < TB_ANY_VERSION)
		return tb_error_set(TB_EINVAL, "version", "expected version must not be negative");
	update_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = user_id;
	c.ticket_id = ticket_id;
	c.title = title ? norm : NULL;
	c.price_minor = price_minor;
	c.expected_version = expected_version;
	c.listed = -1;
	return update_ticket(out, market, &c);
}

tb_status tb_ticket_set_listed(tb_ticket **out, tb_market *market, const char *user_id,
	const char *ticket_id, int listed)
{
	update_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = user_id;
	c.ticket_id = ticket_id;
	c.price_minor = TB_KEEP;
	c.expected_version = TB_ANY_VERSION;
	c.listed = listed ? 1 : 0;
	return update_ticket(out, market, &c);
}

/* ---- list ------------------------------------------------------------------------ */

typedef struct list_ctx {
	tb_ticket_filter filter;
	tb_vec v;
} list_ctx;

static tb_status collect_ticket(const tb_ticket_row *row, void *payload)
{
	list_ctx *c = payload;
	tb_ticket *t = tb_vec__push(&c->v);
	if (!t)
		return tb_error__oom();
	tb_ticket__view(t, row, c->filter.now_ms);
	return TB_OK;
}

static tb_status list_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	list_ctx *c = vctx;
	c->v.count = 0;
	return m->storage->ticket_list(txn, &c->filter, collect_ticket, c);
}

tb_status tb_ticket_list(tb_ticket_page **out, tb_market *market, const tb_ticket_query *query)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK)
		return st;
	tb_ticket_query defaults = TB_TICKET_QUERY_INIT;
	const tb_ticket_query *q = query ? query : &defaults;
	if (q->version == 0 || q->version > TB_TICKET_QUERY_VERSION)
		return tb_error_set(TB_EVERSION, "version", "unknown ticket query version %u", q->version);
	if (q->limit > TB_PAGE_MAX)
		return tb_error_set(TB_EINVAL, "limit", "limit must be at most %d", TB_PAGE_MAX);
	if (q->after && !tb_id__valid(q->after))
		return tb_error_set(TB_EINVAL, "after", "malformed cursor");
	if (q->owner_id && !tb_id__valid(q->owner_id))
		return tb_error_set(TB_EINVAL, "owner_id", "malformed owner id");
	if (q->title_contains && strlen(q->title_contains) > 4 * TB_TITLE_MAX_CHARS)
		return tb_error_set(TB_EINVAL, "title_contains", "search text is too long");
	unsigned int limit = q->limit ? q->limit : 50;

	list_ctx c;
	memset(&c, 0, sizeof(c));
	c.filter.available_only = q->available_only;
	c.filter.now_ms = tb_market__now(market);
	c.filter.owner_id = q->owner_id;
	c.filter.title_contains = (q->title_contains && *q->title_contains) ? q->title_contains : NULL;
	c.filter.after_id = q->after;
	c.filter.limit = limit + 1; /* one more tells whether a next page exists */
	c.v.item_size = sizeof(tb_ticket);
	if ((st = tb_market__run(market, 0, list_txn, &c)) != TB_OK) {
		tb_vec__free_items(&c.v);
		return st;
	}
	*out = tb_vec__into_page(&c.v, limit);
	return *out ? TB_OK : tb_error__oom();
}

size_t tb_ticket_page_count(const tb_ticket_page *page) { return page ? page->v.count : 0; }

const tb_ticket *tb_ticket_page_at(const tb_ticket_page *page, size_t i) { return page ? tb_vec__at(&page->v, i) : NULL; }
const char *tb_ticket_page_next_cursor(const tb_ticket_page *page) { return page ? tb_vec__cursor(&page->v) : NULL; }

void tb_ticket_page_free(tb_ticket_page *page)
{
	if (!page)
		return;
	tb_vec__free_items(&page->v);
	free(page);
}

/* ---- accessors ------------------------------------------------------------------ */

const char *tb_ticket_id(const tb_ticket *t) { return t ? t->row.id : NULL; }
const char *tb_ticket_title(const tb_ticket *t) { return t ? t->row.title : NULL; }
int64_t tb_ticket_price_minor(const tb_ticket *t) { return t ? t->row.price_minor : 0; }
const char *tb_ticket_currency(const tb_ticket *t) { return t ? t->row.currency : NULL; }
const char *tb_ticket_owner_id(const tb_ticket *t) { return t ? t->row.owner_id : NULL; }
const char *tb_ticket_order_id(const tb_ticket *t) { return (t && t->locked) ? t->row.order_id : NULL; }
int tb_ticket_locked(const tb_ticket *t) { return t ? t->locked : 0; }
int64_t tb_ticket_locked_until_ms(const tb_ticket *t) { return (t && t->locked) ? t->row.locked_until_ms : 0; }
tb_ticket_status tb_ticket_status_get(const tb_ticket *t) { return t ? (tb_ticket_status)t->row.status : (tb_ticket_status)0; }
int64_t tb_ticket_version(const tb_ticket *t) { return t ? t->row.version : 0; }
int64_t tb_ticket_created_at_ms(const tb_ticket *t) { return t ? t->row.created_at_ms : 0; }

const char *tb_ticket_status_name(tb_ticket_status status)
{
	switch (status) {
	case TB_TICKET_LISTED: return "listed";
	case TB_TICKET_UNLISTED: return "unlisted";
	}
	return "unknown";
}

tb_status tb_ticket_to_json(char **out, const tb_ticket *t)
{
	if (!t) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "ticket", "ticket must not be NULL");
	}
	/* The view already cleared a lapsed lock; render it as of the read. */
	json_t *j = tb_json__ticket(&t->row, t->locked ? t->row.locked_until_ms - 1 : 0);
	return tb_json__dump(out, j);
}

tb_status tb_ticket_dup(tb_ticket **out, const tb_ticket *t)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if (!t)
		return tb_error_set(TB_EINVAL, "ticket", "ticket must not be NULL");
	tb_ticket *copy = malloc(sizeof(*copy));
	if (!copy)
		return tb_error__oom();
	*copy = *t;
	*out = copy;
	return TB_OK;
}

void tb_ticket_free(tb_ticket *t)
{
	free(t);
}
