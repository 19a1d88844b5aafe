/*
 * JSON renderings of records, shared by the *_to_json calls and the event
 * payloads, so a record and its event always agree.  Secrets (password
 * hashes, session tokens, payment tokens) are never rendered.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

/* n as exactly `width` decimal digits (n < 10^width) at p; returns the end. */
static char *digits(char *p, unsigned n, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + n % 10);
		n /= 10;
	}
	return p + width;
}

/*
 * Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days): what gmtime_r computes, without its lock and without
 * snprintf, on the hot path of every event payload.
 */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void tb_json__iso(char out[32], int64_t ms)
{
	/* Floor division: a time before 1970 counts back from the day, the second, the millisecond. */
	int64_t secs = ms / 1000 - (ms % 1000 < 0);
	int64_t days = secs / 86400 - (secs % 86400 < 0);
	unsigned sod = (unsigned)(secs - days * 86400), milli = (unsigned)(ms - secs * 1000);
	int64_t year;
	unsigned month, day;

	civil_from_days(days, &year, &month, &day);
	if (year < 0 || year > 9999) {
		/* Outside four-digit years (never a real timestamp here): the general path. */
		time_t t = (time_t)secs;
		struct tm tm;
		char buf[96];
		if (!gmtime_r(&t, &tm))
			memset(&tm, 0, sizeof(tm));
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
			tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
		tb_str__copy(out, 32, buf);
		return;
	}
	char *p = digits(out, (unsigned)year, 4);
	*p++ = '-';
	p = digits(p, month, 2);
	*p++ = '-';
	p = digits(p, day, 2);
	*p++ = 'T';
	p = digits(p, sod / 3600, 2);
	*p++ = ':';
	p = digits(p, sod / 60 % 60, 2);
	*p++ = ':';
	p = digits(p, sod % 60, 2);
	*p++ = '.';
	p = digits(p, milli, 3);
	*p++ = 'Z';
	*p = '\0';
}

json_t *tb_json__str_or_null(const char *s)
{
	return (s && *s) ? json_string(s) : json_null();
}

static json_t *iso(int64_t ms)
{
	char buf[32];
	tb_json__iso(buf, ms);
	return json_string(buf);
}

json_t *tb_json__user(const tb_user_row *row)
{
	return json_pack("{s:s, s:s, s:I, s:o}", "id", row->id, "email", row->email, "version",
		(json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__ticket(const tb_ticket_row *row, int64_t now_ms)
{
	bool locked = row->order_id[0] && row->locked_until_ms > now_ms;
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:b, s:o, s:s, s:I, s:o}",
		"id", row->id, "title", row->title, "price_minor", (json_int_t)row->price_minor,
		"currency", row->currency, "owner_id", row->owner_id,
		"order_id", locked ? json_string(row->order_id) : json_null(),
		"locked", locked,
		"locked_until", locked ? iso(row->locked_until_ms) : json_null(),
		"status", tb_ticket_status_name((tb_ticket_status)row->status),
		"version", (json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__order(const tb_order_row *row, int effective_status)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s, s:I, s:o}",
		"id", row->id, "ticket_id", row->ticket_id, "buyer_id", row->buyer_id,
		"seller_id", row->seller_id,
		"status", tb_order_status_name((tb_order_status)effective_status),
		"expires_at", iso(row->expires_at_ms), "expires_at_ms", (json_int_t)row->expires_at_ms,
		"price_minor", (json_int_t)row->price_minor, "currency", row->currency,
		"version", (json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__charge(const tb_charge_row *row)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:o}",
		"id", row->id, "order_id", row->order_id,
		"status", tb_charge_status_name((tb_charge_status)row->status),
		"amount_minor", (json_int_t)row->amount_minor, "currency", row->currency,
		"provider", row->provider,
		"provider_charge_id", tb_json__str_or_null(row->provider_charge_id),
		"provider_refund_id", tb_json__str_or_null(row->provider_refund_id),
		"idempotency_key", row->idempotency_key,
		"failure_code", tb_json__str_or_null(row->failure_code),
		"decline_code", tb_json__str_or_null(row->decline_code),
		"failure_message", tb_json__str_or_null(row->failure_message),
		"refund_reason", tb_json__str_or_null(row->refund_reason),
		"attempts", (json_int_t)row->attempts, "version", (json_int_t)row->version,
		"created_at", iso(row->created_at_ms));
}

/* ---- text payloads --------------------------------------------------------- */

/*
 * The hot paths (an order and the ticket it locks or frees) write their
 * event payloads straight into a buffer, without building a json_t first.
 * The text is byte for byte what json_dumps(JSON_COMPACT) makes of the
 * json_t renderers above (same members, same order, same escaping), which
 * tests/test_json_text.c checks.
 */

void tb_jbuf__init(tb_jbuf *b)
{
	b->p = b->small;
	b->len = 0;
	b->cap = sizeof(b->small);
	b->oom = false;
	b->small[0] = '\0';
}

void tb_jbuf__free(tb_jbuf *b)
{
	if (b->p != b->small)
		free(b->p);
	tb_jbuf__init(b);
}

static bool jbuf_reserve(tb_jbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap * 2;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = b->p == b->small ? malloc(cap) : realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	if (b->p == b->small)
		memcpy(p, b->small, b->len + 1);
	b->p = p;
	b->cap = cap;
	return true;
}

void tb_jbuf__raw(tb_jbuf *b, const char *s, size_t n)
{
	if (!jbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A JSON string, escaped as jansson does by default (no \/, UTF-8 kept). */
void tb_jbuf__str(tb_jbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	if (!jbuf_reserve(b, n * 6 + 2))
		return;
	char *o = b->p + b->len;
	*o++ = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"': *o++ = '\\'; *o++ = '"'; break;
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\b': *o++ = '\\'; *o++ = 'b'; break;
		case '\f': *o++ = '\\'; *o++ = 'f'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		default:
			if (*c < 0x20) {
				memcpy(o, "\\u00", 4);
				o[4] = hex[*c >> 4];
				o[5] = hex[*c & 15];
				o += 6;
			} else {
				*o++ = (char)*c;
			}
		}
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->p);
}

void tb_jbuf__int(tb_jbuf *b, int64_t v)
{
	char num[24];
	char *p = num + sizeof(num);
	/* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	tb_jbuf__raw(b, p, (size_t)(num + sizeof(num) - p));
}

tb_status tb_jbuf__take(char **out, tb_jbuf *b)
{
	char *text = NULL;
	if (!b->oom) {
		if (b->p != b->small) {
			text = b->p;
			tb_jbuf__init(b); /* the heap buffer is the caller's now */
		} else if ((text = malloc(b->len + 1)) != NULL) {
			memcpy(text, b->small, b->len + 1);
		}
	}
	tb_jbuf__free(b);
	*out = text;
	return text ? TB_OK : tb_error__oom();
}

