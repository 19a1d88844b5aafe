/*
 * json.c - the seed's JSON shapes, built from library records.
 *
 * Prices travel as decimal numbers in major units ("price": 19.99) like the
 * seed, but never pass through float arithmetic: a JSON number is turned
 * back into the shortest decimal text that reads as the same double, and
 * that text is parsed exactly by tb_money_parse(); on the way out the
 * library's exact decimal text is emitted with 15 significant digits, which
 * reproduces it digit for digit (prices have at most 11).
 */
#include "server.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Enough significant digits to print every valid price exactly, no more. */
#define PRICE_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

json_t *tbs_error_body(const char *message, const char *field)
{
	json_t *body = json_pack("{s:[]}", "errors");

	if (body && message)
		tbs_error_add(body, message, field);
	return body;
}

void tbs_error_add(json_t *body, const char *message, const char *field)
{
	json_t *errors = json_object_get(body, "errors");
	json_t *e = json_pack("{s:s}", "message", message);

	if (!e)
		return;
	if (field)
		json_object_set_new(e, "field", json_string(field));
	json_array_append_new(errors, e);
}

json_t *tbs_money_json(int64_t minor, const char *currency)
{
	char *text = NULL, *dot;
	json_t *v;

	if (tb_money_format(&text, minor, currency) != TB_OK)
		return json_null();
	/* "20.00" is rendered 20, "20.50" 20.5, "19.99" 19.99. */
	dot = strchr(text, '.');
	if (dot && strspn(dot + 1, "0") == strlen(dot + 1))
		*dot = '\0';
	if (strchr(text, '.'))
		v = json_real(strtod(text, NULL));
	else
		v = json_integer(strtoll(text, NULL, 10));
	tb_free(text);
	return v;
}

/*
 * The shortest fixed-point text that reads back as `d`: 19.99 gives "19.99"
 * although the double is 19.98999...; 0.1 + 0.2 gives "0.30000000000000004",
 * which tb_money_parse() then rightly refuses.
 */
static void shortest_decimal(char *buf, size_t size, double d)
{
	for (int prec = 0; prec <= 20; prec++) {
		int n = snprintf(buf, size, "%.*f", prec, d);
		if (n > 0 && (size_t)n < size && strtod(buf, NULL) == d)
			return;
	}
}

static _Thread_local char price_message[160];

/* The library's message with its first letter upper-cased, as the seed writes them. */
static const char *capitalised(const char *message)
{
	snprintf(price_message, sizeof price_message, "%s", message ? message : "Invalid value");
	price_message[0] = (char)toupper((unsigned char)price_message[0]);
	return price_message;
}

tb_status tbs_price_parse(int64_t *out, const json_t *value, const char *currency,
	const char **message)
{
	static const char positive[] = "Price must be greater than 0";
	char buf[400];
	const char *text;
	char *end;
	double approx;
	tb_status st;

	if (json_is_string(value)) {
		text = json_string_value(value);
	} else if (json_is_integer(value)) {
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(value));
		text = buf;
	} else if (json_is_real(value) && isfinite(json_real_value(value))) {
		shortest_decimal(buf, sizeof buf, json_real_value(value));
		text = buf;
	} else {
		*message = positive;
		return TB_EINVAL;
	}
	st = tb_money_parse(out, text, currency);
	if (st == TB_OK)
		return TB_OK;
	/* Choose the wording only: the rule itself is the library's. */
	approx = strtod(text, &end);
	if (end == text || !(approx > 0) || strchr(text, '-'))
		*message = positive;
	else
		*message = capitalised(tb_last_error()->message);
	return TB_EINVAL;
}

/* Two digits of v (0-99) at p. */
static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/*
 * ms since the epoch as 2023-11-14T21:13:20.000Z.  Years 0-9999 are
 * computed directly (days to a civil date, H. Hinnant's algorithm): this runs
 * for every ticket a GET renders, and gmtime_r + strftime cost a profile's
 * 2%; other years go through gmtime_r.
 */
