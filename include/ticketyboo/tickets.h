/*
 * ticketyboo/tickets.h - listings.
 *
 * Any user lists a ticket (title, price in minor units, currency).  Only its
 * owner edits it, and not while it is locked by a live order.  Every change
 * bumps `version`; an update may name the version it expects and then fails
 * with TB_ECONFLICT if someone changed the ticket in between.  When an order
 * completes the ticket passes to the buyer, unlisted; the new owner may list
 * it again with tb_ticket_set_listed().
 *
 * Thread safety: tb_ticket and tb_ticket_page are immutable snapshots.
 * Ownership: `**out` results are the caller's; accessors borrow.
 */
#ifndef TICKETYBOO_TICKETS_H
#define TICKETYBOO_TICKETS_H

#include "common.h"
#include "market.h"

TB_BEGIN_DECL

typedef struct tb_ticket tb_ticket;
typedef struct tb_ticket_page tb_ticket_page;

/** Longest title, in characters (Unicode code points). */
#define TB_TITLE_MAX_CHARS 200

typedef enum tb_ticket_status {
	TB_TICKET_LISTED = 1,  /**< for sale (unless locked) */
	TB_TICKET_UNLISTED = 2 /**< not for sale: withdrawn, or just bought */
} tb_ticket_status;

/**
 * List a ticket for sale.  Emits TicketCreated.
 * @param currency ISO 4217 code (any case), or NULL for the market default.
 * @return TB_OK; TB_EINVAL with field "title" (empty, over 200 characters,
 *         invalid UTF-8, control characters), "price" (<= 0 or over
 *         TB_PRICE_MAX_MINOR) or "currency"; TB_ENOTFOUND (no such owner).
 */
TB_API TB_MUST_CHECK tb_status tb_ticket_create(tb_ticket **out, tb_market *market,
	const char *owner_id, const char *title, int64_t price_minor, const char *currency);

/** Fetch a ticket.  @return TB_OK, TB_ENOTFOUND (also for a malformed id). */
TB_API TB_MUST_CHECK tb_status tb_ticket_get(tb_ticket **out, tb_market *market, const char *ticket_id);

/**
 * Change title and/or price.  Emits TicketUpdated.
 * @param title new title, or NULL to keep it.
 * @param price_minor new price, or TB_KEEP to keep it.
 * @param expected_version the version the caller last saw, or TB_ANY_VERSION.
 * @return TB_OK; TB_EINVAL (field "title" / "price"); TB_ENOTFOUND;
 *         TB_EFORBIDDEN (not the owner); TB_ELOCKED (a live order holds it);
 *         TB_ECONFLICT (stale expected_version).
 */
TB_API TB_MUST_CHECK tb_status tb_ticket_update(tb_ticket **out, tb_market *market,
	const char *user_id, const char *ticket_id, const char *title, int64_t price_minor,
	int64_t expected_version);

/**
 * List (listed = 1) or withdraw (listed = 0) a ticket the user owns.
 * Emits TicketUpdated when the status changes.
 * @return TB_OK; TB_ENOTFOUND; TB_EFORBIDDEN; TB_ELOCKED.
 */
TB_API TB_MUST_CHECK tb_status tb_ticket_set_listed(tb_ticket **out, tb_market *market,
	const char *user_id, const char *ticket_id, int listed);

#define TB_TICKET_QUERY_VERSION 1
/** Largest page a list call returns. */
#define TB_PAGE_MAX 500

/** Filters for tb_ticket_list().  Zero/NULL fields do not filter. */
typedef struct tb_ticket_query {
	unsigned int version;    /**< TB_TICKET_QUERY_VERSION */
	int available_only;      /**< only listed tickets with no live lock */
	const char *owner_id;    /**< only this owner's tickets */
	const char *title_contains; /**< case-insensitive ASCII substring match */
	const char *after;       /**< cursor from tb_ticket_page_next_cursor(), NULL = start */
	unsigned int limit;      /**< page size, 1..TB_PAGE_MAX (0 = 50) */
} tb_ticket_query;

#define TB_TICKET_QUERY_INIT { TB_TICKET_QUERY_VERSION, 0, NULL, NULL, NULL, 0 }

/**
 * One page of tickets, oldest first.  The cursor is keyset-based (by id,
 * which is time-ordered), so paging is stable under concurrent inserts: no
 * ticket appears twice and none that existed before the first page is
 * skipped.
 * @param query filters, or NULL for the first 50 of all tickets.
 * @return TB_OK; TB_EINVAL (limit over TB_PAGE_MAX, malformed cursor: field "after").
 */
TB_API TB_MUST_CHECK tb_status tb_ticket_list(tb_ticket_page **out, tb_market *market,
	const tb_ticket_query *query);

TB_API size_t tb_ticket_page_count(const tb_ticket_page *page);
/** The i-th ticket, borrowed from the page; NULL when i is out of range. */
TB_API const tb_ticket *tb_ticket_page_at(const tb_ticket_page *page, size_t i);
/** Cursor for the next page, or NULL when this is the last one (borrowed). */
TB_API const char *tb_ticket_page_next_cursor(const tb_ticket_page *page);
TB_API void tb_ticket_page_free(tb_ticket_page *page);

TB_API const char *tb_ticket_id(const tb_ticket *ticket);
TB_API const char *tb_ticket_title(const tb_ticket *ticket);
TB_API int64_t tb_ticket_price_minor(const tb_ticket *ticket);
/** Upper-case ISO 4217 code. */
TB_API const char *tb_ticket_currency(const tb_ticket *ticket);
TB_API const char *tb_ticket_owner_id(const tb_ticket *ticket);
/** The live order that locks it, or NULL when unlocked (as of the read). */
TB_API const char *tb_ticket_order_id(const tb_ticket *ticket);
/** Non-zero when a live order locks it (as of the read). */
TB_API int tb_ticket_locked(const tb_ticket *ticket);
/** When the lock lapses (ms since epoch), or 0 when unlocked. */
TB_API int64_t tb_ticket_locked_until_ms(const tb_ticket *ticket);
TB_API tb_ticket_status tb_ticket_status_get(const tb_ticket *ticket);
TB_API int64_t tb_ticket_version(const tb_ticket *ticket);
TB_API int64_t tb_ticket_created_at_ms(const tb_ticket *ticket);
/** "listed" or "unlisted". */
TB_API const char *tb_ticket_status_name(tb_ticket_status status);
/**
 * JSON object {"id","title","price_minor","currency","owner_id","order_id"
 * (null when unlocked),"locked","locked_until","status","version","created_at"}.
 */
TB_API TB_MUST_CHECK tb_status tb_ticket_to_json(char **out, const tb_ticket *ticket);
/** Copy a ticket (e.g. one borrowed from a page).  @return TB_OK, TB_ENOMEM. */
TB_API TB_MUST_CHECK tb_status tb_ticket_dup(tb_ticket **out, const tb_ticket *ticket);
TB_API void tb_ticket_free(tb_ticket *ticket);

TB_END_DECL

#endif
