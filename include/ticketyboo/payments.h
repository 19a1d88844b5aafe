/*
 * ticketyboo/payments.h - paying orders, charges, refunds, payment providers.
 *
 * Paying an order (DESIGN.md section 4) runs in three steps so no charge is
 * ever lost: (1) one transaction checks the order is the caller's, created
 * and not expired, records a `pending` charge with a fresh idempotency key
 * and moves the order to awaiting_payment; (2) the provider is called outside
 * any transaction; (3) one transaction records the answer.  If the answer is
 * unknown (timeout, crash between 2 and 3) the charge stays pending and
 * tb_market_tick() asks again with the same key until the provider answers.
 * A success for an order that can no longer complete (cancelled, expired past
 * the grace period) is refunded automatically and the refund id recorded.
 *
 * Providers plug in through the tb_payment_provider vtable.  Two ship in the
 * library: the scripted fake (below) and Stripe (stripe.h).
 *
 * Thread safety: tb_charge records are immutable snapshots.  Provider
 * methods may be called from several threads at once; the built-in
 * providers are thread-safe.
 * Ownership: a market borrows its provider; free the provider with
 * tb_payment_provider_free() after closing every market that uses it.
 */
#ifndef TICKETYBOO_PAYMENTS_H
#define TICKETYBOO_PAYMENTS_H

#include "common.h"
#include "market.h"

TB_BEGIN_DECL

/* ---- charges ------------------------------------------------------------ */

typedef struct tb_charge tb_charge;

typedef enum tb_charge_status {
	TB_CHARGE_PENDING = 1,        /**< asked the provider; answer not yet known */
	TB_CHARGE_SUCCEEDED = 2,      /**< money taken */
	TB_CHARGE_FAILED = 3,         /**< declined or refused: no money taken */
	TB_CHARGE_REFUND_PENDING = 4, /**< a refund was asked; answer not yet known */
	TB_CHARGE_REFUNDED = 5        /**< money returned */
} tb_charge_status;

/**
 * Pay an order with a provider token (e.g. "tok_visa").  Emits ChargeCreated
 * (the pending charge); then on success ChargeSucceeded, OrderCompleted and
 * TicketUpdated (the ticket passes to the buyer, unlisted); on a decline
 * ChargeFailed, OrderCancelled and TicketUpdated (unlocked).
 * @param[out] out the charge: status SUCCEEDED, or PENDING when the
 *             provider's answer is unknown (the tick will reconcile it).
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN (someone else's order);
 *         TB_EINVAL (field "token"); TB_EEXPIRED (the lock lapsed);
 *         TB_ESTATE (cancelled, complete, or a payment already in flight);
 *         TB_EDECLINED (declined: the order is cancelled; the message is the
 *         provider's; tb_charge_get_latest() shows code and decline code);
 *         TB_EPROVIDER (the provider refused the request outright, e.g. an
 *         unknown token or bad credentials: no money taken; like a decline,
 *         the order is cancelled and the ticket unlocked), or no provider is
 *         configured (nothing changes).
 * A payment whose lock lapsed while the provider was answering is refunded
 * and reported as TB_EEXPIRED (or TB_ESTATE if the buyer cancelled).
 */
TB_API TB_MUST_CHECK tb_status tb_order_pay(tb_charge **out, tb_market *market,
	const char *user_id, const char *order_id, const char *payment_token);

/**
 * Refund a complete order (the seller's explicit call).  The ticket returns
 * to the seller, unlisted; the order becomes refunded.  Emits
 * ChargeRefunded, OrderRefunded and TicketUpdated.
 * @param reason free text recorded with the refund (may be NULL).
 * @param[out] out the charge, REFUNDED, or REFUND_PENDING when the answer is
 *             unknown (the tick retries it with the same key).
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN (not the seller); TB_ESTATE (the
 *         order is not complete, or the buyer has since sold or locked the
 *         ticket); TB_EPROVIDER.
 */
TB_API TB_MUST_CHECK tb_status tb_order_refund(tb_charge **out, tb_market *market,
	const char *seller_id, const char *order_id, const char *reason);

/**
 * Fetch a charge; its order's buyer or seller may.
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN.
 */
TB_API TB_MUST_CHECK tb_status tb_charge_get(tb_charge **out, tb_market *market,
	const char *user_id, const char *charge_id);

/**
 * The most recent charge of an order (the buyer's or seller's).
 * @return TB_OK; TB_ENOTFOUND (no such order, or never paid); TB_EFORBIDDEN.
 */
TB_API TB_MUST_CHECK tb_status tb_charge_get_latest(tb_charge **out, tb_market *market,
	const char *user_id, const char *order_id);

