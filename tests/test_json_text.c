/*
 * The event payloads written as text (json.c, tb_jbuf) are byte for byte
 * what json_dumps(JSON_COMPACT) makes of the json_t renderers they replace
 * on the hot paths: same members, same order, same escaping.
 */
#include "support/tb_test.h"

#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ticket_text__matches_jansson_for_every_kind_of_title),
		cmocka_unit_test(order_text__matches_jansson_with_extra_members),
		cmocka_unit_test(jbuf__grows_past_its_inline_buffer),
	};
	return cmocka_run_group_tests_name("json_text", tests, NULL, NULL);
}
