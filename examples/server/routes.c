/*
 * routes.c - the API: each route reads the request, makes one or two library
 * calls and renders the answer.  No business rule lives here; what is
 * allowed and what is not is the library's decision, and this file only
 * chooses the seed's HTTP status and wording for it (one table below,
 * `status_map`, plus a few route-specific words).
 */
#include "server.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- the one tb_status -> HTTP table -------------------------------------- */

/*
 * message NULL means "the library's own message" (capitalised), which for
 * TB_EDECLINED is the payment provider's and for TB_EINVAL names the field.
 * Everything >= 500 answers "Something went wrong" and only logs the detail.
 */
static const struct status_row {
	tb_status status;
	unsigned int http;
	const char *message;
} status_map[] = {
	{ TB_EINVAL, 400, NULL },
	{ TB_ENOTFOUND, 404, "Not Found" },
	{ TB_EEXISTS, 400, NULL },
	{ TB_EUNAUTH, 401, "Not authorized" },
	{ TB_EFORBIDDEN, 401, "Not authorized" },
	{ TB_ELOCKED, 400, "Ticket is already reserved" },
	{ TB_ECONFLICT, 409, "Someone else changed this record; reload it and try again" },
	{ TB_EEXPIRED, 400, "Order has expired" },
	{ TB_ESTATE, 400, NULL },
	{ TB_EDECLINED, 402, NULL },
	{ TB_EPROVIDER, 502, NULL },
	{ TB_ESTORAGE, 500, NULL },
	{ TB_ENOMEM, 500, NULL },
	{ TB_EBUSY, 503, "The server is busy; please try again" },
	{ TB_EVERSION, 500, NULL },
	{ TB_ESIGNATURE, 400, "Invalid signature" },
	{ TB_EINTERNAL, 500, NULL },
};

/* A route's own wording for a status, e.g. TB_ELOCKED on PUT /api/tickets/:id. */
struct override {
	tb_status status;
	unsigned int http;
	const char *message;
};

/* The seed's validation message for a field the library refused. */
struct field_message {
	const char *field;
	const char *message;
};

struct rules {
	const struct override *overrides;     /* ends with status TB_OK */
	const struct field_message *fields;   /* ends with field NULL */
};

static const char SOMETHING_WRONG[] = "Something went wrong";

static void reply(tbs_req *r, unsigned int status, json_t *json)
{
	json_decref(r->json);
	free(r->text);
	r->text = NULL;
	r->status = status;
	r->json = json;
}

/* A reply body written as text (the json.c writers); NULL (out of memory) answers 500. */
static void reply_text(tbs_req *r, unsigned int status, char *text, size_t len)
{
	reply(r, status, NULL);
	if (!text) {
		reply(r, 500, tbs_error_body("Something went wrong", NULL));
		return;
	}
	r->text = text;
	r->text_len = len;
}

static void reply_error(tbs_req *r, unsigned int status, const char *message, const char *field)
{
	reply(r, status, tbs_error_body(message, field));
}

static void capitalise(char *buf, size_t size, const char *message)
{
	snprintf(buf, size, "%s", message && *message ? message : "Invalid value");
	buf[0] = (char)toupper((unsigned char)buf[0]);
}

/* Answer a failed library call.  Call it right after the call: it reads tb_last_error(). */
/* fail(), with the error detail `e` of a call made on another thread. */
static void fail_with(tbs_req *r, tb_status st, const tb_error *e, const struct rules *rules)
{
	const char *detail = e->status == st ? e->message : tb_strerror(st);
	const char *field = e->status == st ? e->field : NULL;
	const struct status_row *row = NULL;
	char message[300];

	for (const struct override *o = rules ? rules->overrides : NULL; o && o->status != TB_OK; o++) {
		if (o->status == st) {
			reply_error(r, o->http, o->message, NULL);
			return;
		}
	}
	for (size_t i = 0; i < sizeof status_map / sizeof status_map[0]; i++)
		if (status_map[i].status == st)
			row = &status_map[i];
	if (!row || row->http >= 500) {
		/* Log the detail for the operator; the client learns nothing internal. */
		tbs_log("%s %s: %s: %s", r->method, r->path, tb_status_name(st), detail);
		reply_error(r, row ? row->http : 500, row && row->message ? row->message : SOMETHING_WRONG, NULL);
		r->retry_after = st == TB_EBUSY;
		return;
	}
	if (st == TB_EINVAL) {
		for (const struct field_message *f = rules ? rules->fields : NULL; f && f->field; f++) {
			if (field && strcmp(f->field, field) == 0) {
				reply_error(r, 400, f->message, field);
				return;
			}
		}
		capitalise(message, sizeof message, detail);
		reply_error(r, 400, message, field);
		return;
	}
	if (row->message) {
		reply_error(r, row->http, row->message, NULL);
		return;
	}
	capitalise(message, sizeof message, detail);
	reply_error(r, row->http, message, NULL);
}

