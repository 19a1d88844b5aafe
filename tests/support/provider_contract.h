/*
 * The payment-provider contract, written once against the vtable and run
 * against every provider (the fake here, Stripe against a fake Stripe
 * server).  A provider passes when charges and refunds are idempotent by
 * key, declines are final and carry a code, and a refund names its charge.
 */
#ifndef TB_PROVIDER_CONTRACT_H
#define TB_PROVIDER_CONTRACT_H

#include <ticketyboo/ticketyboo.h>

typedef struct tb_provider_contract {
	const char *name;                 /* for the test group's name */
	/* A fresh provider per case; the contract frees it with tb_payment_provider_free(). */
	tb_payment_provider *(*make)(void *ctx);
	const char *succeed_token;        /* a token that succeeds (e.g. "tok_visa") */
	const char *decline_token;        /* a token that is declined (e.g. "tok_chargeDeclined") */
	const char *currency;             /* e.g. "USD" */
	void *ctx;
} tb_provider_contract;

/* Runs the contract as a cmocka group; returns the number of failures. */
int tb_provider_contract_run(const tb_provider_contract *contract);

#endif
