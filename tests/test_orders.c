/* Orders: locking, expiry (lazy and on tick), cancellation, visibility. */
#include "support/tb_test.h"

#include <stdlib.h>
#include <string.h>

typedef struct world {
	tbt *t;
	char *seller, *buyer, *third, *ticket;
} world;

static int world_setup(void **state)
{
	world *w = calloc(1, sizeof(*w));
	w->t = tbt_new(0);
	w->seller = tbt_user(w->t, "seller@example.com");
	w->buyer = tbt_user(w->t, "buyer@example.com");
	w->third = tbt_user(w->t, "third@example.com");
	w->ticket = tbt_ticket(w->t, w->seller, "Final", 2500);
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	world *w = *state;
	tbt_free(w->t);
	free(w->seller); free(w->buyer); free(w->third); free(w->ticket);
	free(w);
	return 0;
}

static void create__locks_ticket_and_emits_events(void **state)
{
	world *w = *state;
	tb_order *o = NULL;
	assert_tb_ok(tb_order_create(&o, w->t->m, w->buyer, w->ticket));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_CREATED);
	assert_int_equal(tb_order_expires_at_ms(o), TBT_T0 + TBT_LOCK_MS);
	assert_int_equal(tb_order_price_minor(o), 2500);
	assert_string_equal(tb_order_seller_id(o), w->seller);
	assert_string_equal(tb_order_buyer_id(o), w->buyer);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_true(tb_ticket_locked(tk));
	assert_string_equal(tb_ticket_order_id(tk), tb_order_id(o));
	assert_int_equal(tb_ticket_version(tk), 1);
	tb_ticket_free(tk);
	assert_int_equal(tbt_event_back(w->t, 0), TB_EVENT_TICKET_UPDATED);
	assert_int_equal(tbt_event_back(w->t, 1), TB_EVENT_ORDER_CREATED);
	char *json = NULL;
	assert_tb_ok(tb_order_to_json(&json, o));
	assert_non_null(strstr(json, "\"status\":\"created\""));
	assert_non_null(strstr(json, "\"expires_at\":\"2023-11-14T22:28:20.000Z\""));
	tb_free(json);
	tb_order_free(o);
}

static void create_with_ticket__hands_back_the_ticket_as_a_get_would(void **state)
{
	world *w = *state;
	tb_order *o = (tb_order *)1;
	tb_ticket *tk = (tb_ticket *)1, *got = NULL;
	assert_tb_status(tb_order_create_with_ticket(&o, NULL, w->t->m, w->buyer, w->ticket), TB_EINVAL);
	assert_null(o);
	assert_tb_ok(tb_order_create_with_ticket(&o, &tk, w->t->m, w->buyer, w->ticket));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_CREATED);
	assert_tb_ok(tb_ticket_get(&got, w->t->m, w->ticket));
	char *want = NULL, *have = NULL;
	assert_tb_ok(tb_ticket_to_json(&want, got));
	assert_tb_ok(tb_ticket_to_json(&have, tk));
	assert_string_equal(have, want);
	assert_true(tb_ticket_locked(tk));
	assert_string_equal(tb_ticket_order_id(tk), tb_order_id(o));
	assert_int_equal(tb_ticket_version(tk), 1);
	assert_string_equal(tb_ticket_title(tk), "Final");
	tb_free(want); tb_free(have);
	tb_ticket_free(got);
	tb_ticket_free(tk);
	tb_order_free(o);
	/* A refused order hands back nothing. */
	o = (tb_order *)1;
	tk = (tb_ticket *)1;
	assert_tb_status(tb_order_create_with_ticket(&o, &tk, w->t->m, w->third, w->ticket), TB_ELOCKED);
	assert_null(o);
	assert_null(tk);
}

static tb_session *signin(world *w, const char *email)
{
	tb_session *s = NULL;
	assert_tb_ok(tb_user_signin(&s, w->t->m, email, "correct horse battery"));
	return s;
}

