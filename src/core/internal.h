/*
 * Internal declarations shared by the core's files.  Nothing here is
 * exported; cross-file helpers are named tb_<module>__<name>.
 */
#ifndef TB_CORE_INTERNAL_H
#define TB_CORE_INTERNAL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ticketyboo/ticketyboo.h>

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

/* ---- errors -------------------------------------------------------------- */

/* Set TB_ENOMEM detail without allocating. */
tb_status tb_error__oom(void);
/* Keep the current thread-local error across a cleanup that might clobber it. */
typedef struct tb_error_saved {
	tb_status status;
	char message[512];
	char field[64];
} tb_error_saved;
void tb_error__save(tb_error_saved *saved);
void tb_error__restore(const tb_error_saved *saved);

/* ---- ids, tokens, text --------------------------------------------------- */

/* Writes a new UUIDv7 (36 chars + NUL) into out. Monotonic within the process. */
void tb_id__new(char out[TB_ID_SIZE]);
/* True when s is a well-formed lower-case UUID text. */
bool tb_id__valid(const char *s);
/* 43-char URL-safe token from 32 random bytes (+ NUL). */
void tb_token__new(char out[64]);
bool tb_token__valid(const char *s);
void tb_token__hash(const char *token, unsigned char out[TB_TOKEN_HASH_SIZE]);
/* Strict UTF-8 check; counts code points into *chars_out when valid. */
bool tb_utf8__valid(const char *s, size_t len, size_t *chars_out);
/* Copy with truncation, always NUL-terminated. */
void tb_str__copy(char *dst, size_t dst_size, const char *src);
/* Trim ASCII white space in place (returns start pointer into buf). */
char *tb_str__trim(char *buf);

/* ---- market -------------------------------------------------------------- */

typedef struct tb_subscriber tb_subscriber;
typedef struct tb_group_op tb_group_op;

/* How often an operation is retried when storage reports busy. */
#define TB_BUSY_RETRIES 50

/* Group commit (group.c): write operations queued for the next shared transaction. */
typedef struct tb_group {
	pthread_mutex_t lock;
	tb_group_op *head, *tail; /* queued, not yet taken by a leader */
	bool leading;             /* a thread is running a group */
	tb_lead_hook_fn hook;     /* runs asynchronous writes elsewhere (tb_market_set_lead_hook) */
	void *hook_arg;
} tb_group;

struct tb_market {
	tb_storage *storage;
	tb_clock clock;
	tb_payment_provider *payments;
	int64_t lock_ms;
	int64_t session_ttl_ms;
	int64_t payment_grace_ms;
	int64_t payment_retry_ms;
	tb_late_payment_policy late_payment;
	unsigned long long pw_opslimit;
	size_t pw_memlimit;
	char default_currency[TB_CURRENCY_SIZE];
	char dummy_hash[TB_HASH_SIZE]; /* verified against for unknown emails */

	pthread_mutex_t subs_lock;
	pthread_cond_t subs_cond;
	tb_subscriber *subs;

	pthread_mutex_t inflight_lock; /* charges being driven by some thread */
	char (*inflight)[TB_ID_SIZE];
	size_t inflight_count, inflight_cap;

	bool grouped;                  /* storage has savepoints: write operations share commits */
	tb_group group;
};

int64_t tb_market__now(const tb_market *m);

/* One business operation inside one storage transaction. */
typedef tb_status (*tb_txn_fn)(tb_market *m, tb_storage_txn *txn, void *ctx);
/*
 * begin -> fn -> commit, rolling back when fn fails and retrying the whole
 * operation when the adapter reports TB_EBUSY.  fn must be re-runnable.
 */
tb_status tb_market__run(tb_market *m, int write, tb_txn_fn fn, void *ctx);

/* Run the adapter's after-commit housekeeping (checkpoint), keeping the caller's error detail. */
void tb_market__after_commit(tb_market *m);