void tbs_iso8601(char out[32], int64_t ms)
{
	int64_t secs = ms / 1000;
	int millis = (int)(ms % 1000);
	struct tm tm;

	if (millis < 0) {
		millis += 1000;
		secs -= 1;
	}
	if (secs >= INT64_C(-62167219200) && secs < INT64_C(253402300800)) {
		int64_t days = secs / 86400, rem = secs % 86400;
		if (rem < 0) {
			rem += 86400;
			days -= 1;
		}
		int64_t z = days + 719468;
		int64_t era = (z >= 0 ? z : z - 146096) / 146097;
		int64_t doe = z - era * 146097;
		int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
		int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		int64_t mp = (5 * doy + 2) / 153;
		int day = (int)(doy - (153 * mp + 2) / 5 + 1);
		int month = (int)(mp < 10 ? mp + 3 : mp - 9);
		int year = (int)(yoe + era * 400 + (month <= 2));

		put2(out, year / 100);
		put2(out + 2, year % 100);
		out[4] = '-';
		put2(out + 5, month);
		out[7] = '-';
		put2(out + 8, day);
		out[10] = 'T';
		put2(out + 11, (int)(rem / 3600));
		out[13] = ':';
		put2(out + 14, (int)(rem / 60 % 60));
		out[16] = ':';
		put2(out + 17, (int)(rem % 60));
		out[19] = '.';
		out[20] = (char)('0' + millis / 100);
		put2(out + 21, millis % 100);
		out[23] = 'Z';
		out[24] = '\0';
		return;
	}
	time_t t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", millis);
}

static void set_time(json_t *obj, const char *key, int64_t ms)
{
	char iso[32];

	tbs_iso8601(iso, ms);
	json_object_set_new(obj, key, json_string(iso));
}

json_t *tbs_user_json(const tb_user *user)
{
	return json_pack("{s:s, s:s}", "id", tb_user_id(user), "email", tb_user_email(user));
}

json_t *tbs_ticket_json(const tb_ticket *t)
{
	const char *currency = tb_ticket_currency(t);
	json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:s, s:s, s:I, s:b, s:b}",
		"id", tb_ticket_id(t),
		"title", tb_ticket_title(t),
		"price", tbs_money_json(tb_ticket_price_minor(t), currency),
		"priceMinor", (json_int_t)tb_ticket_price_minor(t),
		"currency", currency,
		"userId", tb_ticket_owner_id(t),
		"version", (json_int_t)tb_ticket_version(t),
		"locked", tb_ticket_locked(t) != 0,
		"listed", tb_ticket_status_get(t) == TB_TICKET_LISTED);

	if (!o)
		return NULL;
	if (tb_ticket_locked(t)) {
		/* Like the seed, orderId is only present while an order holds the ticket. */
		if (tb_ticket_order_id(t))
			json_object_set_new(o, "orderId", json_string(tb_ticket_order_id(t)));
		if (tb_ticket_locked_until_ms(t) > 0)
			set_time(o, "lockedUntil", tb_ticket_locked_until_ms(t));
	}
	set_time(o, "createdAt", tb_ticket_created_at_ms(t));
	return o;
}

/* ---- a direct writer: the same bytes json_dumps() gives, without the tree ---- */

typedef struct buf {
	char *p;
	size_t len, cap;
	bool oom;
} buf;

