/*
 * The fake payment provider: deterministic outcomes by token, mirroring
 * Stripe's test tokens, idempotent by key the way Stripe is (a key that got
 * a final answer replays it).  Used by tests, the demo and the reference
 * server; it ships in the library so hosts and bindings can test with it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <ticketyboo/ticketyboo.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

typedef enum key_state {
	KEY_NO_CHARGE = 0, /* seen, but no final answer: a retry is processed anew */
	KEY_FINAL = 1      /* final answer recorded: replayed */
} key_state;

typedef struct entry {
	char key[128];
	key_state state;
	int tries;
	char token[128];
	int64_t amount;
	bool charged;          /* money taken under this key */
	bool refunded;
	tb_pay_result result;  /* replayed once final */
	struct entry *charge;  /* provider-id index: the charge entry it names */
	struct entry *next;
} entry;

typedef struct table {
	entry *buckets[BUCKETS];
} table;

typedef struct script {
	char token[128];
	tb_fake_outcome outcome;
	struct script *next;
} script;

typedef struct fake {
	tb_payment_provider base; /* first: the vtable */
	pthread_mutex_t lock;
	table charges;   /* by idempotency key */
	table by_id;     /* by provider charge id -> charge entry */
	table refunds;   /* by refund idempotency key */
	script *scripts, *scripts_tail;
	tb_fake_stats stats;
	unsigned long long next_id;
} fake;

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h % BUCKETS;
}

static entry *find(table *t, const char *key)
{
	for (entry *e = t->buckets[hash(key)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static entry *insert(table *t, const char *key)
{
	entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->key, sizeof(e->key), "%s", key);
	size_t h = hash(key);
	e->next = t->buckets[h];
	t->buckets[h] = e;
	return e;
}

static void table_free(table *t)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		entry *e = t->buckets[i];
		while (e) {
			entry *next = e->next;
			free(e);
			e = next;
		}
		t->buckets[i] = NULL;
	}
}

static bool is_fake(const tb_payment_provider *p)
{
	return p && p->name && strcmp(p->name, "fake") == 0;
}

/* First queued outcome for this token, or 0. */
static tb_fake_outcome pop_script(fake *f, const char *token)
{
	script *prev = NULL;
	for (script *s = f->scripts; s; prev = s, s = s->next) {
		if (strcmp(s->token, token) != 0)
			continue;
		tb_fake_outcome o = s->outcome;
		if (prev)
			prev->next = s->next;
		else
			f->scripts = s->next;
		if (f->scripts_tail == s)
			f->scripts_tail = prev;
		free(s);
		return o;
	}
	return (tb_fake_outcome)0;
}

static bool token_is(const char *token, const char *a, const char *b)
{
	return strcmp(token, a) == 0 || (b && strcmp(token, b) == 0);
}

/* Built-in behaviour by token, like Stripe's test tokens. */
static tb_fake_outcome builtin(const char *token, int tries)
{
	if (token_is(token, "tok_visa", "pm_card_visa") || token_is(token, "tok_mastercard", "pm_card_mastercard"))
		return TB_FAKE_SUCCEED;
	if (token_is(token, "tok_chargeDeclined", "pm_card_chargeDeclined") ||
	    token_is(token, "tok_chargeDeclinedInsufficientFunds", "pm_card_chargeDeclinedInsufficientFunds"))
		return TB_FAKE_DECLINE;
	if (strcmp(token, "tok_timeout") == 0)
		return TB_FAKE_TIMEOUT_AFTER_CHARGE;
	if (strcmp(token, "tok_timeoutNoCharge") == 0)
		return tries <= 1 ? TB_FAKE_TIMEOUT : TB_FAKE_SUCCEED;
	return TB_FAKE_ERROR;
}

static void set_result(tb_pay_result *r, tb_pay_outcome outcome, const char *id, const char *code,
	const char *decline, const char *message)
{
	memset(r, 0, sizeof(*r));
	r->version = TB_PAY_RESULT_VERSION;
	r->outcome = outcome;
	snprintf(r->provider_id, sizeof(r->provider_id), "%s", id ? id : "");
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
	snprintf(r->decline_code, sizeof(r->decline_code), "%s", decline ? decline : "");
	snprintf(r->message, sizeof(r->message), "%s", message ? message : "");
}