static void fail(tbs_req *r, tb_status st, const struct rules *rules)
{
	fail_with(r, st, tb_last_error(), rules);
}

/* ---- request helpers ------------------------------------------------------ */

/* The JSON body as an object ({} when empty); answers 400 and returns NULL otherwise. */
static json_t *body_object(tbs_req *r)
{
	json_error_t err;
	size_t i = 0;

	if (r->in)
		return r->in;
	while (i < r->body_len && isspace((unsigned char)r->body[i]))
		i++;
	if (i == r->body_len) {
		r->in = json_object();
		return r->in;
	}
	r->in = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (!r->in) {
		char message[300];
		snprintf(message, sizeof message, "Malformed JSON: %s (line %d, column %d)",
			err.text, err.line, err.column);
		reply_error(r, 400, message, NULL);
		return NULL;
	}
	if (!json_is_object(r->in)) {
		reply_error(r, 400, "The request body must be a JSON object", NULL);
		return NULL;
	}
	return r->in;
}

/* A string member, or NULL when absent or not a string. */
static const char *string_member(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static const char *session_token(const tbs_req *r)
{
	const char *token = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, TBS_SESSION_COOKIE);

	return token && *token ? token : NULL;
}

/*
 * The signed-in user, kept in r->user.  TB_EUNAUTH when there is none (no
 * cookie, or an unknown, revoked or expired session).
 */
static tb_status load_user(tbs_req *r)
{
	const char *token = session_token(r);

	if (r->user)
		return TB_OK;
	if (!token)
		return TB_EUNAUTH;
	return tb_user_get_by_session(&r->user, r->srv->market, token);
}

/* The signed-in user, or NULL after answering 401 (or 500 when storage failed). */
static const char *require_user(tbs_req *r)
{
	tb_status st = load_user(r);

	if (st == TB_OK)
		return tb_user_id(r->user);
	fail(r, st, NULL);
	return NULL;
}

static void set_cookie(tbs_req *r, const char *token, int64_t max_age_s)
{
	free(r->set_cookie);
	r->set_cookie = tbs_printf("%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s%s",
		TBS_SESSION_COOKIE, token, (long long)max_age_s,
		r->srv->cfg.secure_cookies ? "; Secure" : "",
		max_age_s == 0 ? "; Expires=Thu, 01 Jan 1970 00:00:00 GMT" : "");
}

/* Start the session: the cookie carries the token until the session expires. */
static void start_session(tbs_req *r, const tb_session *session)
{
	int64_t ms = tb_session_expires_at_ms(session) - tb_market_now_ms(r->srv->market);
	const char *old = session_token(r);

	/* Rotation: a previous session presented with this request ends here. */
	if (old && strcmp(old, tb_session_token(session)) != 0 &&
		tb_user_signout(r->srv->market, old) != TB_OK)
		tbs_log("could not revoke the previous session: %s", tb_last_error()->message);
	set_cookie(r, tb_session_token(session), ms > 0 ? ms / 1000 : 0);
}

static void clear_session_cookie(tbs_req *r)
{
	set_cookie(r, "", 0);
}

/* ---- health and metrics --------------------------------------------------- */

static void get_healthz(tbs_req *r)
{
	int64_t deadline;

	/* Ask the market something that touches storage: healthy means it answers. */
	if (tb_market_next_deadline(r->srv->market, &deadline) != TB_OK) {
		tbs_log("health check failed: %s", tb_last_error()->message);
		reply(r, 503, json_pack("{s:s}", "status", "unavailable"));
		return;
	}
	reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_metrics(tbs_req *r)
{
	size_t len = 0;
	char *text = tbs_metrics_render(r->srv->metrics, r->srv, &len);

	if (!text) {
		reply_error(r, 500, SOMETHING_WRONG, NULL);
		return;
	}
	r->raw = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r->raw) {
		free(text);
		reply_error(r, 500, SOMETHING_WRONG, NULL);
		return;
	}
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONTENT_TYPE,
		"text/plain; version=0.0.4; charset=utf-8");
	r->status = 200;
}

