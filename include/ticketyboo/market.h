/*
 * ticketyboo/market.h - the marketplace handle.
 *
 * A tb_market is one marketplace: its storage, its clock, its payment
 * provider and its rules.  Open it once, share it between threads, close it
 * once.  It starts no thread and never sleeps behind the host's back: the
 * host drives time by calling tb_market_tick(), as often as it likes or when
 * tb_market_next_deadline() says something is due.
 *
 * Thread safety: a tb_market may be used from any number of threads at once;
 * it owns its locking and its database connections.  tb_market_close() must
 * not race with other calls on the same market.
 * Ownership: the options are copied; the payment provider and the clock's
 * payload are borrowed and must outlive the market.
 */
#ifndef TICKETYBOO_MARKET_H
#define TICKETYBOO_MARKET_H

#include "common.h"
#include "clock.h"

TB_BEGIN_DECL

typedef struct tb_market tb_market;
typedef struct tb_payment_provider tb_payment_provider;
typedef struct tb_storage tb_storage;

/** Cost of argon2id password hashing (libsodium's opslimit/memlimit presets). */
typedef enum tb_password_cost {
	TB_PASSWORD_COST_DEFAULT = 0,     /**< same as INTERACTIVE */
	TB_PASSWORD_COST_MIN = 1,         /**< libsodium's minimum: tests only */
	TB_PASSWORD_COST_INTERACTIVE = 2, /**< about 64 MiB, tens of milliseconds */
	TB_PASSWORD_COST_MODERATE = 3     /**< about 256 MiB, ~0.5 s */
} tb_password_cost;

/** What to do when a payment succeeds for an order that can no longer complete. */
typedef enum tb_late_payment_policy {
	/** Refund it (default): the lock had lapsed, the buyer gets the money back. */
	TB_LATE_PAYMENT_REFUND = 0,
	/**
	 * Complete the order anyway if the ticket is still unlocked and still the
	 * seller's; refund otherwise.
	 */
	TB_LATE_PAYMENT_HONOUR_IF_AVAILABLE = 1
} tb_late_payment_policy;

/** How hard SQLite syncs a commit to disk. */
typedef enum tb_sync_level {
	TB_SYNC_DEFAULT = 0, /**< NORMAL in WAL mode: durable across process crashes */
	TB_SYNC_NORMAL = 1,
	TB_SYNC_FULL = 2,    /**< also durable across power loss */
	TB_SYNC_OFF = 3      /**< tests and benchmarks only */
} tb_sync_level;

#define TB_MARKET_OPTIONS_VERSION 1

/** Default lock window: 15 minutes. */
#define TB_DEFAULT_LOCK_MS (15 * 60 * 1000)
/** Default session lifetime: 30 days. */
#define TB_DEFAULT_SESSION_TTL_MS (INT64_C(30) * 24 * 60 * 60 * 1000)
/** Default grace an awaiting_payment order gets past its lock: 5 minutes. */
#define TB_DEFAULT_PAYMENT_GRACE_MS (5 * 60 * 1000)

/**
 * Options for tb_market_open().  Initialise with TB_MARKET_OPTIONS_INIT or
 * tb_market_options_init(), then set what you need; zero means "default".
 */
typedef struct tb_market_options {
	unsigned int version;           /**< TB_MARKET_OPTIONS_VERSION */
	/**
	 * SQLite file path or ":memory:" (default ":memory:"); or a "postgres://"
	 * or "postgresql://" URI, which opens PostgreSQL with default options
	 * (postgres.h; TB_EINVAL when built without PostgreSQL support).
	 */
	const char *db;
	int64_t lock_ms;                /**< order lock window (default TB_DEFAULT_LOCK_MS) */
	const tb_clock *clock;          /**< copied; NULL = the real clock */
	tb_payment_provider *payments;  /**< borrowed; NULL = paying fails with TB_EPROVIDER */
	tb_password_cost password_cost; /**< argon2id cost */
	int64_t session_ttl_ms;         /**< session lifetime (default TB_DEFAULT_SESSION_TTL_MS) */
	tb_late_payment_policy late_payment;
	int64_t payment_grace_ms;       /**< awaiting_payment hold past the lock (default 5 min) */
	tb_sync_level sync;             /**< SQLite durability */
	const char *default_currency;   /**< ISO 4217 used when a ticket names none (default "USD") */
	int64_t payment_retry_ms;       /**< delay before tick retries an unknown payment (default 1000) */
} tb_market_options;

#define TB_MARKET_OPTIONS_INIT { TB_MARKET_OPTIONS_VERSION, NULL, 0, NULL, NULL, \
	TB_PASSWORD_COST_DEFAULT, 0, TB_LATE_PAYMENT_REFUND, 0, TB_SYNC_DEFAULT, NULL, 0 }

/**
 * Fill `opts` with defaults for the given struct version.
 * @return TB_OK, or TB_EVERSION when `version` is unknown, TB_EINVAL if opts is NULL.
 */
TB_API TB_MUST_CHECK tb_status tb_market_options_init(tb_market_options *opts, unsigned int version);