static void create_by_session__buyer_is_the_live_sessions_user(void **state)
{
	world *w = *state;
	tb_session *buyer = signin(w, "buyer@example.com"), *seller = signin(w, "seller@example.com");
	tb_session *third = signin(w, "third@example.com");
	char *other = tbt_ticket(w->t, w->seller, "Other", 700);
	tb_order *o = (tb_order *)1;
	tb_ticket *tk = (tb_ticket *)1;
	size_t events = tbt_event_count(w->t, 0);

	/* Refused before anything is written: malformed, revoked, not a buyer of one's own ticket. */
	assert_tb_status(tb_order_create_by_session(&o, &tk, w->t->m, "not-a-token", w->ticket), TB_EUNAUTH);
	assert_null(o);
	assert_null(tk);
	assert_tb_status(tb_order_create_by_session(NULL, NULL, w->t->m, tb_session_token(buyer), w->ticket), TB_EINVAL);
	assert_tb_ok(tb_user_signout(w->t->m, tb_session_token(third)));
	assert_tb_status(tb_order_create_by_session(&o, &tk, w->t->m, tb_session_token(third), w->ticket), TB_EUNAUTH);
	assert_string_equal(tb_last_error()->message, "session is unknown, revoked or expired");
	assert_tb_status(tb_order_create_by_session(&o, NULL, w->t->m, tb_session_token(seller), w->ticket), TB_EFORBIDDEN);
	assert_int_equal(tbt_event_count(w->t, 0), events);

	assert_tb_ok(tb_order_create_by_session(&o, &tk, w->t->m, tb_session_token(buyer), w->ticket));
	assert_string_equal(tb_order_buyer_id(o), w->buyer);
	assert_string_equal(tb_ticket_order_id(tk), tb_order_id(o));
	tb_order_free(o);
	tb_ticket_free(tk);

	/* An expired session orders nothing either. */
	tbt_advance(w->t, TB_DEFAULT_SESSION_TTL_MS);
	assert_tb_status(tb_order_create_by_session(&o, NULL, w->t->m, tb_session_token(buyer), other), TB_EUNAUTH);
	tb_session_free(buyer);
	tb_session_free(seller);
	tb_session_free(third);
	free(other);
}

static void create__refuses_locked_own_unknown_and_unlisted(void **state)
{
	world *w = *state;
	tb_status st;
	char *first = tbt_order(w->t, w->buyer, w->ticket, &st);
	assert_non_null(first);
	size_t events = tbt_event_count(w->t, 0);
	tb_order *o = (tb_order *)1;
	assert_tb_status(tb_order_create(&o, w->t->m, w->third, w->ticket), TB_ELOCKED);
	assert_null(o);
	assert_string_equal(tb_last_error()->message, "ticket is already reserved");
	assert_tb_status(tb_order_create(&o, w->t->m, w->buyer, w->ticket), TB_ELOCKED);
	char *mine = tbt_ticket(w->t, w->buyer, "Mine", 10);
	events = tbt_event_count(w->t, 0);
	assert_tb_status(tb_order_create(&o, w->t->m, w->buyer, mine), TB_EFORBIDDEN);
	assert_tb_status(tb_order_create(&o, w->t->m, w->buyer, "0190f1a2-0000-7000-8000-000000000000"), TB_ENOTFOUND);
	assert_tb_status(tb_order_create(&o, w->t->m, "0190f1a2-0000-7000-8000-000000000000", mine), TB_ENOTFOUND);
	assert_tb_status(tb_order_create(&o, w->t->m, w->buyer, NULL), TB_EINVAL);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_set_listed(&tk, w->t->m, w->buyer, mine, 0));
	tb_ticket_free(tk);
	events = tbt_event_count(w->t, 0);
	assert_tb_status(tb_order_create(&o, w->t->m, w->third, mine), TB_ESTATE);
	assert_int_equal(tbt_event_count(w->t, 0), events);
	free(mine);
	free(first);
}

static void expiry__manual_clock_steps_through_the_lock(void **state)
{
	world *w = *state;
	char *id = tbt_order(w->t, w->buyer, w->ticket, NULL);
	tb_order *o = NULL;
	tb_ticket *tk = NULL;

	tbt_advance(w->t, TBT_LOCK_MS - 1); /* expires_at - 1 ms: live */
	assert_tb_ok(tb_order_get(&o, w->t->m, w->buyer, id));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_CREATED);
	tb_order_free(o);
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_true(tb_ticket_locked(tk));
	tb_ticket_free(tk);
	assert_tb_status(tb_order_create(&o, w->t->m, w->third, w->ticket), TB_ELOCKED);

	tbt_advance(w->t, 1); /* expires_at: not live, though no tick ran */
	assert_tb_ok(tb_order_get(&o, w->t->m, w->buyer, id));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_EXPIRED);
	tb_order_free(o);
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_false(tb_ticket_locked(tk));
	assert_null(tb_ticket_order_id(tk));
	tb_ticket_free(tk);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_EXPIRED), 0);
	/* Ordering it again expires the old order in the same transaction. */
	char *second = tbt_order(w->t, w->third, w->ticket, NULL);
	assert_non_null(second);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_EXPIRED), 1);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.orders_expired, 0);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_EXPIRED), 1);
	free(id);
	free(second);
}

static void tick__expires_due_orders_once(void **state)
{
	world *w = *state;
	enum { N = 30 };
	char *orders[N];
	for (int i = 0; i < N; i++) {
		char *tk = tbt_ticket(w->t, w->seller, "Row", 100 + i);
		orders[i] = tbt_order(w->t, w->buyer, tk, NULL);
		assert_non_null(orders[i]);
		free(tk);
		if (i == 9)
			tbt_advance(w->t, 1000); /* the last 20 lapse a second later */
	}
	int64_t deadline = 0;
	assert_tb_ok(tb_market_next_deadline(w->t->m, &deadline));
	assert_int_equal(deadline, TBT_T0 + TBT_LOCK_MS);
	tbt_advance(w->t, TBT_LOCK_MS - 1000);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.orders_expired, 10);
	assert_tb_ok(tb_market_next_deadline(w->t->m, &deadline));
	assert_int_equal(deadline, TBT_T0 + 1000 + TBT_LOCK_MS);
	tbt_advance(w->t, 1000);
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.orders_expired, 20);
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.orders_expired, 0);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_EXPIRED), N);
	assert_tb_ok(tb_market_next_deadline(w->t->m, &deadline));
	assert_int_equal(deadline, TB_NO_DEADLINE);
	for (int i = 0; i < N; i++)
		free(orders[i]);
}