/* ---- users ---------------------------------------------------------------- */

static const struct field_message signup_fields[] = {
	{ "email", "Email must be valid" },
	{ "password", "Password must be between 8 and 1024 characters" },
	{ NULL, NULL },
};
static const struct override signup_overrides[] = {
	{ TB_EEXISTS, 400, "Email in use" },
	{ TB_OK, 0, NULL },
};
static const struct rules signup_rules = { signup_overrides, signup_fields };

static const struct field_message signin_fields[] = {
	{ "email", "Email must be valid" },
	{ "password", "You must supply a password" },
	{ NULL, NULL },
};
static const struct override signin_overrides[] = {
	/* One answer for an unknown email and a wrong password alike. */
	{ TB_EUNAUTH, 400, "Invalid credentials" },
	{ TB_ENOTFOUND, 400, "Invalid credentials" },
	{ TB_OK, 0, NULL },
};
static const struct rules signin_rules = { signin_overrides, signin_fields };

/* Read email and password; answers 400 listing every missing one. */
static bool credentials(tbs_req *r, const struct field_message *messages,
	const char **email, const char **password)
{
	json_t *body = body_object(r);
	json_t *errors;

	if (!body)
		return false;
	*email = string_member(body, "email");
	*password = string_member(body, "password");
	if (*email && **email && *password && **password)
		return true;
	errors = tbs_error_body(NULL, NULL);
	if (!*email || !**email)
		tbs_error_add(errors, messages[0].message, "email");
	if (!*password || !**password)
		tbs_error_add(errors, messages[1].message, "password");
	reply(r, 400, errors);
	return false;
}

static void post_signup(tbs_req *r)
{
	const char *email, *password;
	tb_user *user = NULL;
	tb_session *session = NULL;
	tb_status st;

	if (!credentials(r, signup_fields, &email, &password))
		return;
	st = tb_user_signup(&user, &session, r->srv->market, email, password);
	if (st != TB_OK) {
		fail(r, st, &signup_rules);
		return;
	}
	r->mutated = true;
	start_session(r, session);
	reply(r, 201, tbs_user_json(user));
	tb_session_free(session);
	tb_user_free(user);
}

static void post_signin(tbs_req *r)
{
	const char *email, *password;
	tb_session *session = NULL;
	tb_user *user = NULL;
	tb_status st;

	if (!credentials(r, signin_fields, &email, &password))
		return;
	st = tb_user_signin(&session, r->srv->market, email, password);
	if (st == TB_OK)
		st = tb_user_get(&user, r->srv->market, tb_session_user_id(session));
	if (st != TB_OK) {
		fail(r, st, &signin_rules);
		tb_session_free(session);
		return;
	}
	start_session(r, session);
	reply(r, 200, tbs_user_json(user));
	tb_session_free(session);
	tb_user_free(user);
}

static void post_signout(tbs_req *r)
{
	const char *token = session_token(r);
	tb_status st;

	if (token && (st = tb_user_signout(r->srv->market, token)) != TB_OK) {
		fail(r, st, NULL);
		return;
	}
	clear_session_cookie(r);
	reply(r, 200, json_object());
}

static void get_currentuser(tbs_req *r)
{
	tb_status st = load_user(r);

	if (st == TB_OK) {
		reply(r, 200, json_pack("{s:o}", "currentUser", tbs_user_json(r->user)));
		return;
	}
	if (st != TB_EUNAUTH) {
		fail(r, st, NULL);
		return;
	}
	if (session_token(r))
		clear_session_cookie(r); /* a stale cookie: forget it */
	reply(r, 200, json_pack("{s:n}", "currentUser"));
}

/* ---- tickets -------------------------------------------------------------- */

static const char TITLE_REQUIRED[] = "Title is required";
static const char PRICE_POSITIVE[] = "Price must be greater than 0";
/* The seed's PUT words it differently. */
static const char PRICE_PROVIDED[] = "Price must be provided and must be greater than 0";

static const struct field_message create_ticket_fields[] = {
	{ "price", PRICE_POSITIVE },
	{ NULL, NULL },
};
static const struct rules create_ticket_rules = { NULL, create_ticket_fields };

static const struct field_message update_ticket_fields[] = {
	{ "price", PRICE_PROVIDED },
	{ NULL, NULL },
};
static const struct override update_ticket_overrides[] = {
	{ TB_ELOCKED, 400, "Cannot edit a reserved ticket" },
	{ TB_ESTATE, 400, "Cannot edit this ticket now" },
	{ TB_OK, 0, NULL },
};
static const struct rules update_ticket_rules = { update_ticket_overrides, update_ticket_fields };