/**
 * Open a market on the SQLite database `opts->db` (created and migrated if
 * needed; WAL mode, foreign keys on), or on PostgreSQL when `opts->db` is a
 * "postgres://" or "postgresql://" URI (tb_storage_postgres_open() with
 * default options; for other options open the adapter yourself and use
 * tb_market_open_take()).
 * @param[out] out the market; close with tb_market_close().  NULL on failure.
 * @param opts options, or NULL for all defaults (an in-memory market).
 * @return TB_OK; TB_EVERSION (unknown options or clock version); TB_EINVAL
 *         (a negative duration, a bad currency: field names the option;
 *         a PostgreSQL URI in a build without PostgreSQL support);
 *         TB_ESTORAGE (the database cannot be opened, or its schema is newer
 *         than this library).
 */
TB_API TB_MUST_CHECK tb_status tb_market_open(tb_market **out, const tb_market_options *opts);

/**
 * Open a market on a storage adapter the caller built (see storage.h).
 * The market takes ownership of `storage` only on TB_OK; `opts->db` is ignored.
 * @return as tb_market_open(), plus TB_EVERSION for an unknown adapter version
 *         and TB_EINVAL for an adapter missing a required method.
 */
TB_API TB_MUST_CHECK tb_status tb_market_open_take(tb_market **out, tb_storage *storage,
	const tb_market_options *opts);

/**
 * Close the market, its storage and its subscribers.  Pending work stays in
 * the database and resumes on the next open.  NULL is a no-op.
 */
TB_API void tb_market_close(tb_market *market);

/** What one tick did. */
typedef struct tb_tick_stats {
	unsigned int version;      /**< TB_TICK_STATS_VERSION */
	size_t orders_expired;     /**< created/awaiting_payment orders moved to expired */
	size_t payments_retried;   /**< unknown payments and refunds asked again */
	size_t payments_resolved;  /**< of those, how many got a final answer */
	size_t refunds_issued;     /**< late payments refunded */
	size_t events_delivered;   /**< events handed to subscribers */
	size_t subscriber_failures;/**< callbacks that failed (retried on a later tick) */
} tb_tick_stats;

#define TB_TICK_STATS_VERSION 1
#define TB_TICK_STATS_INIT { TB_TICK_STATS_VERSION, 0, 0, 0, 0, 0, 0 }

/**
 * Do everything that is due: expire orders whose lock passed (in batches;
 * cost proportional to what is due, not to what exists), retry payments and
 * refunds whose outcome is unknown (same idempotency key), refund late
 * successes, and deliver pending events to subscribers.  Idempotent: a
 * second tick at the same time does nothing.  Safe to call from any thread.
 * @param stats_out optional; filled with what this tick did.
 * @return TB_OK, TB_ESTORAGE, TB_EBUSY.  A failing subscriber or provider is
 *         not an error of the tick: it is counted and retried later.
 */
TB_API TB_MUST_CHECK tb_status tb_market_tick(tb_market *market, tb_tick_stats *stats_out);

/** Asked to have the market's queued writes run soon (tb_market_set_lead_hook()). */
typedef void (*tb_lead_hook_fn)(tb_market *market, void *arg);

/**
 * Who runs asynchronous writes (tb_order_create_by_session_async()) when no
 * write is running.  By default the thread that submits one runs its group
 * itself.  A host whose submitting threads must not run a commit (an event
 * loop serving other connections) sets this hook instead: the library then
 * calls fn(market, arg), on the submitting thread with no lock held,
 * whenever asynchronous writes are queued and no thread is running them,
 * and the host must soon call tb_market_lead() on a thread of its own (a
 * worker pool, say).  A waiting writer whose own work is done hands what is
 * left to the hook too, instead of running it.  Calls may come from several
 * threads at once, and may be more than needed (tb_market_lead() returns at
 * once when nothing is queued).  Set it before the first asynchronous
 * write; NULL restores the default.  The library still starts no thread.
 * @return TB_OK; TB_EINVAL (NULL market).
 */
TB_API TB_MUST_CHECK tb_status tb_market_set_lead_hook(tb_market *market, tb_lead_hook_fn fn, void *arg);

/**
 * Run the market's queued writes on this thread until none are left; the
 * callbacks of asynchronous ones run here.  Returns at once when another
 * thread is running them (it takes what is queued).
 * @param ran_out optional: how many writes this call ran.
 * @return TB_OK; TB_EINVAL (NULL market).
 */
TB_API TB_MUST_CHECK tb_status tb_market_lead(tb_market *market, size_t *ran_out);

/** Returned by tb_market_next_deadline() when nothing is scheduled. */
#define TB_NO_DEADLINE INT64_MAX

/**
 * When the next tick has work: the earliest order expiry, payment retry, or
 * (if any subscriber is behind) now.
 * @param[out] out milliseconds since the epoch, or TB_NO_DEADLINE.
 * @return TB_OK, TB_ESTORAGE.
 */
TB_API TB_MUST_CHECK tb_status tb_market_next_deadline(tb_market *market, int64_t *out);

/** The market's clock reading, in milliseconds since the epoch. */
TB_API int64_t tb_market_now_ms(const tb_market *market);

/** The configured lock window in milliseconds. */
TB_API int64_t tb_market_lock_ms(const tb_market *market);

/**
 * Run a passive WAL checkpoint now (SQLite).  A host that calls this from
 * its tick thread keeps checkpoints out of the commit path.  No-op for
 * adapters without one.
 */
TB_API TB_MUST_CHECK tb_status tb_market_checkpoint(tb_market *market);

/** Library version as "MAJOR.MINOR.PATCH". */
TB_API const char *tb_version(void);

TB_END_DECL

#endif