static void buf_put(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_lit(buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* A JSON string escaped as jansson does by default (UTF-8 kept, "/" kept). */
static void buf_str(buf *b, const char *s)
{
	const char *run = s;

	buf_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		buf_put(b, run, (size_t)(s - run));
		switch (c) {
		case '"': buf_put(b, "\\\"", 2); break;
		case '\\': buf_put(b, "\\\\", 2); break;
		case '\b': buf_put(b, "\\b", 2); break;
		case '\f': buf_put(b, "\\f", 2); break;
		case '\n': buf_put(b, "\\n", 2); break;
		case '\r': buf_put(b, "\\r", 2); break;
		case '\t': buf_put(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04X", c);
			buf_put(b, esc, 6);
		}
		run = s + 1;
	}
	buf_put(b, run, (size_t)(s - run));
	buf_put(b, "\"", 1);
}

/* ,"key": (keys are plain ASCII literals: nothing to escape) */
static void buf_key(buf *b, const char *key, bool first)
{
	size_t n = strlen(key);

	if (first)
		buf_put(b, "\"", 1);
	else
		buf_put(b, ",\"", 2);
	buf_put(b, key, n);
	buf_put(b, "\":", 2);
}

static void buf_int(buf *b, long long v)
{
	char n[24], *p = n + sizeof n;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	buf_put(b, p, (size_t)(n + sizeof n - p));
}

/* As tbs_money_json() dumped with PRICE_DUMP_FLAGS: 20, 20.5, 19.99; null when unformattable. */
static void buf_money(buf *b, int64_t minor, const char *currency)
{
	char *text = NULL, *dot, n[40];
	int len, exponent = tb_currency_exponent(currency);
	int64_t unit = 1;

	/* Whole amounts (the usual case) are the integer minor / 10^exponent. */
	for (int i = 0; i < exponent && exponent <= 4; i++)
		unit *= 10;
	if (exponent >= 0 && exponent <= 4 && minor >= 0 && minor % unit == 0) {
		buf_int(b, (long long)(minor / unit));
		return;
	}
	if (tb_money_format(&text, minor, currency) != TB_OK) {
		buf_lit(b, "null");
		return;
	}
	dot = strchr(text, '.');
	if (dot && strspn(dot + 1, "0") == strlen(dot + 1))
		*dot = '\0';
	if (strchr(text, '.')) {
		len = snprintf(n, sizeof n, "%.15g", strtod(text, NULL));
		buf_put(b, n, (size_t)len);
		if (!strpbrk(n, ".eE")) /* jansson keeps a real a real */
			buf_put(b, ".0", 2);
	} else {
		buf_int(b, strtoll(text, NULL, 10));
	}
	tb_free(text);
}

static void buf_time(buf *b, int64_t ms)
{
	char iso[32];

	tbs_iso8601(iso, ms);
	buf_str(b, iso);
}

static char *buf_finish(buf *b, size_t *len)
{
	if (b->oom || !b->p) {
		free(b->p);
		return NULL;
	}
	*len = b->len;
	return b->p;
}

static void buf_ticket(buf *b, const tb_ticket *t)
{
	const char *currency = tb_ticket_currency(t);

	buf_put(b, "{", 1);
	buf_key(b, "id", true);
	buf_str(b, tb_ticket_id(t));
	buf_key(b, "title", false);
	buf_str(b, tb_ticket_title(t));
	buf_key(b, "price", false);
	buf_money(b, tb_ticket_price_minor(t), currency);
	buf_key(b, "priceMinor", false);
	buf_int(b, (long long)tb_ticket_price_minor(t));
	buf_key(b, "currency", false);
	buf_str(b, currency);
	buf_key(b, "userId", false);
	buf_str(b, tb_ticket_owner_id(t));
	buf_key(b, "version", false);
	buf_int(b, (long long)tb_ticket_version(t));
	buf_key(b, "locked", false);
	buf_lit(b, tb_ticket_locked(t) ? "true" : "false");
	buf_key(b, "listed", false);
	buf_lit(b, tb_ticket_status_get(t) == TB_TICKET_LISTED ? "true" : "false");
	if (tb_ticket_locked(t)) {
		if (tb_ticket_order_id(t)) {
			buf_key(b, "orderId", false);
			buf_str(b, tb_ticket_order_id(t));
		}
		if (tb_ticket_locked_until_ms(t) > 0) {
			buf_key(b, "lockedUntil", false);
			buf_time(b, tb_ticket_locked_until_ms(t));
		}
	}
	buf_key(b, "createdAt", false);
	buf_time(b, tb_ticket_created_at_ms(t));
	buf_put(b, "}", 1);
}

char *tbs_ticket_text(const tb_ticket *ticket, size_t *len)
{
	buf b = { 0 };

	buf_ticket(&b, ticket);
	return buf_finish(&b, len);
}

const char *tbs_order_status_string(tb_order_status status)
{
	switch (status) {
	case TB_ORDER_CREATED: return "created";
	case TB_ORDER_AWAITING_PAYMENT: return "awaiting:payment";
	case TB_ORDER_COMPLETE: return "complete";
	case TB_ORDER_CANCELLED: return "cancelled";
	case TB_ORDER_EXPIRED: return "expired";
	case TB_ORDER_REFUNDED: return "refunded";
	}
	return "unknown";
}

json_t *tbs_order_json(const tb_order *order, const tb_ticket *ticket)
{
	const char *currency = tb_order_currency(order);
	json_t *t, *o;

	/* The ticket as the buyer ordered it: at the price locked in by the order. */
	t = json_pack("{s:s, s:o, s:s}",
		"id", tb_order_ticket_id(order),
		"price", tbs_money_json(tb_order_price_minor(order), currency),
		"currency", currency);
	if (t && ticket) {
		json_object_set_new(t, "title", json_string(tb_ticket_title(ticket)));
		json_object_set_new(t, "version", json_integer(tb_ticket_version(ticket)));
	}
	o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:o, s:I, s:s, s:o}",
		"id", tb_order_id(order),
		"status", tbs_order_status_string(tb_order_status_get(order)),
		"expiresAtMs", (json_int_t)tb_order_expires_at_ms(order),
		"userId", tb_order_buyer_id(order),
		"version", (json_int_t)tb_order_version(order),
		"price", tbs_money_json(tb_order_price_minor(order), currency),
		"priceMinor", (json_int_t)tb_order_price_minor(order),
		"currency", currency,
		"ticket", t ? t : json_null());
	if (!o)
		return NULL;
	set_time(o, "expiresAt", tb_order_expires_at_ms(order));
	set_time(o, "createdAt", tb_order_created_at_ms(order));
	return o;
}

