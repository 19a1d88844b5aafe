/*
 * ticketyboo/events.h - the event outbox: read, replay, subscribe.
 *
 * Every state change appends its events in the SAME storage transaction as
 * the change, so an event exists if and only if its change committed.  Each
 * event has a sequence number (strictly increasing, gap-free in commit
 * order), a type, the aggregate it describes with that aggregate's version
 * after the change, the time, and a JSON payload without secrets.
 *
 * Readers replay with tb_event_read().  Named durable subscribers keep their
 * cursor in the database and are delivered every event at least once, in
 * order, when the host calls tb_market_tick() or tb_event_dispatch(); a
 * callback that fails is retried on a later call, never skipped.
 *
 * Thread safety: tb_event and tb_event_page are immutable snapshots.  A
 * subscriber's callback is never run on two threads at once; it runs on the
 * thread that ticks or dispatches, holding no storage transaction, so it may
 * call back into the market.
 */
#ifndef TICKETYBOO_EVENTS_H
#define TICKETYBOO_EVENTS_H

#include "common.h"
#include "market.h"

TB_BEGIN_DECL

typedef struct tb_event tb_event;
typedef struct tb_event_page tb_event_page;

/** Event types.  Values are stored; only ever appended. */
typedef enum tb_event_type {
	TB_EVENT_USER_CREATED = 1,
	TB_EVENT_USER_UPDATED = 2,
	TB_EVENT_TICKET_CREATED = 3,
	TB_EVENT_TICKET_UPDATED = 4,
	TB_EVENT_ORDER_CREATED = 5,
	TB_EVENT_ORDER_CANCELLED = 6,
	TB_EVENT_ORDER_EXPIRED = 7,
	TB_EVENT_CHARGE_CREATED = 8,
	TB_EVENT_CHARGE_REFUNDED = 9,
	TB_EVENT_ORDER_AWAITING_PAYMENT = 10,
	TB_EVENT_ORDER_COMPLETED = 11,
	TB_EVENT_CHARGE_SUCCEEDED = 12,
	TB_EVENT_CHARGE_FAILED = 13,
	TB_EVENT_ORDER_REFUNDED = 14
} tb_event_type;

/** "UserCreated", "OrderExpired", ...; "Unknown" for other values. */
TB_API const char *tb_event_type_name(tb_event_type type);
/** The seed's NATS-style subject: "user:created", "order:expired", ... */
TB_API const char *tb_event_type_subject(tb_event_type type);

/**
 * Events with seq > after_seq, oldest first.
 * @param limit 1..TB_EVENT_READ_MAX (0 = 100).
 * @return TB_OK (an empty page at the end); TB_EINVAL (negative after_seq,
 *         limit too large); TB_ESTORAGE.
 */
TB_API TB_MUST_CHECK tb_status tb_event_read(tb_event_page **out, tb_market *market,
	int64_t after_seq, unsigned int limit);

#define TB_EVENT_READ_MAX 10000

/** Sequence number of the newest event (0 when none). */
TB_API TB_MUST_CHECK tb_status tb_event_last_seq(int64_t *out, tb_market *market);

TB_API size_t tb_event_page_count(const tb_event_page *page);
TB_API const tb_event *tb_event_page_at(const tb_event_page *page, size_t i);
TB_API void tb_event_page_free(tb_event_page *page);

TB_API int64_t tb_event_seq(const tb_event *event);
TB_API tb_event_type tb_event_type_get(const tb_event *event);
/** "UserCreated", ... (static). */
TB_API const char *tb_event_name(const tb_event *event);
TB_API const char *tb_event_aggregate_id(const tb_event *event);
TB_API int64_t tb_event_aggregate_version(const tb_event *event);
TB_API int64_t tb_event_occurred_at_ms(const tb_event *event);
/** The payload, a JSON object (borrowed). */
TB_API const char *tb_event_payload(const tb_event *event);
/**
 * {"seq","type","subject","aggregate_id","aggregate_version","occurred_at",
 * "data": payload}.
 */
TB_API TB_MUST_CHECK tb_status tb_event_to_json(char **out, const tb_event *event);
TB_API TB_MUST_CHECK tb_status tb_event_dup(tb_event **out, const tb_event *event);
TB_API void tb_event_free(tb_event *event);

/**
 * A subscriber's callback.  Return TB_OK to acknowledge the event; any other
 * value stops delivery to this subscriber until the next tick or dispatch,
 * which starts again from this event.  The event is borrowed for the call.
 */
typedef tb_status (*tb_event_cb)(const tb_event *event, void *payload);

/**
 * Register a named durable subscriber on this market.  Its cursor lives in
 * the database under `name`: a subscriber seen before resumes after the
 * last event it acknowledged; a new one starts from the beginning.
 * @return TB_OK; TB_EINVAL (empty or over-long name, NULL cb); TB_EEXISTS
 *         (this market already has a subscriber of that name).
 */
TB_API TB_MUST_CHECK tb_status tb_event_subscribe(tb_market *market, const char *name,
	tb_event_cb cb, void *payload);

/**
 * Stop delivering to `name` on this market (its stored cursor is kept).
 * Waits for a delivery in progress on another thread to finish.
 * @return TB_OK; TB_ENOTFOUND.
 */
TB_API TB_MUST_CHECK tb_status tb_event_unsubscribe(tb_market *market, const char *name);

/**
 * The stored cursor of a subscriber (the last acknowledged seq; 0 if none).
 * @return TB_OK; TB_EINVAL.
 */
TB_API TB_MUST_CHECK tb_status tb_event_cursor(int64_t *out, tb_market *market, const char *name);

/**
 * Deliver pending events to every subscriber now (tb_market_tick() also does).
 * @param delivered_out optional: events acknowledged by this call.
 * @return TB_OK even if a callback failed (it is retried later); TB_ESTORAGE.
 */
TB_API TB_MUST_CHECK tb_status tb_event_dispatch(tb_market *market, size_t *delivered_out);

TB_END_DECL

#endif
