/* Payments: the pay flow, declines, retries, late successes, refunds, webhooks. */
#include "support/tb_test.h"

#include <stdlib.h>
#include <string.h>

typedef struct world {
	tbt *t;
	char *seller, *buyer, *third, *ticket, *order;
} world;

static world *world_new(tbt *t)
{
	world *w = calloc(1, sizeof(*w));
	w->t = t;
	w->seller = tbt_user(t, "seller@example.com");
	w->buyer = tbt_user(t, "buyer@example.com");
	w->third = tbt_user(t, "third@example.com");
	w->ticket = tbt_ticket(t, w->seller, "Cup final", 1999);
	w->order = tbt_order(t, w->buyer, w->ticket, NULL);
	assert_non_null(w->order);
	return w;
}

static int world_setup(void **state)
{
	*state = world_new(tbt_new(0));
	return 0;
}

static int world_setup_file(void **state)
{
	*state = world_new(tbt_new(1));
	return 0;
}

static int world_teardown(void **state)
{
	world *w = *state;
	tbt_free(w->t);
	free(w->seller); free(w->buyer); free(w->third); free(w->ticket); free(w->order);
	free(w);
	return 0;
}

static tb_fake_stats fake_stats(world *w)
{
	tb_fake_stats s;
	tb_payment_fake_stats(w->t->pay, &s);
	return s;
}

static tb_order_status order_status(world *w)
{
	tb_order *o = NULL;
	assert_tb_ok(tb_order_get(&o, w->t->m, w->buyer, w->order));
	tb_order_status s = tb_order_status_get(o);
	tb_order_free(o);
	return s;
}

static void pay__success_completes_and_hands_the_ticket_to_the_buyer(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	assert_int_equal(tb_charge_amount_minor(c), 1999); /* exactly: no float ever touched it */
	assert_string_equal(tb_charge_currency(c), "USD");
	assert_non_null(tb_charge_provider_charge_id(c));
	assert_string_equal(tb_charge_provider(c), "fake");
	char *json = NULL;
	assert_tb_ok(tb_charge_to_json(&json, c));
	assert_null(strstr(json, "tok_visa")); /* the token is never rendered */
	tb_free(json);
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_string_equal(tb_ticket_owner_id(tk), w->buyer);
	assert_int_equal(tb_ticket_status_get(tk), TB_TICKET_UNLISTED);
	assert_false(tb_ticket_locked(tk));
	tb_ticket_free(tk);
	assert_int_equal(fake_stats(w).charges, 1);
	/* The seller no longer owns it; the new owner may list it again. */
	assert_tb_status(tb_ticket_update(&tk, w->t->m, w->seller, w->ticket, NULL, 5000, TB_ANY_VERSION), TB_EFORBIDDEN);
	tb_order *o = NULL;
	assert_tb_status(tb_order_create(&o, w->t->m, w->third, w->ticket), TB_ESTATE);
	assert_tb_ok(tb_ticket_update(&tk, w->t->m, w->buyer, w->ticket, NULL, 2500, TB_ANY_VERSION));
	tb_ticket_free(tk);
	assert_tb_ok(tb_ticket_set_listed(&tk, w->t->m, w->buyer, w->ticket, 1));
	tb_ticket_free(tk);
	assert_tb_ok(tb_order_create(&o, w->t->m, w->third, w->ticket));
	assert_string_equal(tb_order_seller_id(o), w->buyer);
	tb_order_free(o);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_CREATED), 1);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_SUCCEEDED), 1);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_COMPLETED), 1);
}

static void pay__decline_cancels_unlocks_and_keeps_the_reason(void **state)
{
	world *w = *state;
	tb_charge *c = (tb_charge *)1;
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_chargeDeclinedInsufficientFunds"), TB_EDECLINED);
	assert_null(c);
	assert_string_equal(tb_last_error()->message, "Your card has insufficient funds.");
	assert_int_equal(order_status(w), TB_ORDER_CANCELLED);
	assert_tb_ok(tb_charge_get_latest(&c, w->t->m, w->buyer, w->order));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_FAILED);
	assert_string_equal(tb_charge_failure_code(c), "card_declined");
	assert_string_equal(tb_charge_decline_code(c), "insufficient_funds");
	assert_string_equal(tb_charge_failure_message(c), "Your card has insufficient funds.");
	tb_charge_free(c);
	assert_tb_status(tb_charge_get_latest(&c, w->t->m, w->third, w->order), TB_EFORBIDDEN);
	free(tbt_order(w->t, w->third, w->ticket, NULL)); /* unlocked: someone else may order it */
	assert_int_equal(fake_stats(w).charges, 0);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_FAILED), 1);
}

static void pay__twice_is_refused_and_charges_once(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"), TB_ESTATE);
	assert_int_equal(fake_stats(w).charges, 1);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_CREATED), 1);
}