char *tbs_order_text(const tb_order *order, const tb_ticket *ticket, size_t *len)
{
	const char *currency = tb_order_currency(order);
	buf b = { 0 };

	buf_put(&b, "{", 1);
	buf_key(&b, "id", true);
	buf_str(&b, tb_order_id(order));
	buf_key(&b, "status", false);
	buf_str(&b, tbs_order_status_string(tb_order_status_get(order)));
	buf_key(&b, "expiresAtMs", false);
	buf_int(&b, (long long)tb_order_expires_at_ms(order));
	buf_key(&b, "userId", false);
	buf_str(&b, tb_order_buyer_id(order));
	buf_key(&b, "version", false);
	buf_int(&b, (long long)tb_order_version(order));
	buf_key(&b, "price", false);
	buf_money(&b, tb_order_price_minor(order), currency);
	buf_key(&b, "priceMinor", false);
	buf_int(&b, (long long)tb_order_price_minor(order));
	buf_key(&b, "currency", false);
	buf_str(&b, currency);
	/* The ticket as the buyer ordered it: at the price locked in by the order. */
	buf_key(&b, "ticket", false);
	buf_put(&b, "{", 1);
	buf_key(&b, "id", true);
	buf_str(&b, tb_order_ticket_id(order));
	buf_key(&b, "price", false);
	buf_money(&b, tb_order_price_minor(order), currency);
	buf_key(&b, "currency", false);
	buf_str(&b, currency);
	if (ticket) {
		buf_key(&b, "title", false);
		buf_str(&b, tb_ticket_title(ticket));
		buf_key(&b, "version", false);
		buf_int(&b, (long long)tb_ticket_version(ticket));
	}
	buf_put(&b, "}", 1);
	buf_key(&b, "expiresAt", false);
	buf_time(&b, tb_order_expires_at_ms(order));
	buf_key(&b, "createdAt", false);
	buf_time(&b, tb_order_created_at_ms(order));
	buf_put(&b, "}", 1);
	return buf_finish(&b, len);
}

char *tbs_event_frame(const tb_event *event, size_t *len)
{
	char head[48];
	buf b = { 0 };
	int n = snprintf(head, sizeof head, "id: %lld\ndata: {\"seq\":%lld",
		(long long)tb_event_seq(event), (long long)tb_event_seq(event));

	buf_put(&b, head, (size_t)n);
	buf_key(&b, "type", false);
	buf_str(&b, tb_event_name(event));
	buf_key(&b, "subject", false);
	buf_str(&b, tb_event_type_subject(tb_event_type_get(event)));
	buf_key(&b, "id", false);
	buf_str(&b, tb_event_aggregate_id(event));
	buf_key(&b, "version", false);
	buf_int(&b, (long long)tb_event_aggregate_version(event));
	buf_lit(&b, "}\n\n");
	return buf_finish(&b, len);
}

char *tbs_json_dump(const json_t *json)
{
	return json_dumps(json, PRICE_DUMP_FLAGS | JSON_ENCODE_ANY);
}
