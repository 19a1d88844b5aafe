/*
 * src/storage/postgres_schema.sql.h - the PostgreSQL schema, one migration
 * per schema_version step.  Included by postgres.c only.
 *
 * Never edit a migration that has shipped: append a new one that moves
 * version N to N + 1, and add it to the end of `pg_migrations` below.
 *
 * The tables mirror the SQLite schema (sqlite_schema.sql.h) column for
 * column.  Times are milliseconds since the epoch in bigint columns; "none"
 * is '' for text and 0 for times, as in the row structs of storage.h.
 * Ids and other keys are text COLLATE "C": keyset pages walk ids in byte
 * order, as SQLite does, whatever the database's locale.
 */
#ifndef TB_STORAGE_POSTGRES_SCHEMA_SQL_H
#define TB_STORAGE_POSTGRES_SCHEMA_SQL_H

/* Version 1: the first schema. */
static const char pg_schema_v1[] =
	"CREATE TABLE users ("
	"  id            text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	"  email         text COLLATE \"C\" NOT NULL CONSTRAINT users_email_key UNIQUE,"
	"  password_hash text   NOT NULL,"
	"  version       bigint NOT NULL,"
	"  created_at    bigint NOT NULL,"
	"  updated_at    bigint NOT NULL"
	");"

	"CREATE TABLE sessions ("
	"  token_hash bytea  NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),"
	"  user_id    text COLLATE \"C\" NOT NULL REFERENCES users(id),"
	"  created_at bigint NOT NULL,"
	"  expires_at bigint NOT NULL"
	");"
	"CREATE INDEX sessions_user ON sessions(user_id);"

	"CREATE TABLE tickets ("
	"  id           text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	/* "C": lower() then folds ASCII only, as the title filter promises. */
	"  title        text COLLATE \"C\" NOT NULL,"
	"  price_minor  bigint  NOT NULL CHECK (price_minor > 0),"
	"  currency     text    NOT NULL,"
	"  owner_id     text COLLATE \"C\" NOT NULL REFERENCES users(id),"
	/* Not a foreign key: the order that locks a ticket also references it. */
	"  order_id     text COLLATE \"C\" NOT NULL DEFAULT '',"
	"  locked_until bigint  NOT NULL DEFAULT 0,"
	"  status       integer NOT NULL,"
	"  version      bigint  NOT NULL,"
	"  created_at   bigint  NOT NULL,"
	"  updated_at   bigint  NOT NULL"
	");"
	"CREATE INDEX tickets_owner ON tickets(owner_id, id);"
	"CREATE INDEX tickets_listed ON tickets(id) WHERE status = 1;"

	"CREATE TABLE orders ("
	"  id          text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	"  ticket_id   text COLLATE \"C\" NOT NULL REFERENCES tickets(id),"
	"  buyer_id    text COLLATE \"C\" NOT NULL REFERENCES users(id),"
	"  seller_id   text COLLATE \"C\" NOT NULL,"
	"  status      integer NOT NULL,"
	"  expires_at  bigint  NOT NULL,"
	"  price_minor bigint  NOT NULL,"
	"  currency    text    NOT NULL,"
	"  version     bigint  NOT NULL,"
	"  created_at  bigint  NOT NULL,"
	"  updated_at  bigint  NOT NULL"
	");"
	/*
	 * The database's own guard: at most one live order (1 created,
	 * 2 awaiting_payment) per ticket.  postgres.c maps a violation of this
	 * index, by name, to TB_ELOCKED.
	 */
	"CREATE UNIQUE INDEX orders_one_live_per_ticket ON orders(ticket_id) WHERE status IN (1, 2);"
	"CREATE INDEX orders_due ON orders(status, expires_at, id);"
	"CREATE INDEX orders_buyer ON orders(buyer_id, id);"

	"CREATE TABLE charges ("
	"  id                 text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	"  order_id           text COLLATE \"C\" NOT NULL REFERENCES orders(id),"
	"  status             integer NOT NULL,"
	"  amount_minor       bigint  NOT NULL,"
	"  currency           text    NOT NULL,"
	"  provider           text    NOT NULL,"
	"  payment_token      text    NOT NULL,"
	"  provider_charge_id text COLLATE \"C\" NOT NULL,"
	"  provider_refund_id text    NOT NULL,"
	"  idempotency_key    text    NOT NULL,"
	"  refund_key         text    NOT NULL,"
	"  failure_code       text    NOT NULL,"
	"  decline_code       text    NOT NULL,"
	"  failure_message    text    NOT NULL,"
	"  refund_reason      text    NOT NULL,"
	"  attempts           bigint  NOT NULL,"
	"  next_attempt_at    bigint  NOT NULL,"
	"  version            bigint  NOT NULL,"
	"  created_at         bigint  NOT NULL,"
	"  updated_at         bigint  NOT NULL"
	");"
	"CREATE INDEX charges_order ON charges(order_id, created_at, id);"
	"CREATE INDEX charges_provider ON charges(provider_charge_id, created_at, id);"
	"CREATE INDEX charges_due ON charges(next_attempt_at, id) WHERE next_attempt_at > 0;"

	/*
	 * The outbox.  seq comes from event_counter, whose single row an
	 * appending transaction locks until it commits: seqs are gap-free in
	 * commit order (docs/storage-postgres.md).  json, not jsonb: the
	 * payload comes back byte for byte.
	 */
	"CREATE TABLE events ("
	"  seq               bigint  NOT NULL PRIMARY KEY,"
	"  type              integer NOT NULL,"
	"  aggregate_id      text    NOT NULL,"
	"  aggregate_version bigint  NOT NULL,"
	"  occurred_at       bigint  NOT NULL,"
	"  payload           json    NOT NULL"
	");"
	"CREATE TABLE event_counter ("
	"  id  integer NOT NULL PRIMARY KEY CHECK (id = 1),"
	"  seq bigint  NOT NULL"
	");"
	"INSERT INTO event_counter (id, seq) VALUES (1, 0);"

	"CREATE TABLE cursors ("
	"  name text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	"  seq  bigint NOT NULL"
	");"

	"CREATE TABLE seen_keys ("
	"  key text COLLATE \"C\" NOT NULL PRIMARY KEY,"
	"  at  bigint NOT NULL"
	");";

/* pg_migrations[i] moves schema_version i to i + 1. */
static const char *const pg_migrations[] = {
	pg_schema_v1,
};

#define PG_SCHEMA_VERSION ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

#endif