/* Group commit (group.c): whether the adapter can, and the write path that does. */
bool tb_group__supported(const tb_storage *s);
void tb_group__init(tb_group *g);
void tb_group__destroy(tb_group *g);
tb_status tb_group__run(tb_market *m, tb_txn_fn fn, void *ctx);
/*
 * An asynchronous write's completion: its status, with the error detail in
 * the calling thread's tb_last_error() for the length of the call.
 */
typedef void (*tb_group_done_fn)(tb_status st, void *arg);
/*
 * Queue a write and return without waiting for it: done(st, arg) runs
 * exactly once, after the commit that holds it (or its failure), on the
 * thread that runs its group, which is this one when no write was running
 * (then before this returns).  TB_OK, or TB_ENOMEM (done never runs).
 */
tb_status tb_group__submit(tb_market *m, tb_txn_fn fn, void *ctx, tb_group_done_fn done, void *arg);
/* tb_market_lead: run what is queued on this thread unless a leader runs; how many ran. */
size_t tb_group__lead(tb_market *m);
void tb_group__set_hook(tb_market *m, tb_lead_hook_fn fn, void *arg);
/* Operations queued and not yet taken by a leader (tests). */
size_t tb_group__queued(tb_market *m);

/* Argument checks shared by every entry point. */
tb_status tb_check__market(const tb_market *m);
tb_status tb_check__out(const void *out);
tb_status tb_check__id(const char *id, const char *field, const char *what);

/* ---- records ------------------------------------------------------------- */

struct tb_user { tb_user_row row; };
struct tb_session {
	char token[64];
	char user_id[TB_ID_SIZE];
	int64_t expires_at_ms;
};
struct tb_ticket { tb_ticket_row row; bool locked; };
struct tb_order { tb_order_row row; int effective_status; };
struct tb_charge { tb_charge_row row; };
struct tb_event { tb_event_row row; char *payload; };

/* A growable array of records: the one shape behind every page type. */
typedef struct tb_vec {
	void *items;
	size_t count, cap, item_size;
	char next_cursor[TB_ID_SIZE];
	bool has_next;
} tb_vec;
void *tb_vec__push(tb_vec *v);
void tb_vec__free_items(tb_vec *v);
/*
 * Turn a vector filled with up to limit + 1 records into a page of at most
 * limit, with a cursor when more exist.  Every record starts with its row,
 * which starts with its id: the cursor is the last record's id.  Returns a
 * new page (all page types are a bare tb_vec) or NULL, freeing the items.
 */
void *tb_vec__into_page(tb_vec *v, size_t limit);
const void *tb_vec__at(const tb_vec *v, size_t i);
const char *tb_vec__cursor(const tb_vec *v);

struct tb_ticket_page { tb_vec v; };
struct tb_order_page { tb_vec v; };
struct tb_event_page { tb_vec v; };

/* Record views computed at read time. */
void tb_ticket__view(tb_ticket *out, const tb_ticket_row *row, int64_t now_ms);
void tb_order__view(tb_order *out, const tb_order_row *row, int64_t now_ms, int64_t grace_ms);
tb_status tb_ticket__new_from_row(tb_ticket **out, const tb_ticket_row *row, int64_t now_ms);
tb_status tb_order__new_from_row(tb_order **out, const tb_order_row *row, const tb_market *m);

/* The user of a live session (users.c); TB_EUNAUTH when unknown, revoked or expired. */
tb_status tb_session__user_id(tb_market *m, tb_storage_txn *txn, const unsigned char *hash, int64_t now_ms,
	char user_id[TB_ID_SIZE]);

/* Load an order, with the "order not found" detail. */
tb_status tb_order__load(tb_market *m, tb_storage_txn *txn, const char *id, tb_order_row *out);

/* Live: created or awaiting_payment, as stored. */
bool tb_order__live_status(int status);
/* When a live order stops being live: expires_at, plus the grace while awaiting payment. */
int64_t tb_order__deadline(const tb_order_row *o, int64_t grace_ms);

