/*
 * The Stripe provider against the fake Stripe server (tests/fake_stripe):
 * what goes on the wire, how every kind of answer maps, retries and backoff,
 * lookups, refunds, webhook signatures and parsing, and the market flows
 * (pay, decline, crash and reconcile, late success refunded once, webhooks).
 * Every test ends by asserting that the fake recorded no request Stripe's
 * OpenAPI schemas would reject.
 */
#define _POSIX_C_SOURCE 200809L

#include "tb_test.h"
#include "fake_stripe_server.h"
#include "provider_contract.h"

#include <ticketyboo/stripe.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static fake_stripe *fs;

/* ---- helpers ------------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static tb_stripe_options test_options(void)
{
	tb_stripe_options o = TB_STRIPE_OPTIONS_INIT;
	o.secret_key = FAKE_STRIPE_KEY;
	o.base_url = fake_stripe_url(fs);
	o.connect_timeout_ms = 2000;
	o.timeout_ms = 5000;
	o.max_retries = 2;
	o.backoff_base_ms = 1;
	o.backoff_cap_ms = 2;
	o.webhook_secret = "whsec_test_ticketyboo";
	return o;
}

static tb_payment_provider *provider_with(const tb_stripe_options *o)
{
	tb_payment_provider *p = NULL;
	assert_tb_ok(tb_payment_stripe_new(&p, o));
	assert_non_null(p);
	assert_string_equal(p->name, "stripe");
	return p;
}

static tb_payment_provider *provider(void)
{
	tb_stripe_options o = test_options();
	return provider_with(&o);
}

static tb_pay_request charge_req(const char *key, const char *token, int64_t amount)
{
	tb_pay_request r = TB_PAY_REQUEST_INIT;
	r.idempotency_key = key;
	r.amount_minor = amount;
	r.currency = "USD";
	r.payment_token = token;
	r.description = "Ticket: Glastonbury Sunday";
	r.order_id = "0190a0a0-0000-7000-8000-00000000000a";
	r.charge_id = "0190a0a0-0000-7000-8000-00000000000c";
	return r;
}

static tb_pay_result charge(tb_payment_provider *p, const char *key, const char *token)
{
	tb_pay_request r = charge_req(key, token, 2500);
	tb_pay_result res;
	assert_tb_ok(p->charge(p, &r, &res));
	return res;
}

static tb_pay_result refund(tb_payment_provider *p, const char *key, const char *pi, const char *reason)
{
	tb_pay_request r = TB_PAY_REQUEST_INIT;
	tb_pay_result res;
	r.idempotency_key = key;
	r.amount_minor = 2500;
	r.currency = "USD";
	r.provider_charge_id = pi;
	r.order_id = "0190a0a0-0000-7000-8000-00000000000a";
	r.charge_id = "0190a0a0-0000-7000-8000-00000000000c";
	r.reason = reason;
	assert_tb_ok(p->refund(p, &r, &res));
	return res;
}

#define assert_outcome(res, want) \
	do { \
		if ((res).outcome != (want)) \
			fail_msg("outcome %s (code %s: %s), wanted %s", tb_pay_outcome_name((res).outcome), \
				(res).code, (res).message, tb_pay_outcome_name(want)); \
	} while (0)

static void script(const char *token, const char *op, const char *json)
{
	assert_int_equal(fake_stripe_script(fs, token, op, json), 0);
}

static void assert_no_violations(void)
{
	assert_int_equal(fake_stripe_violations(fs), 0);
}

static void assert_no_secret(const char *s)
{
	if (!s)
		return;
	if (strstr(s, FAKE_STRIPE_KEY) || strstr(s, "whsec_"))
		fail_msg("a secret leaked into: %s", s);
}

static void assert_result_clean(const tb_pay_result *res)
{
	assert_no_secret(res->message);
	assert_no_secret(res->code);
	assert_no_secret(res->provider_id);
}

/*
 * The n-th logged request to path (0 = first).  *holder (initially NULL)
 * receives the fetched log on first use and is reused after; decref it.
 */
static json_t *request_at(const char *path, size_t n, json_t **holder)
{
	json_t *r;
	size_t i, want = n;
	if (!*holder)
		*holder = fake_stripe_get(fs, "log");
	json_array_foreach(json_object_get(*holder, "requests"), i, r) {
		if (strcmp(json_string_value(json_object_get(r, "path")), path) == 0 && n-- == 0)
			return r;
	}
	fail_msg("no request #%zu to %s", want, path);
	return NULL;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * n;
}

static int reset(void **state)
{
	(void)state;
	return fake_stripe_reset(fs);
}

/* ---- the fake itself -------------------------------------------------------- */

/* POST a raw form to the fake as a client would; returns the HTTP status. */
static long raw_post(const char *path, const char *key, const char *body)
{
	char url[256], auth[128];
	struct curl_slist *h = NULL;
	long status = 0;
	CURL *c = curl_easy_init();
	assert_non_null(c);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", FAKE_STRIPE_KEY);
	h = curl_slist_append(h, auth);
	snprintf(url, sizeof url, "Idempotency-Key: %s", key);
	h = curl_slist_append(h, url);
	snprintf(url, sizeof url, "%s%s", fake_stripe_url(fs), path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* The zero-violation checks mean something only if the fake does flag what Stripe rejects. */
static void fake__flags_what_stripe_would_reject(void **state)
{
	char longdesc[1100];
	char body[1400];
	(void)state;
	assert_int_equal(raw_post("/v1/payment_intents", "raw-1",
		"amount=100&currency=usd&payment_method=pm_card_visa&confirm=true"), 200);
	assert_int_equal(fake_stripe_violations(fs), 0);

	assert_int_equal(raw_post("/v1/payment_intents", "raw-2", "amount=1.5&currency=usd"), 400);
	assert_int_equal(fake_stripe_violations(fs), 1);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-3", "amount=100"), 400);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-4", "amount=100&currency=usd&colour=red"), 400);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-5", "amount=100&currency=usd&confirm=yes"), 400);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-6",
		"amount=100&currency=usd&payment_method_types=card"), 400);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-7",
		"amount=100&currency=usd&automatic_payment_methods[enabled]=true"
		"&automatic_payment_methods[allow_redirects]=never"), 400);
	assert_int_equal(raw_post("/v1/refunds", "raw-8", "payment_intent=pi_1&reason=late_payment"), 400);
	memset(longdesc, 'x', 1001);
	longdesc[1001] = '\0';
	snprintf(body, sizeof body, "amount=100&currency=usd&description=%s", longdesc);
	assert_int_equal(raw_post("/v1/payment_intents", "raw-9", body), 400);
	assert_int_equal(raw_post("/v1/charges", "raw-10", "amount=100&currency=usd"), 404);
	assert_int_equal(fake_stripe_violations(fs), 9);
	assert_int_equal(fake_stripe_reset(fs), 0);
}

/* ---- options --------------------------------------------------------------- */