static void pay__refuses_bad_input_and_others_orders(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	size_t events = tbt_event_count(w->t, 0);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->third, w->order, "tok_visa"), TB_EFORBIDDEN);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, "0190f1a2-0000-7000-8000-000000000000", "tok_visa"), TB_ENOTFOUND);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, ""), TB_EINVAL);
	assert_string_equal(tbt_field(), "token");
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok visa"), TB_EINVAL);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, NULL), TB_EINVAL);
	assert_int_equal(tbt_event_count(w->t, 0), events);
	assert_int_equal(order_status(w), TB_ORDER_CREATED);
	/* A token the provider rejects outright: no money, and the order is cancelled. */
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_nonsense"), TB_EPROVIDER);
	assert_int_equal(order_status(w), TB_ORDER_CANCELLED);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"), TB_ESTATE);
	assert_int_equal(fake_stats(w).charges, 0);
}

static void pay__expired_order_is_refused(void **state)
{
	world *w = *state;
	tbt_advance(w->t, TBT_LOCK_MS);
	tb_charge *c = NULL;
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"), TB_EEXPIRED);
	assert_int_equal(fake_stats(w).calls, 0);
}

static void cancel__complete_order_is_refused(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	tb_order *o = NULL;
	assert_tb_status(tb_order_cancel(&o, w->t->m, w->buyer, w->order), TB_ESTATE);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_string_equal(tb_ticket_owner_id(tk), w->buyer);
	tb_ticket_free(tk);
}

static void pay_vs_expire__no_double_sale_and_late_success_refunded_once(void **state)
{
	world *w = *state;
	/* The provider hangs: the outcome is unknown, the charge stays pending. */
	assert_tb_ok(tb_payment_fake_script(w->t->pay, "tok_visa", TB_FAKE_TIMEOUT));
	tbt_advance(w->t, TBT_LOCK_MS - 10);
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	char key[64];
	snprintf(key, sizeof(key), "%s", tb_charge_idempotency_key(c));
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_AWAITING_PAYMENT);

	/* Past expires_at but inside the grace period, the lock holds. */
	tbt_advance(w->t, 10);
	tb_order *o = NULL;
	assert_tb_status(tb_order_create(&o, w->t->m, w->third, w->ticket), TB_ELOCKED);
	assert_int_equal(order_status(w), TB_ORDER_AWAITING_PAYMENT);

	/* The provider stays silent past the grace: the order expires, the ticket sells again. */
	assert_tb_ok(tb_payment_fake_script(w->t->pay, "tok_visa", TB_FAKE_TIMEOUT));
	tbt_advance(w->t, TB_DEFAULT_PAYMENT_GRACE_MS);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.orders_expired, 1);
	assert_int_equal(stats.payments_retried, 1);
	assert_int_equal(stats.payments_resolved, 0);
	assert_int_equal(order_status(w), TB_ORDER_EXPIRED);
	char *second = tbt_order(w->t, w->third, w->ticket, NULL);
	assert_non_null(second);

	/* Now the provider answers: the money was taken, for an order that cannot complete. */
	tbt_advance(w->t, 60 * 1000);
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_tb_ok(tb_charge_get_latest(&c, w->t->m, w->buyer, w->order));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_REFUNDED);
	assert_string_equal(tb_charge_refund_reason(c), "late_payment");
	assert_non_null(tb_charge_provider_refund_id(c));
	assert_string_equal(tb_charge_idempotency_key(c), key); /* every retry reused the key */
	assert_true(tb_charge_attempts(c) >= 2);
	tb_charge_free(c);
	tb_fake_stats fs = fake_stats(w);
	assert_int_equal(fs.charges, 1);
	assert_int_equal(fs.refunds, 1);
	assert_int_equal(fs.charged_minor, 0);
	/* The ticket went to nobody: the third user's order still holds it. */
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_string_equal(tb_ticket_owner_id(tk), w->seller);
	assert_string_equal(tb_ticket_order_id(tk), second);
	tb_ticket_free(tk);
	/* More ticks refund nothing more. */
	tbt_advance(w->t, 10 * 60 * 1000);
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(fake_stats(w).refunds, 1);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_REFUNDED), 1);
	free(second);
}

static void crash__between_provider_call_and_save_loses_no_charge(void **state)
{
	world *w = *state;
	/* The provider takes the money but the answer is lost, as if we crashed. */
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_timeout"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	tb_charge_free(c);
	assert_int_equal(fake_stats(w).charges, 1);
	/* Restart: the pending charge was saved before the call. */
	tbt_reopen(w->t);
	assert_int_equal(order_status(w), TB_ORDER_AWAITING_PAYMENT);
	int64_t deadline = 0;
	assert_tb_ok(tb_market_next_deadline(w->t->m, &deadline));
	assert_true(deadline <= tbt_now(w->t) + 1000);
	tbt_advance(w->t, 1000);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	assert_int_equal(stats.payments_retried, 1);
	assert_int_equal(stats.payments_resolved, 1);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	assert_int_equal(fake_stats(w).charges, 1); /* exactly one charge */
	assert_int_equal(fake_stats(w).calls, 2);   /* the charge, then a look-up: no second charge call */
	assert_tb_ok(tb_charge_get_latest(&c, w->t->m, w->buyer, w->order));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	tb_charge_free(c);
}

