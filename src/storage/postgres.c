/*
 * src/storage/postgres.c - the PostgreSQL storage adapter (see postgres.h
 * and docs/storage-postgres.md).
 *
 * Connections.  A pool of libpq connections, one per transaction in
 * progress, opened as needed up to pool_size and kept idle afterwards.  A
 * begin that finds none free waits on a condition variable (at most
 * acquire_timeout_ms, then TB_EBUSY).  A connection that broke is closed
 * when its transaction ends; begin retries once on a fresh connection when
 * an idle one turns out to be dead (e.g. after a server restart).
 *
 * Isolation.  Write transactions run at READ COMMITTED and every row they
 * read is locked FOR NO KEY UPDATE, so no other node can change it before
 * commit (storage.h), while foreign-key checks of other transactions (FOR
 * KEY SHARE) pass.  The due lists lock with SKIP LOCKED, so nodes ticking
 * at once take disjoint batches.  Read transactions are REPEATABLE READ READ
 * ONLY: one snapshot for all their statements, and they never fail to
 * serialise.  Serialization failures, deadlocks and lock timeouts are
 * TB_EBUSY: the core retries the whole operation.
 *
 * The outbox.  event_append takes seq from the single row of event_counter
 * (UPDATE ... RETURNING), which stays locked until the transaction ends:
 * appenders queue there, so seqs are gap-free and in commit order, and a
 * reader following "seq greater than the last one" never skips an event.
 *
 * Statements.  Each connection prepares a statement the first time it runs
 * it and keeps it.  Parameters go as text (bytea and json payloads as their
 * raw bytes); results come back as text and are parsed with bounds and
 * range checks.  List methods keep the whole result and call back row by
 * row, so a callback may use the same transaction.
 */
#define _POSIX_C_SOURCE 200809L

#include "ticketyboo/postgres.h"

#ifdef TB_WITH_POSTGRES

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "postgres_schema.sql.h"
#include "rows.h"

#define DEFAULT_POOL_SIZE 8u
#define MAX_POOL_SIZE 256u
#define DEFAULT_ACQUIRE_TIMEOUT_MS 30000
#define MIN_SERVER_VERSION 90500 /* ON CONFLICT, SKIP LOCKED */
/* pg_advisory_xact_lock key that serialises migrations: "tkyboo" in ASCII. */
#define MIGRATE_LOCK_KEY "128004946816879"

/* ---------------------------------------------------------------------
 * Statements: one enum, one table of SQL.
 */

enum stmt_id {
	ST_USER_INSERT, ST_USER_GET, ST_USER_GET_BY_EMAIL, ST_USER_UPDATE, ST_USER_EXISTS,
	ST_SESSION_INSERT, ST_SESSION_GET, ST_SESSION_DELETE, ST_SESSION_DELETE_FOR_USER,
	ST_TICKET_INSERT, ST_TICKET_GET, ST_TICKET_UPDATE, ST_TICKET_EXISTS,
	ST_TICKET_LIST_ALL, ST_TICKET_LIST_AVAILABLE, ST_TICKET_LIST_OWNER,
	ST_ORDER_INSERT, ST_ORDER_GET, ST_ORDER_UPDATE, ST_ORDER_EXISTS,
	ST_ORDER_LIST_BY_BUYER, ST_ORDER_LIST_DUE, ST_ORDER_MIN_EXPIRY,
	ST_CHARGE_INSERT, ST_CHARGE_GET, ST_CHARGE_UPDATE, ST_CHARGE_EXISTS,
	ST_CHARGE_LATEST_FOR_ORDER, ST_CHARGE_BY_PROVIDER_ID, ST_CHARGE_LIST_DUE,
	ST_CHARGE_MIN_NEXT_ATTEMPT,
	ST_EVENT_APPEND, ST_EVENT_READ, ST_EVENT_LAST_SEQ,
	ST_CURSOR_GET, ST_CURSOR_SET, ST_SEEN_INSERT,
	ST_COUNT
};

/* A statement runs in one of two forms: as written, or locking what it reads. */
enum form { FORM_READ, FORM_WRITE, FORM_COUNT };

struct stmt_def {
	const char *name;               /* for error messages */
	const char *sql;                /* read transactions; write ones too if sql_write is NULL */
	const char *sql_write;          /* write transactions: locks the rows it reads */
	bool writes;                    /* refused in a read transaction */
	const struct tb_rowtype *binds; /* parameters $1..$n are this row's columns */
	const struct tb_rowtype *reads; /* result columns start with this row's columns */
	int exists;                     /* updates: the statement telling "no such row" from "stale" */
};

#define LOCK " FOR NO KEY UPDATE"
#define R(name, sql, reads) { name, sql, NULL, false, NULL, reads, -1 }
#define RL(name, sql, lock, reads) { name, sql, sql lock, false, NULL, reads, -1 }
#define W(name, sql, binds) { name, sql, NULL, true, binds, NULL, -1 }
#define U(name, sql, binds, exists) { name, sql, NULL, true, binds, NULL, exists }

/* ticket_list: the title filter; strpos, not LIKE, so % and _ mean themselves. */
#define TITLE_MATCH \
	" AND ($2::text IS NULL OR strpos(lower(title), lower($2::text COLLATE \"C\")) > 0)"
#define LISTED_FREE "status = 1 AND (order_id = '' OR locked_until <= $4)"

