/*
 * The event payloads written as text (json.c, tb_jbuf) are byte for byte
 * what json_dumps(JSON_COMPACT) makes of the json_t renderers they replace
 * on the hot paths: same members, same order, same escaping.
 */
#include "support/tb_test.h"

#include "core/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_non_null(s);
	return s;
}

static void assert_text(tb_jbuf *b, const char *want)
{
	tb_jbuf__raw(b, "}", 1);
	assert_false(b->oom);
	assert_string_equal(b->p, want);
	/* tb_event_to_json embeds such a payload as it is */
	assert_true(tb_json__canonical(b->p, b->len));
	tb_jbuf__free(b);
}

static tb_ticket_row ticket(const char *title, int locked)
{
	tb_ticket_row t;
	memset(&t, 0, sizeof(t));
	tb_id__new(t.id);
	tb_str__copy(t.title, sizeof(t.title), title);
	t.price_minor = 123456789012;
	tb_str__copy(t.currency, sizeof(t.currency), "EUR");
	tb_id__new(t.owner_id);
	if (locked)
		tb_id__new(t.order_id);
	t.locked_until_ms = TBT_T0 + 1000;
	t.status = TB_TICKET_LISTED;
	t.version = 7;
	t.created_at_ms = TBT_T0 - 5;
	return t;
}

static void ticket_text__matches_jansson_for_every_kind_of_title(void **state)
{
	static const char *titles[] = {
		"Concert", "quote \" and backslash \\ and slash /", "tab\tnewline\ncr\rbs\bff\f",
		"\x01\x1f control", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xab", "",
	};
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
		for (int locked = 0; locked < 2; locked++) {
			tb_ticket_row t = ticket(titles[i], locked);
			char *want = dump(tb_json__ticket(&t, TBT_T0));
			tb_jbuf b;
			tb_jbuf__init(&b);
			tb_json__ticket_text(&b, &t, TBT_T0);
			assert_text(&b, want);
			free(want);
			/* a lapsed lock renders as unlocked */
			want = dump(tb_json__ticket(&t, TBT_T0 + 1000));
			tb_jbuf__init(&b);
			tb_json__ticket_text(&b, &t, TBT_T0 + 1000);
			assert_text(&b, want);
			free(want);
		}
	}
}

static void order_text__matches_jansson_with_extra_members(void **state)
{
	tb_order_row o;
	memset(&o, 0, sizeof(o));
	tb_id__new(o.id);
	tb_id__new(o.ticket_id);
	tb_id__new(o.buyer_id);
	tb_id__new(o.seller_id);
	o.status = TB_ORDER_CREATED;
	o.expires_at_ms = TBT_T0 + TBT_LOCK_MS;
	o.price_minor = 5000;
	tb_str__copy(o.currency, sizeof(o.currency), "USD");
	o.version = 3;
	o.created_at_ms = TBT_T0;
	for (int status = TB_ORDER_CREATED; status <= TB_ORDER_REFUNDED; status++) {
		json_t *j = tb_json__order(&o, status);
		json_object_set_new(j, "reason", json_string("buyer \"said\" so"));
		json_object_set_new(j, "version", json_integer(3));
		char *want = dump(j);
		tb_jbuf b;
		tb_jbuf__init(&b);
		tb_json__order_text(&b, &o, status);
		tb_jbuf__key(&b, "reason");
		tb_jbuf__str(&b, "buyer \"said\" so");
		assert_text(&b, want);
		free(want);
	}
}

static void jbuf__grows_past_its_inline_buffer(void **state)
{
	char title[TB_TITLE_SIZE];
	memset(title, '"', sizeof(title) - 1); /* every byte escaped: twice as long */
	title[sizeof(title) - 1] = '\0';
	tb_ticket_row t = ticket(title, 1);
	char *want = dump(tb_json__ticket(&t, TBT_T0));
	tb_jbuf b;
	tb_jbuf__init(&b);
	tb_json__ticket_text(&b, &t, TBT_T0);
	assert_true(b.p != b.small);
	assert_text(&b, want);
	free(want);
}

/* jansson's load-and-dump of s, or NULL when it does not load. */
static char *roundtrip(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	return j ? dump(j) : NULL;
}