static void get_and_list__buyer_only(void **state)
{
	world *w = *state;
	char *id = tbt_order(w->t, w->buyer, w->ticket, NULL);
	tb_order *o = NULL;
	assert_tb_status(tb_order_get(&o, w->t->m, w->third, id), TB_EFORBIDDEN);
	assert_tb_status(tb_order_get(&o, w->t->m, w->seller, id), TB_EFORBIDDEN);
	assert_tb_status(tb_order_get(&o, w->t->m, w->buyer, "0190f1a2-0000-7000-8000-000000000000"), TB_ENOTFOUND);
	assert_tb_status(tb_order_get(&o, w->t->m, w->buyer, "nope"), TB_ENOTFOUND);
	for (int i = 0; i < 4; i++) {
		char *tk = tbt_ticket(w->t, w->seller, "More", 10);
		free(tbt_order(w->t, w->buyer, tk, NULL));
		free(tk);
	}
	tb_order_page *p = NULL;
	assert_tb_ok(tb_order_list(&p, w->t->m, w->buyer, NULL, 3));
	assert_int_equal(tb_order_page_count(p), 3);
	assert_string_equal(tb_order_id(tb_order_page_at(p, 0)), id);
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", tb_order_page_next_cursor(p));
	tb_order_page_free(p);
	assert_tb_ok(tb_order_list(&p, w->t->m, w->buyer, cursor, 3));
	assert_int_equal(tb_order_page_count(p), 2);
	assert_null(tb_order_page_next_cursor(p));
	tb_order_page_free(p);
	assert_tb_ok(tb_order_list(&p, w->t->m, w->third, NULL, 0));
	assert_int_equal(tb_order_page_count(p), 0);
	tb_order_page_free(p);
	assert_tb_status(tb_order_list(&p, w->t->m, w->buyer, "junk", 0), TB_EINVAL);
	free(id);
}

static void cancel__buyer_only_unlocks_and_is_idempotent(void **state)
{
	world *w = *state;
	char *id = tbt_order(w->t, w->buyer, w->ticket, NULL);
	tb_order *o = NULL;
	assert_tb_status(tb_order_cancel(&o, w->t->m, w->third, id), TB_EFORBIDDEN);
	assert_tb_ok(tb_order_cancel(&o, w->t->m, w->buyer, id));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_CANCELLED);
	assert_int_equal(tb_order_version(o), 1);
	tb_order_free(o);
	assert_int_equal(tbt_event_back(w->t, 0), TB_EVENT_TICKET_UPDATED);
	assert_int_equal(tbt_event_back(w->t, 1), TB_EVENT_ORDER_CANCELLED);
	size_t events = tbt_event_count(w->t, 0);
	assert_tb_ok(tb_order_cancel(&o, w->t->m, w->buyer, id));
	assert_int_equal(tb_order_version(o), 1);
	tb_order_free(o);
	assert_int_equal(tbt_event_count(w->t, 0), events);
	char *again = tbt_order(w->t, w->third, w->ticket, NULL);
	assert_non_null(again);
	tbt_advance(w->t, TBT_LOCK_MS);
	assert_tb_status(tb_order_cancel(&o, w->t->m, w->third, again), TB_EEXPIRED);
	free(again);
	free(id);
}

static void price__fixed_at_order_time(void **state)
{
	world *w = *state;
	char *id = tbt_order(w->t, w->buyer, w->ticket, NULL);
	tb_ticket *tk = NULL;
	assert_tb_status(tb_ticket_update(&tk, w->t->m, w->seller, w->ticket, NULL, 99999, TB_ANY_VERSION), TB_ELOCKED);
	tb_order *o = NULL;
	assert_tb_ok(tb_order_get(&o, w->t->m, w->buyer, id));
	assert_int_equal(tb_order_price_minor(o), 2500);
	tb_order_free(o);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create__locks_ticket_and_emits_events, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(create_with_ticket__hands_back_the_ticket_as_a_get_would, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(create_by_session__buyer_is_the_live_sessions_user, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(create__refuses_locked_own_unknown_and_unlisted, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(expiry__manual_clock_steps_through_the_lock, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(tick__expires_due_orders_once, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(get_and_list__buyer_only, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(cancel__buyer_only_unlocks_and_is_idempotent, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(price__fixed_at_order_time, world_setup, world_teardown),
	};
	return cmocka_run_group_tests_name("orders", tests, NULL, NULL);
}