/* Validate title (if required or present) and price; adds to `errors`. */
static void check_title(json_t *errors, const json_t *title)
{
	const char *s = json_string_value(title);

	if (!s || !*s)
		tbs_error_add(errors, TITLE_REQUIRED, "title");
}

static void post_ticket(tbs_req *r)
{
	const char *uid = require_user(r);
	json_t *body, *errors, *currency_v;
	const char *currency = NULL, *message;
	int64_t price = 0;
	tb_ticket *ticket = NULL;
	tb_status st;

	if (!uid || !(body = body_object(r)))
		return;
	errors = tbs_error_body(NULL, NULL);
	check_title(errors, json_object_get(body, "title"));
	currency_v = json_object_get(body, "currency");
	if (currency_v && !json_is_null(currency_v)) {
		currency = json_string_value(currency_v);
		if (!currency)
			tbs_error_add(errors, "Currency must be a three-letter ISO 4217 code", "currency");
	}
	if (tbs_price_parse(&price, json_object_get(body, "price"),
		currency ? currency : r->srv->cfg.currency, &message) != TB_OK)
		tbs_error_add(errors, message, "price");
	if (json_array_size(json_object_get(errors, "errors")) > 0) {
		reply(r, 400, errors);
		return;
	}
	json_decref(errors);
	st = tb_ticket_create(&ticket, r->srv->market, uid, string_member(body, "title"), price, currency);
	if (st != TB_OK) {
		fail(r, st, &create_ticket_rules);
		return;
	}
	r->mutated = true;
	reply(r, 201, tbs_ticket_json(ticket));
	tb_ticket_free(ticket);
}

/* Append every ticket of a page to `array`. */
static void append_tickets(json_t *array, const tb_ticket_page *page)
{
	for (size_t i = 0; i < tb_ticket_page_count(page); i++)
		json_array_append_new(array, tbs_ticket_json(tb_ticket_page_at(page, i)));
}

static const struct field_message list_fields[] = {
	{ "after", "Invalid cursor" },
	{ NULL, NULL },
};
static const struct rules list_rules = { NULL, list_fields };

/* Largest list GET /api/tickets returns without an explicit limit. */
#define LIST_ALL_MAX 10000

/*
 * GET /api/tickets: the tickets for sale (the seed hides reserved ones).
 * ?q=  title contains (case-insensitive); ?mine=1  the caller's own tickets
 * (listed, unlisted and locked; 401 when signed out); ?all=1  include
 * reserved and unlisted ones; ?limit=&after=  one page, with the cursor of
 * the next in the X-Next-Cursor header.
 */
static void get_tickets(tbs_req *r)
{
	tb_ticket_query q = TB_TICKET_QUERY_INIT;
	const char *mine = tbs_query(r, "mine"), *all = tbs_query(r, "all");
	const char *limit = tbs_query(r, "limit");
	tb_ticket_page *page = NULL;
	char *after = NULL;
	json_t *array;
	tb_status st;

	if (mine && strcmp(mine, "0") != 0) {
		if (!(q.owner_id = require_user(r)))
			return;
	} else {
		q.available_only = !(all && strcmp(all, "0") != 0);
	}
	q.title_contains = tbs_query(r, "q");
	if (q.title_contains && !*q.title_contains)
		q.title_contains = NULL;
	q.limit = TB_PAGE_MAX;
	if (limit) {
		char *end;
		unsigned long n = strtoul(limit, &end, 10);
		if (*end || n == 0 || n > TB_PAGE_MAX) {
			reply_error(r, 400, "Limit must be between 1 and 500", "limit");
			return;
		}
		q.limit = (unsigned int)n;
	}
	array = json_array();
	for (;;) {
		q.after = after ? after : tbs_query(r, "after");
		st = tb_ticket_list(&page, r->srv->market, &q);
		if (st != TB_OK) {
			json_decref(array);
			free(after);
			fail(r, st, &list_rules);
			return;
		}
		append_tickets(array, page);
		/* The cursor is borrowed from the page: copy it before freeing the page. */
		const char *next = tb_ticket_page_next_cursor(page);
		free(after);
		after = NULL;
		if (next && limit)
			r->next_cursor = tbs_printf("%s", next);
		else if (next && json_array_size(array) < LIST_ALL_MAX)
			after = tbs_printf("%s", next);
		tb_ticket_page_free(page);
		page = NULL;
		if (!after)
			break;
	}
	reply(r, 200, array);
}