static void options__refuse_bad_values(void **state)
{
	tb_payment_provider *p = (tb_payment_provider *)0x1;
	tb_stripe_options o;
	(void)state;

	assert_tb_ok(tb_stripe_options_init(&o, TB_STRIPE_OPTIONS_VERSION));
	assert_int_equal(o.max_retries, TB_STRIPE_DEFAULT_MAX_RETRIES);
	assert_string_equal(o.api_version, TB_STRIPE_DEFAULT_API_VERSION);
	assert_tb_status(tb_stripe_options_init(&o, 99), TB_EVERSION);

	o = test_options();
	o.secret_key = NULL;
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);
	assert_null(p);
	assert_string_equal(tb_last_error()->field, "secret_key");

	o = test_options();
	o.secret_key = "sk_test_with\r\nInjected: header";
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);
	assert_no_secret(tb_last_error()->message);

	o = test_options();
	o.base_url = "http://api.example.com";
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);
	assert_string_equal(tb_last_error()->field, "base_url");
	o.base_url = "http://127.0.0.1.example.com";
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);
	o.base_url = "https://user:password@api.stripe.com";
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);

	o = test_options();
	o.max_retries = TB_STRIPE_MAX_RETRIES_LIMIT + 1;
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);
	assert_string_equal(tb_last_error()->field, "max_retries");

	o = test_options();
	o.timeout_ms = -1;
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EINVAL);

	o = test_options();
	o.version = 2;
	assert_tb_status(tb_payment_stripe_new(&p, &o), TB_EVERSION);

	o = test_options();
	o.base_url = NULL; /* the real API: only constructed, never called here */
	p = provider_with(&o);
	tb_payment_provider_free(p);
}

/* ---- charges: what goes on the wire ------------------------------------------ */

static void charge__sends_the_documented_payment_intent(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-wire-1", "pm_card_visa");
	json_t *holder = NULL, *req;
	(void)state;

	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_true(strncmp(res.provider_id, "pi_", 3) == 0);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);

	req = request_at("/v1/payment_intents", 0, &holder);
	assert_string_equal(fake_stripe_header(req, "Authorization"), "Bearer " FAKE_STRIPE_KEY);
	assert_string_equal(fake_stripe_header(req, "Idempotency-Key"), "key-wire-1");
	assert_string_equal(fake_stripe_header(req, "Stripe-Version"), "2020-08-27");
	assert_string_equal(fake_stripe_header(req, "Content-Type"), "application/x-www-form-urlencoded");
	assert_string_equal(fake_stripe_form(req, "amount"), "2500");
	assert_string_equal(fake_stripe_form(req, "currency"), "usd");
	assert_string_equal(fake_stripe_form(req, "payment_method"), "pm_card_visa");
	assert_string_equal(fake_stripe_form(req, "confirm"), "true");
	assert_string_equal(fake_stripe_form(req, "payment_method_types[]"), "card");
	assert_string_equal(fake_stripe_form(req, "error_on_requires_action"), "true");
	assert_string_equal(fake_stripe_form(req, "description"), "Ticket: Glastonbury Sunday");
	assert_string_equal(fake_stripe_form(req, "metadata[order_id]"), "0190a0a0-0000-7000-8000-00000000000a");
	assert_string_equal(fake_stripe_form(req, "metadata[charge_id]"), "0190a0a0-0000-7000-8000-00000000000c");
	assert_string_equal(fake_stripe_form(req, "metadata[idempotency_key]"), "key-wire-1");
	assert_int_equal(json_array_size(json_object_get(req, "form")), 10);
	assert_null(fake_stripe_header(req, "Expect"));
	json_decref(holder);

	assert_no_violations();
	tb_payment_provider_free(p);
}

static void charge__without_api_version_sends_no_header(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	json_t *holder = NULL;
	(void)state;
	o.api_version = NULL;
	p = provider_with(&o);
	res = charge(p, "key-nover", "pm_card_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_null(fake_stripe_header(request_at("/v1/payment_intents", 0, &holder), "Stripe-Version"));
	json_decref(holder);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void charge__legacy_token_becomes_a_payment_method_first(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-tok-1", "tok_visa");
	json_t *holder = NULL, *pm_req, *pi_req;
	(void)state;

	assert_outcome(res, TB_PAY_SUCCEEDED);
	pm_req = request_at("/v1/payment_methods", 0, &holder);
	assert_string_equal(fake_stripe_header(pm_req, "Idempotency-Key"), "key-tok-1-pm");
	assert_string_equal(fake_stripe_form(pm_req, "type"), "card");
	assert_string_equal(fake_stripe_form(pm_req, "card[token]"), "tok_visa");
	pi_req = request_at("/v1/payment_intents", 0, &holder);
	assert_true(strncmp(fake_stripe_form(pi_req, "payment_method"), "pm_", 3) == 0);
	assert_string_equal(fake_stripe_header(pi_req, "Idempotency-Key"), "key-tok-1");
	json_decref(holder);

	/* the same attempt again: both calls replay, still one PaymentIntent */
	res = charge(p, "key-tok-1", "tok_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void charge__long_description_is_cut_on_a_character_boundary(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_request r = charge_req("key-long", "pm_card_visa", 1000);
	tb_pay_result res;
	char desc[3001];
	size_t i;
	(void)state;
	for (i = 0; i + 2 <= 3000; i += 2)
		memcpy(desc + i, "\xc3\xa9", 2); /* é */
	desc[i] = '\0';
	r.description = desc;
	assert_tb_ok(p->charge(p, &r, &res));
	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_no_violations(); /* over 1000 characters would be one */
	tb_payment_provider_free(p);
}

/* ---- charges: mapping Stripe's answers ------------------------------------------ */

static void charge__decline_keeps_code_decline_code_and_message(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-dec-1", "pm_card_chargeDeclinedInsufficientFunds");
	(void)state;
	assert_outcome(res, TB_PAY_DECLINED);
	assert_string_equal(res.code, "card_declined");
	assert_string_equal(res.decline_code, "insufficient_funds");
	assert_string_equal(res.message, "Your card has insufficient funds.");
	assert_true(strncmp(res.provider_id, "pi_", 3) == 0);
	/* a decline is definitive: never retried */
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);

	script("tok_custom", "charge",
		"[{\"action\":\"decline\",\"code\":\"expired_card\",\"message\":\"Your card has expired.\"}]");
	res = charge(p, "key-dec-2", "tok_custom");
	assert_outcome(res, TB_PAY_DECLINED);
	assert_string_equal(res.code, "expired_card");
	assert_string_equal(res.decline_code, "");
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void charge__invalid_request_is_an_error_and_not_retried(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res;
	(void)state;

	res = charge(p, "key-inv-1", "tok_unknownCard");
	assert_outcome(res, TB_PAY_ERROR);
	assert_string_equal(res.code, "resource_missing");
	assert_non_null(strstr(res.message, "No such token"));
	assert_non_null(strstr(res.message, "card[token]"));
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_methods"), 1);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 0);

	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":400,\"type\":\"invalid_request_error\","
		"\"code\":\"amount_too_small\",\"message\":\"Amount must be at least $0.50 usd\"}]");
	res = charge(p, "key-inv-2", "pm_card_visa");
	assert_outcome(res, TB_PAY_ERROR);
	assert_string_equal(res.code, "amount_too_small");
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);

	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":404,\"type\":\"invalid_request_error\","
		"\"code\":\"resource_missing\",\"message\":\"No such PaymentMethod\"}]");
	res = charge(p, "key-inv-3", "pm_card_visa");
	assert_outcome(res, TB_PAY_ERROR);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 2);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void charge__bad_key_is_an_auth_error_without_the_key(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	(void)state;
	o.secret_key = "sk_test_wrong_key_abcdefghijklmnop";
	p = provider_with(&o);
	res = charge(p, "key-auth-1", "pm_card_visa");
	assert_outcome(res, TB_PAY_ERROR);
	assert_string_equal(res.code, "authentication_error");
	assert_null(strstr(res.message, "sk_test"));
	assert_null(strstr(res.message, "mnop"));
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);
	tb_payment_provider_free(p);

	p = provider();
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":403,\"type\":\"invalid_request_error\","
		"\"message\":\"The provided key does not have access to this resource.\"}]");
	res = charge(p, "key-auth-2", "pm_card_visa");
	assert_outcome(res, TB_PAY_ERROR);
	assert_string_equal(res.code, "permission_error");
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 2);
	tb_payment_provider_free(p);
	assert_no_violations();
}