static void retry__an_attempt_older_than_a_day_is_never_repeated(void **state)
{
	world *w = *state;
	/* Unknown, no money taken; the provider keeps no record of the key. */
	assert_tb_ok(tb_payment_fake_script(w->t->pay, "tok_visa", TB_FAKE_TIMEOUT));
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	/* The host was down for a day: the provider may have forgotten the key. */
	tbt_advance(w->t, INT64_C(24) * 60 * 60 * 1000);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	tb_fake_stats fs = fake_stats(w);
	assert_int_equal(fs.charges, 0);
	assert_int_equal(fs.calls, 2); /* the first call and one look-up; no repeat */
	assert_tb_ok(tb_charge_get_latest(&c, w->t->m, w->buyer, w->order));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	tb_charge_free(c);
	/* The order expired meanwhile; a webhook can still settle the charge. */
	assert_int_equal(order_status(w), TB_ORDER_EXPIRED);
}

static void refund__seller_returns_money_and_gets_the_ticket_back(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	assert_tb_status(tb_order_refund(&c, w->t->m, w->buyer, w->order, NULL), TB_EFORBIDDEN);
	assert_tb_status(tb_order_refund(&c, w->t->m, w->third, w->order, NULL), TB_EFORBIDDEN);
	assert_tb_ok(tb_order_refund(&c, w->t->m, w->seller, w->order, "requested_by_customer"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_REFUNDED);
	assert_string_equal(tb_charge_refund_reason(c), "requested_by_customer");
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_REFUNDED);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, w->t->m, w->ticket));
	assert_string_equal(tb_ticket_owner_id(tk), w->seller);
	tb_ticket_free(tk);
	assert_tb_status(tb_order_refund(&c, w->t->m, w->seller, w->order, NULL), TB_ESTATE);
	tb_fake_stats fs = fake_stats(w);
	assert_int_equal(fs.refunds, 1);
	assert_int_equal(fs.charged_minor, 0);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_ORDER_REFUNDED), 1);
}

static void refund__refused_once_the_buyer_resold(void **state)
{
	world *w = *state;
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_set_listed(&tk, w->t->m, w->buyer, w->ticket, 1));
	tb_ticket_free(tk);
	char *o2 = tbt_order(w->t, w->third, w->ticket, NULL);
	assert_tb_status(tb_order_refund(&c, w->t->m, w->seller, w->order, NULL), TB_ESTATE);
	free(o2);
}

static void late_payment__honoured_when_policy_allows_and_ticket_free(void **state)
{
	(void)state;
	tbt *t = tbt_prepare(0);
	t->opts.late_payment = TB_LATE_PAYMENT_HONOUR_IF_AVAILABLE;
	tbt_open(t);
	world *w = world_new(t);
	assert_tb_ok(tb_payment_fake_script(t->pay, "tok_visa", TB_FAKE_TIMEOUT));
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, t->m, w->buyer, w->order, "tok_visa"));
	tb_charge_free(c);
	tbt_advance(t, TBT_LOCK_MS + TB_DEFAULT_PAYMENT_GRACE_MS);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	/* This tick expires the order and, retrying, gets the success. */
	assert_tb_ok(tb_market_tick(t->m, &stats));
	assert_int_equal(stats.orders_expired, 1);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	assert_int_equal(fake_stats(w).refunds, 0);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, t->m, w->ticket));
	assert_string_equal(tb_ticket_owner_id(tk), w->buyer);
	tb_ticket_free(tk);
	world_teardown((void **)&w);
}

