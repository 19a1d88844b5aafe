/*
 * src/storage/sqlite_schema.sql.h - the SQLite schema, one migration per
 * PRAGMA user_version step.  Included by sqlite.c only.
 *
 * Never edit a migration that has shipped: append a new one that moves
 * version N to N + 1, and add it to the end of `migrations` below.
 *
 * Times are milliseconds since the epoch in INTEGER columns; "none" is ''
 * for text and 0 for times, as in the row structs of storage.h.
 */
#ifndef TB_STORAGE_SQLITE_SCHEMA_SQL_H
#define TB_STORAGE_SQLITE_SCHEMA_SQL_H

/* Version 1: the first schema. */
static const char schema_v1[] =
	"CREATE TABLE users ("
	"  id            TEXT    NOT NULL PRIMARY KEY,"
	"  email         TEXT    NOT NULL UNIQUE,"
	"  password_hash TEXT    NOT NULL,"
	"  version       INTEGER NOT NULL,"
	"  created_at    INTEGER NOT NULL,"
	"  updated_at    INTEGER NOT NULL"
	");"

	/* Looked up by the hash only; small rows, so no separate rowid b-tree. */
	"CREATE TABLE sessions ("
	"  token_hash BLOB    NOT NULL PRIMARY KEY,"
	"  user_id    TEXT    NOT NULL REFERENCES users(id),"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX sessions_user ON sessions(user_id);"

	"CREATE TABLE tickets ("
	"  id           TEXT    NOT NULL PRIMARY KEY,"
	"  title        TEXT    NOT NULL,"
	"  price_minor  INTEGER NOT NULL CHECK (price_minor > 0),"
	"  currency     TEXT    NOT NULL,"
	"  owner_id     TEXT    NOT NULL REFERENCES users(id),"
	"  order_id     TEXT    NOT NULL DEFAULT '',"
	"  locked_until INTEGER NOT NULL DEFAULT 0,"
	"  status       INTEGER NOT NULL,"
	"  version      INTEGER NOT NULL,"
	"  created_at   INTEGER NOT NULL,"
	"  updated_at   INTEGER NOT NULL"
	");"
	/* An owner's tickets in id order (keyset pages). */
	"CREATE INDEX tickets_owner ON tickets(owner_id, id);"
	/* The public listing walks listed tickets in id order and skips the few locked ones. */
	"CREATE INDEX tickets_listed ON tickets(id) WHERE status = 1;"

	"CREATE TABLE orders ("
	"  id          TEXT    NOT NULL PRIMARY KEY,"
	"  ticket_id   TEXT    NOT NULL REFERENCES tickets(id),"
	"  buyer_id    TEXT    NOT NULL REFERENCES users(id),"
	"  seller_id   TEXT    NOT NULL,"
	"  status      INTEGER NOT NULL,"
	"  expires_at  INTEGER NOT NULL,"
	"  price_minor INTEGER NOT NULL,"
	"  currency    TEXT    NOT NULL,"
	"  version     INTEGER NOT NULL,"
	"  created_at  INTEGER NOT NULL,"
	"  updated_at  INTEGER NOT NULL"
	");"
	/*
	 * The database's own guard: at most one live order (1 created,
	 * 2 awaiting_payment) per ticket.  sqlite.c maps its violation to
	 * TB_ELOCKED; keep it the only UNIQUE index on orders.
	 */
	"CREATE UNIQUE INDEX orders_one_live_per_ticket ON orders(ticket_id) WHERE status IN (1, 2);"
	/* Due expiry: a range scan over (status, expires_at) costs O(due), not O(orders). */
	"CREATE INDEX orders_due ON orders(status, expires_at, id);"
	"CREATE INDEX orders_buyer ON orders(buyer_id, id);"

	"CREATE TABLE charges ("
	"  id                 TEXT    NOT NULL PRIMARY KEY,"
	"  order_id           TEXT    NOT NULL REFERENCES orders(id),"
	"  status             INTEGER NOT NULL,"
	"  amount_minor       INTEGER NOT NULL,"
	"  currency           TEXT    NOT NULL,"
	"  provider           TEXT    NOT NULL,"
	"  payment_token      TEXT    NOT NULL,"
	"  provider_charge_id TEXT    NOT NULL,"
	"  provider_refund_id TEXT    NOT NULL,"
	"  idempotency_key    TEXT    NOT NULL,"
	"  refund_key         TEXT    NOT NULL,"
	"  failure_code       TEXT    NOT NULL,"
	"  decline_code       TEXT    NOT NULL,"
	"  failure_message    TEXT    NOT NULL,"
	"  refund_reason      TEXT    NOT NULL,"
	"  attempts           INTEGER NOT NULL,"
	"  next_attempt_at    INTEGER NOT NULL,"
	"  version            INTEGER NOT NULL,"
	"  created_at         INTEGER NOT NULL,"
	"  updated_at         INTEGER NOT NULL"
	");"
	"CREATE INDEX charges_order ON charges(order_id, created_at, id);"
	"CREATE INDEX charges_provider ON charges(provider_charge_id, created_at, id);"
	/* Only charges waiting for a retry are indexed: the tick's scan is O(due). */
	"CREATE INDEX charges_due ON charges(next_attempt_at, id) WHERE next_attempt_at > 0;"

	/*
	 * AUTOINCREMENT: a seq is never reused even if old events are pruned.
	 * SQLite has one writer, so seqs are gap-free in commit order (a rolled
	 * back append gives its seq to the next one).
	 */
	"CREATE TABLE events ("
	"  seq               INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  type              INTEGER NOT NULL,"
	"  aggregate_id      TEXT    NOT NULL,"
	"  aggregate_version INTEGER NOT NULL,"
	"  occurred_at       INTEGER NOT NULL,"
	"  payload           TEXT    NOT NULL"
	");"

	"CREATE TABLE cursors ("
	"  name TEXT    NOT NULL PRIMARY KEY,"
	"  seq  INTEGER NOT NULL"
	") WITHOUT ROWID;"

	"CREATE TABLE seen_keys ("
	"  key TEXT    NOT NULL PRIMARY KEY,"
	"  at  INTEGER NOT NULL"
	") WITHOUT ROWID;";

