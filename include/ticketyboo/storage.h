/*
 * ticketyboo/storage.h - the storage adapter vtable (for adapter authors).
 *
 * The core runs every business operation as: begin -> read (with write
 * intent) -> check rules -> write -> append events -> commit, and retries
 * the whole operation when an adapter answers TB_EBUSY.  Adapters hold no
 * business rules; they store rows and keep a few invariants the database can
 * enforce on its own, above all "at most one live order (created or
 * awaiting_payment) per ticket" (a partial unique index in SQLite), so that
 * no code path, however buggy, can double-lock a ticket.
 *
 * Rows use fixed-size buffers, so adapters allocate nothing the core frees.
 * Strings are NUL-terminated UTF-8; an empty string means "none".
 *
 * Thread safety: a tb_storage is shared by all of a market's threads; each
 * transaction (tb_storage_txn) is used by one thread at a time, from begin to
 * commit or rollback.  Reads inside a write transaction must see a state no
 * other writer can change before commit (SQLite: BEGIN IMMEDIATE).
 *
 * Failure contract: if begin fails, neither commit nor rollback is called.
 * Commit either succeeds or fails having rolled back and released the
 * transaction; rollback always releases it.  Any method may return
 * TB_ESTORAGE (with detail set) or TB_EBUSY (retry the whole operation).
 */
#ifndef TICKETYBOO_STORAGE_H
#define TICKETYBOO_STORAGE_H

#include "common.h"
#include "market.h"
#include "sys.h"

TB_BEGIN_DECL

#define TB_ID_SIZE (TB_ID_LEN + 1)
#define TB_EMAIL_SIZE 255
#define TB_HASH_SIZE 128
#define TB_TITLE_SIZE 801
#define TB_CURRENCY_SIZE 4
#define TB_TOKEN_HASH_SIZE 32

typedef struct tb_user_row {
	char id[TB_ID_SIZE];
	char email[TB_EMAIL_SIZE];
	char password_hash[TB_HASH_SIZE]; /**< crypto_pwhash_str output */
	int64_t version;
	int64_t created_at_ms;
	int64_t updated_at_ms;
} tb_user_row;

typedef struct tb_session_row {
	unsigned char token_hash[TB_TOKEN_HASH_SIZE]; /**< BLAKE2b-256 of the token */
	char user_id[TB_ID_SIZE];
	int64_t created_at_ms;
	int64_t expires_at_ms;
} tb_session_row;

typedef struct tb_ticket_row {
	char id[TB_ID_SIZE];
	char title[TB_TITLE_SIZE];
	int64_t price_minor;
	char currency[TB_CURRENCY_SIZE];
	char owner_id[TB_ID_SIZE];
	char order_id[TB_ID_SIZE];  /**< the order holding the lock, "" if none */
	int64_t locked_until_ms;    /**< when that lock lapses, 0 if none */
	int status;                 /**< tb_ticket_status */
	int64_t version;
	int64_t created_at_ms;
	int64_t updated_at_ms;
} tb_ticket_row;

typedef struct tb_order_row {
	char id[TB_ID_SIZE];
	char ticket_id[TB_ID_SIZE];
	char buyer_id[TB_ID_SIZE];
	char seller_id[TB_ID_SIZE];
	int status;                 /**< tb_order_status as stored (never lazily expired) */
	int64_t expires_at_ms;
	int64_t price_minor;
	char currency[TB_CURRENCY_SIZE];
	int64_t version;
	int64_t created_at_ms;
	int64_t updated_at_ms;
} tb_order_row;

typedef struct tb_charge_row {
	char id[TB_ID_SIZE];
	char order_id[TB_ID_SIZE];
	int status;                   /**< tb_charge_status */
	int64_t amount_minor;
	char currency[TB_CURRENCY_SIZE];
	char provider[32];
	char payment_token[128];      /**< needed to retry with the same parameters; never exported */
	char provider_charge_id[128];
	char provider_refund_id[128];
	char idempotency_key[64];
	char refund_key[64];          /**< idempotency key of the refund attempt */
	char failure_code[64];
	char decline_code[64];
	char failure_message[256];
	char refund_reason[128];
	int64_t attempts;
	int64_t next_attempt_at_ms;   /**< when tick retries a pending outcome, 0 if not */
	int64_t version;
	int64_t created_at_ms;
	int64_t updated_at_ms;
} tb_charge_row;

typedef struct tb_event_row {
	int64_t seq;                  /**< set by event_append */
	int type;                     /**< tb_event_type */
	char aggregate_id[TB_ID_SIZE];
	int64_t aggregate_version;
	int64_t occurred_at_ms;
	const char *payload;          /**< JSON; borrowed for the call or callback */
	size_t payload_len;
} tb_event_row;

/** Filters for ticket_list.  available_only means: listed, and no lock or a lock lapsed by now_ms. */
typedef struct tb_ticket_filter {
	int available_only;
	int64_t now_ms;
	const char *owner_id;         /**< NULL = any */
	const char *title_contains;   /**< NULL = any; case-insensitive ASCII */
	const char *after_id;         /**< NULL = from the start; ids greater than this */
	unsigned int limit;
} tb_ticket_filter;

