/*
 * ticketyboo/stripe.h - the Stripe payment provider and Stripe webhooks.
 *
 * tb_payment_stripe_new() builds a tb_payment_provider (payments.h) that
 * takes money through Stripe's PaymentIntents API and returns it through the
 * Refunds API, over libcurl with TLS verification on.  Every POST carries the
 * charge attempt's idempotency key, so a retry (in the call, or from
 * tb_market_tick()) never charges twice.  Rate limits, 5xx answers, network
 * errors and timeouts are retried in the call with capped exponential backoff
 * and jitter, then reported as unknown so the tick asks again later; a
 * decline keeps Stripe's code, decline code and message; an invalid request
 * or a bad key is an error with a clear message and is never retried.
 * docs/stripe.md gives the request parameters, the full mapping of Stripe's
 * answers and the reasons behind them.
 *
 * Webhooks: tb_stripe_webhook_verify() checks a Stripe-Signature header,
 * tb_stripe_webhook_parse() reads a verified event, and
 * tb_market_stripe_webhook() does both and applies the event to the market.
 *
 * Thread safety: a Stripe provider may be used from any number of threads at
 * once (it keeps a small pool of curl handles, one per concurrent call).  The
 * webhook functions are reentrant.  tb_stripe_event records are immutable.
 * A request to Stripe blocks the calling thread for at most about
 * (max_retries + 1) * timeout_ms + max_retries * backoff_cap_ms; a charge
 * with a legacy "tok_" token makes two requests.
 * Ownership: options are copied; secrets are kept in memory the provider
 * owns and wiped (sodium_memzero) when it is freed.  Secrets never appear in
 * error messages, provider results, events or JSON.
 */
#ifndef TICKETYBOO_STRIPE_H
#define TICKETYBOO_STRIPE_H

#include "common.h"
#include "market.h"
#include "payments.h"

TB_BEGIN_DECL

#define TB_STRIPE_OPTIONS_VERSION 1

/** Stripe's API endpoint, the default base URL. */
#define TB_STRIPE_DEFAULT_BASE_URL "https://api.stripe.com"
/**
 * The API version sent in Stripe-Version by default: the version of the
 * OpenAPI description the requests are checked against (docs/stripe.md).
 */
#define TB_STRIPE_DEFAULT_API_VERSION "2020-08-27"
#define TB_STRIPE_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define TB_STRIPE_DEFAULT_TIMEOUT_MS 30000
#define TB_STRIPE_DEFAULT_MAX_RETRIES 2
#define TB_STRIPE_DEFAULT_BACKOFF_BASE_MS 500
#define TB_STRIPE_DEFAULT_BACKOFF_CAP_MS 5000
/** Webhook timestamps older or newer than this are refused (Stripe's default). */
#define TB_STRIPE_DEFAULT_WEBHOOK_TOLERANCE_S 300
/** Upper bound of max_retries. */
#define TB_STRIPE_MAX_RETRIES_LIMIT 10

/**
 * Options for tb_payment_stripe_new().  Start from TB_STRIPE_OPTIONS_INIT or
 * tb_stripe_options_init(), which hold the defaults, then set what you need.
 */
typedef struct tb_stripe_options {
	unsigned int version;       /**< TB_STRIPE_OPTIONS_VERSION */
	/** Required: the secret or restricted key ("sk_live_...", "sk_test_...", "rk_..."). */
	const char *secret_key;
	/**
	 * NULL = TB_STRIPE_DEFAULT_BASE_URL.  Must be https://, except plain
	 * http:// to a loopback host (127.0.0.1, [::1], localhost), which tests
	 * use to reach a local fake server.  No credentials or query.
	 */
	const char *base_url;
	int64_t connect_timeout_ms; /**< TCP + TLS set-up, per try; 0 = default */
	int64_t timeout_ms;         /**< one whole try (connect to last byte); 0 = default */
	/** Retries after the first try of one call (0 = none), 0..TB_STRIPE_MAX_RETRIES_LIMIT. */
	int max_retries;
	/**
	 * Backoff before retry n (n = 1, 2, ...) is drawn uniformly from
	 * [d/2, d] with d = min(backoff_cap_ms, backoff_base_ms * 2^(n-1)).
	 * 0 and 0 retry at once (tests).
	 */
	int64_t backoff_base_ms;
	int64_t backoff_cap_ms;
	/** The Stripe-Version header; NULL sends none (the account's default applies). */
	const char *api_version;
	/** The webhook endpoint's signing secret ("whsec_..."), or NULL if unused. */
	const char *webhook_secret;
	/** Webhook timestamp tolerance in seconds; 0 = default, negative = no check. */
	int64_t webhook_tolerance_s;
} tb_stripe_options;

#define TB_STRIPE_OPTIONS_INIT { TB_STRIPE_OPTIONS_VERSION, NULL, NULL, \
	TB_STRIPE_DEFAULT_CONNECT_TIMEOUT_MS, TB_STRIPE_DEFAULT_TIMEOUT_MS, \
	TB_STRIPE_DEFAULT_MAX_RETRIES, TB_STRIPE_DEFAULT_BACKOFF_BASE_MS, \
	TB_STRIPE_DEFAULT_BACKOFF_CAP_MS, TB_STRIPE_DEFAULT_API_VERSION, NULL, 0 }

