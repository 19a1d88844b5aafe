/*
 * ticketyboo/orders.h - orders: the intent to buy, and the lock it holds.
 *
 * Ordering a listed ticket locks it for the market's lock window: nobody else
 * can order it and its price cannot change.  The state machine:
 *
 *     created --pay--> awaiting_payment --succeeded--> complete --refund--> refunded
 *       |  |                 |   \--declined--> cancelled
 *       |  \--lock lapses--> expired  (awaiting_payment: after the grace period)
 *       \--buyer cancels--> cancelled (also from awaiting_payment)
 *
 * Expiry is checked lazily on every access: an order past expires_at is
 * never treated as live, whether or not a tick has run; the tick writes the
 * change (OrderExpired) in batches.  Only the buyer sees or cancels an order.
 *
 * Thread safety: tb_order and tb_order_page are immutable snapshots.
 * Ownership: `**out` results are the caller's; accessors borrow.
 */
#ifndef TICKETYBOO_ORDERS_H
#define TICKETYBOO_ORDERS_H

#include "common.h"
#include "market.h"
#include "tickets.h"

TB_BEGIN_DECL

typedef struct tb_order tb_order;
typedef struct tb_order_page tb_order_page;

typedef enum tb_order_status {
	TB_ORDER_CREATED = 1,          /**< live: the ticket is locked until expires_at */
	TB_ORDER_AWAITING_PAYMENT = 2, /**< live: a payment is in flight */
	TB_ORDER_COMPLETE = 3,         /**< paid; the ticket now belongs to the buyer */
	TB_ORDER_CANCELLED = 4,        /**< by the buyer, or by a declined payment */
	TB_ORDER_EXPIRED = 5,          /**< the lock lapsed unpaid */
	TB_ORDER_REFUNDED = 6          /**< complete, then refunded by the seller */
} tb_order_status;

/**
 * Order a ticket, locking it.  Emits OrderCreated and TicketUpdated.
 * @return TB_OK; TB_ENOTFOUND (no such ticket or buyer); TB_ELOCKED ("ticket
 *         is already reserved": a live order holds it); TB_EFORBIDDEN (your
 *         own ticket); TB_ESTATE (the ticket is not listed for sale).
 */
TB_API TB_MUST_CHECK tb_status tb_order_create(tb_order **out, tb_market *market,
	const char *buyer_id, const char *ticket_id);

/**
 * tb_order_create(), also handing back the ticket as the order left it:
 * locked by this order, its version bumped; what tb_ticket_get() would
 * return right after, without that second read.  For a host that shows
 * the new order with its ticket (the reference server's POST /api/orders).
 * @param[out] order_out the new order (tb_order_free()); NULL on failure.
 * @param[out] ticket_out its ticket (tb_ticket_free()); NULL on failure.
 * @return as tb_order_create(); TB_EINVAL when either out is NULL;
 *         TB_ENOMEM when the copies could not be made (the order was
 *         created all the same, as with tb_order_create()).
 */
TB_API TB_MUST_CHECK tb_status tb_order_create_with_ticket(tb_order **order_out, tb_ticket **ticket_out,
	tb_market *market, const char *buyer_id, const char *ticket_id);

/**
 * Order a ticket for the user signed in with `session_token`: the session
 * is checked inside the order's own transaction, so a host that knows its
 * caller only by a session token needs no tb_user_get_by_session() (a read
 * transaction) first.  Otherwise as tb_order_create_with_ticket().
 * @param[out] order_out the new order (tb_order_free()); NULL on failure.
 * @param[out] ticket_out its ticket (tb_ticket_free()), or NULL if not wanted.
 * @return as tb_order_create(); TB_EUNAUTH for an unknown, revoked or
 *         expired session (nothing is written).
 */
TB_API TB_MUST_CHECK tb_status tb_order_create_by_session(tb_order **order_out, tb_ticket **ticket_out,
	tb_market *market, const char *session_token, const char *ticket_id);

/**
 * The result of tb_order_create_by_session_async(), handed over once.
 * @param status what tb_order_create_by_session() would have returned; on
 *        failure tb_last_error() has its detail for the length of this call.
 * @param order the new order (the callee frees it), NULL on failure.
 * @param ticket its ticket as the order left it (the callee frees it), NULL
 *        on failure.
 * Runs on whichever thread commits the order: the one that called
 * tb_order_create_by_session_async() (before that call returns) when no
 * other write of this market was running, else a thread inside another
 * write call of this market or in tb_market_lead(), which waits for it.
 * Keep it short, and call nothing of this market from it (other writes
 * wait while it runs).
 */