static void get_ticket(tbs_req *r)
{
	tb_ticket *ticket = NULL;
	tb_status st = tb_ticket_get(&ticket, r->srv->market, r->param);
	size_t len = 0;
	char *text;

	if (st != TB_OK) {
		fail(r, st, NULL);
		return;
	}
	text = tbs_ticket_text(ticket, &len);
	reply_text(r, 200, text, len);
	tb_ticket_free(ticket);
}

/*
 * PUT /api/tickets/:id {title?, price?, version?, listed?}: edit, and/or list
 * or withdraw (relist a bought ticket with {"listed": true}).  Like the seed
 * the checks run: 401 signed out, 400 invalid input, then the library's
 * answer (404, 400 reserved, 401 not the owner, 409 stale version).
 */
static void put_ticket(tbs_req *r)
{
	const char *uid = require_user(r);
	json_t *body, *errors, *title, *price_v, *listed, *version;
	tb_ticket *ticket = NULL, *current = NULL;
	int64_t price = TB_KEEP, expected = TB_ANY_VERSION;
	const char *message;
	tb_status st = TB_OK;

	if (!uid || !(body = body_object(r)))
		return;
	title = json_object_get(body, "title");
	price_v = json_object_get(body, "price");
	listed = json_object_get(body, "listed");
	version = json_object_get(body, "version");
	errors = tbs_error_body(NULL, NULL);
	if (!title && !price_v && !listed) {
		tbs_error_add(errors, TITLE_REQUIRED, "title");
		tbs_error_add(errors, PRICE_PROVIDED, "price");
	}
	if (title)
		check_title(errors, title);
	if (price_v) {
		/* Parse in the ticket's own currency; a missing ticket is a 404 later. */
		if (tb_ticket_get(&current, r->srv->market, r->param) != TB_OK)
			current = NULL;
		if (tbs_price_parse(&price, price_v,
			current ? tb_ticket_currency(current) : r->srv->cfg.currency, &message) != TB_OK)
			tbs_error_add(errors, PRICE_PROVIDED, "price");
		tb_ticket_free(current);
	}
	if (listed && !json_is_boolean(listed))
		tbs_error_add(errors, "Listed must be true or false", "listed");
	if (version && !json_is_null(version)) {
		if (!json_is_integer(version) || json_integer_value(version) < 0)
			tbs_error_add(errors, "Version must be a non-negative integer", "version");
		else
			expected = json_integer_value(version);
	}
	if (json_array_size(json_object_get(errors, "errors")) > 0) {
		reply(r, 400, errors);
		return;
	}
	json_decref(errors);
	if (title || price_v)
		st = tb_ticket_update(&ticket, r->srv->market, uid, r->param,
			json_string_value(title), price, expected);
	if (st == TB_OK && listed) {
		tb_ticket_free(ticket);
		ticket = NULL;
		st = tb_ticket_set_listed(&ticket, r->srv->market, uid, r->param,
			json_is_true(listed) ? 1 : 0);
	}
	if (st != TB_OK) {
		fail(r, st, &update_ticket_rules);
		tb_ticket_free(ticket);
		return;
	}
	r->mutated = true;
	reply(r, 200, tbs_ticket_json(ticket));
	tb_ticket_free(ticket);
}

/* ---- orders --------------------------------------------------------------- */

static const struct override create_order_overrides[] = {
	{ TB_ELOCKED, 400, "Ticket is already reserved" },
	{ TB_EFORBIDDEN, 400, "You cannot buy your own ticket" },
	{ TB_ESTATE, 400, "Ticket is not for sale" },
	{ TB_OK, 0, NULL },
};
static const struct rules create_order_rules = { create_order_overrides, NULL };

static const struct override cancel_order_overrides[] = {
	{ TB_ESTATE, 400, "Cannot cancel an order that has been paid" },
	{ TB_EEXPIRED, 400, "Order has expired" },
	{ TB_OK, 0, NULL },
};
static const struct rules cancel_order_rules = { cancel_order_overrides, NULL };

/* An order with its ticket (title and version) looked up. */
static json_t *order_json(tbs_req *r, const tb_order *order)
{
	tb_ticket *ticket = NULL;
	json_t *json;

	/* Without the ticket (a storage hiccup) the order still renders, minus its title. */
	if (tb_ticket_get(&ticket, r->srv->market, tb_order_ticket_id(order)) != TB_OK)
		ticket = NULL;
	json = tbs_order_json(order, ticket);
	tb_ticket_free(ticket);
	return json;
}

