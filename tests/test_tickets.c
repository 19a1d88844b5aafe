/* Tickets: listing rules, edits, locks, pagination. */
#include "support/tb_test.h"

#include <stdlib.h>
#include <string.h>

static void create__keeps_price_in_minor_units(void **state)
{
	tbt *t = *state;
	char *owner = tbt_user(t, "seller@example.com");
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_create(&tk, t->m, owner, "  Concert  ", 1999, "eur"));
	assert_string_equal(tb_ticket_title(tk), "Concert");
	assert_int_equal(tb_ticket_price_minor(tk), 1999);
	assert_string_equal(tb_ticket_currency(tk), "EUR");
	assert_string_equal(tb_ticket_owner_id(tk), owner);
	assert_null(tb_ticket_order_id(tk));
	assert_false(tb_ticket_locked(tk));
	assert_int_equal(tb_ticket_version(tk), 0);
	assert_int_equal(tb_ticket_status_get(tk), TB_TICKET_LISTED);
	char *json = NULL;
	assert_tb_ok(tb_ticket_to_json(&json, tk));
	assert_non_null(strstr(json, "\"price_minor\":1999"));
	assert_non_null(strstr(json, "\"order_id\":null"));
	tb_free(json);
	tb_ticket_free(tk);
	assert_tb_ok(tb_ticket_create(&tk, t->m, owner, "Default currency", 5, NULL));
	assert_string_equal(tb_ticket_currency(tk), "USD");
	tb_ticket_free(tk);
	assert_int_equal(tbt_event_count(t, TB_EVENT_TICKET_CREATED), 2);
	free(owner);
}

