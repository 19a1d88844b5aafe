/* The market: options, versions, status names, misuse. */
#include "support/tb_test.h"

#include <stdlib.h>
#include <string.h>

static void options__versions_and_ranges_are_checked(void **state)
{
	(void)state;
	tb_market *m = (tb_market *)1;
	tb_market_options o;
	assert_tb_status(tb_market_options_init(&o, 99), TB_EVERSION);
	assert_tb_ok(tb_market_options_init(&o, TB_MARKET_OPTIONS_VERSION));
	o.version = 99;
	assert_tb_status(tb_market_open(&m, &o), TB_EVERSION);
	assert_null(m);
	o.version = TB_MARKET_OPTIONS_VERSION;
	o.lock_ms = -1;
	assert_tb_status(tb_market_open(&m, &o), TB_EINVAL);
	assert_string_equal(tbt_field(), "lock_ms");
	o.lock_ms = 0;
	o.default_currency = "dollars";
	assert_tb_status(tb_market_open(&m, &o), TB_EINVAL);
	assert_string_equal(tbt_field(), "default_currency");
	o.default_currency = NULL;
	tb_clock bad = { 42, NULL, NULL };
	o.clock = &bad;
	assert_tb_status(tb_market_open(&m, &o), TB_EVERSION);
	bad.version = TB_CLOCK_VERSION;
	assert_tb_status(tb_market_open(&m, &o), TB_EINVAL);
	o.clock = NULL;
	o.password_cost = (tb_password_cost)17;
	assert_tb_status(tb_market_open(&m, &o), TB_EINVAL);
	o.password_cost = TB_PASSWORD_COST_MIN;
	o.db = "/nonexistent-dir/x/y.db";
	assert_tb_status(tb_market_open(&m, &o), TB_ESTORAGE);
	o.db = NULL;
	assert_tb_ok(tb_market_open(&m, &o));
	assert_int_equal(tb_market_lock_ms(m), TB_DEFAULT_LOCK_MS);
	assert_true(tb_market_now_ms(m) > TBT_T0);
	assert_tb_ok(tb_market_checkpoint(m));
	tb_market_close(m);
	tb_market_close(NULL);
	assert_tb_status(tb_market_open(NULL, NULL), TB_EINVAL);
}

static void open_take__refuses_bad_adapters(void **state)
{
	(void)state;
	tb_storage *s = NULL;
	assert_tb_ok(tb_storage_sqlite_open(&s, ":memory:", NULL));
	tb_storage copy = *s;
	tb_market *m = NULL;
	copy.version = 99;
	assert_tb_status(tb_market_open_take(&m, &copy, NULL), TB_EVERSION);
	copy.version = TB_STORAGE_VERSION;
	copy.order_insert = NULL;
	assert_tb_status(tb_market_open_take(&m, &copy, NULL), TB_EINVAL);
	assert_non_null(strstr(tb_last_error()->message, "order_insert"));
	assert_tb_status(tb_market_open_take(&m, NULL, NULL), TB_EINVAL);
	assert_null(m);
	/* The market owns the adapter only on success. */
	assert_tb_ok(tb_market_open_take(&m, s, NULL));
	tb_market_close(m);
}

static void status__every_code_has_a_name_and_text(void **state)
{
	(void)state;
	for (int s = 0; s > -TB_STATUS_COUNT; s--) {
		assert_string_not_equal(tb_strerror((tb_status)s), "unknown status");
		assert_string_not_equal(tb_status_name((tb_status)s), "EUNKNOWN");
	}
	assert_string_equal(tb_status_name(TB_ELOCKED), "ELOCKED");
	assert_string_equal(tb_strerror((tb_status)-1000), "unknown status");
	assert_string_equal(tb_strerror((tb_status)5), "unknown status");
	tb_error_clear();
	assert_int_equal(tb_last_error()->status, TB_OK);
	assert_null(tb_last_error()->field);
	assert_int_equal(tb_error_set(TB_EINVAL, "price", "bad %s", "price"), TB_EINVAL);
	assert_string_equal(tb_last_error()->message, "bad price");
	assert_string_equal(tb_last_error()->field, "price");
	assert_int_equal(tb_keep(), TB_KEEP);
	assert_int_equal(tb_any_version(), TB_ANY_VERSION);
	assert_string_equal(tb_version(), TB_VERSION_STRING);
}

static void misuse__null_handles_are_errors_not_crashes(void **state)
{
	tbt *t = *state;
	tb_ticket *tk = NULL;
	tb_order *o = NULL;
	assert_tb_status(tb_ticket_create(&tk, NULL, "x", "t", 1, NULL), TB_EINVAL);
	assert_tb_status(tb_ticket_create(NULL, t->m, "x", "t", 1, NULL), TB_EINVAL);
	assert_tb_status(tb_order_create(&o, NULL, "x", "y"), TB_EINVAL);
	assert_tb_status(tb_market_tick(NULL, NULL), TB_EINVAL);
	assert_tb_status(tb_market_next_deadline(t->m, NULL), TB_EINVAL);
	assert_tb_status(tb_event_dispatch(NULL, NULL), TB_EINVAL);
	tb_tick_stats bad = { 77, 0, 0, 0, 0, 0, 0 };
	assert_tb_status(tb_market_tick(t->m, &bad), TB_EVERSION);
	/* Accessors and destructors accept NULL. */
	assert_null(tb_ticket_id(NULL));
	assert_int_equal(tb_order_price_minor(NULL), 0);
	tb_ticket_free(NULL);
	tb_order_free(NULL);
	tb_user_free(NULL);
	tb_session_free(NULL);
	tb_charge_free(NULL);
	tb_event_free(NULL);
	tb_ticket_page_free(NULL);
	tb_order_page_free(NULL);
	tb_event_page_free(NULL);
	tb_payment_provider_free(NULL);
	tb_clock_manual_free(NULL);
	tb_storage_free(NULL);
	tb_free(NULL);
}

static void clock__manual_clock_steps(void **state)
{
	(void)state;
	tb_clock_manual *c = NULL;
	assert_tb_status(tb_clock_manual_new(&c, -1), TB_EINVAL);
	assert_tb_ok(tb_clock_manual_new(&c, 1000));
	tb_clock_manual_advance(c, 500);
	assert_int_equal(tb_clock_manual_now(c), 1500);
	tb_clock_manual_set(c, 42);
	tb_clock clk;
	tb_clock_manual_bind(c, &clk);
	assert_int_equal(clk.now_ms(clk.payload), 42);
	tb_clock_manual_free(c);
	assert_true(tb_clock_real_now_ms() > TBT_T0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options__versions_and_ranges_are_checked),
		cmocka_unit_test(open_take__refuses_bad_adapters),
		cmocka_unit_test(status__every_code_has_a_name_and_text),
		cmocka_unit_test_setup_teardown(misuse__null_handles_are_errors_not_crashes, tbt_setup, tbt_teardown),
		cmocka_unit_test(clock__manual_clock_steps),
	};
	return cmocka_run_group_tests_name("market", tests, NULL, NULL);
}