static void charge__status_mapping(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res;
	(void)state;

	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"processing\"}]");
	res = charge(p, "key-st-1", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "processing");
	assert_true(strncmp(res.provider_id, "pi_", 3) == 0);

	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"requires_action\"}]");
	res = charge(p, "key-st-2", "pm_card_visa");
	assert_outcome(res, TB_PAY_DECLINED);
	assert_string_equal(res.code, "authentication_required");

	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"requires_payment_method\"}]");
	res = charge(p, "key-st-3", "pm_card_visa");
	assert_outcome(res, TB_PAY_DECLINED);
	assert_string_equal(res.code, "payment_failed");

	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"requires_capture\"}]");
	res = charge(p, "key-st-4", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);

	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"canceled\"}]");
	res = charge(p, "key-st-5", "pm_card_visa");
	assert_outcome(res, TB_PAY_DECLINED);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 5);
	assert_no_violations();
	tb_payment_provider_free(p);
}

/* ---- retries ------------------------------------------------------------------------ */

static void retries__rate_limit_then_success_reuse_the_key_and_body(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	json_t *holder = NULL, *a, *b, *c;
	(void)state;
	o.max_retries = 3;
	p = provider_with(&o);
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":429,\"code\":\"rate_limit\"},"
		" {\"action\":\"error\",\"status\":429,\"code\":\"rate_limit\"}]");
	res = charge(p, "key-rl-1", "pm_card_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 3);
	a = request_at("/v1/payment_intents", 0, &holder);
	b = request_at("/v1/payment_intents", 1, &holder);
	c = request_at("/v1/payment_intents", 2, &holder);
	assert_string_equal(fake_stripe_header(a, "Idempotency-Key"), "key-rl-1");
	assert_string_equal(fake_stripe_header(b, "Idempotency-Key"), "key-rl-1");
	assert_string_equal(fake_stripe_header(c, "Idempotency-Key"), "key-rl-1");
	assert_string_equal(json_string_value(json_object_get(a, "body")), json_string_value(json_object_get(c, "body")));
	json_decref(holder);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__stop_at_max_retries_then_unknown(void **state)
{
	tb_payment_provider *p = provider(); /* max_retries 2: three tries */
	tb_pay_result res;
	(void)state;
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":503},{\"action\":\"error\",\"status\":503},"
		" {\"action\":\"error\",\"status\":503},{\"action\":\"error\",\"status\":503}]");
	res = charge(p, "key-5xx", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "api_error");
	assert_non_null(strstr(res.message, "3 tries"));
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 3);

	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":429},{\"action\":\"error\",\"status\":429},"
		" {\"action\":\"error\",\"status\":429}]");
	res = charge(p, "key-429", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "rate_limit");
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 6);
	assert_result_clean(&res);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__a_replayed_500_is_not_asked_again(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res;
	json_t *holder = NULL;
	(void)state;
	/* Stripe saved the 500 under the key: a retry gets the replay, and stops */
	script("pm_card_visa", "charge", "[{\"action\":\"error\",\"status\":500,\"saved\":true}]");
	res = charge(p, "key-500", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 2);
	assert_int_equal(json_integer_value(json_object_get(request_at("/v1/payment_intents", 1, &holder),
		"status")), 500);
	json_decref(holder);

	/* Stripe-Should-Retry: false is obeyed */
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":503,\"should_retry\":\"false\"}]");
	res = charge(p, "key-503", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 3);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__dropped_connection_is_retried(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res;
	char first[128];
	(void)state;

	/* the request never got executed: the retry charges */
	script("pm_card_visa", "charge", "[{\"action\":\"drop\",\"process\":false}]");
	res = charge(p, "key-drop-1", "pm_card_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 2);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);

	/* executed, answer lost: the retry gets the saved answer, no second charge */
	script("pm_card_visa", "charge", "[{\"action\":\"drop\",\"process\":true}]");
	res = charge(p, "key-drop-2", "pm_card_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	snprintf(first, sizeof first, "%s", res.provider_id);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 4);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 2);

	/* every try dropped: unknown (libcurl itself resends once on a reused
	 * connection that died unanswered, so script more drops than tries) */
	script("pm_card_visa", "charge",
		"[{\"action\":\"drop\"},{\"action\":\"drop\"},{\"action\":\"drop\"},"
		" {\"action\":\"drop\"},{\"action\":\"drop\"},{\"action\":\"drop\"}]");
	res = charge(p, "key-drop-3", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "network_error");
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__timeout_is_unknown_and_a_later_retry_finds_the_charge(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	char pi[128];
	(void)state;
	o.timeout_ms = 300;
	o.max_retries = 1;
	p = provider_with(&o);
	/* Stripe takes 1.5 s: both tries time out (the second may see 409, in flight) */
	script("pm_card_visa", "charge", "[{\"action\":\"hang\",\"seconds\":1.5}]");
	res = charge(p, "key-hang", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_true(strcmp(res.code, "timeout") == 0 || strcmp(res.code, "idempotency_key_in_use") == 0);
	sleep_ms(1700);
	/* the tick's retry: same key, the saved answer */
	res = charge(p, "key-hang", "pm_card_visa");
	assert_outcome(res, TB_PAY_SUCCEEDED);
	snprintf(pi, sizeof pi, "%s", res.provider_id);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	res = charge(p, "key-hang", "pm_card_visa");
	assert_string_equal(res.provider_id, pi);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__concurrent_request_with_the_key_is_409_then_unknown(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	(void)state;
	o.timeout_ms = 200;
	o.max_retries = 2;
	p = provider_with(&o);
	script("pm_card_visa", "charge", "[{\"action\":\"hang\",\"seconds\":1.0}]");
	res = charge(p, "key-409", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "idempotency_key_in_use");
	sleep_ms(1200);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__backoff_is_exponential_capped_and_jittered(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	int64_t t0, took;
	(void)state;
	o.max_retries = 3;
	o.backoff_base_ms = 100;
	o.backoff_cap_ms = 150;
	p = provider_with(&o);
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":429},{\"action\":\"error\",\"status\":429},"
		" {\"action\":\"error\",\"status\":429},{\"action\":\"error\",\"status\":429}]");
	t0 = mono_ms();
	res = charge(p, "key-backoff", "pm_card_visa");
	took = mono_ms() - t0;
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 4);
	/* waits drawn from [50,100], [75,150], [75,150] (capped): 200..400 ms */
	if (took < 200 || took > 1500)
		fail_msg("three backoffs took %lld ms", (long long)took);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__same_key_other_parameters_is_unknown(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_request r = charge_req("key-mismatch", "pm_card_visa", 2500);
	tb_pay_result res;
	(void)state;
	assert_tb_ok(p->charge(p, &r, &res));
	assert_outcome(res, TB_PAY_SUCCEEDED);
	r.amount_minor = 2600;
	assert_tb_ok(p->charge(p, &r, &res));
	/* the first request ran: "error" would let the order be paid twice */
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "idempotency_error");
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 2);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void retries__unreachable_server_is_unknown(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result res;
	(void)state;
	o.base_url = "http://127.0.0.1:1"; /* nothing listens on port 1 */
	o.max_retries = 1;
	p = provider_with(&o);
	res = charge(p, "key-down", "pm_card_visa");
	assert_outcome(res, TB_PAY_UNKNOWN);
	assert_string_equal(res.code, "network_error");
	assert_non_null(strstr(res.message, "2 tries"));
	assert_result_clean(&res);
	tb_payment_provider_free(p);
}

/* ---- secrets ---------------------------------------------------------------------- */

static void secrets__never_in_results(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res;
	(void)state;
	/* something between us and Stripe echoes the key back: withheld */
	script("pm_card_visa", "charge",
		"[{\"action\":\"error\",\"status\":400,\"message\":\"bad header Bearer " FAKE_STRIPE_KEY "\"}]");
	res = charge(p, "key-echo", "pm_card_visa");
	assert_outcome(res, TB_PAY_ERROR);
	assert_result_clean(&res);
	assert_non_null(strstr(res.message, "withheld"));
	tb_payment_provider_free(p);
}

/* ---- refunds ------------------------------------------------------------------------ */

static void refund__sends_the_documented_refund(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-rf-c", "pm_card_visa"), rf, again;
	char pi[128];
	json_t *holder = NULL, *req;
	(void)state;
	assert_outcome(res, TB_PAY_SUCCEEDED);
	snprintf(pi, sizeof pi, "%s", res.provider_id);

	rf = refund(p, "key-rf-r", pi, "requested_by_customer");
	assert_outcome(rf, TB_PAY_SUCCEEDED);
	assert_true(strncmp(rf.provider_id, "re_", 3) == 0);
	req = request_at("/v1/refunds", 0, &holder);
	assert_string_equal(fake_stripe_header(req, "Idempotency-Key"), "key-rf-r");
	assert_string_equal(fake_stripe_form(req, "payment_intent"), pi);
	assert_string_equal(fake_stripe_form(req, "amount"), "2500");
	assert_string_equal(fake_stripe_form(req, "reason"), "requested_by_customer");
	assert_null(fake_stripe_form(req, "metadata[reason]"));
	assert_string_equal(fake_stripe_form(req, "metadata[charge_id]"), "0190a0a0-0000-7000-8000-00000000000c");
	json_decref(holder);

	/* the same refund attempt again: replayed, one refund */
	again = refund(p, "key-rf-r", pi, "requested_by_customer");
	assert_outcome(again, TB_PAY_SUCCEEDED);
	assert_string_equal(again.provider_id, rf.provider_id);
	assert_int_equal(fake_stripe_objects(fs, "refunds"), 1);

	/* a new attempt after it was refunded: already done, not an error */
	again = refund(p, "key-rf-r2", pi, NULL);
	assert_outcome(again, TB_PAY_SUCCEEDED);
	assert_string_equal(again.code, "charge_already_refunded");
	assert_int_equal(fake_stripe_objects(fs, "refunds"), 1);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void refund__our_own_reason_goes_to_metadata(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-rf2-c", "pm_card_visa"), rf;
	json_t *holder = NULL, *req;
	(void)state;
	rf = refund(p, "key-rf2-r", res.provider_id, "late_payment");
	assert_outcome(rf, TB_PAY_SUCCEEDED);
	req = request_at("/v1/refunds", 0, &holder);
	assert_null(fake_stripe_form(req, "reason"));
	assert_string_equal(fake_stripe_form(req, "metadata[reason]"), "late_payment");
	json_decref(holder);

	/* a refund Stripe reports pending is accepted: the money is on its way */
	res = charge(p, "key-rf3-c", "pm_card_visa");
	script("pm_card_visa", "refund", "[{\"action\":\"status\",\"status\":\"pending\"}]");
	rf = refund(p, "key-rf3-r", res.provider_id, NULL);
	assert_outcome(rf, TB_PAY_SUCCEEDED);

	/* a 5xx on refund is retried like a charge, then unknown */
	res = charge(p, "key-rf4-c", "pm_card_visa");
	script("pm_card_visa", "refund",
		"[{\"action\":\"error\",\"status\":503},{\"action\":\"error\",\"status\":503},"
		" {\"action\":\"error\",\"status\":503}]");
	rf = refund(p, "key-rf4-r", res.provider_id, NULL);
	assert_outcome(rf, TB_PAY_UNKNOWN);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/refunds"), 5);

	/* refunding a payment Stripe does not know is an error */
	rf = refund(p, "key-rf5-r", "pi_doesnotexist", NULL);
	assert_outcome(rf, TB_PAY_ERROR);
	assert_string_equal(rf.code, "resource_missing");
	assert_no_violations();
	tb_payment_provider_free(p);
}

/* ---- lookup ------------------------------------------------------------------------- */

static void lookup__finds_an_earlier_attempt_by_its_key(void **state)
{
	tb_payment_provider *p = provider();
	tb_pay_result res = charge(p, "key-lk-1", "pm_card_visa"), lk;
	json_t *holder = NULL, *req;
	(void)state;
	assert_non_null(p->lookup);
	assert_tb_ok(p->lookup(p, "key-lk-1", &lk));
	assert_outcome(lk, TB_PAY_SUCCEEDED);
	assert_string_equal(lk.provider_id, res.provider_id);
	req = request_at("/v1/payment_intents/search", 0, &holder);
	assert_string_equal(json_string_value(json_object_get(req, "method")), "GET");
	assert_null(fake_stripe_header(req, "Idempotency-Key"));
	assert_string_equal(json_string_value(json_object_get(req, "query")),
		"query=metadata%5B%27idempotency_key%27%5D%3A%27key-lk-1%27");
	json_decref(holder);

	/* a declined attempt */
	res = charge(p, "key-lk-2", "pm_card_chargeDeclined");
	assert_tb_ok(p->lookup(p, "key-lk-2", &lk));
	assert_outcome(lk, TB_PAY_DECLINED);
	assert_string_equal(lk.code, "card_declined");
	assert_string_equal(lk.decline_code, "generic_decline");

	/* nothing found, or search lagging: unknown, never "no charge" */
	assert_tb_ok(p->lookup(p, "key-never-used", &lk));
	assert_outcome(lk, TB_PAY_UNKNOWN);
	assert_int_equal(fake_stripe_config(fs, "{\"search_visible\": false}"), 0);
	assert_tb_ok(p->lookup(p, "key-lk-1", &lk));
	assert_outcome(lk, TB_PAY_UNKNOWN);

	/* a key with quotes is escaped in the query language */
	assert_tb_ok(p->lookup(p, "it's\\odd", &lk));
	assert_outcome(lk, TB_PAY_UNKNOWN);
	/* lookup never creates anything */
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 2);
	assert_no_violations();
	tb_payment_provider_free(p);
}

static void lookup__a_failing_search_is_unknown(void **state)
{
	tb_stripe_options o = test_options();
	tb_payment_provider *p;
	tb_pay_result lk;
	(void)state;
	o.secret_key = "sk_test_wrong_key_for_lookup_00000";
	p = provider_with(&o);
	assert_tb_ok(p->lookup(p, "key-lk-x", &lk));
	assert_outcome(lk, TB_PAY_UNKNOWN);
	assert_result_clean(&lk);
	tb_payment_provider_free(p);
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct worker {
	tb_payment_provider *p;
	int n;
	int ok;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	int i;
	for (i = 0; i < 4; i++) {
		char key[64];
		tb_pay_request r;
		tb_pay_result res;
		snprintf(key, sizeof key, "key-thread-%d-%d", w->n, i);
		r = charge_req(key, "pm_card_visa", 1000 + w->n);
		if (w->p->charge(w->p, &r, &res) == TB_OK && res.outcome == TB_PAY_SUCCEEDED)
			w->ok++;
	}
	return NULL;
}

static void threads__one_provider_many_threads(void **state)
{
	tb_payment_provider *p = provider();
	pthread_t th[6];
	worker w[6];
	int i, ok = 0;
	(void)state;
	for (i = 0; i < 6; i++) {
		w[i].p = p;
		w[i].n = i;
		w[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
	}
	assert_int_equal(ok, 24);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 24);
	assert_no_violations();
	tb_payment_provider_free(p);
}

/* ---- webhooks ------------------------------------------------------------------------ */

#define VECTOR_SECRET "whsec_test_ticketyboo"
#define VECTOR_BODY "{\"id\":\"evt_test_1\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\"}"
#define VECTOR_SIG "402ad45bae98a6821e5e3560c3e9ef75fb972f2c5147548dfdfd164e7c25de89"
#define VECTOR_T INT64_C(1700000000)

/* Sign like Stripe (t=<t>,v1=<hex>), for building test deliveries. */
static void sign(char *out, size_t cap, const char *secret, int64_t t, const char *body)
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char ts[32], hex[2 * sizeof mac + 1];
	snprintf(ts, sizeof ts, "%lld", (long long)t);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
	snprintf(out, cap, "t=%s,v1=%s", ts, hex);
}

static void webhook__seed_test_vector_verifies(void **state)
{
	char header[256];
	(void)state;
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, "t=1700000000,v1=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300));
	/* our own signer agrees with the vector (python hmac and openssl made it) */
	sign(header, sizeof header, VECTOR_SECRET, VECTOR_T, VECTOR_BODY);
	assert_string_equal(header, "t=1700000000,v1=" VECTOR_SIG);
	/* spaces after commas, and a v0 beside it, are fine */
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, "t=1700000000, v0=abc, v1=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T + 10, 300));
}

static void webhook__refuses_bad_secret_stale_tampered(void **state)
{
	const char *h = "t=1700000000,v1=" VECTOR_SIG;
	const char *msg;
	(void)state;

	assert_tb_status(tb_stripe_webhook_verify("whsec_other", h, VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T, 300), TB_ESIGNATURE);
	msg = tb_last_error()->message;
	assert_null(strstr(msg, "whsec_"));
	assert_null(strstr(msg, VECTOR_SIG));

	/* stale (301 s late), and too far in the future */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T + 301, 300), TB_ESIGNATURE);
	assert_non_null(strstr(tb_last_error()->message, "tolerance"));
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T + 300, 300));
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T - 301, 300), TB_ESIGNATURE);
	/* extreme clocks and tolerances do not overflow */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		INT64_MIN, INT64_MAX), TB_ESIGNATURE);
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		INT64_MAX, INT64_MAX));
	/* tolerance 0: no time check (replaying stored events) */
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T + 86400, 0));

	/* tampered body, tampered timestamp */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, h,
		"{\"id\":\"evt_test_1\",\"object\":\"event\",\"type\":\"payment_intent.succeedeD\"}",
		strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, "t=1700000001,v1=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
	/* a body cut short (length matters, not the NUL) */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, h, VECTOR_BODY, strlen(VECTOR_BODY) - 1,
		VECTOR_T, 300), TB_ESIGNATURE);
	/* upper-case hex is not what Stripe sends */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET,
		"t=1700000000,v1=402AD45BAE98A6821E5E3560C3E9EF75FB972F2C5147548DFDFD164E7C25DE89",
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
}