/*
 * Expire a due live order inside the caller's write transaction: the order
 * becomes expired and its ticket unlocked (OrderExpired, TicketUpdated).
 */
tb_status tb_order__expire(tb_market *m, tb_storage_txn *txn, tb_order_row *o, int64_t now_ms);
/* Unlock the ticket an order holds, if it still does (TicketUpdated). */
tb_status tb_ticket__release(tb_market *m, tb_storage_txn *txn, const char *ticket_id,
	const char *order_id, int64_t now_ms, const char *reason);

/* Expire everything due (tick). */
tb_status tb_orders__expire_due(tb_market *m, int64_t now_ms, size_t *expired_out);
/* Retry due unknown payments and refunds (tick). */
tb_status tb_payments__retry_due(tb_market *m, int64_t now_ms, tb_tick_stats *stats);
tb_status tb_events__dispatch_all(tb_market *m, size_t *delivered_out, size_t *failures_out);
bool tb_events__any_behind(tb_market *m);
void tb_events__free_subscribers(tb_market *m);

/* ---- events and JSON ----------------------------------------------------- */

/* Append an event; takes ownership of payload (a JSON object). */
tb_status tb_event__append(tb_market *m, tb_storage_txn *txn, tb_event_type type,
	const char *aggregate_id, int64_t aggregate_version, json_t *payload);

/* ISO 8601 UTC with milliseconds: "2026-11-25T02:45:55.123Z". */
void tb_json__iso(char out[32], int64_t ms);
json_t *tb_json__user(const tb_user_row *row);
json_t *tb_json__ticket(const tb_ticket_row *row, int64_t now_ms);
json_t *tb_json__order(const tb_order_row *row, int effective_status);
json_t *tb_json__charge(const tb_charge_row *row);
/*
 * Event payload text written directly (json.c), identical to what
 * json_dumps(JSON_COMPACT) makes of the json_t renderers.  A buffer starts
 * in `small` and moves to the heap when it outgrows it; `oom` records a
 * failed growth (later appends do nothing).
 */
typedef struct tb_jbuf {
	char *p;
	size_t len, cap;
	bool oom;
	char small[1024];
} tb_jbuf;
void tb_jbuf__init(tb_jbuf *b);
void tb_jbuf__free(tb_jbuf *b);
void tb_jbuf__raw(tb_jbuf *b, const char *s, size_t n);
void tb_jbuf__str(tb_jbuf *b, const char *s);
void tb_jbuf__int(tb_jbuf *b, int64_t v);
/* ,"key": (no comma right after the opening brace) */
void tb_jbuf__key(tb_jbuf *b, const char *key);
/* Move the text into *out (malloc'd, tb_free); TB_ENOMEM if it ran out. Frees b. */
tb_status tb_jbuf__take(char **out, tb_jbuf *b);
/*
 * Whether len bytes at s are JSON that jansson loads and dumps back
 * (JSON_COMPACT) byte for byte, as every payload the library writes is.
 */
bool tb_json__canonical(const char *s, size_t len);
/* The members of tb_json__order / tb_json__ticket, opened but not closed. */
void tb_json__order_text(tb_jbuf *b, const tb_order_row *row, int effective_status);
void tb_json__ticket_text(tb_jbuf *b, const tb_ticket_row *row, int64_t now_ms);
/*
 * Close the object in `b` and append it as an event, like tb_event__append
 * (whose "version" member is the aggregate version: the text already holds
 * the row's version, which callers pass as aggregate_version).  Frees b.
 */
tb_status tb_event__append_text(tb_market *m, tb_storage_txn *txn, tb_event_type type,
	const char *aggregate_id, int64_t aggregate_version, tb_jbuf *b);

/* json_t or NULL -> compact text into *out (tb_free); consumes obj. */
tb_status tb_json__dump(char **out, json_t *obj);
/* json_string or json_null for "" */
json_t *tb_json__str_or_null(const char *s);

#endif
