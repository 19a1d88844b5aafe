#include "provider_contract.h"
#include "tb_test.h"

#include <stdio.h>
#include <string.h>

static const tb_provider_contract *current;
static unsigned key_counter;

typedef struct pc_state {
	tb_payment_provider *p;
	char key[64];
} pc_state;

static int pc_setup(void **state)
{
	static pc_state s;
	memset(&s, 0, sizeof(s));
	s.p = current->make(current->ctx);
	assert_non_null(s.p);
	snprintf(s.key, sizeof(s.key), "contract-%s-%u-%lld", current->name, key_counter++,
		(long long)tb_clock_real_now_ms());
	*state = &s;
	return 0;
}

static int pc_teardown(void **state)
{
	pc_state *s = *state;
	tb_payment_provider_free(s->p);
	return 0;
}

static tb_pay_request request(const pc_state *s, const char *token, int64_t amount)
{
	tb_pay_request r = TB_PAY_REQUEST_INIT;
	r.idempotency_key = s->key;
	r.amount_minor = amount;
	r.currency = current->currency;
	r.payment_token = token;
	r.description = "contract test";
	r.order_id = "0190f1a2-0000-7000-8000-000000000001";
	r.charge_id = "0190f1a2-0000-7000-8000-000000000002";
	return r;
}

static tb_pay_result charge(pc_state *s, const tb_pay_request *r)
{
	tb_pay_result res;
	memset(&res, 0, sizeof(res));
	res.version = TB_PAY_RESULT_VERSION;
	assert_tb_ok(s->p->charge(s->p, r, &res));
	return res;
}

static void provider__describes_itself(void **state)
{
	pc_state *s = *state;
	assert_int_equal(s->p->version, TB_PAYMENT_PROVIDER_VERSION);
	assert_non_null(s->p->name);
	assert_true(strlen(s->p->name) > 0);
	assert_non_null(s->p->charge);
	assert_non_null(s->p->refund);
	assert_non_null(s->p->destroy);
}

static void charge__succeeds_with_a_provider_id(void **state)
{
	pc_state *s = *state;
	tb_pay_request r = request(s, current->succeed_token, 1999);
	tb_pay_result res = charge(s, &r);
	assert_int_equal(res.outcome, TB_PAY_SUCCEEDED);
	assert_true(strlen(res.provider_id) > 0);
}

static void charge__same_key_replays_the_first_answer(void **state)
{
	pc_state *s = *state;
	tb_pay_request r = request(s, current->succeed_token, 500);
	tb_pay_result a = charge(s, &r);
	tb_pay_result b = charge(s, &r);
	assert_int_equal(a.outcome, TB_PAY_SUCCEEDED);
	assert_int_equal(b.outcome, TB_PAY_SUCCEEDED);
	assert_string_equal(a.provider_id, b.provider_id);
}

static void charge__new_key_is_a_new_payment(void **state)
{
	pc_state *s = *state;
	tb_pay_request r = request(s, current->succeed_token, 700);
	tb_pay_result a = charge(s, &r);
	char other[80];
	snprintf(other, sizeof(other), "%s-second", s->key);
	r.idempotency_key = other;
	tb_pay_result b = charge(s, &r);
	assert_int_equal(b.outcome, TB_PAY_SUCCEEDED);
	assert_string_not_equal(a.provider_id, b.provider_id);
}

static void charge__decline_is_final_with_a_code(void **state)
{
	pc_state *s = *state;
	tb_pay_request r = request(s, current->decline_token, 1000);
	tb_pay_result a = charge(s, &r);
	assert_int_equal(a.outcome, TB_PAY_DECLINED);
	assert_true(strlen(a.code) > 0);
	assert_true(strlen(a.message) > 0);
	tb_pay_result b = charge(s, &r);
	assert_int_equal(b.outcome, TB_PAY_DECLINED);
	assert_string_equal(a.code, b.code);
}

static void refund__returns_a_payment_once(void **state)
{
	pc_state *s = *state;
	tb_pay_request r = request(s, current->succeed_token, 1234);
	tb_pay_result paid = charge(s, &r);
	assert_int_equal(paid.outcome, TB_PAY_SUCCEEDED);
	char rkey[80];
	snprintf(rkey, sizeof(rkey), "%s-refund", s->key);
	tb_pay_request rr = TB_PAY_REQUEST_INIT;
	rr.idempotency_key = rkey;
	rr.amount_minor = 1234;
	rr.currency = current->currency;
	rr.provider_charge_id = paid.provider_id;
	rr.reason = "requested_by_customer";
	rr.order_id = r.order_id;
	rr.charge_id = r.charge_id;
	tb_pay_result a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_tb_ok(s->p->refund(s->p, &rr, &a));
	assert_int_equal(a.outcome, TB_PAY_SUCCEEDED);
	assert_true(strlen(a.provider_id) > 0);
	assert_tb_ok(s->p->refund(s->p, &rr, &b)); /* a retry of the same refund */
	assert_int_equal(b.outcome, TB_PAY_SUCCEEDED);
	assert_string_equal(a.provider_id, b.provider_id);
}

static void refund__of_an_unknown_payment_is_an_error(void **state)
{
	pc_state *s = *state;
	tb_pay_request rr = TB_PAY_REQUEST_INIT;
	rr.idempotency_key = s->key;
	rr.amount_minor = 100;
	rr.currency = current->currency;
	rr.provider_charge_id = "pi_does_not_exist";
	tb_pay_result res;
	memset(&res, 0, sizeof(res));
	assert_tb_ok(s->p->refund(s->p, &rr, &res));
	assert_int_equal(res.outcome, TB_PAY_ERROR);
	assert_true(strlen(res.message) > 0);
}

int tb_provider_contract_run(const tb_provider_contract *contract)
{
	current = contract;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(provider__describes_itself, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(charge__succeeds_with_a_provider_id, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(charge__same_key_replays_the_first_answer, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(charge__new_key_is_a_new_payment, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(charge__decline_is_final_with_a_code, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(refund__returns_a_payment_once, pc_setup, pc_teardown),
		cmocka_unit_test_setup_teardown(refund__of_an_unknown_payment_is_an_error, pc_setup, pc_teardown),
	};
	char group[128];
	snprintf(group, sizeof(group), "provider contract: %s", contract->name);
	return _cmocka_run_group_tests(group, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