typedef void (*tb_order_done_cb)(tb_status status, tb_order *order, tb_ticket *ticket, void *arg);

/**
 * tb_order_create_by_session() without waiting for the commit: the order
 * joins the group commit that is running or about to run, and `done` gets
 * the result.  For a host whose threads must not wait for a commit (an
 * event loop): the reference server's POST /api/orders.  The calling thread
 * leads the group itself when no write is running, so this returns after
 * the commit then, and `done` has run; while other writes run, it returns
 * at once and one of their threads runs `done` later.  With a lead hook
 * (tb_market_set_lead_hook()) it never leads: the host's thread that calls
 * tb_market_lead() does.  On storage without savepoints (no group commit,
 * e.g. PostgreSQL) it runs at once on the calling thread.  Durability is
 * that of the synchronous call: `done` runs only after the COMMIT returned.
 * The library starts no thread for it.
 * @param done called exactly once when this returns TB_OK; never otherwise.
 * @param arg passed to done.
 * @return TB_OK (queued or done); TB_EINVAL (NULL market, NULL done);
 *         TB_ENOTFOUND (malformed ticket id); TB_EUNAUTH (malformed
 *         token); TB_ENOMEM.  Refusals found in the transaction (locked,
 *         own ticket, unknown or expired session, ...) reach `done`.
 */
TB_API TB_MUST_CHECK tb_status tb_order_create_by_session_async(tb_market *market,
	const char *session_token, const char *ticket_id, tb_order_done_cb done, void *arg);

/**
 * Fetch an order of the user's.
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN (someone else's order).
 */
TB_API TB_MUST_CHECK tb_status tb_order_get(tb_order **out, tb_market *market,
	const char *user_id, const char *order_id);

/**
 * The buyer's orders, oldest first, keyset-paginated like tickets.
 * @param after cursor from tb_order_page_next_cursor(), or NULL.
 * @param limit 1..TB_PAGE_MAX, 0 = 50.
 */
TB_API TB_MUST_CHECK tb_status tb_order_list(tb_order_page **out, tb_market *market,
	const char *buyer_id, const char *after, unsigned int limit);

/**
 * Cancel an order (buyer only) and unlock its ticket.  Emits OrderCancelled
 * and TicketUpdated.  Cancelling an already cancelled order is TB_OK and
 * changes nothing.  A payment still in flight that later succeeds is refunded.
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN; TB_ESTATE (complete or refunded);
 *         TB_EEXPIRED (the lock had already lapsed).
 */
TB_API TB_MUST_CHECK tb_status tb_order_cancel(tb_order **out, tb_market *market,
	const char *user_id, const char *order_id);

TB_API size_t tb_order_page_count(const tb_order_page *page);
TB_API const tb_order *tb_order_page_at(const tb_order_page *page, size_t i);
TB_API const char *tb_order_page_next_cursor(const tb_order_page *page);
TB_API void tb_order_page_free(tb_order_page *page);

TB_API const char *tb_order_id(const tb_order *order);
TB_API const char *tb_order_ticket_id(const tb_order *order);
TB_API const char *tb_order_buyer_id(const tb_order *order);
TB_API const char *tb_order_seller_id(const tb_order *order);
/** The effective status as of the read (a lapsed created order reads as expired). */
TB_API tb_order_status tb_order_status_get(const tb_order *order);
TB_API int64_t tb_order_expires_at_ms(const tb_order *order);
/** Price at order time, in minor units. */
TB_API int64_t tb_order_price_minor(const tb_order *order);
TB_API const char *tb_order_currency(const tb_order *order);
TB_API int64_t tb_order_version(const tb_order *order);
TB_API int64_t tb_order_created_at_ms(const tb_order *order);
/** "created", "awaiting_payment", "complete", "cancelled", "expired", "refunded". */
TB_API const char *tb_order_status_name(tb_order_status status);
/**
 * JSON object {"id","ticket_id","buyer_id","seller_id","status","expires_at"
 * (ISO 8601 UTC),"expires_at_ms","price_minor","currency","version","created_at"}.
 */
TB_API TB_MUST_CHECK tb_status tb_order_to_json(char **out, const tb_order *order);
TB_API TB_MUST_CHECK tb_status tb_order_dup(tb_order **out, const tb_order *order);
TB_API void tb_order_free(tb_order *order);

TB_END_DECL

#endif