static void canonical__only_what_jansson_dumps_back_unchanged(void **state)
{
	static const struct { const char *text; bool canonical; } cases[] = {
		{ "{}", true }, { "[]", true }, { "{\"a\":1}", true },
		{ "{\"a\":[1,-2,0,true,false,null,\"x\"],\"b\":{\"c\":{}}}", true },
		{ "{\"q\":\"\\\" \\\\ \\b\\f\\n\\r\\t\"}", true },
		{ "{\"c\":\"\\u0001\\u001F caf\xc3\xa9\"}", true },
		{ "{\"n\":123456789012345678}", true },
		/* jansson would write these differently, or not load them at all */
		{ "{\"c\":\"\\u001f\"}", false },     /* lowercase hex */
		{ "{\"c\":\"\\u000A\"}", false },     /* \n has a short form */
		{ "{\"c\":\"\\u00e9\"}", false },     /* jansson writes the UTF-8 */
		{ "{\"c\":\"\\u0000\"}", false },     /* NUL refused */
		{ "{\"c\":\"\\/\"}", false },         /* slash unescaped */
		{ "{\"a\": 1}", false }, { " {}", false }, { "{}\n", false },
		{ "{\"a\":1.5}", false }, { "{\"a\":1e3}", false }, { "{\"a\":-0}", false },
		{ "{\"a\":01}", false }, { "{\"a\":1234567890123456789}", false },
		{ "{\"c\":\"\xc3\"}", false },          /* invalid UTF-8 */
		{ "{\"c\":\"a\tb\"}", false },          /* raw control character */
		{ "{\"a\":1,}", false }, { "{\"a\"}", false }, { "[1,]", false }, { "{\"a\":tru}", false },
		{ "{\"a\":1}x", false }, { "1", false }, { "\"s\"", false }, { "", false }, { "{", false },
		{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *s = cases[i].text;
		char *again = roundtrip(s);
		bool canonical = tb_json__canonical(s, strlen(s));
		if (canonical != cases[i].canonical)
			fail_msg("case %zu (%s): canonical is %d", i, s, canonical);
		/* the property the fast path relies on */
		if (canonical && (!again || strcmp(again, s) != 0))
			fail_msg("case %zu (%s) is not what jansson dumps: %s", i, s, again ? again : "(no load)");
		free(again);
	}
}

/* tb_event_to_json as it was: the payload loaded with jansson and dumped inside the line. */
static char *event_line_by_jansson(const tb_event *e)
{
	char at[32];
	tb_json__iso(at, tb_event_occurred_at_ms(e));
	json_t *data = json_loads(tb_event_payload(e), 0, NULL);
	return dump(json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:o}",
		"seq", (json_int_t)tb_event_seq(e), "type", tb_event_name(e),
		"subject", tb_event_type_subject(tb_event_type_get(e)),
		"aggregate_id", tb_event_aggregate_id(e), "aggregate_version", (json_int_t)tb_event_aggregate_version(e),
		"occurred_at", at, "data", data ? data : json_null()));
}

static void event_to_json__same_line_as_through_jansson(void **state)
{
	static const char *payloads[] = {
		"{\"id\":\"x\",\"title\":\"caf\xc3\xa9 \\\"q\\\" \\u0001\",\"n\":-5,\"t\":{\"a\":[true,null]}}",
		"{\"spaced\": 1, \"real\": 2.50}", /* re-rendered by jansson */
		"{\"c\":\"\\u00e9\"}", "not json", "", "[1,2]",
	};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct tb_event e;
		memset(&e, 0, sizeof(e));
		e.row.seq = 42 + (int64_t)i;
		e.row.type = TB_EVENT_ORDER_CREATED;
		tb_str__copy(e.row.aggregate_id, sizeof(e.row.aggregate_id), "agg \"id\"");
		e.row.aggregate_version = 3;
		e.row.occurred_at_ms = TBT_T0;
		e.payload = (char *)payloads[i];
		assert_int_equal(tb_json__canonical(e.payload, strlen(e.payload)), i == 0 || i == 5);
		char *want = event_line_by_jansson(&e), *got = NULL;
		assert_tb_ok(tb_event_to_json(&got, &e));
		assert_string_equal(got, want);
		tb_free(got);
		free(want);
	}
	assert_tb_status(tb_event_to_json(NULL, NULL), TB_EINVAL);
}

/* What tb_json__iso wrote before it did its own calendar arithmetic: gmtime_r and snprintf. */
static void iso_reference(char out[32], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	int milli = (int)(ms % 1000);
	if (milli < 0) {
		milli += 1000;
		secs -= 1;
	}
	struct tm tm;
	char buf[96];
	assert_non_null(gmtime_r(&secs, &tm));
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
	snprintf(out, 32, "%.31s", buf);
}

static void iso__matches_gmtime_from_year_0_to_9999(void **state)
{
	static const int64_t fixed[] = {
		0, -1, 1, 999, -999, -1000, -1001, 86399999, 86400000, -86400000, -86400001,
		951782400000,       /* 2000-02-29 */
		4107542400000,      /* 2100-03-01 (2100 is not a leap year) */
		-62167219200000,    /* 0000-01-01 */
		253402300799999,    /* 9999-12-31T23:59:59.999 */
		1700000000000, 1700000000123,
	};
	char got[32], want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		tb_json__iso(got, fixed[i]);
		iso_reference(want, fixed[i]);
		assert_string_equal(got, want);
	}
	/* Every day of 1600-2400 at a time of day that moves, and a step that walks the range. */
	for (int64_t ms = -11676096000000; ms < 13569465600000; ms += 86400000 + 3601001) {
		tb_json__iso(got, ms);
		iso_reference(want, ms);
		assert_string_equal(got, want);
	}
	for (int64_t ms = -62167219200000; ms < 253402300799999; ms += 7777777777) {
		tb_json__iso(got, ms);
		iso_reference(want, ms);
		assert_string_equal(got, want);
	}
}

static void jbuf_int__matches_printf_at_the_edges(void **state)
{
	static const int64_t values[] = { 0, 1, -1, 9, 10, -10, 1700000000000, INT64_MAX, INT64_MIN, INT64_MIN + 1 };
	char want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		tb_jbuf b;
		tb_jbuf__init(&b);
		tb_jbuf__int(&b, values[i]);
		tb_jbuf__raw(&b, "", 1);
		snprintf(want, sizeof(want), "%" PRId64, values[i]);
		assert_string_equal(b.p, want);
		tb_jbuf__free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ticket_text__matches_jansson_for_every_kind_of_title),
		cmocka_unit_test(order_text__matches_jansson_with_extra_members),
		cmocka_unit_test(jbuf__grows_past_its_inline_buffer),
		cmocka_unit_test(canonical__only_what_jansson_dumps_back_unchanged),
		cmocka_unit_test(event_to_json__same_line_as_through_jansson),
		cmocka_unit_test(iso__matches_gmtime_from_year_0_to_9999),
		cmocka_unit_test(jbuf_int__matches_printf_at_the_edges),
	};
	return cmocka_run_group_tests_name("json_text", tests, NULL, NULL);
}