/**
 * Row callbacks: return TB_OK to continue; anything else stops and is
 * returned.  A callback may call other methods on the same transaction (the
 * SQLite adapter reads the rows before calling back).  After any method
 * fails, the caller rolls the whole transaction back.
 */
typedef tb_status (*tb_ticket_row_cb)(const tb_ticket_row *row, void *payload);
typedef tb_status (*tb_order_row_cb)(const tb_order_row *row, void *payload);
typedef tb_status (*tb_charge_row_cb)(const tb_charge_row *row, void *payload);
typedef tb_status (*tb_event_row_cb)(const tb_event_row *row, void *payload);

typedef struct tb_storage_txn tb_storage_txn;

/*
 * Version 2 appended the optional savepoint methods (group commit) and
 * after_commit; a version-1 adapter still works, with one transaction per
 * operation.
 */
#define TB_STORAGE_VERSION 2

/**
 * A storage adapter.  Implementations embed this struct first.  All
 * methods are required unless marked optional.  "Version-checked" updates
 * write only when the stored version equals row->version - 1 (the caller
 * bumps it), else TB_ECONFLICT; TB_ENOTFOUND when the row does not exist.
 */
struct tb_storage {
	unsigned int version; /**< TB_STORAGE_VERSION */
	const char *name;     /**< "sqlite", ... */

	/** Start a transaction; write != 0 takes write intent at once. */
	tb_status (*begin)(tb_storage *self, int write, tb_storage_txn **out);
	tb_status (*commit)(tb_storage_txn *txn);
	void (*rollback)(tb_storage_txn *txn);

	/** TB_EEXISTS when the email is taken. */
	tb_status (*user_insert)(tb_storage_txn *txn, const tb_user_row *row);
	tb_status (*user_get)(tb_storage_txn *txn, const char *id, tb_user_row *out);
	tb_status (*user_get_by_email)(tb_storage_txn *txn, const char *email, tb_user_row *out);
	/** Version-checked; TB_EEXISTS when the new email is taken. */
	tb_status (*user_update)(tb_storage_txn *txn, const tb_user_row *row);

	tb_status (*session_insert)(tb_storage_txn *txn, const tb_session_row *row);
	tb_status (*session_get)(tb_storage_txn *txn, const unsigned char *token_hash, tb_session_row *out);
	/** TB_OK even when absent. */
	tb_status (*session_delete)(tb_storage_txn *txn, const unsigned char *token_hash);
	/** Delete all of a user's sessions except `keep_hash` (may be NULL). */
	tb_status (*session_delete_for_user)(tb_storage_txn *txn, const char *user_id,
		const unsigned char *keep_hash);

	tb_status (*ticket_insert)(tb_storage_txn *txn, const tb_ticket_row *row);
	tb_status (*ticket_get)(tb_storage_txn *txn, const char *id, tb_ticket_row *out);
	/** Version-checked. */
	tb_status (*ticket_update)(tb_storage_txn *txn, const tb_ticket_row *row);
	/** Rows matching `filter`, ordered by id, at most filter->limit. */
	tb_status (*ticket_list)(tb_storage_txn *txn, const tb_ticket_filter *filter,
		tb_ticket_row_cb cb, void *payload);

	/** TB_ELOCKED when the ticket already has a live order (enforced by the database). */
	tb_status (*order_insert)(tb_storage_txn *txn, const tb_order_row *row);
	tb_status (*order_get)(tb_storage_txn *txn, const char *id, tb_order_row *out);
	/** Version-checked; TB_ELOCKED as for insert when made live again. */
	tb_status (*order_update)(tb_storage_txn *txn, const tb_order_row *row);
	/** A buyer's orders ordered by id, ids greater than after_id (NULL = all). */
	tb_status (*order_list_by_buyer)(tb_storage_txn *txn, const char *buyer_id,
		const char *after_id, unsigned int limit, tb_order_row_cb cb, void *payload);
	/** Orders with `status` and expires_at_ms <= cutoff_ms, earliest first, at most limit. */
	tb_status (*order_list_due)(tb_storage_txn *txn, int status, int64_t cutoff_ms,
		unsigned int limit, tb_order_row_cb cb, void *payload);
	/** Earliest expires_at_ms among orders with `status`, or TB_NO_DEADLINE. */
	tb_status (*order_min_expiry)(tb_storage_txn *txn, int status, int64_t *out);

	tb_status (*charge_insert)(tb_storage_txn *txn, const tb_charge_row *row);
	tb_status (*charge_get)(tb_storage_txn *txn, const char *id, tb_charge_row *out);
	/** Version-checked. */
	tb_status (*charge_update)(tb_storage_txn *txn, const tb_charge_row *row);
	/** The newest charge of an order (by created_at then id); TB_ENOTFOUND if none. */
	tb_status (*charge_get_latest_for_order)(tb_storage_txn *txn, const char *order_id,
		tb_charge_row *out);
	tb_status (*charge_get_by_provider_id)(tb_storage_txn *txn, const char *provider_charge_id,
		tb_charge_row *out);
	/** Charges whose next_attempt_at_ms is non-zero and <= now_ms, earliest first. */
	tb_status (*charge_list_due)(tb_storage_txn *txn, int64_t now_ms, unsigned int limit,
		tb_charge_row_cb cb, void *payload);
	/** Earliest non-zero next_attempt_at_ms, or TB_NO_DEADLINE. */
	tb_status (*charge_min_next_attempt)(tb_storage_txn *txn, int64_t *out);