/* ,"key": (the comma unless the object was just opened) */
void tb_jbuf__key(tb_jbuf *b, const char *key)
{
	if (b->len && b->p[b->len - 1] != '{')
		tb_jbuf__raw(b, ",", 1);
	tb_jbuf__str(b, key);
	tb_jbuf__raw(b, ":", 1);
}

static void jbuf_iso(tb_jbuf *b, int64_t ms)
{
	char buf[32];
	tb_json__iso(buf, ms);
	tb_jbuf__str(b, buf);
}

static void jbuf_str_member(tb_jbuf *b, const char *key, const char *value)
{
	tb_jbuf__key(b, key);
	tb_jbuf__str(b, value);
}

static void jbuf_int_member(tb_jbuf *b, const char *key, int64_t value)
{
	tb_jbuf__key(b, key);
	tb_jbuf__int(b, value);
}

void tb_json__order_text(tb_jbuf *b, const tb_order_row *row, int effective_status)
{
	tb_jbuf__raw(b, "{", 1);
	jbuf_str_member(b, "id", row->id);
	jbuf_str_member(b, "ticket_id", row->ticket_id);
	jbuf_str_member(b, "buyer_id", row->buyer_id);
	jbuf_str_member(b, "seller_id", row->seller_id);
	jbuf_str_member(b, "status", tb_order_status_name((tb_order_status)effective_status));
	tb_jbuf__key(b, "expires_at");
	jbuf_iso(b, row->expires_at_ms);
	jbuf_int_member(b, "expires_at_ms", row->expires_at_ms);
	jbuf_int_member(b, "price_minor", row->price_minor);
	jbuf_str_member(b, "currency", row->currency);
	jbuf_int_member(b, "version", row->version);
	tb_jbuf__key(b, "created_at");
	jbuf_iso(b, row->created_at_ms);
}