TB_API const char *tb_charge_id(const tb_charge *charge);
TB_API const char *tb_charge_order_id(const tb_charge *charge);
TB_API tb_charge_status tb_charge_status_get(const tb_charge *charge);
TB_API int64_t tb_charge_amount_minor(const tb_charge *charge);
TB_API const char *tb_charge_currency(const tb_charge *charge);
/** Provider name ("fake", "stripe"). */
TB_API const char *tb_charge_provider(const tb_charge *charge);
/** The provider's id for the payment (e.g. "pi_..."), or NULL. */
TB_API const char *tb_charge_provider_charge_id(const tb_charge *charge);
/** The provider's refund id ("re_..."), or NULL. */
TB_API const char *tb_charge_provider_refund_id(const tb_charge *charge);
/** The idempotency key of this attempt. */
TB_API const char *tb_charge_idempotency_key(const tb_charge *charge);
/** For a failed charge: the provider's error code ("card_declined"), or NULL. */
TB_API const char *tb_charge_failure_code(const tb_charge *charge);
/** For a decline: the decline code ("insufficient_funds"), or NULL. */
TB_API const char *tb_charge_decline_code(const tb_charge *charge);
/** For a failed charge: the provider's message, or NULL. */
TB_API const char *tb_charge_failure_message(const tb_charge *charge);
/** Why it was refunded ("late_payment", the seller's reason), or NULL. */
TB_API const char *tb_charge_refund_reason(const tb_charge *charge);
/** Times the provider was asked (first call and retries). */
TB_API int64_t tb_charge_attempts(const tb_charge *charge);
TB_API int64_t tb_charge_version(const tb_charge *charge);
TB_API int64_t tb_charge_created_at_ms(const tb_charge *charge);
/** "pending", "succeeded", "failed", "refund_pending", "refunded". */
TB_API const char *tb_charge_status_name(tb_charge_status status);
/** JSON object of every field above; never any secret or card data. */
TB_API TB_MUST_CHECK tb_status tb_charge_to_json(char **out, const tb_charge *charge);
TB_API void tb_charge_free(tb_charge *charge);

/* ---- provider vtable (for provider authors) ---------------------------- */

typedef enum tb_pay_outcome {
	TB_PAY_SUCCEEDED = 1, /**< done: money taken (charge) or returned (refund) */
	TB_PAY_DECLINED = 2,  /**< the card was declined: definitive, no money taken */
	TB_PAY_UNKNOWN = 3,   /**< timeout, network error, 5xx after retries: ask again later */
	TB_PAY_ERROR = 4      /**< refused outright (invalid request, auth): no money taken */
} tb_pay_outcome;

#define TB_PAY_REQUEST_VERSION 1

/** One charge or refund attempt.  Strings are borrowed for the call. */
typedef struct tb_pay_request {
	unsigned int version;        /**< TB_PAY_REQUEST_VERSION */
	const char *idempotency_key; /**< the same on every retry of this attempt */
	int64_t amount_minor;
	const char *currency;        /**< upper-case ISO 4217 */
	const char *payment_token;   /**< charge: the buyer's token; refund: NULL */
	const char *provider_charge_id; /**< refund: what to refund; charge: NULL */
	const char *description;
	const char *order_id;        /**< for the provider's metadata */
	const char *charge_id;       /**< for the provider's metadata */
	const char *reason;          /**< refund reason, or NULL */
} tb_pay_request;

#define TB_PAY_REQUEST_INIT { TB_PAY_REQUEST_VERSION, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

#define TB_PAY_RESULT_VERSION 1

/** What the provider answered; fixed buffers, so a provider allocates nothing. */
typedef struct tb_pay_result {
	unsigned int version;  /**< TB_PAY_RESULT_VERSION */
	tb_pay_outcome outcome;
	char provider_id[128]; /**< charge: the payment's id; refund: the refund's id */
	char code[64];         /**< error code ("card_declined", "rate_limit") */
	char decline_code[64]; /**< decline code ("insufficient_funds") */
	char message[256];     /**< human-readable; never a secret */
} tb_pay_result;

#define TB_PAYMENT_PROVIDER_VERSION 1

/**
 * A payment provider.  Implementations embed this struct first and point
 * `methods` at a static table.
 */
struct tb_payment_provider {
	unsigned int version; /**< TB_PAYMENT_PROVIDER_VERSION */
	const char *name;     /**< "fake", "stripe", ... (static storage) */
	/**
	 * Take a payment.  Must be idempotent by req->idempotency_key: a retry
	 * with the same key never charges twice.  Fill `result` and return
	 * TB_OK; return an error only for a local failure (TB_ENOMEM), which the
	 * core treats as TB_PAY_UNKNOWN.  Required.
	 */
	tb_status (*charge)(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *result);
	/** Return a payment (req->provider_charge_id), idempotent by key.  Required. */
	tb_status (*refund)(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *result);
	/**
	 * Look up an earlier charge attempt by its idempotency key without
	 * creating one: SUCCEEDED/DECLINED with its ids, UNKNOWN if the provider
	 * has no record or cannot say.  Optional (NULL).
	 */
	tb_status (*lookup)(tb_payment_provider *self, const char *idempotency_key, tb_pay_result *result);
	/** Release the provider.  Required. */
	void (*destroy)(tb_payment_provider *self);
};