	/** Append, assigning row->seq (strictly increasing). */
	tb_status (*event_append)(tb_storage_txn *txn, tb_event_row *row);
	/** Events with seq > after_seq in seq order, at most limit. */
	tb_status (*event_read)(tb_storage_txn *txn, int64_t after_seq, unsigned int limit,
		tb_event_row_cb cb, void *payload);
	/** Newest seq, 0 when empty. */
	tb_status (*event_last_seq)(tb_storage_txn *txn, int64_t *out);

	/** A subscriber's stored cursor; 0 when unknown. */
	tb_status (*cursor_get)(tb_storage_txn *txn, const char *name, int64_t *out);
	tb_status (*cursor_set)(tb_storage_txn *txn, const char *name, int64_t seq);

	/** Remember a key (e.g. a webhook event id); TB_EEXISTS if seen before. */
	tb_status (*seen_insert)(tb_storage_txn *txn, const char *key, int64_t at_ms);

	/** Optional: checkpoint or other housekeeping outside any transaction. */
	tb_status (*checkpoint)(tb_storage *self);
	/** Release the adapter and everything it holds. */
	void (*destroy)(tb_storage *self);

	/* ---- version 2 ---------------------------------------------------------- */

	/*
	 * Optional, all three or none: one level of savepoint inside a write
	 * transaction, so that several operations can share one commit (group
	 * commit) and one that fails undoes only its own writes.  The core
	 * reads these only when version >= 2; when any is NULL it runs one
	 * transaction per operation.
	 */
	/** Mark a savepoint.  Never nested: release or roll back before the next. */
	tb_status (*savepoint)(tb_storage_txn *txn);
	/** Keep the writes since the savepoint and forget it. */
	tb_status (*savepoint_release)(tb_storage_txn *txn);
	/**
	 * Undo every write since the savepoint, appended events included (their
	 * seqs are handed out again, so the outbox stays gap-free), and forget
	 * it; the transaction stays usable.  If this fails, the transaction is
	 * lost: the caller only rolls it back.
	 */
	tb_status (*savepoint_rollback)(tb_storage_txn *txn);

	/**
	 * Optional: housekeeping the adapter wants after a write commits, run
	 * outside any transaction once the committed operations have their
	 * results, so it never holds up other writers (SQLite: the WAL
	 * checkpoint that would otherwise run inside COMMIT).  Cheap when there
	 * is nothing to do; its failure is the adapter's to report later, the
	 * core ignores it.
	 */
	void (*after_commit)(tb_storage *self);
};

#define TB_SQLITE_OPTIONS_VERSION 2

typedef struct tb_sqlite_options {
	unsigned int version;     /**< TB_SQLITE_OPTIONS_VERSION (1 is still accepted) */
	tb_sync_level sync;
	int busy_timeout_ms;      /**< wait for another process's lock (default 5000) */
	/**
	 * Pooled read connections (default 4, at most 64).  A read waits for a
	 * free one, so a host reading from many threads at once wants one per
	 * thread.  They share a 64 MiB page-cache budget: 16 MiB each at most
	 * (4 readers), 2 MiB each at least.
	 */
	unsigned int readers;
	/**
	 * Version 2.  A read transaction may reuse the snapshot its reader
	 * connection kept from the previous one, saving SQLite's per-transaction
	 * WAL locking, when no write committed in this process since and the
	 * snapshot is younger than this many milliseconds.  Reads always see
	 * every commit of this process that returned before they began; a
	 * commit by ANOTHER process sharing the file may take up to this long
	 * to show.  0: the default (2 ms); -1: never reuse (every read begins a
	 * fresh snapshot); at most 1000.
	 */
	int snapshot_reuse_ms;
} tb_sqlite_options;

#define TB_SQLITE_OPTIONS_INIT { TB_SQLITE_OPTIONS_VERSION, TB_SYNC_DEFAULT, 0, 0, 0 }

/**
 * Open the SQLite adapter on a file (created if missing) or ":memory:" (one
 * private database shared by the adapter's connections).  Runs migrations
 * (PRAGMA user_version).
 * @param opts NULL for defaults.
 * @return TB_OK; TB_EINVAL; TB_EVERSION; TB_ESTORAGE (cannot open; schema
 *         newer than this library).
 */
TB_API TB_MUST_CHECK tb_status tb_storage_sqlite_open(tb_storage **out, const char *path,
	const tb_sqlite_options *opts);

/** Release an adapter the caller still owns.  NULL is a no-op. */
TB_API void tb_storage_free(tb_storage *storage);

TB_END_DECL

#endif