/**
 * Fill `opts` with the defaults of TB_STRIPE_OPTIONS_INIT for `version`.
 * @return TB_OK; TB_EINVAL (opts NULL); TB_EVERSION (unknown version).
 */
TB_API TB_MUST_CHECK tb_status tb_stripe_options_init(tb_stripe_options *opts, unsigned int version);

/**
 * Create the Stripe provider.  It makes no network call here.
 * Tokens: a PaymentMethod id ("pm_...", e.g. Stripe's test "pm_card_visa"),
 * a Card ("card_...") or a Source ("src_...") pays directly; a legacy card
 * token ("tok_...", e.g. "tok_visa") is first turned into a PaymentMethod
 * (POST /v1/payment_methods with card[token]), as Stripe documents.
 * Lookup of an earlier attempt uses the PaymentIntent search API, keyed by
 * the idempotency key kept in the PaymentIntent's metadata.
 * @param[out] out the provider (name "stripe"); free it with
 *             tb_payment_provider_free() after closing every market using it.
 *             NULL on failure.
 * @param opts copied; secret_key is required.
 * @return TB_OK; TB_EINVAL with field "secret_key", "base_url",
 *         "api_version", "webhook_secret", "max_retries", "timeout_ms",
 *         "connect_timeout_ms" or "backoff_ms" (missing, malformed, control
 *         characters, plain http to a non-loopback host, out of range);
 *         TB_EVERSION (unknown options version); TB_ENOMEM; TB_EINTERNAL
 *         (libcurl or libsodium failed to initialise).
 */
TB_API TB_MUST_CHECK tb_status tb_payment_stripe_new(tb_payment_provider **out,
	const tb_stripe_options *opts);

/**
 * Verify a Stripe-Signature header ("t=<unix>,v1=<hex>[,v1=<hex>...]")
 * against the raw request body: HMAC-SHA256 keyed by `secret` over
 * "<t>.<body>", compared in constant time with every v1 value (several
 * appear while a secret is rolled); other schemes (v0) are ignored.  Then
 * |now_s - t| must not exceed tolerance_s.
 * @param secret the endpoint's signing secret ("whsec_...").
 * @param body the body exactly as received (not re-encoded); body_len bytes.
 * @param now_s the current time, seconds since the epoch.
 * @param tolerance_s allowed clock distance; 0 or negative skips the check
 *        (only for replaying stored events).
 * @return TB_OK; TB_ESIGNATURE (no t= or v1=, no v1 matches, timestamp out of
 *         the tolerance window: the message says which, and never contains
 *         the secret or the expected signature); TB_EINVAL (NULL argument).
 * Reentrant; any thread.
 */
TB_API TB_MUST_CHECK tb_status tb_stripe_webhook_verify(const char *secret,
	const char *signature_header, const char *body, size_t body_len,
	int64_t now_s, int64_t tolerance_s);

/** A parsed Stripe event (an immutable record). */
typedef struct tb_stripe_event tb_stripe_event;

/**
 * Read a verified event body.  payment_intent.succeeded,
 * payment_intent.payment_failed and charge.refunded (a full refund) become a
 * tb_payment_event; every other type (and a partial refund) is read but
 * ignored: tb_stripe_event_payment() is NULL for it.
 * @param[out] out the event; free with tb_stripe_event_free().  NULL on failure.
 * @return TB_OK (also for an ignored type); TB_EINVAL (not JSON, not an event
 *         object, no id or type, a handled type without data.object.id);
 *         TB_ENOMEM.
 */
TB_API TB_MUST_CHECK tb_status tb_stripe_webhook_parse(tb_stripe_event **out,
	const char *body, size_t body_len);

/** The event id ("evt_..."), borrowed from the event. */
TB_API const char *tb_stripe_event_id(const tb_stripe_event *event);
/** The event type ("payment_intent.succeeded", ...), borrowed from the event. */
TB_API const char *tb_stripe_event_type(const tb_stripe_event *event);
/**
 * What the event means for a charge, borrowed from the event (its strings
 * live as long as the event), or NULL when the event is ignored.
 */
TB_API const tb_payment_event *tb_stripe_event_payment(const tb_stripe_event *event);
/** Release an event.  NULL is a no-op. */
TB_API void tb_stripe_event_free(tb_stripe_event *event);

/**
 * Handle one webhook delivery: verify the signature with the provider's
 * webhook_secret and tolerance against the market's clock, parse the event
 * and apply it with tb_market_apply_payment_event() (idempotent: a duplicate
 * or out-of-order delivery changes nothing more).
 * @param stripe a provider made by tb_payment_stripe_new() with a webhook_secret.
 * @param signature_header the Stripe-Signature header's value.
 * @param body the raw body, `len` bytes.
 * @return TB_OK (applied, already applied, or a type that is ignored);
 *         TB_ESIGNATURE (answer HTTP 400); TB_EINVAL (not a Stripe provider,
 *         no webhook secret, malformed event); TB_ENOTFOUND (no charge of
 *         this market matches: an event for another system on the same
 *         Stripe account); TB_ESTORAGE; TB_EBUSY.
 */
TB_API TB_MUST_CHECK tb_status tb_market_stripe_webhook(tb_market *market,
	tb_payment_provider *stripe, const char *signature_header, const char *body, size_t len);

TB_END_DECL

#endif