/** Release a provider through its destroy method.  NULL is a no-op. */
TB_API void tb_payment_provider_free(tb_payment_provider *provider);

/** Outcome name: "succeeded", "declined", "unknown", "error". */
TB_API const char *tb_pay_outcome_name(tb_pay_outcome outcome);

/* ---- the fake provider --------------------------------------------------- */

/**
 * A deterministic, in-process provider mirroring Stripe's test tokens:
 * "tok_visa" / "pm_card_visa" succeed; "tok_chargeDeclined" /
 * "pm_card_chargeDeclined" decline (card_declined / generic_decline);
 * "tok_chargeDeclinedInsufficientFunds" declines with insufficient_funds;
 * "tok_timeout" takes the money but the answer is lost (unknown), and a retry
 * with the same key reports the success; "tok_timeoutNoCharge" answers unknown
 * without taking money, and a retry then succeeds; any other token is an
 * error ("No such token").  Idempotent by key like Stripe: a key that got a
 * final answer replays it.  Scripts override the built-in behaviour.
 * Thread-safe.
 * @param[out] out free with tb_payment_provider_free().
 */
TB_API TB_MUST_CHECK tb_status tb_payment_fake_new(tb_payment_provider **out);

typedef enum tb_fake_outcome {
	TB_FAKE_SUCCEED = 1,
	TB_FAKE_DECLINE = 2,               /**< card_declined / generic_decline */
	TB_FAKE_TIMEOUT = 3,               /**< unknown; no money taken */
	TB_FAKE_TIMEOUT_AFTER_CHARGE = 4,  /**< unknown; money taken (answer lost) */
	TB_FAKE_ERROR = 5                  /**< invalid request */
} tb_fake_outcome;

/**
 * Queue an outcome for the next provider call (charge, retry or refund)
 * carrying `token` (for refunds: the token of the original charge).  Queued
 * outcomes are used first-in first-out before the built-in behaviour.
 * @return TB_OK; TB_EINVAL (not a fake provider, NULL token, bad outcome).
 */
TB_API TB_MUST_CHECK tb_status tb_payment_fake_script(tb_payment_provider *fake, const char *token,
	tb_fake_outcome outcome);

/** Counters of a fake provider (0 for any other provider). */
typedef struct tb_fake_stats {
	size_t calls;          /**< charge + refund + lookup calls */
	size_t charges;        /**< payments that took money (distinct keys) */
	size_t refunds;        /**< refunds that returned money */
	int64_t charged_minor; /**< money taken minus money returned */
} tb_fake_stats;

TB_API void tb_payment_fake_stats(const tb_payment_provider *fake, tb_fake_stats *out);

/* ---- provider events (webhooks) ------------------------------------------ */

typedef enum tb_payment_event_type {
	TB_PAYMENT_EVENT_SUCCEEDED = 1, /**< the payment succeeded */
	TB_PAYMENT_EVENT_FAILED = 2,    /**< the payment failed (declined) */
	TB_PAYMENT_EVENT_REFUNDED = 3   /**< the payment was refunded */
} tb_payment_event_type;

#define TB_PAYMENT_EVENT_VERSION 1

/** A provider's asynchronous notice about a payment, already verified. */
typedef struct tb_payment_event {
	unsigned int version;           /**< TB_PAYMENT_EVENT_VERSION */
	tb_payment_event_type type;
	const char *event_id;           /**< the provider's event id, for de-duplication */
	const char *charge_id;          /**< our charge id (from metadata), or NULL */
	const char *provider_charge_id; /**< the provider's payment id, or NULL */
	const char *provider_refund_id; /**< for REFUNDED, or NULL */
	const char *failure_code;       /**< for FAILED, or NULL */
	const char *decline_code;
	const char *failure_message;
} tb_payment_event;

#define TB_PAYMENT_EVENT_INIT { TB_PAYMENT_EVENT_VERSION, TB_PAYMENT_EVENT_SUCCEEDED, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/**
 * Apply a provider's notice to the charge it names (by charge_id, else by
 * provider_charge_id), exactly as a synchronous answer would be applied.
 * Idempotent: the same event id twice, or a notice that the charge already
 * reflects (out of order), changes nothing more.  A success for an order that
 * can no longer complete is refunded.
 * @return TB_OK (also for a duplicate); TB_ENOTFOUND (no such charge);
 *         TB_EINVAL.
 */
TB_API TB_MUST_CHECK tb_status tb_market_apply_payment_event(tb_market *market,
	const tb_payment_event *event);

TB_END_DECL

#endif