static void webhook__tries_every_v1_and_needs_t_and_v1(void **state)
{
	(void)state;
	/* rolling secrets: several v1 values, the good one last */
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET,
		"t=1700000000,v1=0000000000000000000000000000000000000000000000000000000000000000,"
		"v1=deadbeef,v1=" VECTOR_SIG, VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300));
	/* the good one first, then junk */
	assert_tb_ok(tb_stripe_webhook_verify(VECTOR_SECRET, "t=1700000000,v1=" VECTOR_SIG ",v1=zz",
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300));
	/* only v0 (the test-mode scheme Stripe also sends): not accepted */
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, "t=1700000000,v0=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
	assert_non_null(strstr(tb_last_error()->message, "v1"));
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, "v1=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, "t=17e8,v1=" VECTOR_SIG,
		VECTOR_BODY, strlen(VECTOR_BODY), VECTOR_T, 300), TB_ESIGNATURE);
	assert_tb_status(tb_stripe_webhook_verify(VECTOR_SECRET, "", VECTOR_BODY, strlen(VECTOR_BODY),
		VECTOR_T, 300), TB_ESIGNATURE);
	assert_tb_status(tb_stripe_webhook_verify(NULL, "t=1", VECTOR_BODY, 1, VECTOR_T, 300), TB_EINVAL);
}