static void create__refuses_bad_input_and_changes_nothing(void **state)
{
	tbt *t = *state;
	char *owner = tbt_user(t, "seller@example.com");
	char long_title[260];
	memset(long_title, 'x', 201);
	long_title[201] = '\0';
	struct { const char *title; int64_t price; const char *currency; const char *field; } bad[] = {
		{ "", 100, NULL, "title" }, { "   ", 100, NULL, "title" }, { NULL, 100, NULL, "title" },
		{ long_title, 100, NULL, "title" }, { "bad \xc3\x28 utf8", 100, NULL, "title" },
		{ "overlong \xc0\xaf", 100, NULL, "title" }, { "surrogate \xed\xa0\x80", 100, NULL, "title" },
		{ "tab\tinside", 100, NULL, "title" }, { "ok", 0, NULL, "price" }, { "ok", -1, NULL, "price" },
		{ "ok", INT64_MIN, NULL, "price" }, { "ok", TB_PRICE_MAX_MINOR + 1, NULL, "price" },
		{ "ok", 100, "US", "currency" }, { "ok", 100, "US1", "currency" }, { "ok", 100, "", "currency" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tb_ticket *tk = (tb_ticket *)1;
		tb_status st = tb_ticket_create(&tk, t->m, owner, bad[i].title, bad[i].price, bad[i].currency);
		if (st != TB_EINVAL)
			fail_msg("case %zu gave %s", i, tb_status_name(st));
		assert_null(tk);
		assert_string_equal(tbt_field(), bad[i].field);
	}
	tb_ticket *tk = NULL;
	assert_tb_status(tb_ticket_create(&tk, t->m, "0190f1a2-0000-7000-8000-000000000000", "ok", 1, NULL), TB_ENOTFOUND);
	assert_int_equal(tbt_event_count(t, TB_EVENT_TICKET_CREATED), 0);
	tb_ticket_page *p = NULL;
	assert_tb_ok(tb_ticket_list(&p, t->m, NULL));
	assert_int_equal(tb_ticket_page_count(p), 0);
	tb_ticket_page_free(p);
	/* 200 multi-byte characters are fine: the limit counts characters. */
	char euros[700] = "";
	for (int i = 0; i < 200; i++)
		strcat(euros, "\xe2\x82\xac");
	assert_tb_ok(tb_ticket_create(&tk, t->m, owner, euros, TB_PRICE_MAX_MINOR, NULL));
	tb_ticket_free(tk);
	free(owner);
}

static void update__owner_only_and_bumps_version(void **state)
{
	tbt *t = *state;
	char *owner = tbt_user(t, "seller@example.com");
	char *other = tbt_user(t, "other@example.com");
	char *id = tbt_ticket(t, owner, "Show", 1000);
	tb_ticket *tk = NULL;
	assert_tb_status(tb_ticket_update(&tk, t->m, other, id, "Mine now", TB_KEEP, TB_ANY_VERSION), TB_EFORBIDDEN);
	assert_null(tk);
	assert_tb_ok(tb_ticket_update(&tk, t->m, owner, id, NULL, 1250, TB_ANY_VERSION));
	assert_int_equal(tb_ticket_price_minor(tk), 1250);
	assert_string_equal(tb_ticket_title(tk), "Show");
	assert_int_equal(tb_ticket_version(tk), 1);
	tb_ticket_free(tk);
	assert_tb_status(tb_ticket_update(&tk, t->m, owner, id, NULL, 1300, 0), TB_ECONFLICT);
	assert_tb_ok(tb_ticket_update(&tk, t->m, owner, id, "Show (late)", TB_KEEP, 1));
	assert_int_equal(tb_ticket_version(tk), 2);
	tb_ticket_free(tk);
	assert_tb_status(tb_ticket_update(&tk, t->m, owner, id, "", TB_KEEP, TB_ANY_VERSION), TB_EINVAL);
	assert_string_equal(tbt_field(), "title");
	assert_tb_status(tb_ticket_update(&tk, t->m, owner, id, NULL, -5, TB_ANY_VERSION), TB_EINVAL);
	assert_string_equal(tbt_field(), "price");
	assert_tb_status(tb_ticket_update(&tk, t->m, owner, "0190f1a2-0000-7000-8000-000000000000", NULL, 5,
		TB_ANY_VERSION), TB_ENOTFOUND);
	assert_int_equal(tbt_event_count(t, TB_EVENT_TICKET_UPDATED), 2);
	assert_tb_ok(tb_ticket_get(&tk, t->m, id));
	assert_int_equal(tb_ticket_price_minor(tk), 1250);
	tb_ticket_free(tk);
	free(owner);
	free(other);
	free(id);
}

static void update__refused_while_locked_allowed_once_lapsed(void **state)
{
	tbt *t = *state;
	char *owner = tbt_user(t, "seller@example.com");
	char *buyer = tbt_user(t, "buyer@example.com");
	char *id = tbt_ticket(t, owner, "Show", 1000);
	char *order = tbt_order(t, buyer, id, NULL);
	assert_non_null(order);
	tb_ticket *tk = NULL;
	assert_tb_status(tb_ticket_update(&tk, t->m, owner, id, NULL, 5000, TB_ANY_VERSION), TB_ELOCKED);
	assert_tb_status(tb_ticket_set_listed(&tk, t->m, owner, id, 0), TB_ELOCKED);
	tbt_advance(t, TBT_LOCK_MS);
	/* No tick has run: the lapsed lock is released by the edit itself. */
	assert_tb_ok(tb_ticket_update(&tk, t->m, owner, id, NULL, 5000, TB_ANY_VERSION));
	assert_int_equal(tb_ticket_price_minor(tk), 5000);
	tb_ticket_free(tk);
	assert_int_equal(tbt_event_count(t, TB_EVENT_ORDER_EXPIRED), 1);
	free(owner);
	free(buyer);
	free(id);
	free(order);
}

static void list__filters_available_owner_and_title(void **state)
{
	tbt *t = *state;
	char *a = tbt_user(t, "a@example.com");
	char *b = tbt_user(t, "b@example.com");
	char *t1 = tbt_ticket(t, a, "Rock Concert", 100);
	char *t2 = tbt_ticket(t, a, "Jazz night", 100);
	char *t3 = tbt_ticket(t, b, "ROCK opera", 100);
	free(tbt_order(t, b, t1, NULL));
	tb_ticket_query q = TB_TICKET_QUERY_INIT;
	tb_ticket_page *p = NULL;
	q.available_only = 1;
	assert_tb_ok(tb_ticket_list(&p, t->m, &q));
	assert_int_equal(tb_ticket_page_count(p), 2);
	assert_string_equal(tb_ticket_id(tb_ticket_page_at(p, 0)), t2);
	assert_null(tb_ticket_page_at(p, 2));
	assert_null(tb_ticket_page_next_cursor(p));
	tb_ticket_page_free(p);
	q.available_only = 0;
	q.owner_id = a;
	assert_tb_ok(tb_ticket_list(&p, t->m, &q));
	assert_int_equal(tb_ticket_page_count(p), 2);
	assert_true(tb_ticket_locked(tb_ticket_page_at(p, 0)));
	tb_ticket_page_free(p);
	q.owner_id = NULL;
	q.title_contains = "rock";
	assert_tb_ok(tb_ticket_list(&p, t->m, &q));
	assert_int_equal(tb_ticket_page_count(p), 2);
	tb_ticket_page_free(p);
	q.title_contains = "%";
	assert_tb_ok(tb_ticket_list(&p, t->m, &q));
	assert_int_equal(tb_ticket_page_count(p), 0);
	tb_ticket_page_free(p);
	/* The lock lapses: the ticket is available again without a tick. */
	tbt_advance(t, TBT_LOCK_MS);
	q.title_contains = NULL;
	q.available_only = 1;
	assert_tb_ok(tb_ticket_list(&p, t->m, &q));
	assert_int_equal(tb_ticket_page_count(p), 3);
	tb_ticket_page_free(p);
	free(a); free(b); free(t1); free(t2); free(t3);
}

static void list__pagination_is_stable_under_concurrent_inserts(void **state)
{
	tbt *t = *state;
	char *owner = tbt_user(t, "seller@example.com");
	char *ids[25];
	for (int i = 0; i < 25; i++)
		ids[i] = tbt_ticket(t, owner, "T", 100 + i);
	int seen[25] = { 0 };
	char cursor[64] = "";
	size_t pages = 0, total = 0;
	for (;;) {
		tb_ticket_query q = TB_TICKET_QUERY_INIT;
		q.limit = 10;
		q.after = cursor[0] ? cursor : NULL;
		tb_ticket_page *p = NULL;
		assert_tb_ok(tb_ticket_list(&p, t->m, &q));
		for (size_t i = 0; i < tb_ticket_page_count(p); i++) {
			const char *id = tb_ticket_id(tb_ticket_page_at(p, i));
			total++;
			for (int k = 0; k < 25; k++)
				if (strcmp(id, ids[k]) == 0)
					seen[k]++;
		}
		/* Someone lists more tickets between our pages. */
		if (pages++ == 0)
			for (int k = 0; k < 5; k++)
				free(tbt_ticket(t, owner, "Inserted meanwhile", 1));
		const char *next = tb_ticket_page_next_cursor(p);
		if (!next) {
			tb_ticket_page_free(p);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", next);
		tb_ticket_page_free(p);
	}
	for (int k = 0; k < 25; k++)
		assert_int_equal(seen[k], 1);
	assert_int_equal(total, 30); /* later inserts come after, never twice */
	for (int i = 0; i < 25; i++)
		free(ids[i]);
	free(owner);
}

static void list__refuses_bad_queries(void **state)
{
	tbt *t = *state;
	tb_ticket_page *p = NULL;
	tb_ticket_query q = TB_TICKET_QUERY_INIT;
	q.limit = TB_PAGE_MAX + 1;
	assert_tb_status(tb_ticket_list(&p, t->m, &q), TB_EINVAL);
	assert_string_equal(tbt_field(), "limit");
	q.limit = 10;
	q.after = "not-a-cursor";
	assert_tb_status(tb_ticket_list(&p, t->m, &q), TB_EINVAL);
	assert_string_equal(tbt_field(), "after");
	q.after = NULL;
	q.version = 99;
	assert_tb_status(tb_ticket_list(&p, t->m, &q), TB_EVERSION);
	assert_null(p);
}

static void get__unknown_and_malformed_ids_are_not_found(void **state)
{
	tbt *t = *state;
	tb_ticket *tk = NULL;
	assert_tb_status(tb_ticket_get(&tk, t->m, "0190f1a2-0000-7000-8000-000000000000"), TB_ENOTFOUND);
	assert_tb_status(tb_ticket_get(&tk, t->m, "507f1f77bcf86cd799439011"), TB_ENOTFOUND);
	assert_tb_status(tb_ticket_get(&tk, t->m, ""), TB_EINVAL);
	assert_null(tk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create__keeps_price_in_minor_units, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(create__refuses_bad_input_and_changes_nothing, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(update__owner_only_and_bumps_version, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(update__refused_while_locked_allowed_once_lapsed, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(list__filters_available_owner_and_title, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(list__pagination_is_stable_under_concurrent_inserts, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(list__refuses_bad_queries, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(get__unknown_and_malformed_ids_are_not_found, tbt_setup, tbt_teardown),
	};
	return cmocka_run_group_tests_name("tickets", tests, NULL, NULL);
}
