/*
 * payments.c - the payment provider the market borrows, and its webhook.
 *
 * "fake" (the default) is the library's deterministic provider with Stripe's
 * test tokens.  "stripe" needs a library built with the Stripe provider
 * (ticketyboo/stripe.h) and reads STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET
 * and STRIPE_API_BASE from the environment, never from flags, so secrets
 * stay out of `ps` and shell history.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#if defined(TBS_HAVE_STRIPE)
#include <ticketyboo/stripe.h>
#endif

static int open_fake(tbs_server *srv)
{
	if (tb_payment_fake_new(&srv->provider) != TB_OK) {
		tbs_log("cannot create the fake payment provider: %s", tb_last_error()->message);
		return -1;
	}
	return 0;
}

#if defined(TBS_HAVE_STRIPE)
static int open_stripe(tbs_server *srv)
{
	const char *key = getenv("STRIPE_SECRET_KEY");
	const char *whsec = getenv("STRIPE_WEBHOOK_SECRET");
	tb_stripe_options opts = TB_STRIPE_OPTIONS_INIT;

	if (!key || !*key) {
		tbs_log("--payments stripe needs STRIPE_SECRET_KEY in the environment");
		return -1;
	}
	opts.secret_key = key;
	opts.base_url = getenv("STRIPE_API_BASE"); /* NULL: Stripe's own */
	if (opts.base_url && !*opts.base_url)
		opts.base_url = NULL;
	opts.webhook_secret = whsec && *whsec ? whsec : NULL;
	if (tb_payment_stripe_new(&srv->provider, &opts) != TB_OK) {
		const tb_error *e = tb_last_error();
		tbs_log("cannot create the Stripe provider: %s%s%s%s", e->message,
			e->field ? " (" : "", e->field ? e->field : "", e->field ? ")" : "");
		return -1;
	}
	srv->webhook_enabled = opts.webhook_secret != NULL;
	if (!srv->webhook_enabled)
		tbs_log("STRIPE_WEBHOOK_SECRET is not set: POST /api/payments/webhook answers 404");
	return 0;
}
#else
static int open_stripe(tbs_server *srv)
{
	(void)srv;
	tbs_log("--payments stripe: this build of libticketyboo has no Stripe provider");
	return -1;
}
#endif

int tbs_payments_open(tbs_server *srv)
{
	if (strcmp(srv->cfg.payments, "fake") == 0)
		return open_fake(srv);
	if (strcmp(srv->cfg.payments, "stripe") == 0)
		return open_stripe(srv);
	tbs_log("--payments must be fake or stripe, not %s", srv->cfg.payments);
	return -1;
}

void tbs_payments_close(tbs_server *srv)
{
	/* The provider owns (and wipes) the Stripe secrets. */
	tb_payment_provider_free(srv->provider);
	srv->provider = NULL;
}

bool tbs_payments_webhook_enabled(const tbs_server *srv)
{
	return srv->webhook_enabled;
}

tb_status tbs_payments_webhook(tbs_server *srv, const char *signature, const char *body, size_t len)
{
#if defined(TBS_HAVE_STRIPE)
	return tb_market_stripe_webhook(srv->market, srv->provider, signature ? signature : "",
		body, len);
#else
	(void)srv;
	(void)signature;
	(void)body;
	(void)len;
	return TB_ENOTFOUND;
#endif
}