static const struct stmt_def stmt_defs[ST_COUNT] = {
	[ST_USER_INSERT] = W("user_insert",
		"INSERT INTO users (" TB_USER_COLS ") VALUES ($1, $2, $3, $4, $5, $6)",
		&tb_storage__user_rt),
	[ST_USER_GET] = RL("user_get",
		"SELECT " TB_USER_COLS " FROM users WHERE id = $1", LOCK, &tb_storage__user_rt),
	[ST_USER_GET_BY_EMAIL] = RL("user_get_by_email",
		"SELECT " TB_USER_COLS " FROM users WHERE email = $1", LOCK, &tb_storage__user_rt),
	[ST_USER_UPDATE] = U("user_update",
		"UPDATE users SET email = $2, password_hash = $3, version = $4, updated_at = $6"
		" WHERE id = $1 AND version = $4 - 1", &tb_storage__user_rt, ST_USER_EXISTS),
	[ST_USER_EXISTS] = R("user_update", "SELECT 1 FROM users WHERE id = $1", NULL),

	[ST_SESSION_INSERT] = W("session_insert",
		"INSERT INTO sessions (" TB_SESSION_COLS ") VALUES ($1, $2, $3, $4)",
		&tb_storage__session_rt),
	[ST_SESSION_GET] = RL("session_get",
		"SELECT " TB_SESSION_COLS " FROM sessions WHERE token_hash = $1", LOCK,
		&tb_storage__session_rt),
	[ST_SESSION_DELETE] = W("session_delete",
		"DELETE FROM sessions WHERE token_hash = $1", NULL),
	[ST_SESSION_DELETE_FOR_USER] = W("session_delete_for_user",
		"DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)",
		NULL),

	[ST_TICKET_INSERT] = W("ticket_insert",
		"INSERT INTO tickets (" TB_TICKET_COLS ")"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", &tb_storage__ticket_rt),
	[ST_TICKET_GET] = RL("ticket_get",
		"SELECT " TB_TICKET_COLS " FROM tickets WHERE id = $1", LOCK, &tb_storage__ticket_rt),
	[ST_TICKET_UPDATE] = U("ticket_update",
		"UPDATE tickets SET title = $2, price_minor = $3, currency = $4, owner_id = $5,"
		" order_id = $6, locked_until = $7, status = $8, version = $9, updated_at = $11"
		" WHERE id = $1 AND version = $9 - 1", &tb_storage__ticket_rt, ST_TICKET_EXISTS),
	[ST_TICKET_EXISTS] = R("ticket_update", "SELECT 1 FROM tickets WHERE id = $1", NULL),
	/*
	 * Three shapes, so each walks an index in id order: the primary key,
	 * the partial index of listed tickets, or (owner_id, id).  Parameters:
	 * $1 after, $2 title, $3 limit, $4 now, $5 owner, $6 available_only;
	 * a shape takes the first 3, 4 or 6.
	 */
	[ST_TICKET_LIST_ALL] = RL("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets WHERE id > $1" TITLE_MATCH
		" ORDER BY id LIMIT $3", LOCK, &tb_storage__ticket_rt),
	[ST_TICKET_LIST_AVAILABLE] = RL("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets WHERE " LISTED_FREE " AND id > $1" TITLE_MATCH
		" ORDER BY id LIMIT $3", LOCK, &tb_storage__ticket_rt),
	[ST_TICKET_LIST_OWNER] = RL("ticket_list",
		"SELECT " TB_TICKET_COLS " FROM tickets WHERE owner_id = $5 AND id > $1"
		" AND ($6 = 0 OR (" LISTED_FREE "))" TITLE_MATCH
		" ORDER BY id LIMIT $3", LOCK, &tb_storage__ticket_rt),

	[ST_ORDER_INSERT] = W("order_insert",
		"INSERT INTO orders (" TB_ORDER_COLS ")"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", &tb_storage__order_rt),
	[ST_ORDER_GET] = RL("order_get",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE id = $1", LOCK, &tb_storage__order_rt),
	[ST_ORDER_UPDATE] = U("order_update",
		"UPDATE orders SET ticket_id = $2, buyer_id = $3, seller_id = $4, status = $5,"
		" expires_at = $6, price_minor = $7, currency = $8, version = $9, updated_at = $11"
		" WHERE id = $1 AND version = $9 - 1", &tb_storage__order_rt, ST_ORDER_EXISTS),
	[ST_ORDER_EXISTS] = R("order_update", "SELECT 1 FROM orders WHERE id = $1", NULL),
	[ST_ORDER_LIST_BY_BUYER] = RL("order_list_by_buyer",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE buyer_id = $1 AND id > $2"
		" ORDER BY id LIMIT $3", LOCK, &tb_storage__order_rt),
	/*
	 * In a write transaction (the tick) the due orders are locked together
	 * with their tickets, skipping any row another transaction holds: nodes
	 * ticking at once take disjoint batches, and the tick never waits for a
	 * ticket lock while it holds the outbox counter.
	 */
	[ST_ORDER_LIST_DUE] = { "order_list_due",
		"SELECT " TB_ORDER_COLS " FROM orders WHERE status = $1 AND expires_at <= $2"
		" ORDER BY expires_at, id LIMIT $3",
		"SELECT o.id, o.ticket_id, o.buyer_id, o.seller_id, o.status, o.expires_at,"
		" o.price_minor, o.currency, o.version, o.created_at, o.updated_at"
		" FROM orders o JOIN tickets t ON t.id = o.ticket_id"
		" WHERE o.status = $1 AND o.expires_at <= $2 ORDER BY o.expires_at, o.id LIMIT $3"
		" FOR NO KEY UPDATE OF o, t SKIP LOCKED",
		false, NULL, &tb_storage__order_rt, -1 },
	[ST_ORDER_MIN_EXPIRY] = R("order_min_expiry",
		"SELECT expires_at FROM orders WHERE status = $1 ORDER BY expires_at LIMIT 1", NULL),

	[ST_CHARGE_INSERT] = W("charge_insert",
		"INSERT INTO charges (" TB_CHARGE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
		" $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)", &tb_storage__charge_rt),
	[ST_CHARGE_GET] = RL("charge_get",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE id = $1", LOCK, &tb_storage__charge_rt),
	[ST_CHARGE_UPDATE] = U("charge_update",
		"UPDATE charges SET order_id = $2, status = $3, amount_minor = $4, currency = $5,"
		" provider = $6, payment_token = $7, provider_charge_id = $8,"
		" provider_refund_id = $9, idempotency_key = $10, refund_key = $11,"
		" failure_code = $12, decline_code = $13, failure_message = $14,"
		" refund_reason = $15, attempts = $16, next_attempt_at = $17, version = $18,"
		" updated_at = $20 WHERE id = $1 AND version = $18 - 1", &tb_storage__charge_rt,
		ST_CHARGE_EXISTS),
	[ST_CHARGE_EXISTS] = R("charge_update", "SELECT 1 FROM charges WHERE id = $1", NULL),
	[ST_CHARGE_LATEST_FOR_ORDER] = RL("charge_get_latest_for_order",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE order_id = $1"
		" ORDER BY created_at DESC, id DESC LIMIT 1", LOCK, &tb_storage__charge_rt),
	[ST_CHARGE_BY_PROVIDER_ID] = RL("charge_get_by_provider_id",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE provider_charge_id = $1"
		" ORDER BY created_at DESC, id DESC LIMIT 1", LOCK, &tb_storage__charge_rt),
	[ST_CHARGE_LIST_DUE] = RL("charge_list_due",
		"SELECT " TB_CHARGE_COLS " FROM charges WHERE next_attempt_at > 0"
		" AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
		LOCK " SKIP LOCKED", &tb_storage__charge_rt),
	[ST_CHARGE_MIN_NEXT_ATTEMPT] = R("charge_min_next_attempt",
		"SELECT next_attempt_at FROM charges WHERE next_attempt_at > 0"
		" ORDER BY next_attempt_at LIMIT 1", NULL),

	/* The counter row stays locked until commit: seqs follow commit order. */
	[ST_EVENT_APPEND] = W("event_append",
		"WITH c AS (UPDATE event_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq)"
		" INSERT INTO events (seq, type, aggregate_id, aggregate_version, occurred_at, payload)"
		" SELECT c.seq, $1::integer, $2::text, $3::bigint, $4::bigint, $5::json FROM c"
		" RETURNING seq", NULL),
	[ST_EVENT_READ] = R("event_read",
		"SELECT " TB_EVENT_COLS " FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
		&tb_storage__event_rt),
	[ST_EVENT_LAST_SEQ] = R("event_last_seq", "SELECT coalesce(max(seq), 0) FROM events", NULL),

	[ST_CURSOR_GET] = RL("cursor_get", "SELECT seq FROM cursors WHERE name = $1", LOCK, NULL),
	[ST_CURSOR_SET] = W("cursor_set",
		"INSERT INTO cursors (name, seq) VALUES ($1, $2)"
		" ON CONFLICT (name) DO UPDATE SET seq = excluded.seq", NULL),
	[ST_SEEN_INSERT] = W("seen_insert",
		"INSERT INTO seen_keys (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", NULL),
};

/* ---------------------------------------------------------------------
 * The adapter, its connections and transactions.
 */

struct pg;
struct conn;

/* One per connection: a connection carries at most one transaction. */
struct tb_storage_txn {
	struct pg *pg;
	struct conn *conn;
	bool write;
	bool failed; /* a statement failed: PostgreSQL has aborted the transaction */
};

struct conn {
	PGconn *pg;
	bool prepared[ST_COUNT][FORM_COUNT];
	tb_storage_txn txn;
};

struct pg {
	tb_storage base; /* first: a tb_storage * is a struct pg * */
	char *conninfo;
	unsigned int pool_size;
	int statement_timeout_ms;
	int lock_timeout_ms;
	int acquire_timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;   /* a connection came back, or a slot opened */
	bool sync_ready;
	struct conn **idle;  /* pool_size slots, nidle of them in use */
	unsigned int nidle;
	unsigned int nopen;  /* connections open or being opened, at most pool_size */
};

/* ---------------------------------------------------------------------
 * Errors.
 */

static tb_status invalid(const char *what)
{
	return tb_error_set(TB_EINVAL, NULL, "postgres storage: %s", what);
}

/* libpq's own message without its trailing newline. */
static const char *conn_message(PGconn *c, char *buf, size_t size)
{
	const char *msg = c ? PQerrorMessage(c) : "out of memory";
	size_t n;

	snprintf(buf, size, "%s", msg && *msg ? msg : "unknown error");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* Unique violations by index or constraint name; any other one is TB_EEXISTS. */
static const struct {
	const char *constraint;
	tb_status status;
	const char *message;
} unique_map[] = {
	{ "orders_one_live_per_ticket", TB_ELOCKED, "the ticket already has a live order" },
	{ "users_email_key", TB_EEXISTS, "the email is already in use" },
};

static bool state_is(const char *state, const char *want)
{
	return state && strcmp(state, want) == 0;
}

/*
 * Map a failed statement.  Only the primary message is reported: the
 * detail of a constraint violation quotes the row's values.
 */
static tb_status fail(PGconn *c, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char buf[256];

	if (!msg)
		msg = conn_message(c, buf, sizeof buf);
	if (PQstatus(c) == CONNECTION_BAD || (state && strncmp(state, "08", 2) == 0) ||
	    state_is(state, "57P01") || state_is(state, "57P02") || state_is(state, "57P03"))
		return tb_error_set(TB_EBUSY, NULL, "postgres %s: connection lost: %s", what, msg);
	if (state_is(state, "23505")) {
		const char *name = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

		for (size_t i = 0; name && i < sizeof unique_map / sizeof unique_map[0]; i++)
			if (strcmp(name, unique_map[i].constraint) == 0)
				return tb_error_set(unique_map[i].status, NULL, "postgres %s: %s (%s)", what,
					unique_map[i].message, msg);
		return tb_error_set(TB_EEXISTS, NULL, "postgres %s: already exists (%s)", what, msg);
	}
	/* serialization_failure, deadlock_detected, lock_not_available: retry it all. */
	if (state_is(state, "40001") || state_is(state, "40P01") || state_is(state, "55P03"))
		return tb_error_set(TB_EBUSY, NULL, "postgres %s: busy: %s", what, msg);
	return tb_error_set(TB_ESTORAGE, NULL, "postgres %s: %s (SQLSTATE %s)", what, msg,
		state ? state : "none");
}

/* Run SQL that returns no rows to keep (BEGIN, SET, DDL). */
static tb_status exec_sql(PGconn *c, const char *sql, const char *what)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType rs = PQresultStatus(res);
	tb_status st = TB_OK;

	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
		st = fail(c, res, what);
	PQclear(res);
	return st;
}

/* ---------------------------------------------------------------------
 * Parameters and results.
 */

#define MAX_PARAMS 24

struct params {
	int n;
	const char *values[MAX_PARAMS];
	int lengths[MAX_PARAMS];
	int formats[MAX_PARAMS];        /* 0 text, 1 the type's binary form */
	char num[MAX_PARAMS][24];       /* integers as text */
};

static void param_text(struct params *p, const char *text)
{
	p->values[p->n] = text; /* NULL is SQL NULL */
	p->lengths[p->n] = 0;
	p->formats[p->n] = 0;
	p->n++;
}

static void param_i64(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
	param_text(p, p->num[p->n]);
}

/* Raw bytes: a bytea's binary form, or a json text that need not end in NUL. */
static void param_bytes(struct params *p, const void *data, size_t len)
{
	p->values[p->n] = data;
	p->lengths[p->n] = (int)len;
	p->formats[p->n] = 1;
	p->n++;
}

/* Every column of `row` as $1..$n.  Text fields must be NUL-terminated in their buffer. */
static tb_status params_row(struct params *p, const struct tb_rowtype *rt, const void *row,
	const char *what)
{
	const unsigned char *base = row;

	if (rt->ncols > MAX_PARAMS)
		return tb_error_set(TB_EINTERNAL, NULL, "postgres %s: too many columns", what);
	for (size_t i = 0; i < rt->ncols; i++) {
		const struct tb_col *c = &rt->cols[i];
		const void *field = base + c->off;

		switch (c->kind) {
		case TB_COL_TEXT:
			if (strnlen(field, c->size) == c->size)
				return tb_error_set(TB_EINVAL, c->name,
					"postgres %s: %s.%s is not NUL-terminated", what, rt->table, c->name);
			param_text(p, field);
			break;
		case TB_COL_I64: {
			int64_t v;

			memcpy(&v, field, sizeof v);
			param_i64(p, v);
			break;
		}
		case TB_COL_INT: {
			int v;

			memcpy(&v, field, sizeof v);
			param_i64(p, v);
			break;
		}
		case TB_COL_BLOB:
			param_bytes(p, field, c->size);
			break;
		}
	}
	return TB_OK;
}

/* The declared parameter types of a statement bound from a row (all of them, used or not). */
static void param_types(const struct tb_rowtype *rt, Oid *types)
{
	/* Built-in type OIDs, fixed since PostgreSQL 7: int8, int4, text, bytea. */
	for (size_t i = 0; i < rt->ncols; i++) {
		switch (rt->cols[i].kind) {
		case TB_COL_I64: types[i] = 20; break;
		case TB_COL_INT: types[i] = 23; break;
		case TB_COL_TEXT: types[i] = 25; break;
		case TB_COL_BLOB: types[i] = 17; break;
		}
	}
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A bytea in hex output ("\x" then two digits a byte) of exactly `size` bytes. */
static bool parse_bytea(const char *s, size_t len, unsigned char *out, size_t size)
{
	if (len != 2 + 2 * size || s[0] != '\\' || s[1] != 'x')
		return false;
	for (size_t i = 0; i < size; i++) {
		int hi = hex_digit(s[2 + 2 * i]), lo = hex_digit(s[3 + 2 * i]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi * 16 + lo);
	}
	return true;
}

/* The result's columns must start with the row's, in order, by name. */
static tb_status check_columns(const PGresult *res, const struct tb_rowtype *rt, const char *what)
{
	if ((size_t)PQnfields(res) < rt->ncols)
		return tb_error_set(TB_EINTERNAL, NULL, "postgres %s: too few columns", what);
	for (size_t i = 0; i < rt->ncols; i++) {
		const char *name = PQfname(res, (int)i);

		if (!name || strcmp(name, rt->cols[i].name) != 0)
			return tb_error_set(TB_EINTERNAL, NULL, "postgres %s: column %zu is %s, expected %s",
				what, i, name ? name : "?", rt->cols[i].name);
	}
	return TB_OK;
}

static tb_status bad_value(const struct tb_rowtype *rt, const struct tb_col *c, const char *why)
{
	return tb_error_set(TB_ESTORAGE, NULL, "postgres: %s.%s %s", rt->table, c->name, why);
}

static tb_status read_row(const PGresult *res, int r, const struct tb_rowtype *rt, void *row)
{
	unsigned char *base = row;

	for (size_t i = 0; i < rt->ncols; i++) {
		const struct tb_col *c = &rt->cols[i];
		unsigned char *field = base + c->off;
		int ci = (int)i;
		const char *v = PQgetvalue(res, r, ci);
		size_t n = (size_t)PQgetlength(res, r, ci);
		int64_t x;

		if (PQgetisnull(res, r, ci))
			return bad_value(rt, c, "is NULL");
		switch (c->kind) {
		case TB_COL_TEXT:
			if (n >= c->size)
				return bad_value(rt, c, "is too long for its buffer");
			memcpy(field, v, n);
			field[n] = '\0';
			break;
		case TB_COL_I64:
			if (!parse_i64(v, &x))
				return bad_value(rt, c, "is not a 64-bit integer");
			memcpy(field, &x, sizeof x);
			break;
		case TB_COL_INT: {
			int iv;

			if (!parse_i64(v, &x) || x < INT_MIN || x > INT_MAX)
				return bad_value(rt, c, "is not an int");
			iv = (int)x;
			memcpy(field, &iv, sizeof iv);
			break;
		}
		case TB_COL_BLOB:
			if (!parse_bytea(v, n, field, c->size))
				return bad_value(rt, c, "is not a bytea of the expected size");
			break;
		}
	}
	return TB_OK;
}

/* ---------------------------------------------------------------------
 * Running statements.
 */

static tb_status stmt_prepare(struct conn *c, enum stmt_id id, enum form form, const char *name)
{
	const struct stmt_def *def = &stmt_defs[id];
	const char *sql = form == FORM_WRITE && def->sql_write ? def->sql_write : def->sql;
	Oid types[MAX_PARAMS];
	int ntypes = 0;
	PGresult *res;
	tb_status st = TB_OK;

	if (!sql)
		return tb_error_set(TB_EINTERNAL, NULL, "postgres: statement %d has no SQL", (int)id);
	if (def->binds) {
		if (def->binds->ncols > MAX_PARAMS)
			return tb_error_set(TB_EINTERNAL, NULL, "postgres %s: too many columns", def->name);
		param_types(def->binds, types);
		ntypes = (int)def->binds->ncols;
	}
	res = PQprepare(c->pg, name, sql, ntypes, ntypes ? types : NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		st = fail(c->pg, res, def->name);
	PQclear(res);
	if (st == TB_OK)
		c->prepared[id][form] = true;
	return st;
}

/*
 * Run statement `id` with `p` in the transaction; on TB_OK the caller owns
 * *out and PQclear()s it.  Any failure leaves the transaction aborted.
 */
static tb_status run(tb_storage_txn *txn, enum stmt_id id, const struct params *p, PGresult **out)
{
	const struct stmt_def *def = &stmt_defs[id];
	struct conn *c = txn->conn;
	enum form form = txn->write && def->sql_write ? FORM_WRITE : FORM_READ;
	char name[32];
	PGresult *res;
	ExecStatusType rs;
	tb_status st;

	*out = NULL;
	if (def->writes && !txn->write)
		return tb_error_set(TB_ESTORAGE, NULL, "postgres %s: write in a read-only transaction",
			def->name);
	if (txn->failed)
		return tb_error_set(TB_ESTORAGE, NULL, "postgres %s: an earlier statement failed; "
			"roll the transaction back", def->name);
	snprintf(name, sizeof name, "tb_%d_%d", (int)id, (int)form);
	if (!c->prepared[id][form] && (st = stmt_prepare(c, id, form, name)) != TB_OK) {
		txn->failed = true;
		return st;
	}
	res = PQexecPrepared(c->pg, name, p->n, p->values, p->lengths, p->formats, 0);
	rs = PQresultStatus(res);
	if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK) {
		*out = res;
		return TB_OK;
	}
	st = fail(c->pg, res, def->name);
	PQclear(res);
	txn->failed = true;
	return st;
}

/* Rows changed by an INSERT, UPDATE or DELETE. */
static long changes(PGresult *res)
{
	const char *n = PQcmdTuples(res);

	return n && *n ? strtol(n, NULL, 10) : 0;
}

static tb_status run_write(tb_storage_txn *txn, enum stmt_id id, const struct params *p,
	long *changed)
{
	PGresult *res;
	tb_status st = run(txn, id, p, &res);

	if (changed)
		*changed = st == TB_OK ? changes(res) : 0;
	PQclear(res);
	return st;
}

/* Run a statement yielding at most one row of its row type. */
static tb_status fetch_one(tb_storage_txn *txn, enum stmt_id id, const struct params *p, void *out)
{
	const struct stmt_def *def = &stmt_defs[id];
	PGresult *res;
	tb_status st = run(txn, id, p, &res);

	if (st != TB_OK)
		return st;
	if (PQntuples(res) == 0)
		st = tb_error_set(TB_ENOTFOUND, NULL, "postgres %s: no such row in %s", def->name,
			def->reads->table);
	else if ((st = check_columns(res, def->reads, def->name)) == TB_OK)
		st = read_row(res, 0, def->reads, out);
	PQclear(res);
	return st;
}

/* Run a statement yielding one integer; `if_none` when it yields no row or NULL. */
static tb_status fetch_i64(tb_storage_txn *txn, enum stmt_id id, const struct params *p,
	int64_t if_none, int64_t *out)
{
	PGresult *res;
	tb_status st = run(txn, id, p, &res);

	if (st != TB_OK)
		return st;
	*out = if_none;
	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0) &&
	    !parse_i64(PQgetvalue(res, 0, 0), out))
		st = tb_error_set(TB_ESTORAGE, NULL, "postgres %s: not an integer", stmt_defs[id].name);
	PQclear(res);
	return st;
}

/* Any row type, for reading list results on the stack. */
union any_row {
	tb_user_row user;
	tb_session_row session;
	tb_ticket_row ticket;
	tb_order_row order;
	tb_charge_row charge;
};

/*
 * Run a list statement and hand its rows to the sink until it returns
 * non-OK (which is returned).  The result is complete before the first
 * callback, so a callback may use the same transaction.
 */
static tb_status fetch_list(tb_storage_txn *txn, enum stmt_id id, const struct params *p,
	const struct tb_sink *k)
{
	const struct stmt_def *def = &stmt_defs[id];
	union any_row row;
	PGresult *res;
	tb_status st = run(txn, id, p, &res);

	if (st != TB_OK)
		return st;
	if (def->reads->size > sizeof row)
		st = tb_error_set(TB_EINTERNAL, NULL, "postgres %s: row too large", def->name);
	if (st == TB_OK)
		st = check_columns(res, def->reads, def->name);
	for (int r = 0; r < PQntuples(res) && st == TB_OK; r++) {
		memset(&row, 0, sizeof row);
		st = read_row(res, r, def->reads, &row);
		if (st == TB_OK)
			st = k->emit(k, &row);
	}
	PQclear(res);
	return st;
}

/* ---------------------------------------------------------------------
 * Generic operations on rows.
 */

static tb_status row_insert(tb_storage_txn *txn, enum stmt_id id, const void *row)
{
	struct params p;
	tb_status st;

	if (!txn || !row)
		return invalid("NULL transaction or row");
	p.n = 0;
	st = params_row(&p, stmt_defs[id].binds, row, stmt_defs[id].name);
	return st == TB_OK ? run_write(txn, id, &p, NULL) : st;
}

static tb_status row_get(tb_storage_txn *txn, enum stmt_id id, const char *key, void *out)
{
	struct params p;

	if (!txn || !key || !out)
		return invalid("NULL transaction, key or row");
	p.n = 0;
	param_text(&p, key);
	return fetch_one(txn, id, &p, out);
}

/*
 * Version-checked update: writes only where the stored version is
 * row->version - 1.  The key is the row's first column (its id).
 */
static tb_status row_update(tb_storage_txn *txn, enum stmt_id id, const void *row)
{
	const struct stmt_def *def = &stmt_defs[id];
	struct params p;
	long changed = 0;
	int64_t found = 0;
	tb_status st;

	if (!txn || !row)
		return invalid("NULL transaction or row");
	p.n = 0;
	st = params_row(&p, def->binds, row, def->name);
	if (st == TB_OK)
		st = run_write(txn, id, &p, &changed);
	if (st != TB_OK || changed > 0)
		return st;
	p.n = 0;
	param_text(&p, (const char *)row + def->binds->cols[0].off);
	st = fetch_i64(txn, (enum stmt_id)def->exists, &p, 0, &found);
	if (st != TB_OK)
		return st;
	if (!found)
		return tb_error_set(TB_ENOTFOUND, NULL, "postgres %s: no such row in %s", def->name,
			def->binds->table);
	return tb_error_set(TB_ECONFLICT, NULL, "postgres %s: stale version of the row in %s",
		def->name, def->binds->table);
}

/* ---------------------------------------------------------------------
 * The pool.
 */

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

static tb_status conn_open(struct pg *pg, struct conn **out)
{
	/* Later keywords win over what the expanded conninfo says: always UTF8. */
	static const char *const keys[] = {
		"fallback_application_name", "dbname", "client_encoding", NULL
	};
	const char *const values[] = { "ticketyboo", pg->conninfo, "UTF8", NULL };
	struct conn *c = calloc(1, sizeof *c);
	char buf[256], sql[160];
	tb_status st = TB_OK;

	*out = NULL;
	if (!c)
		return tb_error_set(TB_ENOMEM, NULL, "postgres: out of memory");
	c->txn.pg = pg;
	c->txn.conn = c;
	c->pg = PQconnectdbParams(keys, values, 1);
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
		st = tb_error_set(c->pg ? TB_ESTORAGE : TB_ENOMEM, NULL, "postgres: cannot connect: %s",
			conn_message(c->pg, buf, sizeof buf));
	else if (PQserverVersion(c->pg) < MIN_SERVER_VERSION)
		st = tb_error_set(TB_ESTORAGE, NULL, "postgres: server version %d is older than 9.5",
			PQserverVersion(c->pg));
	if (st == TB_OK) {
		size_t n;

		PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
		/* One round trip; bytea comes back in hex, which read_row parses. */
		n = (size_t)snprintf(sql, sizeof sql, "SET bytea_output = 'hex'");
		if (pg->statement_timeout_ms > 0)
			n += (size_t)snprintf(sql + n, sizeof sql - n, "; SET statement_timeout = %d",
				pg->statement_timeout_ms);
		if (pg->lock_timeout_ms > 0)
			snprintf(sql + n, sizeof sql - n, "; SET lock_timeout = %d", pg->lock_timeout_ms);
		st = exec_sql(c->pg, sql, "connect");
	}
	if (st != TB_OK) {
		conn_close(c);
		return st;
	}
	*out = c;
	return TB_OK;
}

/* The deadline `ms` from now on the monotonic clock the condition waits on. */
static struct timespec deadline_in(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* An idle connection, or a new one while the pool has room; else wait for one. */
static tb_status acquire(struct pg *pg, struct conn **out)
{
	struct timespec until = deadline_in(pg->acquire_timeout_ms);
	tb_status st;

	*out = NULL;
	pthread_mutex_lock(&pg->mu);
	while (pg->nidle == 0 && pg->nopen >= pg->pool_size) {
		if (pthread_cond_timedwait(&pg->cv, &pg->mu, &until) == ETIMEDOUT &&
		    pg->nidle == 0 && pg->nopen >= pg->pool_size) {
			pthread_mutex_unlock(&pg->mu);
			return tb_error_set(TB_EBUSY, NULL, "postgres begin: all %u connections stayed "
				"busy for %d ms", pg->pool_size, pg->acquire_timeout_ms);
		}
	}
	if (pg->nidle > 0) {
		*out = pg->idle[--pg->nidle];
		pthread_mutex_unlock(&pg->mu);
		return TB_OK;
	}
	pg->nopen++;
	pthread_mutex_unlock(&pg->mu);
	st = conn_open(pg, out);
	if (st != TB_OK) {
		pthread_mutex_lock(&pg->mu);
		pg->nopen--;
		pthread_mutex_unlock(&pg->mu);
		pthread_cond_signal(&pg->cv);
	}
	return st;
}

/* Back to the pool, or closed when it broke or is still inside a transaction. */
static void release(struct conn *c)
{
	struct pg *pg = c->txn.pg;
	bool keep = PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;

	if (!keep)
		conn_close(c);
	pthread_mutex_lock(&pg->mu);
	if (keep)
		pg->idle[pg->nidle++] = c;
	else
		pg->nopen--;
	pthread_mutex_unlock(&pg->mu);
	pthread_cond_signal(&pg->cv);
}

/* Close every idle connection (after one was found dead: the rest likely are too). */
static void drop_idle(struct pg *pg)
{
	struct conn *dead[MAX_POOL_SIZE];
	unsigned int n;

	pthread_mutex_lock(&pg->mu);
	n = pg->nidle;
	memcpy(dead, pg->idle, n * sizeof dead[0]);
	pg->nidle = 0;
	pg->nopen -= n;
	pthread_mutex_unlock(&pg->mu);
	for (unsigned int i = 0; i < n; i++)
		conn_close(dead[i]);
	pthread_cond_broadcast(&pg->cv);
}

/* ---------------------------------------------------------------------
 * Transactions.
 */

static tb_status begin(tb_storage *self, int write, tb_storage_txn **out)
{
	struct pg *pg = (struct pg *)self;
	const char *sql = write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
		: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

	if (out)
		*out = NULL;
	if (!self || !out)
		return invalid("begin: NULL storage or out");
	for (int attempt = 0;; attempt++) {
		struct conn *c;
		tb_status st = acquire(pg, &c);

		if (st != TB_OK)
			return st;
		st = exec_sql(c->pg, sql, "begin");
		if (st == TB_OK) {
			c->txn.write = write != 0;
			c->txn.failed = false;
			*out = &c->txn;
			return TB_OK;
		}
		/* An idle connection may have died (server restart): once more on a new one. */
		if (PQstatus(c->pg) == CONNECTION_OK || attempt > 0) {
			release(c);
			return st;
		}
		release(c);
		drop_idle(pg);
	}
}

/* End whatever transaction the connection is in, quietly. */
static void abort_txn(struct conn *c)
{
	PGTransactionStatusType ts = PQtransactionStatus(c->pg);

	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(c->pg, "ROLLBACK"));
}

static tb_status commit(tb_storage_txn *txn)
{
	struct conn *c;
	PGresult *res;
	tb_status st = TB_OK;

	if (!txn)
		return invalid("commit: NULL transaction");
	c = txn->conn;
	if (txn->failed) {
		abort_txn(c);
		release(c);
		return tb_error_set(TB_ESTORAGE, NULL, "postgres commit: an earlier statement failed; "
			"the transaction was rolled back");
	}
	res = PQexec(c->pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		st = fail(c->pg, res, "commit");
		/*
		 * Lost while committing a write: it may or may not have happened, so
		 * never retry blindly.  A read transaction may simply be run again.
		 */
		if (PQstatus(c->pg) == CONNECTION_BAD && txn->write)
			st = tb_error_set(TB_ESTORAGE, NULL, "postgres commit: connection lost; the "
				"transaction may or may not have committed");
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		st = tb_error_set(TB_ESTORAGE, NULL, "postgres commit: the server rolled the "
			"transaction back");
	}
	PQclear(res);
	abort_txn(c);
	release(c);
	return st;
}

static void rollback(tb_storage_txn *txn)
{
	if (!txn)
		return;
	abort_txn(txn->conn);
	release(txn->conn);
}

/* ---------------------------------------------------------------------
 * Users and sessions.
 */

static tb_status user_insert(tb_storage_txn *txn, const tb_user_row *row)
{
	return row_insert(txn, ST_USER_INSERT, row);
}

static tb_status user_get(tb_storage_txn *txn, const char *id, tb_user_row *out)
{
	return row_get(txn, ST_USER_GET, id, out);
}

static tb_status user_get_by_email(tb_storage_txn *txn, const char *email, tb_user_row *out)
{
	return row_get(txn, ST_USER_GET_BY_EMAIL, email, out);
}

static tb_status user_update(tb_storage_txn *txn, const tb_user_row *row)
{
	return row_update(txn, ST_USER_UPDATE, row);
}

static tb_status session_insert(tb_storage_txn *txn, const tb_session_row *row)
{
	return row_insert(txn, ST_SESSION_INSERT, row);
}

static tb_status session_get(tb_storage_txn *txn, const unsigned char *token_hash,
	tb_session_row *out)
{
	struct params p;

	if (!txn || !token_hash || !out)
		return invalid("session_get: NULL transaction, hash or row");
	p.n = 0;
	param_bytes(&p, token_hash, TB_TOKEN_HASH_SIZE);
	return fetch_one(txn, ST_SESSION_GET, &p, out);
}

static tb_status session_delete(tb_storage_txn *txn, const unsigned char *token_hash)
{
	struct params p;

	if (!txn || !token_hash)
		return invalid("session_delete: NULL transaction or hash");
	p.n = 0;
	param_bytes(&p, token_hash, TB_TOKEN_HASH_SIZE);
	return run_write(txn, ST_SESSION_DELETE, &p, NULL);
}

static tb_status session_delete_for_user(tb_storage_txn *txn, const char *user_id,
	const unsigned char *keep_hash)
{
	struct params p;

	if (!txn || !user_id)
		return invalid("session_delete_for_user: NULL transaction or user id");
	p.n = 0;
	param_text(&p, user_id);
	if (keep_hash)
		param_bytes(&p, keep_hash, TB_TOKEN_HASH_SIZE);
	else
		param_text(&p, NULL);
	return run_write(txn, ST_SESSION_DELETE_FOR_USER, &p, NULL);
}

/* ---------------------------------------------------------------------
 * Tickets.
 */

static tb_status ticket_insert(tb_storage_txn *txn, const tb_ticket_row *row)
{
	return row_insert(txn, ST_TICKET_INSERT, row);
}

static tb_status ticket_get(tb_storage_txn *txn, const char *id, tb_ticket_row *out)
{
	return row_get(txn, ST_TICKET_GET, id, out);
}

static tb_status ticket_update(tb_storage_txn *txn, const tb_ticket_row *row)
{
	return row_update(txn, ST_TICKET_UPDATE, row);
}

static tb_status ticket_list(tb_storage_txn *txn, const tb_ticket_filter *filter,
	tb_ticket_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__ticket_sink(cb, payload);
	enum stmt_id id;
	struct params p;

	if (!txn || !filter || !cb)
		return invalid("ticket_list: NULL transaction, filter or callback");
	p.n = 0;
	param_text(&p, filter->after_id ? filter->after_id : "");
	param_text(&p, filter->title_contains);
	param_i64(&p, filter->limit);
	if (filter->owner_id) {
		id = ST_TICKET_LIST_OWNER;
		param_i64(&p, filter->now_ms);
		param_text(&p, filter->owner_id);
		param_i64(&p, filter->available_only != 0);
	} else if (filter->available_only) {
		id = ST_TICKET_LIST_AVAILABLE;
		param_i64(&p, filter->now_ms);
	} else {
		id = ST_TICKET_LIST_ALL;
	}
	return fetch_list(txn, id, &p, &k);
}

/* ---------------------------------------------------------------------
 * Orders.
 */

static tb_status order_insert(tb_storage_txn *txn, const tb_order_row *row)
{
	return row_insert(txn, ST_ORDER_INSERT, row);
}

static tb_status order_get(tb_storage_txn *txn, const char *id, tb_order_row *out)
{
	return row_get(txn, ST_ORDER_GET, id, out);
}

static tb_status order_update(tb_storage_txn *txn, const tb_order_row *row)
{
	return row_update(txn, ST_ORDER_UPDATE, row);
}

static tb_status order_list_by_buyer(tb_storage_txn *txn, const char *buyer_id,
	const char *after_id, unsigned int limit, tb_order_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__order_sink(cb, payload);
	struct params p;

	if (!txn || !buyer_id || !cb)
		return invalid("order_list_by_buyer: NULL transaction, buyer or callback");
	p.n = 0;
	param_text(&p, buyer_id);
	param_text(&p, after_id ? after_id : "");
	param_i64(&p, limit);
	return fetch_list(txn, ST_ORDER_LIST_BY_BUYER, &p, &k);
}

/* Integer parameters $1..$nargs (p holds their text: never copy it). */
static void int_params(struct params *p, const int64_t *args, int nargs)
{
	p->n = 0;
	for (int i = 0; i < nargs && i < MAX_PARAMS; i++)
		param_i64(p, args[i]);
}

static tb_status order_list_due(tb_storage_txn *txn, int status, int64_t cutoff_ms,
	unsigned int limit, tb_order_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__order_sink(cb, payload);
	const int64_t args[] = { status, cutoff_ms, limit };
	struct params p;

	if (!txn || !cb)
		return invalid("order_list_due: NULL transaction or callback");
	int_params(&p, args, 3);
	return fetch_list(txn, ST_ORDER_LIST_DUE, &p, &k);
}

static tb_status order_min_expiry(tb_storage_txn *txn, int status, int64_t *out)
{
	const int64_t arg = status;
	struct params p;

	if (!txn || !out)
		return invalid("order_min_expiry: NULL transaction or out");
	int_params(&p, &arg, 1);
	return fetch_i64(txn, ST_ORDER_MIN_EXPIRY, &p, TB_NO_DEADLINE, out);
}

/* ---------------------------------------------------------------------
 * Charges.
 */

static tb_status charge_insert(tb_storage_txn *txn, const tb_charge_row *row)
{
	return row_insert(txn, ST_CHARGE_INSERT, row);
}

static tb_status charge_get(tb_storage_txn *txn, const char *id, tb_charge_row *out)
{
	return row_get(txn, ST_CHARGE_GET, id, out);
}

static tb_status charge_update(tb_storage_txn *txn, const tb_charge_row *row)
{
	return row_update(txn, ST_CHARGE_UPDATE, row);
}

static tb_status charge_get_latest_for_order(tb_storage_txn *txn, const char *order_id,
	tb_charge_row *out)
{
	return row_get(txn, ST_CHARGE_LATEST_FOR_ORDER, order_id, out);
}

static tb_status charge_get_by_provider_id(tb_storage_txn *txn, const char *provider_charge_id,
	tb_charge_row *out)
{
	/* "" means "none" in a row: it never names a charge. */
	if (provider_charge_id && !provider_charge_id[0])
		return tb_error_set(TB_ENOTFOUND, NULL, "postgres charge_get_by_provider_id: empty id");
	return row_get(txn, ST_CHARGE_BY_PROVIDER_ID, provider_charge_id, out);
}

static tb_status charge_list_due(tb_storage_txn *txn, int64_t now_ms, unsigned int limit,
	tb_charge_row_cb cb, void *payload)
{
	struct tb_sink k = tb_storage__charge_sink(cb, payload);
	const int64_t args[] = { now_ms, limit };
	struct params p;

	if (!txn || !cb)
		return invalid("charge_list_due: NULL transaction or callback");
	int_params(&p, args, 2);
	return fetch_list(txn, ST_CHARGE_LIST_DUE, &p, &k);
}

static tb_status charge_min_next_attempt(tb_storage_txn *txn, int64_t *out)
{
	struct params p;

	if (!txn || !out)
		return invalid("charge_min_next_attempt: NULL transaction or out");
	int_params(&p, NULL, 0);
	return fetch_i64(txn, ST_CHARGE_MIN_NEXT_ATTEMPT, &p, TB_NO_DEADLINE, out);
}

/* ---------------------------------------------------------------------
 * Events, cursors, seen keys.
 */

static tb_status event_append(tb_storage_txn *txn, tb_event_row *row)
{
	struct params p;
	PGresult *res;
	tb_status st;

	if (!txn || !row || (!row->payload && row->payload_len))
		return invalid("event_append: NULL transaction, row or payload");
	if (row->payload_len > INT_MAX || strnlen(row->aggregate_id, TB_ID_SIZE) == TB_ID_SIZE)
		return tb_error_set(TB_EINVAL, NULL, "postgres event_append: payload or id too long");
	p.n = 0;
	param_i64(&p, row->type);
	param_text(&p, row->aggregate_id);
	param_i64(&p, row->aggregate_version);
	param_i64(&p, row->occurred_at_ms);
	param_bytes(&p, row->payload ? row->payload : "", row->payload_len);
	st = run(txn, ST_EVENT_APPEND, &p, &res);
	if (st != TB_OK)
		return st;
	if (PQntuples(res) != 1 || !parse_i64(PQgetvalue(res, 0, 0), &row->seq)) {
		st = tb_error_set(TB_ESTORAGE, NULL, "postgres event_append: no seq (is the row of "
			"event_counter missing?)");
		txn->failed = true; /* the caller must not commit an event without a seq */
	}
	PQclear(res);
	return st;
}

static tb_status event_read(tb_storage_txn *txn, int64_t after_seq, unsigned int limit,
	tb_event_row_cb cb, void *payload)
{
	const struct tb_rowtype *rt = &tb_storage__event_rt;
	const int64_t args[] = { after_seq, limit };
	struct params p;
	PGresult *res;
	tb_status st;

	if (!txn || !cb)
		return invalid("event_read: NULL transaction or callback");
	int_params(&p, args, 2);
	st = run(txn, ST_EVENT_READ, &p, &res);
	if (st != TB_OK)
		return st;
	st = check_columns(res, rt, "event_read");
	if (st == TB_OK && PQnfields(res) <= TB_EVENT_PAYLOAD_COL)
		st = tb_error_set(TB_EINTERNAL, NULL, "postgres event_read: no payload column");
	for (int r = 0; r < PQntuples(res) && st == TB_OK; r++) {
		tb_event_row ev;

		memset(&ev, 0, sizeof ev);
		st = read_row(res, r, rt, &ev);
		if (st != TB_OK)
			break;
		/* Borrowed from the result, which lives until every callback returned. */
		ev.payload = PQgetvalue(res, r, TB_EVENT_PAYLOAD_COL);
		ev.payload_len = (size_t)PQgetlength(res, r, TB_EVENT_PAYLOAD_COL);
		st = cb(&ev, payload);
	}
	PQclear(res);
	return st;
}

static tb_status event_last_seq(tb_storage_txn *txn, int64_t *out)
{
	struct params p;

	if (!txn || !out)
		return invalid("event_last_seq: NULL transaction or out");
	int_params(&p, NULL, 0);
	return fetch_i64(txn, ST_EVENT_LAST_SEQ, &p, 0, out);
}

static tb_status cursor_get(tb_storage_txn *txn, const char *name, int64_t *out)
{
	struct params p;

	if (!txn || !name || !out)
		return invalid("cursor_get: NULL transaction, name or out");
	p.n = 0;
	param_text(&p, name);
	return fetch_i64(txn, ST_CURSOR_GET, &p, 0, out);
}

/* INSERT of ($1 text, $2 integer); the number of rows it added in *changed. */
static tb_status put_text_i64(tb_storage_txn *txn, enum stmt_id id, const char *key,
	int64_t value, long *changed)
{
	struct params p;

	if (!txn || !key)
		return invalid("NULL transaction or key");
	p.n = 0;
	param_text(&p, key);
	param_i64(&p, value);
	return run_write(txn, id, &p, changed);
}

static tb_status cursor_set(tb_storage_txn *txn, const char *name, int64_t seq)
{
	long changed;

	return put_text_i64(txn, ST_CURSOR_SET, name, seq, &changed);
}

static tb_status seen_insert(tb_storage_txn *txn, const char *key, int64_t at_ms)
{
	long changed = 0;
	tb_status st = put_text_i64(txn, ST_SEEN_INSERT, key, at_ms, &changed);

	if (st == TB_OK && changed == 0)
		return tb_error_set(TB_EEXISTS, NULL, "postgres seen_insert: key seen before");
	return st;
}

/* ---------------------------------------------------------------------
 * Open, migrate and destroy.
 */

/* Run one query returning at most one integer (0 when it returns no row). */
static tb_status query_i64(PGconn *c, const char *sql, const char *what, int64_t *out)
{
	PGresult *res = PQexec(c, sql);
	tb_status st = TB_OK;

	*out = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		st = fail(c, res, what);
	else if (PQntuples(res) > 0 && !parse_i64(PQgetvalue(res, 0, 0), out))
		st = tb_error_set(TB_ESTORAGE, NULL, "postgres %s: not an integer", what);
	PQclear(res);
	return st;
}

/*
 * Bring the schema to PG_SCHEMA_VERSION, all or nothing.  An advisory lock
 * makes nodes that open at the same moment migrate one after the other.
 */
static tb_status migrate(PGconn *c)
{
	char sql[160];
	int64_t version = 0;
	tb_status st = exec_sql(c, "BEGIN ISOLATION LEVEL READ COMMITTED", "migrate");

	if (st != TB_OK)
		return st;
	if ((st = exec_sql(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")",
		"migrate")) != TB_OK ||
	    (st = exec_sql(c, "CREATE TABLE IF NOT EXISTS schema_version ("
		"id integer NOT NULL PRIMARY KEY CHECK (id = 1), version integer NOT NULL)",
		"migrate")) != TB_OK ||
	    (st = query_i64(c, "SELECT version FROM schema_version", "migrate", &version)) != TB_OK)
		goto out;
	if (version > PG_SCHEMA_VERSION || version < 0) {
		st = tb_error_set(TB_ESTORAGE, NULL, "database schema version %" PRId64 " is newer "
			"than this library (%d)", version, PG_SCHEMA_VERSION);
		goto out;
	}
	for (int64_t v = version; v < PG_SCHEMA_VERSION && st == TB_OK; v++)
		st = exec_sql(c, pg_migrations[v], "migrate");
	if (st == TB_OK && version < PG_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql, "INSERT INTO schema_version (id, version) VALUES (1, %d)"
			" ON CONFLICT (id) DO UPDATE SET version = excluded.version", PG_SCHEMA_VERSION);
		st = exec_sql(c, sql, "migrate");
	}
	if (st == TB_OK)
		st = exec_sql(c, "COMMIT", "migrate");
out:
	if (PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
	return st;
}

static void destroy(tb_storage *self)
{
	struct pg *pg = (struct pg *)self;

	if (!pg)
		return;
	/* Transactions still open are the caller's bug; their connections are not ours to close. */
	for (unsigned int i = 0; i < pg->nidle; i++)
		conn_close(pg->idle[i]);
	if (pg->sync_ready) {
		pthread_mutex_destroy(&pg->mu);
		pthread_cond_destroy(&pg->cv);
	}
	free(pg->idle);
	free(pg->conninfo);
	free(pg);
}

static const tb_storage postgres_methods = {
	.version = TB_STORAGE_VERSION,
	.name = "postgres",
	.begin = begin,
	.commit = commit,
	.rollback = rollback,
	.user_insert = user_insert,
	.user_get = user_get,
	.user_get_by_email = user_get_by_email,
	.user_update = user_update,
	.session_insert = session_insert,
	.session_get = session_get,
	.session_delete = session_delete,
	.session_delete_for_user = session_delete_for_user,
	.ticket_insert = ticket_insert,
	.ticket_get = ticket_get,
	.ticket_update = ticket_update,
	.ticket_list = ticket_list,
	.order_insert = order_insert,
	.order_get = order_get,
	.order_update = order_update,
	.order_list_by_buyer = order_list_by_buyer,
	.order_list_due = order_list_due,
	.order_min_expiry = order_min_expiry,
	.charge_insert = charge_insert,
	.charge_get = charge_get,
	.charge_update = charge_update,
	.charge_get_latest_for_order = charge_get_latest_for_order,
	.charge_get_by_provider_id = charge_get_by_provider_id,
	.charge_list_due = charge_list_due,
	.charge_min_next_attempt = charge_min_next_attempt,
	.event_append = event_append,
	.event_read = event_read,
	.event_last_seq = event_last_seq,
	.cursor_get = cursor_get,
	.cursor_set = cursor_set,
	.seen_insert = seen_insert,
	.checkpoint = NULL,
	.destroy = destroy,
};

static tb_status check_options(const tb_postgres_options *opts)
{
	if (opts->version != TB_POSTGRES_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, NULL, "postgres options version %u is unknown",
			opts->version);
	if (opts->pool_size > MAX_POOL_SIZE)
		return tb_error_set(TB_EINVAL, "pool_size", "pool_size is at most %u", MAX_POOL_SIZE);
	if (opts->statement_timeout_ms < 0)
		return tb_error_set(TB_EINVAL, "statement_timeout_ms", "statement_timeout_ms must be >= 0");
	if (opts->lock_timeout_ms < 0)
		return tb_error_set(TB_EINVAL, "lock_timeout_ms", "lock_timeout_ms must be >= 0");
	if (opts->acquire_timeout_ms < 0)
		return tb_error_set(TB_EINVAL, "acquire_timeout_ms", "acquire_timeout_ms must be >= 0");
	return TB_OK;
}

static tb_status sync_init(struct pg *pg)
{
	pthread_condattr_t attr;
	bool ok;

	if (pthread_condattr_init(&attr) != 0)
		return tb_error_set(TB_ENOMEM, NULL, "postgres storage: cannot create locks");
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
		pthread_cond_init(&pg->cv, &attr) == 0;
	pthread_condattr_destroy(&attr);
	if (ok && pthread_mutex_init(&pg->mu, NULL) != 0) {
		pthread_cond_destroy(&pg->cv);
		ok = false;
	}
	if (!ok)
		return tb_error_set(TB_ENOMEM, NULL, "postgres storage: cannot create locks");
	pg->sync_ready = true;
	return TB_OK;
}

TB_API tb_status tb_storage_postgres_open(tb_storage **out, const char *conninfo,
	const tb_postgres_options *opts)
{
	static const tb_postgres_options defaults = TB_POSTGRES_OPTIONS_INIT;
	struct pg *pg;
	struct conn *c = NULL;
	tb_status st;

	if (out)
		*out = NULL;
	if (!out || !conninfo || !conninfo[0])
		return tb_error_set(TB_EINVAL, "conninfo", "postgres open: NULL out or empty conninfo");
	if (!opts)
		opts = &defaults;
	if ((st = check_options(opts)) != TB_OK)
		return st;
	if (!PQisthreadsafe())
		return tb_error_set(TB_ESTORAGE, NULL, "postgres open: libpq lacks thread support");

	pg = calloc(1, sizeof *pg);
	if (!pg || !(pg->conninfo = strdup(conninfo))) {
		free(pg);
		return tb_error_set(TB_ENOMEM, NULL, "postgres open: out of memory");
	}
	pg->base = postgres_methods;
	pg->pool_size = opts->pool_size ? opts->pool_size : DEFAULT_POOL_SIZE;
	pg->statement_timeout_ms = opts->statement_timeout_ms;
	pg->lock_timeout_ms = opts->lock_timeout_ms;
	pg->acquire_timeout_ms = opts->acquire_timeout_ms ? opts->acquire_timeout_ms
		: DEFAULT_ACQUIRE_TIMEOUT_MS;
	pg->idle = calloc(pg->pool_size, sizeof *pg->idle);
	st = pg->idle ? sync_init(pg) : tb_error_set(TB_ENOMEM, NULL, "postgres open: out of memory");
	if (st == TB_OK)
		st = acquire(pg, &c);
	if (st == TB_OK) {
		st = migrate(c->pg);
		release(c);
	}
	if (st != TB_OK) {
		destroy(&pg->base);
		return st;
	}
	*out = &pg->base;
	return TB_OK;
}

#else /* !TB_WITH_POSTGRES */

TB_API tb_status tb_storage_postgres_open(tb_storage **out, const char *conninfo,
	const tb_postgres_options *opts)
{
	(void)conninfo;
	(void)opts;
	if (out)
		*out = NULL;
	return tb_error_set(TB_EINVAL, NULL, "built without PostgreSQL support");
}

#endif