void tb_json__ticket_text(tb_jbuf *b, const tb_ticket_row *row, int64_t now_ms)
{
	bool locked = row->order_id[0] && row->locked_until_ms > now_ms;
	tb_jbuf__raw(b, "{", 1);
	jbuf_str_member(b, "id", row->id);
	jbuf_str_member(b, "title", row->title);
	jbuf_int_member(b, "price_minor", row->price_minor);
	jbuf_str_member(b, "currency", row->currency);
	jbuf_str_member(b, "owner_id", row->owner_id);
	tb_jbuf__key(b, "order_id");
	if (locked)
		tb_jbuf__str(b, row->order_id);
	else
		tb_jbuf__raw(b, "null", 4);
	tb_jbuf__key(b, "locked");
	tb_jbuf__raw(b, locked ? "true" : "false", locked ? 4 : 5);
	tb_jbuf__key(b, "locked_until");
	if (locked)
		jbuf_iso(b, row->locked_until_ms);
	else
		tb_jbuf__raw(b, "null", 4);
	jbuf_str_member(b, "status", tb_ticket_status_name((tb_ticket_status)row->status));
	jbuf_int_member(b, "version", row->version);
	tb_jbuf__key(b, "created_at");
	jbuf_iso(b, row->created_at_ms);
}

tb_status tb_json__dump(char **out, json_t *obj)
{
	if (!out) {
		json_decref(obj);
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	}
	*out = NULL;
	if (!obj)
		return tb_error__oom();
	*out = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return *out ? TB_OK : tb_error__oom();
}

/* ---- canonical payloads ---------------------------------------------------- */

/*
 * Whether `s` is JSON text that jansson would dump back byte for byte after
 * loading it: no whitespace between tokens, strings escaped exactly as
 * tb_jbuf__str does (valid UTF-8, no NUL), integers in their shortest form
 * within int64, no reals, at most CANON_DEPTH levels deep.  Every payload the
 * library writes qualifies; anything else is for jansson to judge.  (A
 * duplicate key is not detected: the library never writes one.)
 */
#define CANON_DEPTH 32

typedef struct canon {
	const char *p, *end;
} canon;

static bool canon_value(canon *c, int depth);

static bool canon_lit(canon *c, const char *word, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool canon_string(canon *c)
{
	static const char hex[] = "0123456789ABCDEF";
	if (c->p == c->end || *c->p != '"')
		return false;
	const char *start = ++c->p;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p;
		if (ch < 0x20)
			return false;
		if (ch != '\\') {
			c->p++;
			continue;
		}
		if (c->end - c->p < 2)
			return false;
		char e = c->p[1];
		if (e && strchr("\"\\bfnrt", e)) {
			c->p += 2;
			continue;
		}
		/* \u00XX, as tb_jbuf__str writes the control characters without a short form */
		if (e != 'u' || c->end - c->p < 6 || memcmp(c->p + 2, "00", 2) != 0)
			return false;
		const char *hi = memchr(hex, c->p[4], 2), *lo = memchr(hex, c->p[5], 16);
		if (!hi || !lo)
			return false;
		int v = (int)(hi - hex) * 16 + (int)(lo - hex);
		if (v == 0 || strchr("\b\f\n\r\t", v))
			return false;
		c->p += 6;
	}
	if (c->p == c->end || !tb_utf8__valid(start, (size_t)(c->p - start), NULL))
		return false;
	c->p++;
	return true;
}

static bool canon_integer(canon *c)
{
	const char *start = c->p;
	if (c->p < c->end && *c->p == '-')
		c->p++;
	const char *digits = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	size_t n = (size_t)(c->p - digits);
	if (n == 0 || n > 18 || (n > 1 && *digits == '0') || (n == 1 && *digits == '0' && digits != start))
		return false;
	return c->p == c->end || (*c->p != '.' && *c->p != 'e' && *c->p != 'E');
}

static bool canon_members(canon *c, char close, int depth)
{
	c->p++;
	if (c->p < c->end && *c->p == close) {
		c->p++;
		return true;
	}
	for (;;) {
		if (close == '}' && (!canon_string(c) || !canon_lit(c, ":", 1)))
			return false;
		if (!canon_value(c, depth + 1))
			return false;
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return true;
		}
		if (!canon_lit(c, ",", 1))
			return false;
	}
}

static bool canon_value(canon *c, int depth)
{
	if (c->p == c->end || depth > CANON_DEPTH)
		return false;
	switch (*c->p) {
	case '{': return canon_members(c, '}', depth);
	case '[': return canon_members(c, ']', depth);
	case '"': return canon_string(c);
	case 't': return canon_lit(c, "true", 4);
	case 'f': return canon_lit(c, "false", 5);
	case 'n': return canon_lit(c, "null", 4);
	default: return canon_integer(c);
	}
}

bool tb_json__canonical(const char *s, size_t len)
{
	canon c = { s, s + len };
	/* jansson loads only an object or an array at the top */
	return len && (*s == '{' || *s == '[') && canon_value(&c, 0) && c.p == c.end;
}
