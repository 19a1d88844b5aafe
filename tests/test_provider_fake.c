/* The fake provider: the provider contract, plus its scripting. */
#include "support/provider_contract.h"
#include "support/tb_test.h"

#include <string.h>

static tb_payment_provider *make_fake(void *ctx)
{
	(void)ctx;
	tb_payment_provider *p = NULL;
	return tb_payment_fake_new(&p) == TB_OK ? p : NULL;
}

static void script__outcomes_are_used_in_order_then_builtin(void **state)
{
	(void)state;
	tb_payment_provider *p = make_fake(NULL);
	assert_tb_ok(tb_payment_fake_script(p, "tok_visa", TB_FAKE_DECLINE));
	assert_tb_status(tb_payment_fake_script(p, "", TB_FAKE_DECLINE), TB_EINVAL);
	assert_tb_status(tb_payment_fake_script(p, "tok_visa", (tb_fake_outcome)42), TB_EINVAL);
	tb_pay_request r = TB_PAY_REQUEST_INIT;
	r.idempotency_key = "k1";
	r.amount_minor = 100;
	r.currency = "USD";
	r.payment_token = "tok_visa";
	tb_pay_result res;
	assert_tb_ok(p->charge(p, &r, &res));
	assert_int_equal(res.outcome, TB_PAY_DECLINED);
	r.idempotency_key = "k2";
	assert_tb_ok(p->charge(p, &r, &res));
	assert_int_equal(res.outcome, TB_PAY_SUCCEEDED);
	/* An unknown answer without a charge: the retry with the key is processed anew. */
	assert_tb_ok(tb_payment_fake_script(p, "tok_visa", TB_FAKE_TIMEOUT));
	r.idempotency_key = "k3";
	assert_tb_ok(p->charge(p, &r, &res));
	assert_int_equal(res.outcome, TB_PAY_UNKNOWN);
	assert_tb_ok(p->lookup(p, "k3", &res));
	assert_int_equal(res.outcome, TB_PAY_UNKNOWN);
	assert_tb_ok(p->charge(p, &r, &res));
	assert_int_equal(res.outcome, TB_PAY_SUCCEEDED);
	assert_tb_ok(p->lookup(p, "k3", &res));
	assert_int_equal(res.outcome, TB_PAY_SUCCEEDED);
	tb_fake_stats st;
	tb_payment_fake_stats(p, &st);
	assert_int_equal(st.charges, 2);
	assert_int_equal(st.charged_minor, 200);
	tb_payment_fake_stats(NULL, &st);
	assert_int_equal(st.charges, 0);
	tb_payment_provider_free(p);
}

int main(void)
{
	tb_provider_contract c = { "fake", make_fake, "tok_visa", "tok_chargeDeclined", "USD", NULL };
	int failed = tb_provider_contract_run(&c);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(script__outcomes_are_used_in_order_then_builtin),
	};
	return failed + cmocka_run_group_tests_name("fake provider", tests, NULL, NULL);
}