static void webhook__applies_once_and_ignores_stale_notices(void **state)
{
	world *w = *state;
	assert_tb_ok(tb_payment_fake_script(w->t->pay, "tok_visa", TB_FAKE_TIMEOUT));
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	char charge_id[64];
	snprintf(charge_id, sizeof(charge_id), "%s", tb_charge_id(c));
	tb_charge_free(c);
	tb_payment_event ev = TB_PAYMENT_EVENT_INIT;
	ev.type = TB_PAYMENT_EVENT_SUCCEEDED;
	ev.event_id = "evt_1";
	ev.charge_id = charge_id;
	ev.provider_charge_id = "pi_from_webhook";
	assert_tb_ok(tb_market_apply_payment_event(w->t->m, &ev));
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	size_t events = tbt_event_count(w->t, 0);
	assert_tb_ok(tb_market_apply_payment_event(w->t->m, &ev)); /* duplicate delivery */
	ev.type = TB_PAYMENT_EVENT_FAILED;           /* out of order: a stale failure */
	ev.event_id = "evt_0";
	assert_tb_ok(tb_market_apply_payment_event(w->t->m, &ev));
	assert_int_equal(tbt_event_count(w->t, 0), events);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	ev.charge_id = NULL;
	ev.provider_charge_id = "pi_unknown";
	ev.event_id = "evt_2";
	assert_tb_status(tb_market_apply_payment_event(w->t->m, &ev), TB_ENOTFOUND);
	ev.event_id = NULL;
	assert_tb_status(tb_market_apply_payment_event(w->t->m, &ev), TB_EINVAL);
}

static void money__decimal_text_converts_exactly(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_tb_ok(tb_money_parse(&v, "19.99", "USD"));
	assert_int_equal(v, 1999);
	assert_tb_ok(tb_money_parse(&v, "20.5", "usd"));
	assert_int_equal(v, 2050);
	assert_tb_ok(tb_money_parse(&v, "0.10", "EUR"));
	assert_int_equal(v, 10);
	assert_tb_ok(tb_money_parse(&v, "1000", "JPY"));
	assert_int_equal(v, 1000);
	assert_tb_ok(tb_money_parse(&v, "1.234", "KWD"));
	assert_int_equal(v, 1234);
	const char *bad[] = { "", "-1", "1.999", "1e3", "NaN", "inf", " 1", "1.", ".5", "0x10", "1,5", "99999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tb_money_parse(&v, bad[i], "USD") != TB_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_string_equal(tbt_field(), "price");
	}
	assert_tb_status(tb_money_parse(&v, "1.5", "JPY"), TB_EINVAL);
	assert_tb_status(tb_money_parse(&v, "1", "dollars"), TB_EINVAL);
	char *s = NULL;
	assert_tb_ok(tb_money_format(&s, 1999, "USD"));
	assert_string_equal(s, "19.99");
	tb_free(s);
	assert_tb_ok(tb_money_format(&s, 5, "EUR"));
	assert_string_equal(s, "0.05");
	tb_free(s);
	assert_tb_ok(tb_money_format(&s, 1000, "JPY"));
	assert_string_equal(s, "1000");
	tb_free(s);
	/* Every cent from 0.00 to 100.00 survives the round trip. */
	for (int64_t cents = 0; cents <= 10000; cents++) {
		assert_tb_ok(tb_money_format(&s, cents, "USD"));
		assert_tb_ok(tb_money_parse(&v, s, "USD"));
		assert_int_equal(v, cents);
		tb_free(s);
	}
}

static void no_provider__paying_is_a_clear_error(void **state)
{
	(void)state;
	tbt *t = tbt_prepare(0);
	tbt_open(t);
	tb_market_close(t->m);
	t->opts.payments = NULL;
	tb_clock clk;
	tb_clock_manual_bind(t->clock, &clk);
	t->opts.clock = &clk;
	assert_tb_ok(tb_market_open(&t->m, &t->opts));
	char *s = tbt_user(t, "s@example.com"), *b = tbt_user(t, "b@example.com");
	char *tk = tbt_ticket(t, s, "x", 1);
	char *o = tbt_order(t, b, tk, NULL);
	tb_charge *c = NULL;
	assert_tb_status(tb_order_pay(&c, t->m, b, o, "tok_visa"), TB_EPROVIDER);
	free(s); free(b); free(tk); free(o);
	tbt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pay__success_completes_and_hands_the_ticket_to_the_buyer, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(pay__decline_cancels_unlocks_and_keeps_the_reason, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(pay__twice_is_refused_and_charges_once, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(pay__refuses_bad_input_and_others_orders, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(pay__expired_order_is_refused, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(cancel__complete_order_is_refused, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(pay_vs_expire__no_double_sale_and_late_success_refunded_once, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(crash__between_provider_call_and_save_loses_no_charge, world_setup_file, world_teardown),
		cmocka_unit_test_setup_teardown(retry__an_attempt_older_than_a_day_is_never_repeated, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(refund__seller_returns_money_and_gets_the_ticket_back, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(refund__refused_once_the_buyer_resold, world_setup, world_teardown),
		cmocka_unit_test(late_payment__honoured_when_policy_allows_and_ticket_free),
		cmocka_unit_test_setup_teardown(webhook__applies_once_and_ignores_stale_notices, world_setup, world_teardown),
		cmocka_unit_test(money__decimal_text_converts_exactly),
		cmocka_unit_test(no_provider__paying_is_a_clear_error),
	};
	return cmocka_run_group_tests_name("payments", tests, NULL, NULL);
}