static void webhook__parse_maps_the_three_types_and_ignores_others(void **state)
{
	tb_stripe_event *ev = NULL;
	const tb_payment_event *pe;
	const char *ok = "{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
		"\"data\":{\"object\":{\"id\":\"pi_123\",\"object\":\"payment_intent\","
		"\"metadata\":{\"charge_id\":\"c-1\",\"order_id\":\"o-1\"}}}}";
	const char *failed = "{\"id\":\"evt_2\",\"object\":\"event\",\"type\":\"payment_intent.payment_failed\","
		"\"data\":{\"object\":{\"id\":\"pi_456\",\"metadata\":{\"charge_id\":\"c-2\"},"
		"\"last_payment_error\":{\"type\":\"card_error\",\"code\":\"card_declined\","
		"\"decline_code\":\"insufficient_funds\",\"message\":\"Your card has insufficient funds.\"}}}}";
	const char *refunded = "{\"id\":\"evt_3\",\"object\":\"event\",\"type\":\"charge.refunded\","
		"\"data\":{\"object\":{\"id\":\"ch_9\",\"object\":\"charge\",\"payment_intent\":\"pi_123\","
		"\"refunded\":true,\"metadata\":{},\"refunds\":{\"object\":\"list\",\"data\":"
		"[{\"id\":\"re_7\",\"metadata\":{\"charge_id\":\"c-1\"}}]}}}}";
	const char *nodata = "{\"id\":\"e\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\",\"data\":{}}";
	const char *partial = "{\"id\":\"evt_4\",\"object\":\"event\",\"type\":\"charge.refunded\","
		"\"data\":{\"object\":{\"id\":\"ch_9\",\"payment_intent\":\"pi_123\",\"refunded\":false}}}";
	const char *other = "{\"id\":\"evt_5\",\"object\":\"event\",\"type\":\"customer.created\","
		"\"data\":{\"object\":{\"id\":\"cus_1\"}}}";
	(void)state;

	assert_tb_ok(tb_stripe_webhook_parse(&ev, ok, strlen(ok)));
	assert_string_equal(tb_stripe_event_id(ev), "evt_1");
	assert_string_equal(tb_stripe_event_type(ev), "payment_intent.succeeded");
	pe = tb_stripe_event_payment(ev);
	assert_non_null(pe);
	assert_int_equal(pe->type, TB_PAYMENT_EVENT_SUCCEEDED);
	assert_string_equal(pe->event_id, "evt_1");
	assert_string_equal(pe->charge_id, "c-1");
	assert_string_equal(pe->provider_charge_id, "pi_123");
	tb_stripe_event_free(ev);

	assert_tb_ok(tb_stripe_webhook_parse(&ev, failed, strlen(failed)));
	pe = tb_stripe_event_payment(ev);
	assert_int_equal(pe->type, TB_PAYMENT_EVENT_FAILED);
	assert_string_equal(pe->failure_code, "card_declined");
	assert_string_equal(pe->decline_code, "insufficient_funds");
	assert_string_equal(pe->failure_message, "Your card has insufficient funds.");
	tb_stripe_event_free(ev);

	assert_tb_ok(tb_stripe_webhook_parse(&ev, refunded, strlen(refunded)));
	pe = tb_stripe_event_payment(ev);
	assert_int_equal(pe->type, TB_PAYMENT_EVENT_REFUNDED);
	assert_string_equal(pe->provider_charge_id, "pi_123");
	assert_string_equal(pe->provider_refund_id, "re_7");
	assert_string_equal(pe->charge_id, "c-1");
	tb_stripe_event_free(ev);

	assert_tb_ok(tb_stripe_webhook_parse(&ev, partial, strlen(partial)));
	assert_null(tb_stripe_event_payment(ev));
	tb_stripe_event_free(ev);
	assert_tb_ok(tb_stripe_webhook_parse(&ev, other, strlen(other)));
	assert_null(tb_stripe_event_payment(ev));
	assert_string_equal(tb_stripe_event_type(ev), "customer.created");
	tb_stripe_event_free(ev);

	assert_tb_status(tb_stripe_webhook_parse(&ev, "{nope", 5), TB_EINVAL);
	assert_null(ev);
	assert_tb_status(tb_stripe_webhook_parse(&ev, "{\"id\":\"x\"}", 10), TB_EINVAL);
	assert_tb_status(tb_stripe_webhook_parse(&ev, nodata, strlen(nodata)), TB_EINVAL);
	tb_stripe_event_free(NULL);
}