static tb_status fake_charge(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *result)
{
	fake *f = (fake *)self;
	if (!req || !result || !req->idempotency_key || !req->payment_token)
		return tb_error_set(TB_EINVAL, "request", "charge request lacks a key or token");
	pthread_mutex_lock(&f->lock);
	f->stats.calls++;
	entry *e = find(&f->charges, req->idempotency_key);
	if (e && e->state == KEY_FINAL) {
		*result = e->result;
		pthread_mutex_unlock(&f->lock);
		return TB_OK;
	}
	if (!e && !(e = insert(&f->charges, req->idempotency_key))) {
		pthread_mutex_unlock(&f->lock);
		return TB_ENOMEM;
	}
	snprintf(e->token, sizeof(e->token), "%s", req->payment_token);
	e->amount = req->amount_minor;
	e->tries++;
	tb_fake_outcome o = pop_script(f, req->payment_token);
	if (!o)
		o = builtin(req->payment_token, e->tries);
	bool insufficient = strstr(req->payment_token, "InsufficientFunds") != NULL;
	char id[64];
	switch (o) {
	case TB_FAKE_SUCCEED:
	case TB_FAKE_TIMEOUT_AFTER_CHARGE: {
		snprintf(id, sizeof(id), "fake_pi_%llu", ++f->next_id);
		set_result(&e->result, TB_PAY_SUCCEEDED, id, NULL, NULL, NULL);
		e->state = KEY_FINAL;
		e->charged = true;
		entry *ix = insert(&f->by_id, id);
		if (ix)
			ix->charge = e;
		f->stats.charges++;
		f->stats.charged_minor += req->amount_minor;
		if (o == TB_FAKE_SUCCEED)
			*result = e->result;
		else
			set_result(result, TB_PAY_UNKNOWN, NULL, "timeout", NULL, "the provider did not answer in time");
		break;
	}
	case TB_FAKE_DECLINE:
		set_result(&e->result, TB_PAY_DECLINED, NULL, "card_declined",
			insufficient ? "insufficient_funds" : "generic_decline",
			insufficient ? "Your card has insufficient funds." : "Your card was declined.");
		e->state = KEY_FINAL;
		*result = e->result;
		break;
	case TB_FAKE_TIMEOUT:
		set_result(result, TB_PAY_UNKNOWN, NULL, "timeout", NULL, "the provider did not answer in time");
		break;
	case TB_FAKE_ERROR:
	default:
		/* Like Stripe, a request that fails validation is not saved under its key. */
		set_result(result, TB_PAY_ERROR, NULL, "resource_missing", NULL, "No such token.");
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return TB_OK;
}

static tb_status fake_refund(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *result)
{
	fake *f = (fake *)self;
	if (!req || !result || !req->idempotency_key || !req->provider_charge_id)
		return tb_error_set(TB_EINVAL, "request", "refund request lacks a key or charge id");
	pthread_mutex_lock(&f->lock);
	f->stats.calls++;
	entry *r = find(&f->refunds, req->idempotency_key);
	if (r && r->state == KEY_FINAL) {
		*result = r->result;
		pthread_mutex_unlock(&f->lock);
		return TB_OK;
	}
	entry *ix = find(&f->by_id, req->provider_charge_id);
	entry *charge = ix ? ix->charge : NULL;
	if (!charge) {
		set_result(result, TB_PAY_ERROR, NULL, "resource_missing", NULL, "No such payment.");
		pthread_mutex_unlock(&f->lock);
		return TB_OK;
	}
	if (!r && !(r = insert(&f->refunds, req->idempotency_key))) {
		pthread_mutex_unlock(&f->lock);
		return TB_ENOMEM;
	}
	tb_fake_outcome o = pop_script(f, charge->token);
	if (charge->refunded) {
		set_result(result, TB_PAY_ERROR, NULL, "charge_already_refunded", NULL,
			"This payment has already been refunded.");
	} else if (o == TB_FAKE_TIMEOUT) {
		set_result(result, TB_PAY_UNKNOWN, NULL, "timeout", NULL, "the provider did not answer in time");
	} else if (o == TB_FAKE_DECLINE || o == TB_FAKE_ERROR) {
		set_result(result, TB_PAY_ERROR, NULL, "refund_failed", NULL, "The refund could not be processed.");
	} else {
		char id[64];
		snprintf(id, sizeof(id), "fake_re_%llu", ++f->next_id);
		set_result(&r->result, TB_PAY_SUCCEEDED, id, NULL, NULL, NULL);
		r->state = KEY_FINAL;
		charge->refunded = true;
		f->stats.refunds++;
		f->stats.charged_minor -= charge->amount;
		if (o == TB_FAKE_TIMEOUT_AFTER_CHARGE)
			set_result(result, TB_PAY_UNKNOWN, NULL, "timeout", NULL, "the provider did not answer in time");
		else
			*result = r->result;
	}
	pthread_mutex_unlock(&f->lock);
	return TB_OK;
}

static tb_status fake_lookup(tb_payment_provider *self, const char *key, tb_pay_result *result)
{
	fake *f = (fake *)self;
	if (!key || !result)
		return tb_error_set(TB_EINVAL, "key", "lookup needs a key and a result");
	pthread_mutex_lock(&f->lock);
	f->stats.calls++;
	entry *e = find(&f->charges, key);
	if (e && e->state == KEY_FINAL)
		*result = e->result;
	else
		set_result(result, TB_PAY_UNKNOWN, NULL, NULL, NULL, "no such attempt");
	pthread_mutex_unlock(&f->lock);
	return TB_OK;
}

static void fake_destroy(tb_payment_provider *self)
{
	fake *f = (fake *)self;
	table_free(&f->charges);
	table_free(&f->by_id);
	table_free(&f->refunds);
	while (f->scripts) {
		script *next = f->scripts->next;
		free(f->scripts);
		f->scripts = next;
	}
	pthread_mutex_destroy(&f->lock);
	free(f);
}

tb_status tb_payment_fake_new(tb_payment_provider **out)
{
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	*out = NULL;
	fake *f = calloc(1, sizeof(*f));
	if (!f)
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	f->base.version = TB_PAYMENT_PROVIDER_VERSION;
	f->base.name = "fake";
	f->base.charge = fake_charge;
	f->base.refund = fake_refund;
	f->base.lookup = fake_lookup;
	f->base.destroy = fake_destroy;
	pthread_mutex_init(&f->lock, NULL);
	*out = &f->base;
	return TB_OK;
}

tb_status tb_payment_fake_script(tb_payment_provider *provider, const char *token, tb_fake_outcome outcome)
{
	if (!is_fake(provider))
		return tb_error_set(TB_EINVAL, "fake", "not a fake payment provider");
	if (!token || !*token || strlen(token) >= 128)
		return tb_error_set(TB_EINVAL, "token", "token is required (under 128 bytes)");
	if (outcome < TB_FAKE_SUCCEED || outcome > TB_FAKE_ERROR)
		return tb_error_set(TB_EINVAL, "outcome", "unknown fake outcome %d", (int)outcome);
	script *s = calloc(1, sizeof(*s));
	if (!s)
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	snprintf(s->token, sizeof(s->token), "%s", token);
	s->outcome = outcome;
	fake *f = (fake *)provider;
	pthread_mutex_lock(&f->lock);
	if (f->scripts_tail)
		f->scripts_tail->next = s;
	else
		f->scripts = s;
	f->scripts_tail = s;
	pthread_mutex_unlock(&f->lock);
	return TB_OK;
}

void tb_payment_fake_stats(const tb_payment_provider *provider, tb_fake_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!is_fake(provider))
		return;
	fake *f = (fake *)provider;
	pthread_mutex_lock(&f->lock);
	*out = f->stats;
	pthread_mutex_unlock(&f->lock);
}