/* The reply to POST /api/orders, from the call's result (the order and ticket are freed). */
static void order_reply(tbs_req *r, tb_status st, const tb_error *e, tb_order *order, tb_ticket *ticket)
{
	size_t len = 0;
	char *text;

	if (st != TB_OK) {
		/* A malformed ticket id is refused before the session is looked at: 401 still comes first. */
		if (st == TB_ENOTFOUND && !require_user(r))
			return;
		fail_with(r, st, e, &create_order_rules);
		return;
	}
	r->mutated = true;
	tbs_ticker_wake_by(r->srv, tb_order_expires_at_ms(order)); /* a new deadline */
	text = tbs_order_text(order, ticket, &len);
	reply_text(r, 201, text, len);
	tb_ticket_free(ticket);
	tb_order_free(order);
}

/* An order in flight without a thread waiting for it (tb_order_create_by_session_async). */
struct pending_order {
	tb_status st;
	tb_order *order;
	tb_ticket *ticket;
	char message[300], field[64];
	bool has_field;
};

/* Its completion, on whichever thread committed it: keep the result, hand the request back. */
static void order_done(tb_status st, tb_order *order, tb_ticket *ticket, void *arg)
{
	tbs_req *r = arg;
	struct pending_order *p = r->pending;
	const tb_error *e = tb_last_error();

	p->st = st;
	p->order = order;
	p->ticket = ticket;
	if (st != TB_OK && e->status == st) {
		snprintf(p->message, sizeof p->message, "%s", e->message);
		p->has_field = e->field != NULL;
		snprintf(p->field, sizeof p->field, "%s", e->field ? e->field : "");
	} else {
		snprintf(p->message, sizeof p->message, "%s", tb_strerror(st));
	}
	tbs_resume(r);
}

/* Back on the HTTP thread: the reply. */
static void order_finish(tbs_req *r)
{
	struct pending_order *p = r->pending;
	tb_error e = { p->st, p->message, p->has_field ? p->field : NULL };

	r->pending = NULL;
	order_reply(r, p->st, &e, p->order, p->ticket);
	free(p);
}

static void post_order(tbs_req *r)
{
	const char *token = session_token(r);
	json_t *body = token ? body_object(r) : NULL;
	const char *ticket_id = body ? string_member(body, "ticketId") : NULL;
	tb_order *order = NULL;
	tb_ticket *ticket = NULL;
	tb_status st;

	if (!ticket_id || !*ticket_id) {
		/* Signed out is 401 before any complaint about the body, as on every route. */
		if (require_user(r) && body)
			reply_error(r, 400, "TicketId must be provided", "ticketId");
		return;
	}
	/*
	 * One transaction checks the session, creates the order and hands back
	 * the ticket (for the reply's title): no read before or after it.  On an
	 * HTTP thread the call does not wait for its commit: the connection is
	 * suspended and the reply built when the order's group has committed.
	 */
	struct pending_order *p = r->can_suspend ? calloc(1, sizeof *p) : NULL;
	if (p) {
		r->pending = p;
		r->finish = order_finish;
		tbs_suspend(r);
		st = tb_order_create_by_session_async(r->srv->market, token, ticket_id, order_done, r);
		if (st != TB_OK) /* refused before it was queued: order_done will not run */
			order_done(st, NULL, NULL, r);
		return;
	}
	st = tb_order_create_by_session(&order, &ticket, r->srv->market, token, ticket_id);
	order_reply(r, st, tb_last_error(), order, ticket);
}

static void get_orders(tbs_req *r)
{
	const char *uid = require_user(r);
	tb_order_page *page = NULL;
	char *after = NULL;
	json_t *array;
	tb_status st;

	if (!uid)
		return;
	array = json_array();
	for (;;) {
		st = tb_order_list(&page, r->srv->market, uid, after, TB_PAGE_MAX);
		if (st != TB_OK) {
			json_decref(array);
			free(after);
			fail(r, st, NULL);
			return;
		}
		for (size_t i = 0; i < tb_order_page_count(page); i++)
			json_array_append_new(array, order_json(r, tb_order_page_at(page, i)));
		const char *next = tb_order_page_next_cursor(page);
		free(after);
		after = next && json_array_size(array) < LIST_ALL_MAX ? tbs_printf("%s", next) : NULL;
		tb_order_page_free(page);
		page = NULL;
		if (!after)
			break;
	}
	reply(r, 200, array);
}