/* ---- the market with Stripe ------------------------------------------------------- */

typedef struct world {
	tbt *t;
	char *seller;
	char *buyer;
	char *ticket;
	char *order;
} world;

/* A market paying through the fake Stripe (file != 0: on a file), one order placed. */
static world *world_new(int file, const tb_stripe_options *o)
{
	world *w = calloc(1, sizeof *w);
	tb_status st;
	assert_non_null(w);
	w->t = tbt_prepare(file);
	tb_payment_provider_free(w->t->pay);
	w->t->pay = provider_with(o);
	tbt_open(w->t);
	w->seller = tbt_user(w->t, "seller@example.com");
	w->buyer = tbt_user(w->t, "buyer@example.com");
	w->ticket = tbt_ticket(w->t, w->seller, "Glastonbury Sunday", 2500);
	w->order = tbt_order(w->t, w->buyer, w->ticket, &st);
	assert_tb_ok(st);
	return w;
}

static void world_free(world *w)
{
	tbt_free(w->t);
	free(w->seller);
	free(w->buyer);
	free(w->ticket);
	free(w->order);
	free(w);
}

static tb_order_status order_status(world *w)
{
	tb_order *o = NULL;
	tb_order_status s;
	assert_tb_ok(tb_order_get(&o, w->t->m, w->buyer, w->order));
	s = tb_order_status_get(o);
	tb_order_free(o);
	return s;
}

static tb_charge *latest_charge(world *w)
{
	tb_charge *c = NULL;
	assert_tb_ok(tb_charge_get_latest(&c, w->t->m, w->buyer, w->order));
	return c;
}

/* Wait (up to 5 s) until the fake holds n objects of a kind. */
static void await_objects(const char *kind, size_t n)
{
	int i;
	for (i = 0; i < 100 && fake_stripe_objects(fs, kind) < n; i++)
		sleep_ms(50);
	assert_int_equal(fake_stripe_objects(fs, kind), n);
}

/* Every event payload, and the charge's JSON, free of secrets. */
static void assert_market_clean(world *w)
{
	tb_event_page *page = NULL;
	tb_charge *c = latest_charge(w);
	char *json = NULL;
	size_t i;
	assert_tb_ok(tb_charge_to_json(&json, c));
	assert_no_secret(json);
	assert_null(strstr(json, "pm_card"));
	tb_free(json);
	tb_charge_free(c);
	assert_tb_ok(tb_event_read(&page, w->t->m, 0, TB_EVENT_READ_MAX));
	for (i = 0; i < tb_event_page_count(page); i++) {
		assert_tb_ok(tb_event_to_json(&json, tb_event_page_at(page, i)));
		assert_no_secret(json);
		tb_free(json);
	}
	tb_event_page_free(page);
}

static void market__pay_completes_the_order_through_stripe(void **state)
{
	tb_stripe_options o = test_options();
	world *w = world_new(0, &o);
	tb_charge *c = NULL;
	json_t *holder = NULL, *req;
	(void)state;

	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "pm_card_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	assert_string_equal(tb_charge_provider(c), "stripe");
	assert_true(strncmp(tb_charge_provider_charge_id(c), "pi_", 3) == 0);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);

	req = request_at("/v1/payment_intents", 0, &holder);
	assert_string_equal(fake_stripe_header(req, "Idempotency-Key"), tb_charge_idempotency_key(c));
	assert_string_equal(fake_stripe_form(req, "amount"), "2500");
	assert_string_equal(fake_stripe_form(req, "currency"), "usd");
	assert_string_equal(fake_stripe_form(req, "metadata[order_id]"), w->order);
	assert_string_equal(fake_stripe_form(req, "metadata[charge_id]"), tb_charge_id(c));
	json_decref(holder);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	tb_charge_free(c);
	assert_market_clean(w);
	assert_no_violations();
	world_free(w);
}

static void market__decline_details_are_reachable(void **state)
{
	tb_stripe_options o = test_options();
	world *w = world_new(0, &o);
	tb_charge *c = NULL;
	(void)state;

	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_chargeDeclinedInsufficientFunds"),
		TB_EDECLINED);
	assert_null(c);
	assert_string_equal(tb_last_error()->message, "Your card has insufficient funds.");
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_FAILED);
	assert_string_equal(tb_charge_failure_code(c), "card_declined");
	assert_string_equal(tb_charge_decline_code(c), "insufficient_funds");
	assert_string_equal(tb_charge_failure_message(c), "Your card has insufficient funds.");
	assert_int_equal(tb_charge_attempts(c), 1);
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_CANCELLED);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);
	assert_market_clean(w);
	assert_no_violations();
	world_free(w);
}

static void market__refused_request_is_a_provider_error_without_secrets(void **state)
{
	tb_stripe_options o = test_options();
	world *w;
	tb_charge *c = NULL;
	(void)state;

	o.secret_key = "sk_test_revoked_key_0000000000000";
	w = world_new(0, &o);
	assert_tb_status(tb_order_pay(&c, w->t->m, w->buyer, w->order, "pm_card_visa"), TB_EPROVIDER);
	assert_no_secret(tb_last_error()->message);
	assert_null(strstr(tb_last_error()->message, "sk_test_revoked"));
	c = latest_charge(w);
	assert_string_equal(tb_charge_failure_code(c), "authentication_error");
	assert_null(strstr(tb_charge_failure_message(c), "revoked"));
	tb_charge_free(c);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 0);
	world_free(w);
}

/* Advance past the core's retry delay and tick. */
static tb_tick_stats tick(world *w)
{
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	tbt_advance(w->t, 61 * 1000);
	assert_tb_ok(tb_market_tick(w->t->m, &stats));
	return stats;
}