/*
 * Version 2: the public listing needs the FREE tickets in id order.  With
 * version 1's index of listed tickets, a page walked past every locked one
 * first: 100k live orders made a page cost 25 ms.  Free tickets now have
 * their own index, and the few whose lock lapsed before a tick are found by
 * when it lapsed.
 */
static const char schema_v2[] =
	"DROP INDEX tickets_listed;"
	"CREATE INDEX tickets_free ON tickets(id) WHERE status = 1 AND order_id = '';"
	"CREATE INDEX tickets_lapsing ON tickets(locked_until) WHERE status = 1 AND order_id <> '';";

/*
 * Version 3: tickets and orders become WITHOUT ROWID tables keyed by their
 * TEXT id.  A lookup by id (GET /api/tickets/:id, every order, payment and
 * cancel) then descends one b-tree instead of the id index and then the
 * rowid table: one page read less per row among a million tickets, which
 * made the server's GET by id about 20% faster (docs/performance.md).
 * The indexes are the same; the tables are rebuilt in id order (sqlite.c
 * runs migrations with foreign keys off and checks them before COMMIT).
 */
static const char schema_v3[] =
	"CREATE TABLE tickets_v3 ("
	"  id           TEXT    NOT NULL PRIMARY KEY,"
	"  title        TEXT    NOT NULL,"
	"  price_minor  INTEGER NOT NULL CHECK (price_minor > 0),"
	"  currency     TEXT    NOT NULL,"
	"  owner_id     TEXT    NOT NULL REFERENCES users(id),"
	"  order_id     TEXT    NOT NULL DEFAULT '',"
	"  locked_until INTEGER NOT NULL DEFAULT 0,"
	"  status       INTEGER NOT NULL,"
	"  version      INTEGER NOT NULL,"
	"  created_at   INTEGER NOT NULL,"
	"  updated_at   INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO tickets_v3 (id, title, price_minor, currency, owner_id, order_id, locked_until,"
	"  status, version, created_at, updated_at)"
	" SELECT id, title, price_minor, currency, owner_id, order_id, locked_until,"
	"  status, version, created_at, updated_at FROM tickets ORDER BY id;"
	"DROP TABLE tickets;"
	"ALTER TABLE tickets_v3 RENAME TO tickets;"
	"CREATE INDEX tickets_owner ON tickets(owner_id, id);"
	"CREATE INDEX tickets_free ON tickets(id) WHERE status = 1 AND order_id = '';"
	"CREATE INDEX tickets_lapsing ON tickets(locked_until) WHERE status = 1 AND order_id <> '';"

	"CREATE TABLE orders_v3 ("
	"  id          TEXT    NOT NULL PRIMARY KEY,"
	"  ticket_id   TEXT    NOT NULL REFERENCES tickets(id),"
	"  buyer_id    TEXT    NOT NULL REFERENCES users(id),"
	"  seller_id   TEXT    NOT NULL,"
	"  status      INTEGER NOT NULL,"
	"  expires_at  INTEGER NOT NULL,"
	"  price_minor INTEGER NOT NULL,"
	"  currency    TEXT    NOT NULL,"
	"  version     INTEGER NOT NULL,"
	"  created_at  INTEGER NOT NULL,"
	"  updated_at  INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO orders_v3 (id, ticket_id, buyer_id, seller_id, status, expires_at, price_minor,"
	"  currency, version, created_at, updated_at)"
	" SELECT id, ticket_id, buyer_id, seller_id, status, expires_at, price_minor,"
	"  currency, version, created_at, updated_at FROM orders ORDER BY id;"
	"DROP TABLE orders;"
	"ALTER TABLE orders_v3 RENAME TO orders;"
	"CREATE UNIQUE INDEX orders_one_live_per_ticket ON orders(ticket_id) WHERE status IN (1, 2);"
	"CREATE INDEX orders_due ON orders(status, expires_at, id);"
	"CREATE INDEX orders_buyer ON orders(buyer_id, id);";

/* migrations[i] moves user_version i to i + 1. */
static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#endif