static void get_order(tbs_req *r)
{
	const char *uid = require_user(r);
	tb_order *order = NULL;
	tb_charge *charge = NULL;
	json_t *json;
	tb_status st;

	if (!uid)
		return;
	st = tb_order_get(&order, r->srv->market, uid, r->param);
	if (st != TB_OK) {
		fail(r, st, NULL);
		return;
	}
	json = order_json(r, order);
	/* The latest payment attempt, so a page can say why it failed or that it is pending. */
	if (json && tb_charge_get_latest(&charge, r->srv->market, uid, r->param) == TB_OK) {
		json_t *p = json_pack("{s:s, s:s}", "id", tb_charge_id(charge),
			"status", tb_charge_status_name(tb_charge_status_get(charge)));
		if (p && tb_charge_failure_message(charge))
			json_object_set_new(p, "message", json_string(tb_charge_failure_message(charge)));
		if (p)
			json_object_set_new(json, "payment", p);
		tb_charge_free(charge);
	}
	reply(r, 200, json);
	tb_order_free(order);
}

static void delete_order(tbs_req *r)
{
	const char *uid = require_user(r);
	tb_order *order = NULL;
	tb_status st;

	if (!uid)
		return;
	st = tb_order_cancel(&order, r->srv->market, uid, r->param);
	if (st != TB_OK) {
		fail(r, st, &cancel_order_rules);
		return;
	}
	r->mutated = true;
	reply(r, 204, NULL);
	tb_order_free(order);
}

/* ---- payments ------------------------------------------------------------- */

static const struct field_message pay_fields[] = {
	{ "token", "Token must be provided" },
	{ NULL, NULL },
};
static const struct override pay_overrides[] = {
	{ TB_EEXPIRED, 400, "Cannot pay for an expired order" },
	{ TB_OK, 0, NULL },
};
static const struct rules pay_rules = { pay_overrides, pay_fields };

/* TB_ESTATE from tb_order_pay(): say which state the order is in. */
static void pay_state_error(tbs_req *r, const char *uid, const char *order_id)
{
	tb_order *order = NULL;
	const char *message = "This order cannot be paid now";

	if (tb_order_get(&order, r->srv->market, uid, order_id) == TB_OK) {
		switch (tb_order_status_get(order)) {
		case TB_ORDER_CANCELLED: message = "Cannot pay for a cancelled order"; break;
		case TB_ORDER_EXPIRED: message = "Cannot pay for an expired order"; break;
		case TB_ORDER_COMPLETE:
		case TB_ORDER_REFUNDED: message = "This order has already been paid"; break;
		case TB_ORDER_AWAITING_PAYMENT: message = "A payment for this order is already in progress"; break;
		case TB_ORDER_CREATED: break;
		}
		tb_order_free(order);
	}
	reply_error(r, 400, message, NULL);
}

static void post_payment(tbs_req *r)
{
	const char *uid = require_user(r);
	const char *order_id, *token;
	json_t *body, *errors;
	tb_charge *charge = NULL;
	tb_status st;

	if (!uid || !(body = body_object(r)))
		return;
	order_id = string_member(body, "orderId");
	token = string_member(body, "token");
	if (!order_id || !*order_id || !token || !*token) {
		errors = tbs_error_body(NULL, NULL);
		if (!order_id || !*order_id)
			tbs_error_add(errors, "OrderId must be provided", "orderId");
		if (!token || !*token)
			tbs_error_add(errors, "Token must be provided", "token");
		reply(r, 400, errors);
		return;
	}
	st = tb_order_pay(&charge, r->srv->market, uid, order_id, token);
	r->mutated = true; /* even a decline changed the order */
	if (st == TB_ESTATE) {
		pay_state_error(r, uid, order_id);
		return;
	}
	if (st != TB_OK) {
		fail(r, st, &pay_rules);
		return;
	}
	if (tb_charge_status_get(charge) == TB_CHARGE_PENDING) {
		/* The provider's answer is unknown; the tick asks again and events tell the outcome. */
		reply(r, 202, json_pack("{s:s, s:s, s:s}", "id", tb_charge_id(charge),
			"orderId", tb_charge_order_id(charge), "status", "pending"));
	} else {
		reply(r, 201, json_pack("{s:s, s:s, s:s}", "id", tb_charge_id(charge),
			"orderId", tb_charge_order_id(charge),
			"status", tb_charge_status_name(tb_charge_status_get(charge))));
	}
	tb_charge_free(charge);
}

/*
 * POST /api/payments/webhook: the provider's notices, verified against the
 * raw body.  404 when the provider has no webhooks (the fake).
 */