static void crash__killed_mid_payment_then_tick_charges_exactly_once(void **state)
{
	tb_stripe_options o = test_options();
	world *w = world_new(1, &o);
	tb_charge *c;
	pid_t child;
	int i, status;
	(void)state;

	/* Stripe takes 1 s to answer; the process dies while it waits */
	script("pm_card_visa", "charge", "[{\"action\":\"hang\",\"seconds\":1.0}]");
	tb_market_close(w->t->m);
	w->t->m = NULL;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		tb_market *m = NULL;
		tb_charge *cc = NULL;
		if (tb_market_open(&m, &w->t->opts) == TB_OK && tb_order_pay(&cc, m, w->buyer, w->order,
				"pm_card_visa") == TB_OK)
			_exit(3); /* only reached if the kill came too late */
		_exit(4);
	}
	for (i = 0; i < 200 && fake_stripe_count(fs, "POST", "/v1/payment_intents") == 0; i++)
		sleep_ms(10);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));

	/* Stripe finished the request anyway: the money was taken, the answer lost */
	await_objects("payment_intents", 1);
	assert_tb_ok(tb_market_open(&w->t->m, &w->t->opts));
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_AWAITING_PAYMENT);

	assert_int_equal(tick(w).payments_resolved, 1);
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	assert_int_equal(tick(w).payments_retried, 0);
	/* one PaymentIntent; the tick looked the attempt up instead of asking again */
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/payment_intents"), 1);
	assert_true(fake_stripe_count(fs, "GET", "/v1/payment_intents/search") >= 1);
	assert_no_violations();
	world_free(w);
}

static void crash__timeout_then_reopen_then_tick_charges_exactly_once(void **state)
{
	tb_stripe_options o = test_options();
	world *w;
	tb_charge *c = NULL;
	(void)state;
	o.timeout_ms = 300;
	o.max_retries = 0;
	w = world_new(1, &o);

	script("tok_visa", "charge", "[{\"action\":\"hang\",\"seconds\":1.0}]");
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "tok_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	tb_charge_free(c);
	tbt_reopen(w->t); /* abandoned mid-payment: a restart */
	await_objects("payment_intents", 1);

	assert_int_equal(tick(w).payments_resolved, 1);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	assert_int_equal(tb_charge_attempts(c), 2);
	tb_charge_free(c);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	assert_int_equal(fake_stripe_objects(fs, "payment_methods"), 1);
	assert_no_violations();
	world_free(w);
}

/* A signed Stripe delivery about our PaymentIntent, at the market's time + skew. */
static tb_status deliver(world *w, const char *event_id, const char *type, const char *object_json,
	int64_t skew_s, const char *secret)
{
	char body[2048], header[256];
	snprintf(body, sizeof body,
		"{\"id\":\"%s\",\"object\":\"event\",\"api_version\":\"2020-08-27\",\"created\":%lld,"
		"\"livemode\":false,\"pending_webhooks\":1,\"type\":\"%s\",\"data\":{\"object\":%s}}",
		event_id, (long long)(tbt_now(w->t) / 1000), type, object_json);
	sign(header, sizeof header, secret, tbt_now(w->t) / 1000 + skew_s, body);
	return tb_market_stripe_webhook(w->t->m, w->t->pay, header, body, strlen(body));
}

static void late_success__refunded_exactly_once(void **state)
{
	tb_stripe_options o = test_options();
	world *w;
	tb_charge *c = NULL;
	tb_order *ord = NULL;
	tb_tick_stats stats;
	char obj[512], pi[128];
	json_t *holder = NULL, *req;
	(void)state;
	o.timeout_ms = 300;
	o.max_retries = 0;
	w = world_new(0, &o);

	script("pm_card_visa", "charge", "[{\"action\":\"hang\",\"seconds\":1.0}]");
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "pm_card_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	tb_charge_free(c);
	/* the buyer gives up while the payment is in flight */
	assert_tb_ok(tb_order_cancel(&ord, w->t->m, w->buyer, w->order));
	tb_order_free(ord);
	await_objects("payment_intents", 1);

	stats = tick(w);
	assert_int_equal(stats.refunds_issued, 1);
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_REFUNDED);
	assert_true(strncmp(tb_charge_provider_refund_id(c), "re_", 3) == 0);
	assert_string_equal(tb_charge_refund_reason(c), "late_payment");
	snprintf(pi, sizeof pi, "%s", tb_charge_provider_charge_id(c));
	snprintf(obj, sizeof obj, "{\"id\":\"%s\",\"object\":\"payment_intent\",\"status\":\"succeeded\","
		"\"metadata\":{\"charge_id\":\"%s\"}}", pi, tb_charge_id(c));
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_CANCELLED);
	req = request_at("/v1/refunds", 0, &holder);
	assert_string_equal(fake_stripe_form(req, "payment_intent"), pi);
	assert_string_equal(fake_stripe_form(req, "metadata[reason]"), "late_payment");
	json_decref(holder);

	/* more ticks, and Stripe's own notice of the success: nothing more */
	stats = tick(w);
	assert_int_equal(stats.payments_retried, 0);
	assert_tb_ok(deliver(w, "evt_late_1", "payment_intent.succeeded", obj, 0, "whsec_test_ticketyboo"));
	stats = tick(w);
	assert_int_equal(stats.refunds_issued, 0);
	assert_int_equal(fake_stripe_objects(fs, "refunds"), 1);
	assert_int_equal(fake_stripe_count(fs, "POST", "/v1/refunds"), 1);
	assert_market_clean(w);
	assert_no_violations();
	world_free(w);
}

static void webhook__market_applies_a_delivery_once(void **state)
{
	tb_stripe_options o = test_options();
	world *w = world_new(0, &o);
	tb_charge *c = NULL;
	char obj[512], failed[768], pi[128], cid[64];
	int64_t seq;
	(void)state;

	/* Stripe is still processing: the order waits for the notice */
	script("pm_card_visa", "charge", "[{\"action\":\"status\",\"status\":\"processing\"}]");
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "pm_card_visa"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_PENDING);
	snprintf(pi, sizeof pi, "%s", tb_charge_provider_charge_id(c) ? tb_charge_provider_charge_id(c) : "");
	snprintf(cid, sizeof cid, "%s", tb_charge_id(c));
	tb_charge_free(c);
	if (!pi[0]) { /* the core may keep the id only once settled: take it from Stripe */
		json_t *st = fake_stripe_get(fs, "state");
		snprintf(pi, sizeof pi, "%s", json_string_value(json_object_get(
			json_array_get(json_object_get(st, "payment_intents"), 0), "id")));
		json_decref(st);
	}
	snprintf(obj, sizeof obj, "{\"id\":\"%s\",\"object\":\"payment_intent\",\"status\":\"succeeded\","
		"\"metadata\":{\"charge_id\":\"%s\"}}", pi, cid);

	/* forged, stale: refused, nothing changes */
	assert_tb_status(deliver(w, "evt_a", "payment_intent.succeeded", obj, 0, "whsec_forged"), TB_ESIGNATURE);
	assert_tb_status(deliver(w, "evt_a", "payment_intent.succeeded", obj, -301, "whsec_test_ticketyboo"),
		TB_ESIGNATURE);
	assert_int_equal(order_status(w), TB_ORDER_AWAITING_PAYMENT);

	assert_tb_ok(deliver(w, "evt_a", "payment_intent.succeeded", obj, -5, "whsec_test_ticketyboo"));
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	seq = tbt_last_seq(w->t);
	/* the same delivery again, then an older failure notice out of order */
	assert_tb_ok(deliver(w, "evt_a", "payment_intent.succeeded", obj, 0, "whsec_test_ticketyboo"));
	snprintf(failed, sizeof failed, "{\"id\":\"%s\",\"object\":\"payment_intent\","
		"\"metadata\":{\"charge_id\":\"%s\"},\"last_payment_error\":{\"code\":\"card_declined\"}}", pi, cid);
	assert_tb_ok(deliver(w, "evt_b", "payment_intent.payment_failed", failed, 0, "whsec_test_ticketyboo"));
	assert_int_equal(tbt_last_seq(w->t), seq);
	c = latest_charge(w);
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_SUCCEEDED);
	tb_charge_free(c);
	assert_int_equal(order_status(w), TB_ORDER_COMPLETE);
	assert_int_equal(tbt_event_count(w->t, TB_EVENT_CHARGE_SUCCEEDED), 1);

	/* types we do not handle are accepted and ignored; unknown payments are not ours */
	assert_tb_ok(deliver(w, "evt_c", "customer.created", "{\"id\":\"cus_1\"}", 0, "whsec_test_ticketyboo"));
	assert_tb_status(deliver(w, "evt_d", "payment_intent.succeeded",
		"{\"id\":\"pi_not_ours\",\"metadata\":{}}", 0, "whsec_test_ticketyboo"), TB_ENOTFOUND);
	assert_tb_status(tb_market_stripe_webhook(w->t->m, NULL, "t=1,v1=00", "{}", 2), TB_EINVAL);
	assert_int_equal(tbt_last_seq(w->t), seq);
	assert_int_equal(fake_stripe_objects(fs, "payment_intents"), 1);
	assert_no_violations();
	world_free(w);
}

