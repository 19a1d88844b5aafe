/*
 * ticketyboo/postgres.h - the PostgreSQL storage adapter (libpq).
 *
 * For many nodes sharing one database: each node opens its own adapter (or
 * its market does, see tb_market_open()) on the same database, and the
 * database keeps them consistent: row locks for read-then-write, a partial
 * unique index for "one live order per ticket", FOR UPDATE SKIP LOCKED so
 * nodes ticking at once share the due work, and an event outbox whose seqs
 * are gap-free in commit order, so a reader that follows "seq greater than
 * the last one" never skips an event.  docs/storage-postgres.md explains
 * the choices and their costs.
 *
 * Thread safety: an adapter is shared by all of a market's threads.  It
 * keeps a pool of connections, one per transaction in progress; a begin
 * that finds every connection busy waits for one.
 * Ownership: the conninfo and the options are copied.
 *
 * Built only when libpq is found (CMake option TB_WITH_POSTGRES); otherwise
 * tb_storage_postgres_open() exists but fails with TB_EINVAL.
 */
#ifndef TICKETYBOO_POSTGRES_H
#define TICKETYBOO_POSTGRES_H

#include "common.h"
#include "storage.h"

TB_BEGIN_DECL

#define TB_POSTGRES_OPTIONS_VERSION 1

/** Options for tb_storage_postgres_open().  Zero means "default" everywhere. */
typedef struct tb_postgres_options {
	unsigned int version;         /**< TB_POSTGRES_OPTIONS_VERSION */
	unsigned int pool_size;       /**< connections at most, opened as needed (default 8, at most 256) */
	int statement_timeout_ms;     /**< server-side limit per statement (default: the server's); TB_ESTORAGE */
	int lock_timeout_ms;          /**< wait for a row lock at most this long (default: the server's); TB_EBUSY */
	int acquire_timeout_ms;       /**< wait for a free pooled connection (default 30000); TB_EBUSY */
} tb_postgres_options;

#define TB_POSTGRES_OPTIONS_INIT { TB_POSTGRES_OPTIONS_VERSION, 0, 0, 0, 0 }

/**
 * Open the PostgreSQL adapter.  Connects once, then brings the schema up to
 * date (tables in the first schema of the connection's search_path,
 * versioned in its table schema_version; several nodes may open at once).
 * Use a database, or a schema, of its own: the tables have plain names
 * (users, tickets, orders, ...).
 *
 * @param[out] out the adapter; release with tb_storage_free() or hand it to
 *             tb_market_open_take().  NULL on failure.
 * @param conninfo a libpq connection string: "host=... dbname=..." or a
 *             "postgresql://" URI.  The client encoding is always UTF8.
 * @param opts NULL for defaults.
 * @return TB_OK; TB_EINVAL (NULL or empty argument, an option out of range,
 *         or a library built without PostgreSQL support); TB_EVERSION
 *         (unknown options version); TB_ESTORAGE (cannot connect, server
 *         older than 9.5, or a schema newer than this library).
 */
TB_API TB_MUST_CHECK tb_status tb_storage_postgres_open(tb_storage **out, const char *conninfo,
	const tb_postgres_options *opts);

TB_END_DECL

#endif