static void post_webhook(tbs_req *r)
{
	tb_status st;

	if (!tbs_payments_webhook_enabled(r->srv)) {
		reply_error(r, 404, "Not Found", NULL);
		return;
	}
	st = tbs_payments_webhook(r->srv, tbs_header(r, "Stripe-Signature"), r->body, r->body_len);
	r->mutated = true;
	if (st == TB_ENOTFOUND) {
		/* Not one of our charges (another system on the same account): acknowledge it. */
		reply(r, 200, json_pack("{s:b, s:b}", "received", 1, "ignored", 1));
		return;
	}
	if (st != TB_OK) {
		fail(r, st, NULL);
		return;
	}
	reply(r, 200, json_pack("{s:b}", "received", 1));
}

/* ---- events --------------------------------------------------------------- */

static void get_event_stream(tbs_req *r)
{
	r->raw = tbs_sse_open(r->srv->hub, r->conn);
	if (!r->raw) {
		reply_error(r, 503, "The server is shutting down", NULL);
		return;
	}
	r->status = 200;
	r->streaming = true;
}

/* ---- the route table ------------------------------------------------------ */

static const struct route {
	const char *method;
	const char *template;   /* ":id" matches one path segment */
	void (*run)(tbs_req *r);
	bool suspends;          /* waits for nothing on the HTTP thread: stays off the worker pool */
} routes[] = {
	{ "GET", "/healthz", get_healthz, false },
	{ "GET", "/metrics", get_metrics, false },
	{ "POST", "/api/users/signup", post_signup, false },
	{ "POST", "/api/users/signin", post_signin, false },
	{ "POST", "/api/users/signout", post_signout, false },
	{ "GET", "/api/users/currentuser", get_currentuser, false },
	{ "POST", "/api/tickets", post_ticket, false },
	{ "GET", "/api/tickets", get_tickets, false },
	{ "GET", "/api/tickets/:id", get_ticket, false },
	{ "PUT", "/api/tickets/:id", put_ticket, false },
	{ "POST", "/api/orders", post_order, true },
	{ "GET", "/api/orders", get_orders, false },
	{ "GET", "/api/orders/:id", get_order, false },
	{ "DELETE", "/api/orders/:id", delete_order, false },
	{ "POST", "/api/payments", post_payment, false },
	{ "POST", "/api/payments/webhook", post_webhook, false },
	{ "GET", "/api/events/stream", get_event_stream, false },
};

#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

size_t tbs_routes_count(void)
{
	return ROUTE_COUNT;
}

const char *tbs_route_method(size_t i)
{
	return i < ROUTE_COUNT ? routes[i].method : "";
}

const char *tbs_route_template(size_t i)
{
	return i < ROUTE_COUNT ? routes[i].template : "";
}

/* Does `path` fit `template`?  Sets *param to the ":id" segment (inside path). */
static bool path_matches(const char *template, const char *path, const char **param, size_t *param_len)
{
	while (*template && *path) {
		if (*template == ':') {
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (n == 0)
				return false;
			*param = path;
			*param_len = n;
			path += n;
			template = strchr(template, '/');
			if (!template)
				template = "";
			continue;
		}
		if (*template++ != *path++)
			return false;
	}
	return *template == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

bool tbs_routes_match(tbs_req *r)
{
	/*
	 * The segment is copied into the request: a connection's worker thread
	 * interleaves several requests, so no static or thread-local buffer will do.
	 */
	char *param = r->param_buf;
	size_t size = sizeof r->param_buf;

	for (size_t i = 0; i < ROUTE_COUNT; i++) {
		const char *p = NULL;
		size_t n = 0;
		/* HEAD is answered like GET (libmicrohttpd drops the body). */
		bool method_ok = strcmp(routes[i].method, r->method) == 0 ||
			(strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0);
		if (!method_ok || !path_matches(routes[i].template, r->path, &p, &n))
			continue;
		if (p) {
			if (n >= size)
				n = size - 1; /* far longer than any id: still a 404 */
			memcpy(param, p, n);
			param[n] = '\0';
			r->param = param;
		}
		r->route = (int)i;
		return true;
	}
	return false;
}

bool tbs_route_suspends(int route)
{
	return route >= 0 && (size_t)route < ROUTE_COUNT && routes[route].suspends;
}

void tbs_routes_run(tbs_req *r)
{
	if (r->route >= 0 && (size_t)r->route < ROUTE_COUNT)
		routes[r->route].run(r);
}