static void webhook__needs_a_stripe_provider_with_a_secret(void **state)
{
	tb_stripe_options o = test_options();
	world *w;
	tb_payment_provider *fake = NULL;
	(void)state;
	o.webhook_secret = NULL;
	w = world_new(0, &o);
	assert_tb_status(deliver(w, "evt_x", "customer.created", "{\"id\":\"cus_1\"}", 0, "whsec_test_ticketyboo"),
		TB_EINVAL);
	assert_string_equal(tbt_field(), "webhook_secret");
	assert_tb_ok(tb_payment_fake_new(&fake));
	assert_tb_status(tb_market_stripe_webhook(w->t->m, fake, "t=1,v1=00", "{}", 2), TB_EINVAL);
	tb_payment_provider_free(fake);
	world_free(w);
}

static void market__seller_refund_goes_to_stripe_once(void **state)
{
	tb_stripe_options o = test_options();
	world *w = world_new(0, &o);
	tb_charge *c = NULL;
	json_t *holder = NULL, *req;
	(void)state;
	assert_tb_ok(tb_order_pay(&c, w->t->m, w->buyer, w->order, "pm_card_visa"));
	tb_charge_free(c);
	c = NULL;
	assert_tb_ok(tb_order_refund(&c, w->t->m, w->seller, w->order, "requested_by_customer"));
	assert_int_equal(tb_charge_status_get(c), TB_CHARGE_REFUNDED);
	assert_true(strncmp(tb_charge_provider_refund_id(c), "re_", 3) == 0);
	req = request_at("/v1/refunds", 0, &holder);
	assert_string_equal(fake_stripe_form(req, "reason"), "requested_by_customer");
	assert_string_not_equal(fake_stripe_header(req, "Idempotency-Key"), tb_charge_idempotency_key(c));
	json_decref(holder);
	tb_charge_free(c);
	assert_int_equal(fake_stripe_objects(fs, "refunds"), 1);
	assert_market_clean(w);
	assert_no_violations();
	world_free(w);
}

static tb_payment_provider *make_stripe(void *ctx)
{
	tb_payment_provider *p = NULL;
	return tb_payment_stripe_new(&p, ctx) == TB_OK ? p : NULL;
}

int main(void)
{
	const struct CMUnitTest provider_tests[] = {
		cmocka_unit_test_setup(fake__flags_what_stripe_would_reject, reset),
		cmocka_unit_test(options__refuse_bad_values),
		cmocka_unit_test_setup(charge__sends_the_documented_payment_intent, reset),
		cmocka_unit_test_setup(charge__without_api_version_sends_no_header, reset),
		cmocka_unit_test_setup(charge__legacy_token_becomes_a_payment_method_first, reset),
		cmocka_unit_test_setup(charge__long_description_is_cut_on_a_character_boundary, reset),
		cmocka_unit_test_setup(charge__decline_keeps_code_decline_code_and_message, reset),
		cmocka_unit_test_setup(charge__invalid_request_is_an_error_and_not_retried, reset),
		cmocka_unit_test_setup(charge__bad_key_is_an_auth_error_without_the_key, reset),
		cmocka_unit_test_setup(charge__status_mapping, reset),
		cmocka_unit_test_setup(retries__rate_limit_then_success_reuse_the_key_and_body, reset),
		cmocka_unit_test_setup(retries__stop_at_max_retries_then_unknown, reset),
		cmocka_unit_test_setup(retries__a_replayed_500_is_not_asked_again, reset),
		cmocka_unit_test_setup(retries__dropped_connection_is_retried, reset),
		cmocka_unit_test_setup(retries__timeout_is_unknown_and_a_later_retry_finds_the_charge, reset),
		cmocka_unit_test_setup(retries__concurrent_request_with_the_key_is_409_then_unknown, reset),
		cmocka_unit_test_setup(retries__backoff_is_exponential_capped_and_jittered, reset),
		cmocka_unit_test_setup(retries__same_key_other_parameters_is_unknown, reset),
		cmocka_unit_test_setup(retries__unreachable_server_is_unknown, reset),
		cmocka_unit_test_setup(secrets__never_in_results, reset),
		cmocka_unit_test_setup(refund__sends_the_documented_refund, reset),
		cmocka_unit_test_setup(refund__our_own_reason_goes_to_metadata, reset),
		cmocka_unit_test_setup(lookup__finds_an_earlier_attempt_by_its_key, reset),
		cmocka_unit_test_setup(lookup__a_failing_search_is_unknown, reset),
		cmocka_unit_test_setup(threads__one_provider_many_threads, reset),
		cmocka_unit_test(webhook__seed_test_vector_verifies),
		cmocka_unit_test(webhook__refuses_bad_secret_stale_tampered),
		cmocka_unit_test(webhook__tries_every_v1_and_needs_t_and_v1),
		cmocka_unit_test(webhook__parse_maps_the_three_types_and_ignores_others),
		cmocka_unit_test_setup(market__pay_completes_the_order_through_stripe, reset),
		cmocka_unit_test_setup(market__decline_details_are_reachable, reset),
		cmocka_unit_test_setup(market__refused_request_is_a_provider_error_without_secrets, reset),
		cmocka_unit_test_setup(market__seller_refund_goes_to_stripe_once, reset),
		cmocka_unit_test_setup(crash__killed_mid_payment_then_tick_charges_exactly_once, reset),
		cmocka_unit_test_setup(crash__timeout_then_reopen_then_tick_charges_exactly_once, reset),
		cmocka_unit_test_setup(late_success__refunded_exactly_once, reset),
		cmocka_unit_test_setup(webhook__market_applies_a_delivery_once, reset),
		cmocka_unit_test_setup(webhook__needs_a_stripe_provider_with_a_secret, reset),
	};
	tb_stripe_options o;
	tb_provider_contract contract = { "stripe", make_stripe, "tok_visa", "tok_chargeDeclined", "USD", &o };
	int failed;

	fs = fake_stripe_start();
	if (!fs)
		return 1;
	o = test_options();
	failed = cmocka_run_group_tests_name("stripe", provider_tests, NULL, NULL);
	/* the vtable contract every provider passes, here against the fake Stripe */
	failed += tb_provider_contract_run(&contract);
	if (fake_stripe_violations(fs) != 0)
		failed++;
	fake_stripe_stop(fs);
	return failed;
}
