/*
 * tests/support/storage_contract.c - the storage adapter contract suite
 * (see storage_contract.h).  Every case talks to the adapter only through
 * the tb_storage vtable.
 */
#define _POSIX_C_SOURCE 200809L

#include "storage_contract.h"

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb_test.h"
#include "ticketyboo/ticketyboo.h"

#define T0 INT64_C(1700000000000) /* "now" in every case */

/* The suite being run: cmocka cases take no parameters. */
static struct {
	tb_storage_contract_open_fn open;
	void *ctx;
} suite;

/* ---------------------------------------------------------------------
 * Assertions and fixtures.
 */

static int setup(void **state)
{
	tb_storage *s = suite.open(suite.ctx);

	if (!s) {
		print_error("opening a fresh adapter failed: %s\n", tb_last_error()->message);
		return -1;
	}
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	tb_storage_free(*state);
	return 0;
}

static tb_storage_txn *begin_txn(tb_storage *s, int write)
{
	tb_storage_txn *t = NULL;

	assert_tb_ok(s->begin(s, write, &t));
	assert_non_null(t);
	return t;
}

#define wbegin(s) begin_txn((s), 1)
#define rbegin(s) begin_txn((s), 0)

/* A valid UUIDv7-shaped id; `kind` keeps users, tickets, ... apart. */
static void make_id(char out[TB_ID_SIZE], unsigned int kind, unsigned int n)
{
	snprintf(out, TB_ID_SIZE, "%08x-0000-7000-8000-%012x", kind, n);
}

enum { K_USER = 1, K_TICKET = 2, K_ORDER = 3, K_CHARGE = 4 };

static tb_user_row user_row(unsigned int n)
{
	tb_user_row u;

	memset(&u, 0, sizeof u);
	make_id(u.id, K_USER, n);
	snprintf(u.email, sizeof u.email, "user%u@example.com", n);
	snprintf(u.password_hash, sizeof u.password_hash,
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2gtLS0t%u", n);
	u.version = 1;
	u.created_at_ms = T0 + n;
	u.updated_at_ms = T0 + n + 1;
	return u;
}

static tb_ticket_row ticket_row(unsigned int n, const char *owner_id)
{
	tb_ticket_row t;

	memset(&t, 0, sizeof t);
	make_id(t.id, K_TICKET, n);
	snprintf(t.title, sizeof t.title, "Ticket %u", n);
	t.price_minor = 1000 + n;
	snprintf(t.currency, sizeof t.currency, "GBP");
	snprintf(t.owner_id, sizeof t.owner_id, "%s", owner_id);
	t.status = TB_TICKET_LISTED;
	t.version = 1;
	t.created_at_ms = T0 + n;
	t.updated_at_ms = T0 + n;
	return t;
}

static tb_order_row order_row(unsigned int n, const tb_ticket_row *ticket, const char *buyer_id,
	int status, int64_t expires_at_ms)
{
	tb_order_row o;

	memset(&o, 0, sizeof o);
	make_id(o.id, K_ORDER, n);
	snprintf(o.ticket_id, sizeof o.ticket_id, "%s", ticket->id);
	snprintf(o.buyer_id, sizeof o.buyer_id, "%s", buyer_id);
	snprintf(o.seller_id, sizeof o.seller_id, "%s", ticket->owner_id);
	o.status = status;
	o.expires_at_ms = expires_at_ms;
	o.price_minor = ticket->price_minor;
	snprintf(o.currency, sizeof o.currency, "%s", ticket->currency);
	o.version = 1;
	o.created_at_ms = T0 + n;
	o.updated_at_ms = T0 + n + 2;
	return o;
}

/* Every field set to something distinct, so a swapped column shows. */
static tb_charge_row charge_row(unsigned int n, const char *order_id)
{
	tb_charge_row c;

	memset(&c, 0, sizeof c);
	make_id(c.id, K_CHARGE, n);
	snprintf(c.order_id, sizeof c.order_id, "%s", order_id);
	c.status = TB_CHARGE_PENDING;
	c.amount_minor = 2500 + n;
	snprintf(c.currency, sizeof c.currency, "EUR");
	snprintf(c.provider, sizeof c.provider, "fake");
	snprintf(c.payment_token, sizeof c.payment_token, "tok_visa_%u", n);
	snprintf(c.provider_charge_id, sizeof c.provider_charge_id, "ch_%u", n);
	snprintf(c.provider_refund_id, sizeof c.provider_refund_id, "re_%u", n);
	snprintf(c.idempotency_key, sizeof c.idempotency_key, "idem-%u", n);
	snprintf(c.refund_key, sizeof c.refund_key, "refund-idem-%u", n);
	snprintf(c.failure_code, sizeof c.failure_code, "card_declined");
	snprintf(c.decline_code, sizeof c.decline_code, "generic_decline");
	snprintf(c.failure_message, sizeof c.failure_message, "Your card was declined (%u).", n);
	snprintf(c.refund_reason, sizeof c.refund_reason, "late_payment");
	c.attempts = 3;
	c.next_attempt_at_ms = T0 + 500 + n;
	c.version = 1;
	c.created_at_ms = T0 + n;
	c.updated_at_ms = T0 + n + 7;
	return c;
}

static void fill_hash(unsigned char hash[TB_TOKEN_HASH_SIZE], unsigned int n)
{
	for (unsigned int i = 0; i < TB_TOKEN_HASH_SIZE; i++)
		hash[i] = (unsigned char)(n * 31u + i * 7u);
}

/* A seller, a buyer and one listed ticket of the seller's, committed. */
struct world {
	tb_user_row seller, buyer;
	tb_ticket_row ticket;
};

static struct world seed_world(tb_storage *s)
{
	struct world w;
	tb_storage_txn *t = wbegin(s);

	w.seller = user_row(1);
	w.buyer = user_row(2);
	w.ticket = ticket_row(1, w.seller.id);
	assert_tb_ok(s->user_insert(t, &w.seller));
	assert_tb_ok(s->user_insert(t, &w.buyer));
	assert_tb_ok(s->ticket_insert(t, &w.ticket));
	assert_tb_ok(s->commit(t));
	return w;
}

/* Insert `n` more listed tickets of `owner` numbered first.., committed. */
static void seed_tickets(tb_storage *s, const char *owner_id, unsigned int first, unsigned int n,
	tb_ticket_row *out)
{
	tb_storage_txn *t = wbegin(s);

	for (unsigned int i = 0; i < n; i++) {
		out[i] = ticket_row(first + i, owner_id);
		assert_tb_ok(s->ticket_insert(t, &out[i]));
	}
	assert_tb_ok(s->commit(t));
}

static void assert_user_equal(const tb_user_row *a, const tb_user_row *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->email, b->email);
	assert_string_equal(a->password_hash, b->password_hash);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->created_at_ms, b->created_at_ms);
	assert_int_equal(a->updated_at_ms, b->updated_at_ms);
}

static void assert_ticket_equal(const tb_ticket_row *a, const tb_ticket_row *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->title, b->title);
	assert_int_equal(a->price_minor, b->price_minor);
	assert_string_equal(a->currency, b->currency);
	assert_string_equal(a->owner_id, b->owner_id);
	assert_string_equal(a->order_id, b->order_id);
	assert_int_equal(a->locked_until_ms, b->locked_until_ms);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->created_at_ms, b->created_at_ms);
	assert_int_equal(a->updated_at_ms, b->updated_at_ms);
}

static void assert_order_equal(const tb_order_row *a, const tb_order_row *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->ticket_id, b->ticket_id);
	assert_string_equal(a->buyer_id, b->buyer_id);
	assert_string_equal(a->seller_id, b->seller_id);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->expires_at_ms, b->expires_at_ms);
	assert_int_equal(a->price_minor, b->price_minor);
	assert_string_equal(a->currency, b->currency);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->created_at_ms, b->created_at_ms);
	assert_int_equal(a->updated_at_ms, b->updated_at_ms);
}

static void assert_charge_equal(const tb_charge_row *a, const tb_charge_row *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->order_id, b->order_id);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->amount_minor, b->amount_minor);
	assert_string_equal(a->currency, b->currency);
	assert_string_equal(a->provider, b->provider);
	assert_string_equal(a->payment_token, b->payment_token);
	assert_string_equal(a->provider_charge_id, b->provider_charge_id);
	assert_string_equal(a->provider_refund_id, b->provider_refund_id);
	assert_string_equal(a->idempotency_key, b->idempotency_key);
	assert_string_equal(a->refund_key, b->refund_key);
	assert_string_equal(a->failure_code, b->failure_code);
	assert_string_equal(a->decline_code, b->decline_code);
	assert_string_equal(a->failure_message, b->failure_message);
	assert_string_equal(a->refund_reason, b->refund_reason);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->next_attempt_at_ms, b->next_attempt_at_ms);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->created_at_ms, b->created_at_ms);
	assert_int_equal(a->updated_at_ms, b->updated_at_ms);
}

/* ---------------------------------------------------------------------
 * Collecting what list methods hand over.
 */

#define MAX_SEEN 64

struct seen {
	size_t n;
	char id[MAX_SEEN][TB_ID_SIZE];
	int64_t key[MAX_SEEN];   /* expires_at / next_attempt_at of each row */
	size_t stop_after;       /* return stop_with after this many rows (0 = never) */
	tb_status stop_with;
	tb_storage *s;           /* for callbacks that use the transaction */
	tb_storage_txn *txn;
};

static tb_status seen_add(struct seen *k, const char *id, int64_t key)
{
	if (k->n == MAX_SEEN)
		return TB_EINTERNAL;
	snprintf(k->id[k->n], TB_ID_SIZE, "%s", id);
	k->key[k->n] = key;
	k->n++;
	return k->stop_after && k->n >= k->stop_after ? k->stop_with : TB_OK;
}

static tb_status seen_ticket(const tb_ticket_row *row, void *payload)
{
	return seen_add(payload, row->id, 0);
}

static tb_status seen_order(const tb_order_row *row, void *payload)
{
	return seen_add(payload, row->id, row->expires_at_ms);
}

static tb_status seen_charge(const tb_charge_row *row, void *payload)
{
	return seen_add(payload, row->id, row->next_attempt_at_ms);
}

static void assert_seen_ids(const struct seen *k, unsigned int kind, const unsigned int *ns,
	size_t count)
{
	char want[TB_ID_SIZE];

	assert_int_equal(k->n, count);
	for (size_t i = 0; i < count; i++) {
		make_id(want, kind, ns[i]);
		assert_string_equal(k->id[i], want);
	}
}

static struct seen list_tickets(tb_storage *s, const tb_ticket_filter *filter)
{
	struct seen k;
	tb_storage_txn *t = rbegin(s);

	memset(&k, 0, sizeof k);
	assert_tb_ok(s->ticket_list(t, filter, seen_ticket, &k));
	assert_tb_ok(s->commit(t));
	return k;
}

static tb_ticket_filter filter_all(unsigned int limit)
{
	tb_ticket_filter f;

	memset(&f, 0, sizeof f);
	f.now_ms = T0;
	f.limit = limit;
	return f;
}

/* ---------------------------------------------------------------------
 * Users and sessions.
 */

static void user_insert__round_trips_every_field(void **state)
{
	tb_storage *s = *state;
	tb_user_row u = user_row(7), got, by_email;
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->user_insert(t, &u));
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->user_get(t, u.id, &got));
	assert_tb_ok(s->user_get_by_email(t, u.email, &by_email));
	assert_tb_ok(s->commit(t));
	assert_user_equal(&got, &u);
	assert_user_equal(&by_email, &u);
}

static void user_get__reports_unknown_id_and_email_as_not_found(void **state)
{
	tb_storage *s = *state;
	tb_user_row u = user_row(1), got;
	tb_storage_txn *t = rbegin(s);

	assert_tb_status(s->user_get(t, u.id, &got), TB_ENOTFOUND);
	s->rollback(t);
	t = rbegin(s);
	assert_tb_status(s->user_get_by_email(t, u.email, &got), TB_ENOTFOUND);
	s->rollback(t);
}

static void user_insert__refuses_taken_email(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_user_row other = user_row(9);
	tb_storage_txn *t = wbegin(s);

	snprintf(other.email, sizeof other.email, "%s", w.buyer.email);
	assert_tb_status(s->user_insert(t, &other), TB_EEXISTS);
	s->rollback(t);
}

static void user_insert__refuses_duplicate_id(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_user_row again = user_row(9);
	tb_storage_txn *t = wbegin(s);

	snprintf(again.id, sizeof again.id, "%s", w.buyer.id);
	assert_tb_status(s->user_insert(t, &again), TB_EEXISTS);
	s->rollback(t);
}

static void user_update__refuses_taken_email(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_user_row u = w.buyer;
	tb_storage_txn *t = wbegin(s);

	snprintf(u.email, sizeof u.email, "%s", w.seller.email);
	u.version++;
	assert_tb_status(s->user_update(t, &u), TB_EEXISTS);
	s->rollback(t);
}

static void session_insert__round_trips_every_field(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_session_row row, got;
	tb_storage_txn *t = wbegin(s);

	memset(&row, 0, sizeof row);
	fill_hash(row.token_hash, 1);
	snprintf(row.user_id, sizeof row.user_id, "%s", w.buyer.id);
	row.created_at_ms = T0;
	row.expires_at_ms = T0 + TB_DEFAULT_SESSION_TTL_MS;
	assert_tb_ok(s->session_insert(t, &row));
	assert_tb_ok(s->commit(t));

	t = rbegin(s);
	assert_tb_ok(s->session_get(t, row.token_hash, &got));
	assert_tb_ok(s->commit(t));
	assert_memory_equal(got.token_hash, row.token_hash, TB_TOKEN_HASH_SIZE);
	assert_string_equal(got.user_id, row.user_id);
	assert_int_equal(got.created_at_ms, row.created_at_ms);
	assert_int_equal(got.expires_at_ms, row.expires_at_ms);
}

/* Sessions 1..3 of the buyer and 4 of the seller, committed. */
static void seed_sessions(tb_storage *s, const struct world *w)
{
	tb_storage_txn *t = wbegin(s);

	for (unsigned int i = 1; i <= 4; i++) {
		tb_session_row row;

		memset(&row, 0, sizeof row);
		fill_hash(row.token_hash, i);
		snprintf(row.user_id, sizeof row.user_id, "%s", i < 4 ? w->buyer.id : w->seller.id);
		row.created_at_ms = T0;
		row.expires_at_ms = T0 + 1000;
		assert_tb_ok(s->session_insert(t, &row));
	}
	assert_tb_ok(s->commit(t));
}

/* Which of sessions 1..4 still exist, as a bit mask (bit i-1 = session i). */
static unsigned int sessions_left(tb_storage *s)
{
	unsigned int mask = 0;
	tb_storage_txn *t = rbegin(s);

	for (unsigned int i = 1; i <= 4; i++) {
		unsigned char hash[TB_TOKEN_HASH_SIZE];
		tb_session_row got;
		tb_status st;

		fill_hash(hash, i);
		st = s->session_get(t, hash, &got);
		assert_true(st == TB_OK || st == TB_ENOTFOUND);
		if (st == TB_OK)
			mask |= 1u << (i - 1);
	}
	assert_tb_ok(s->commit(t));
	return mask;
}

static void session_get__reports_unknown_hash_as_not_found(void **state)
{
	tb_storage *s = *state;
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	tb_session_row got;
	tb_storage_txn *t = rbegin(s);

	fill_hash(hash, 99);
	assert_tb_status(s->session_get(t, hash, &got), TB_ENOTFOUND);
	s->rollback(t);
}

static void session_delete__removes_one_and_ignores_absent(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	tb_storage_txn *t;

	seed_sessions(s, &w);
	t = wbegin(s);
	fill_hash(hash, 2);
	assert_tb_ok(s->session_delete(t, hash));
	assert_tb_ok(s->session_delete(t, hash));
	fill_hash(hash, 99);
	assert_tb_ok(s->session_delete(t, hash));
	assert_tb_ok(s->commit(t));
	assert_int_equal(sessions_left(s), 0xdu);
}

static void session_delete_for_user__keeps_named_session_and_other_users(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	unsigned char keep[TB_TOKEN_HASH_SIZE];
	tb_storage_txn *t;

	seed_sessions(s, &w);
	fill_hash(keep, 2);
	t = wbegin(s);
	assert_tb_ok(s->session_delete_for_user(t, w.buyer.id, keep));
	assert_tb_ok(s->commit(t));
	assert_int_equal(sessions_left(s), 0xau);
}

static void session_delete_for_user__removes_all_when_keep_is_null(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_storage_txn *t;

	seed_sessions(s, &w);
	t = wbegin(s);
	assert_tb_ok(s->session_delete_for_user(t, w.buyer.id, NULL));
	assert_tb_ok(s->commit(t));
	assert_int_equal(sessions_left(s), 0x8u);
}

/* ---------------------------------------------------------------------
 * Version-checked updates, driven the same way for every row type.
 */

struct versioned {
	void *row;        /* a committed row, version 1 */
	int64_t *version; /* its version field */
	char *id;         /* its id field */
	tb_status (*update)(tb_storage *s, tb_storage_txn *t, const void *row);
};

static tb_status try_update(tb_storage *s, const struct versioned *v, int64_t version)
{
	tb_storage_txn *t = wbegin(s);
	tb_status st;

	*v->version = version;
	st = v->update(s, t, v->row);
	if (st == TB_OK)
		return s->commit(t);
	s->rollback(t);
	return st;
}

/*
 * Stored version 1: writing 2 applies; writing 2 again, or 4, is stale and
 * changes nothing, so 3 applies next; an unknown id is not found.  Leaves
 * the row at version 3.
 */
static void check_version_rules(tb_storage *s, const struct versioned *v)
{
	char id[TB_ID_SIZE];

	assert_tb_ok(try_update(s, v, 2));
	assert_tb_status(try_update(s, v, 2), TB_ECONFLICT);
	assert_tb_status(try_update(s, v, 4), TB_ECONFLICT);
	assert_tb_ok(try_update(s, v, 3));

	snprintf(id, sizeof id, "%s", v->id);
	make_id(v->id, 0xdead, 1);
	assert_tb_status(try_update(s, v, 4), TB_ENOTFOUND);
	snprintf(v->id, TB_ID_SIZE, "%s", id);
	*v->version = 3;
}

static tb_status update_user(tb_storage *s, tb_storage_txn *t, const void *row)
{
	return s->user_update(t, row);
}

static tb_status update_ticket(tb_storage *s, tb_storage_txn *t, const void *row)
{
	return s->ticket_update(t, row);
}

static tb_status update_order(tb_storage *s, tb_storage_txn *t, const void *row)
{
	return s->order_update(t, row);
}

static tb_status update_charge(tb_storage *s, tb_storage_txn *t, const void *row)
{
	return s->charge_update(t, row);
}

static void user_update__checks_version_conflict_and_not_found(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_user_row u = w.buyer, got;
	struct versioned v = { &u, &u.version, u.id, update_user };
	tb_storage_txn *t;

	snprintf(u.email, sizeof u.email, "renamed@example.com");
	snprintf(u.password_hash, sizeof u.password_hash, "$argon2id$new");
	u.updated_at_ms = T0 + 99;
	check_version_rules(s, &v);
	t = rbegin(s);
	assert_tb_ok(s->user_get(t, u.id, &got));
	assert_tb_ok(s->commit(t));
	assert_user_equal(&got, &u);
}

static void ticket_update__checks_version_conflict_and_not_found(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk = w.ticket, got;
	struct versioned v = { &tk, &tk.version, tk.id, update_ticket };
	tb_storage_txn *t;

	snprintf(tk.title, sizeof tk.title, "Renamed");
	tk.price_minor = 4321;
	snprintf(tk.owner_id, sizeof tk.owner_id, "%s", w.buyer.id);
	tk.status = TB_TICKET_UNLISTED;
	tk.updated_at_ms = T0 + 99;
	check_version_rules(s, &v);
	t = rbegin(s);
	assert_tb_ok(s->ticket_get(t, tk.id, &got));
	assert_tb_ok(s->commit(t));
	assert_ticket_equal(&got, &tk);
}

/* One order of the world's ticket, committed. */
static tb_order_row seed_order(tb_storage *s, const struct world *w, unsigned int n, int status,
	int64_t expires_at_ms)
{
	tb_order_row o = order_row(n, &w->ticket, w->buyer.id, status, expires_at_ms);
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->order_insert(t, &o));
	assert_tb_ok(s->commit(t));
	return o;
}

static void order_update__checks_version_conflict_and_not_found(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = seed_order(s, &w, 1, TB_ORDER_CREATED, T0 + 1000), got;
	struct versioned v = { &o, &o.version, o.id, update_order };
	tb_storage_txn *t;

	o.status = TB_ORDER_AWAITING_PAYMENT;
	o.expires_at_ms = T0 + 5000;
	o.updated_at_ms = T0 + 99;
	check_version_rules(s, &v);
	t = rbegin(s);
	assert_tb_ok(s->order_get(t, o.id, &got));
	assert_tb_ok(s->commit(t));
	assert_order_equal(&got, &o);
}

static tb_charge_row seed_charge(tb_storage *s, const char *order_id, unsigned int n)
{
	tb_charge_row c = charge_row(n, order_id);
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->charge_insert(t, &c));
	assert_tb_ok(s->commit(t));
	return c;
}

static void charge_update__checks_version_conflict_and_not_found(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = seed_order(s, &w, 1, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
	tb_charge_row c = seed_charge(s, o.id, 1), got;
	struct versioned v = { &c, &c.version, c.id, update_charge };
	tb_storage_txn *t;

	c.status = TB_CHARGE_SUCCEEDED;
	c.attempts = 4;
	c.next_attempt_at_ms = 0;
	snprintf(c.provider_charge_id, sizeof c.provider_charge_id, "ch_final");
	c.updated_at_ms = T0 + 99;
	check_version_rules(s, &v);
	t = rbegin(s);
	assert_tb_ok(s->charge_get(t, c.id, &got));
	assert_tb_ok(s->commit(t));
	assert_charge_equal(&got, &c);
}

/* ---------------------------------------------------------------------
 * Tickets.
 */

static void ticket_insert__round_trips_every_field(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk = ticket_row(5, w.seller.id), got;
	tb_storage_txn *t = wbegin(s);

	/* Every byte of a 200-character title of 4-byte characters survives. */
	for (size_t i = 0; i < 200; i++)
		memcpy(tk.title + 4 * i, "\xF0\x9F\x8E\xAB", 4);
	tk.title[800] = '\0';
	tk.locked_until_ms = T0 + 123;
	make_id(tk.order_id, K_ORDER, 77);
	tk.status = TB_TICKET_UNLISTED;
	tk.version = 9;
	assert_tb_ok(s->ticket_insert(t, &tk));
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->ticket_get(t, tk.id, &got));
	assert_tb_ok(s->commit(t));
	assert_ticket_equal(&got, &tk);
	t = rbegin(s);
	make_id(tk.id, K_TICKET, 404);
	assert_tb_status(s->ticket_get(t, tk.id, &got), TB_ENOTFOUND);
	s->rollback(t);
}

static void ticket_insert__refuses_duplicate_id(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_storage_txn *t = wbegin(s);

	assert_tb_status(s->ticket_insert(t, &w.ticket), TB_EEXISTS);
	s->rollback(t);
}

/* Lock ticket `tk` (committed, version bumped) with a new order of the buyer's until `until`. */
static void lock_ticket(tb_storage *s, tb_ticket_row *tk, const char *buyer_id, unsigned int n,
	int64_t until)
{
	tb_order_row o = order_row(n, tk, buyer_id, TB_ORDER_CREATED, until);
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->order_insert(t, &o));
	snprintf(tk->order_id, sizeof tk->order_id, "%s", o.id);
	tk->locked_until_ms = until;
	tk->version++;
	assert_tb_ok(s->ticket_update(t, tk));
	assert_tb_ok(s->commit(t));
}

static void ticket_list__available_only_skips_unlisted_and_locked(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[5];
	tb_ticket_filter f = filter_all(50);
	tb_storage_txn *t;
	struct seen k;
	const unsigned int all[] = { 1, 10, 11, 12, 13, 14 };
	const unsigned int available[] = { 1, 11, 12 };

	seed_tickets(s, w.seller.id, 10, 5, tk);
	lock_ticket(s, &tk[0], w.buyer.id, 10, T0 + 1); /* locked a moment longer */
	lock_ticket(s, &tk[1], w.buyer.id, 11, T0);     /* lock lapses exactly now */
	lock_ticket(s, &tk[2], w.buyer.id, 12, T0 - 1); /* lapsed */
	tk[3].status = TB_TICKET_UNLISTED;
	tk[3].version++;
	t = wbegin(s);
	assert_tb_ok(s->ticket_update(t, &tk[3]));
	assert_tb_ok(s->commit(t));
	lock_ticket(s, &tk[4], w.buyer.id, 14, T0 + 60000);

	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, all, 6);
	f.available_only = 1;
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, available, 3);
}

static void ticket_list__filters_by_owner_alone_and_with_available_only(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row mine[3], theirs[2];
	tb_ticket_filter f = filter_all(50);
	struct seen k;
	const unsigned int buyer_all[] = { 20, 21, 22 };
	const unsigned int buyer_available[] = { 20, 22 };
	const unsigned int seller_all[] = { 1, 30, 31 };

	seed_tickets(s, w.buyer.id, 20, 3, mine);
	seed_tickets(s, w.seller.id, 30, 2, theirs);
	lock_ticket(s, &mine[1], w.seller.id, 21, T0 + 5000);

	f.owner_id = w.buyer.id;
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, buyer_all, 3);
	f.available_only = 1;
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, buyer_available, 2);
	f.owner_id = w.seller.id;
	f.available_only = 0;
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, seller_all, 3);
}

/* Tickets 40.. with these titles, committed. */
static void seed_titled(tb_storage *s, const char *owner_id, const char *const *titles, size_t n)
{
	tb_storage_txn *t = wbegin(s);

	for (size_t i = 0; i < n; i++) {
		tb_ticket_row tk = ticket_row(40 + (unsigned int)i, owner_id);

		snprintf(tk.title, sizeof tk.title, "%s", titles[i]);
		assert_tb_ok(s->ticket_insert(t, &tk));
	}
	assert_tb_ok(s->commit(t));
}

static void ticket_list__matches_title_case_insensitively(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const char *const titles[] = { "Rock Concert", "ROCKY horror", "Jazz night", "bedrock" };
	tb_ticket_filter f = filter_all(50);
	struct seen k;
	const unsigned int rock[] = { 40, 41, 43 };
	const unsigned int jazz[] = { 42 };

	seed_titled(s, w.seller.id, titles, 4);
	f.title_contains = "rOcK";
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, rock, 3);
	f.title_contains = "JAZZ N";
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, jazz, 1);
	f.title_contains = "opera";
	k = list_tickets(s, &f);
	assert_int_equal(k.n, 0);
}

static void ticket_list__treats_like_wildcards_in_title_literally(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const char *const titles[] = { "100% Rock", "1000 Rock", "a_b", "axb", "back\\slash" };
	tb_ticket_filter f = filter_all(50);
	struct seen k;
	const unsigned int percent[] = { 40 };
	const unsigned int underscore[] = { 42 };
	const unsigned int backslash[] = { 44 };

	seed_titled(s, w.seller.id, titles, 5);
	f.title_contains = "0%";
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, percent, 1);
	f.title_contains = "_";
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, underscore, 1);
	f.title_contains = "k\\s";
	k = list_tickets(s, &f);
	assert_seen_ids(&k, K_TICKET, backslash, 1);
}

/* Page through every ticket `limit` at a time; ids must rise strictly across pages. */
static size_t page_all(tb_storage *s, unsigned int limit, char ids[][TB_ID_SIZE], size_t max,
	void (*between_pages)(tb_storage *s, size_t page))
{
	tb_ticket_filter f = filter_all(limit);
	char after[TB_ID_SIZE] = "";
	size_t total = 0;

	for (size_t page = 0;; page++) {
		struct seen k;

		f.after_id = page ? after : NULL;
		k = list_tickets(s, &f);
		assert_true(k.n <= limit);
		for (size_t i = 0; i < k.n; i++) {
			assert_true(total < max);
			assert_true(strcmp(k.id[i], after) > 0);
			snprintf(after, sizeof after, "%s", k.id[i]);
			snprintf(ids[total++], TB_ID_SIZE, "%s", k.id[i]);
		}
		if (k.n < limit)
			return total;
		if (between_pages)
			between_pages(s, page);
	}
}

static void ticket_list__pages_by_id_with_keyset_and_limit(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[9];
	char ids[16][TB_ID_SIZE];
	char want[TB_ID_SIZE];
	tb_ticket_filter f = filter_all(0);
	struct seen k;
	tb_storage_txn *t = wbegin(s);

	/* Inserted out of id order. */
	for (unsigned int i = 0; i < 9; i++) {
		tk[i] = ticket_row(100 + (i * 5) % 9, w.seller.id);
		assert_tb_ok(s->ticket_insert(t, &tk[i]));
	}
	assert_tb_ok(s->commit(t));
	assert_int_equal(page_all(s, 3, ids, 16, NULL), 10);
	make_id(want, K_TICKET, 1);
	assert_string_equal(ids[0], want);
	for (unsigned int i = 0; i < 9; i++) {
		make_id(want, K_TICKET, 100 + i);
		assert_string_equal(ids[i + 1], want);
	}
	k = list_tickets(s, &f);
	assert_int_equal(k.n, 0); /* limit 0: nothing */
}

/* Between the first and second page: one ticket sorts before the cursor, one after. */
static void insert_around_cursor(tb_storage *s, size_t page)
{
	tb_storage_txn *t;
	tb_ticket_row before, after;
	tb_user_row owner = user_row(1);

	if (page != 0)
		return;
	before = ticket_row(2, owner.id);   /* before ticket 200..: behind the cursor */
	after = ticket_row(250, owner.id);  /* among the pages still to come */
	t = wbegin(s);
	assert_tb_ok(s->ticket_insert(t, &before));
	assert_tb_ok(s->ticket_insert(t, &after));
	assert_tb_ok(s->commit(t));
}

static void ticket_list__keyset_pages_survive_inserts_between_pages(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[8];
	char ids[16][TB_ID_SIZE];
	char want[TB_ID_SIZE];
	size_t n;
	const unsigned int expect[] = { 1, 200, 201, 202, 203, 204, 205, 206, 207, 250 };

	seed_tickets(s, w.seller.id, 200, 8, tk);
	n = page_all(s, 3, ids, 16, insert_around_cursor);
	/* Every ticket that existed is there once; the one inserted ahead of the cursor too. */
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++) {
		make_id(want, K_TICKET, expect[i]);
		assert_string_equal(ids[i], want);
	}
}

static void ticket_list__stops_at_callback_status_and_returns_it(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[4];
	tb_ticket_filter f = filter_all(50);
	struct seen k;
	tb_storage_txn *t;

	seed_tickets(s, w.seller.id, 10, 4, tk);
	memset(&k, 0, sizeof k);
	k.stop_after = 2;
	k.stop_with = TB_ECONFLICT;
	t = rbegin(s);
	assert_tb_status(s->ticket_list(t, &f, seen_ticket, &k), TB_ECONFLICT);
	assert_int_equal(k.n, 2);
	/* The transaction, and the same list, still work afterwards. */
	memset(&k, 0, sizeof k);
	assert_tb_ok(s->ticket_list(t, &f, seen_ticket, &k));
	assert_int_equal(k.n, 5);
	assert_tb_ok(s->commit(t));
}

/* A callback that reads the ticket again and lists all tickets, inside the same transaction. */
static tb_status reenter_ticket(const tb_ticket_row *row, void *payload)
{
	struct seen *k = payload;
	tb_ticket_row again;
	tb_ticket_filter f = filter_all(50);
	struct seen inner;
	tb_status st = k->s->ticket_get(k->txn, row->id, &again);

	memset(&inner, 0, sizeof inner);
	if (st == TB_OK)
		st = k->s->ticket_list(k->txn, &f, seen_ticket, &inner);
	if (st == TB_OK && (inner.n != 4 || strcmp(again.id, row->id) != 0))
		st = TB_EINTERNAL;
	return st == TB_OK ? seen_add(k, row->id, 0) : st;
}

static void ticket_list__callback_may_use_the_same_transaction(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[3];
	tb_ticket_filter f = filter_all(50);
	struct seen k;

	seed_tickets(s, w.seller.id, 10, 3, tk);
	memset(&k, 0, sizeof k);
	k.s = s;
	k.txn = rbegin(s);
	assert_tb_ok(s->ticket_list(k.txn, &f, reenter_ticket, &k));
	assert_tb_ok(s->commit(k.txn));
	assert_int_equal(k.n, 4);
}

/* ---------------------------------------------------------------------
 * Orders: the one-live-order-per-ticket guard.
 */

static void order_insert__round_trips_every_field(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = order_row(3, &w.ticket, w.buyer.id, TB_ORDER_AWAITING_PAYMENT, T0 + 900),
		got;
	tb_storage_txn *t = wbegin(s);

	o.price_minor = 98765;
	snprintf(o.currency, sizeof o.currency, "JPY");
	o.version = 5;
	assert_tb_ok(s->order_insert(t, &o));
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->order_get(t, o.id, &got));
	assert_tb_ok(s->commit(t));
	assert_order_equal(&got, &o);
	t = rbegin(s);
	make_id(o.id, K_ORDER, 404);
	assert_tb_status(s->order_get(t, o.id, &got), TB_ENOTFOUND);
	s->rollback(t);
}

static void order_insert__refuses_second_live_order_for_ticket(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int live[] = { TB_ORDER_CREATED, TB_ORDER_AWAITING_PAYMENT };

	for (unsigned int i = 0; i < 2; i++) {
		tb_order_row first = order_row(10 + i, &w.ticket, w.buyer.id, live[i], T0 + 1000);
		tb_storage_txn *t = wbegin(s);

		assert_tb_ok(s->order_insert(t, &first));
		assert_tb_ok(s->commit(t));
		for (unsigned int j = 0; j < 2; j++) {
			tb_order_row second = order_row(20 + j, &w.ticket, w.buyer.id, live[j], T0 + 2000);

			t = wbegin(s);
			assert_tb_status(s->order_insert(t, &second), TB_ELOCKED);
			s->rollback(t);
		}
		/* Retire the first so the next round starts clean. */
		first.status = TB_ORDER_CANCELLED;
		first.version++;
		t = wbegin(s);
		assert_tb_ok(s->order_update(t, &first));
		assert_tb_ok(s->commit(t));
	}
}

static void order_insert__refuses_second_live_order_in_same_transaction(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row a = order_row(1, &w.ticket, w.buyer.id, TB_ORDER_CREATED, T0 + 1000);
	tb_order_row b = order_row(2, &w.ticket, w.seller.id, TB_ORDER_CREATED, T0 + 1000);
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->order_insert(t, &a));
	assert_tb_status(s->order_insert(t, &b), TB_ELOCKED);
	s->rollback(t);
}

static void order_update__refuses_making_second_order_live(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row old = seed_order(s, &w, 1, TB_ORDER_CANCELLED, T0);
	tb_order_row live = seed_order(s, &w, 2, TB_ORDER_CREATED, T0 + 1000);
	static const int statuses[] = { TB_ORDER_CREATED, TB_ORDER_AWAITING_PAYMENT };

	(void)live;
	for (unsigned int i = 0; i < 2; i++) {
		tb_storage_txn *t = wbegin(s);

		old.status = statuses[i];
		old.version = 2;
		assert_tb_status(s->order_update(t, &old), TB_ELOCKED);
		s->rollback(t);
	}
}

static void order_insert__allows_new_live_order_once_first_is_finished(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int finished[] = {
		TB_ORDER_CANCELLED, TB_ORDER_EXPIRED, TB_ORDER_COMPLETE, TB_ORDER_REFUNDED
	};

	for (unsigned int i = 0; i < 4; i++) {
		tb_order_row o = seed_order(s, &w, 10 + i, TB_ORDER_CREATED, T0 + 1000);
		tb_storage_txn *t = wbegin(s);

		o.status = finished[i];
		o.version++;
		assert_tb_ok(s->order_update(t, &o));
		assert_tb_ok(s->commit(t));
	}
	/* Four finished orders of the ticket, and a live one beside them. */
	seed_order(s, &w, 20, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
}

static void order_list_by_buyer__pages_by_id_and_skips_other_buyers(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_ticket_row tk[5];
	tb_storage_txn *t;
	struct seen k;
	char after[TB_ID_SIZE];
	const unsigned int first[] = { 50, 51 };
	const unsigned int rest[] = { 53, 54 };

	seed_tickets(s, w.seller.id, 50, 5, tk);
	t = wbegin(s);
	for (unsigned int i = 0; i < 5; i++) {
		/* Order 52 is the seller's own. */
		tb_order_row o = order_row(54 - i, &tk[4 - i], i == 2 ? w.seller.id : w.buyer.id,
			TB_ORDER_CREATED, T0 + 1000);

		assert_tb_ok(s->order_insert(t, &o));
	}
	assert_tb_ok(s->commit(t));

	t = rbegin(s);
	memset(&k, 0, sizeof k);
	assert_tb_ok(s->order_list_by_buyer(t, w.buyer.id, NULL, 2, seen_order, &k));
	assert_seen_ids(&k, K_ORDER, first, 2);
	snprintf(after, sizeof after, "%s", k.id[1]);
	memset(&k, 0, sizeof k);
	assert_tb_ok(s->order_list_by_buyer(t, w.buyer.id, after, 10, seen_order, &k));
	assert_seen_ids(&k, K_ORDER, rest, 2);
	assert_tb_ok(s->commit(t));
}

/* Tickets 60.. with one order each: status[i], expires_at[i]; committed. */
static void seed_orders(tb_storage *s, const struct world *w, const int *status,
	const int64_t *expires, unsigned int n)
{
	tb_ticket_row tk[16];
	tb_storage_txn *t;

	assert_true(n <= 16);
	seed_tickets(s, w->seller.id, 60, n, tk);
	t = wbegin(s);
	for (unsigned int i = 0; i < n; i++) {
		tb_order_row o = order_row(60 + i, &tk[i], w->buyer.id, status[i], expires[i]);

		assert_tb_ok(s->order_insert(t, &o));
	}
	assert_tb_ok(s->commit(t));
}

static struct seen list_due(tb_storage *s, int status, int64_t cutoff, unsigned int limit)
{
	struct seen k;
	tb_storage_txn *t = rbegin(s);

	memset(&k, 0, sizeof k);
	assert_tb_ok(s->order_list_due(t, status, cutoff, limit, seen_order, &k));
	assert_tb_ok(s->commit(t));
	return k;
}

static void order_list_due__returns_earliest_first_up_to_limit(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int status[] = { 1, 1, 1, 1, 1 }; /* created */
	static const int64_t expires[] = { T0 - 10, T0 - 30, T0 - 20, T0 - 30, T0 - 5 };
	const unsigned int all[] = { 61, 63, 62, 60, 64 };
	const unsigned int two[] = { 61, 63 };
	struct seen k;

	seed_orders(s, &w, status, expires, 5);
	k = list_due(s, TB_ORDER_CREATED, T0, 100);
	assert_seen_ids(&k, K_ORDER, all, 5); /* ties on expires_at in id order */
	for (size_t i = 1; i < k.n; i++)
		assert_true(k.key[i - 1] <= k.key[i]);
	k = list_due(s, TB_ORDER_CREATED, T0, 2);
	assert_seen_ids(&k, K_ORDER, two, 2);
}

static void order_list_due__excludes_future_and_other_status(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int status[] = {
		TB_ORDER_CREATED, TB_ORDER_CREATED, TB_ORDER_CREATED, TB_ORDER_AWAITING_PAYMENT,
		TB_ORDER_EXPIRED, TB_ORDER_CANCELLED
	};
	static const int64_t expires[] = { T0, T0 + 1, T0 - 1, T0 - 100, T0 - 100, T0 - 100 };
	const unsigned int created[] = { 62, 60 };
	const unsigned int awaiting[] = { 63 };
	struct seen k;

	seed_orders(s, &w, status, expires, 6);
	k = list_due(s, TB_ORDER_CREATED, T0, 100);
	assert_seen_ids(&k, K_ORDER, created, 2); /* expires_at == cutoff is due */
	k = list_due(s, TB_ORDER_AWAITING_PAYMENT, T0, 100);
	assert_seen_ids(&k, K_ORDER, awaiting, 1);
	k = list_due(s, TB_ORDER_CREATED, T0 - 1000, 100);
	assert_int_equal(k.n, 0);
}

/* A callback that expires each due order inside the listing transaction. */
static tb_status expire_order(const tb_order_row *row, void *payload)
{
	struct seen *k = payload;
	tb_order_row o = *row;
	tb_status st;

	o.status = TB_ORDER_EXPIRED;
	o.version++;
	st = k->s->order_update(k->txn, &o);
	return st == TB_OK ? seen_add(k, row->id, row->expires_at_ms) : st;
}

static void order_list_due__callback_may_update_the_listed_orders(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int status[] = { 1, 1, 1, 1 }; /* created */
	static const int64_t expires[] = { T0 - 4, T0 - 3, T0 - 2, T0 + 10 };
	struct seen k;

	seed_orders(s, &w, status, expires, 4);
	memset(&k, 0, sizeof k);
	k.s = s;
	k.txn = wbegin(s);
	assert_tb_ok(s->order_list_due(k.txn, TB_ORDER_CREATED, T0, 100, expire_order, &k));
	assert_tb_ok(s->commit(k.txn));
	assert_int_equal(k.n, 3);
	k = list_due(s, TB_ORDER_CREATED, T0 + 100, 100);
	assert_int_equal(k.n, 1);
	k = list_due(s, TB_ORDER_EXPIRED, T0 + 100, 100);
	assert_int_equal(k.n, 3);
}

static void order_min_expiry__reports_earliest_of_status_or_no_deadline(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int status[] = {
		TB_ORDER_CREATED, TB_ORDER_CREATED, TB_ORDER_AWAITING_PAYMENT, TB_ORDER_EXPIRED
	};
	static const int64_t expires[] = { T0 + 50, T0 + 20, T0 + 10, T0 + 5 };
	int64_t at = 0;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->order_min_expiry(t, TB_ORDER_CREATED, &at));
	assert_tb_ok(s->commit(t));
	assert_true(at == TB_NO_DEADLINE);

	seed_orders(s, &w, status, expires, 4);
	t = rbegin(s);
	assert_tb_ok(s->order_min_expiry(t, TB_ORDER_CREATED, &at));
	assert_int_equal(at, T0 + 20);
	assert_tb_ok(s->order_min_expiry(t, TB_ORDER_AWAITING_PAYMENT, &at));
	assert_int_equal(at, T0 + 10);
	assert_tb_ok(s->order_min_expiry(t, TB_ORDER_CANCELLED, &at));
	assert_true(at == TB_NO_DEADLINE);
	assert_tb_ok(s->commit(t));
}

/* ---------------------------------------------------------------------
 * Charges.
 */

static void charge_insert__round_trips_every_field(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = seed_order(s, &w, 1, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
	tb_charge_row c = seed_charge(s, o.id, 1), got;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->charge_get(t, c.id, &got));
	assert_tb_ok(s->commit(t));
	assert_charge_equal(&got, &c);
	t = rbegin(s);
	make_id(c.id, K_CHARGE, 404);
	assert_tb_status(s->charge_get(t, c.id, &got), TB_ENOTFOUND);
	s->rollback(t);
}

static void charge_get_latest_for_order__picks_newest_by_created_then_id(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = seed_order(s, &w, 1, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
	tb_order_row other = seed_order(s, &w, 2, TB_ORDER_CANCELLED, T0 + 1000);
	tb_charge_row c[4], got;
	tb_storage_txn *t = rbegin(s);
	char want[TB_ID_SIZE];

	assert_tb_status(s->charge_get_latest_for_order(t, o.id, &got), TB_ENOTFOUND);
	s->rollback(t);
	t = wbegin(s);
	c[0] = charge_row(9, o.id);      /* highest id, oldest */
	c[0].created_at_ms = T0 + 1;
	c[1] = charge_row(3, o.id);      /* newest, tied with 4 */
	c[1].created_at_ms = T0 + 5;
	c[2] = charge_row(4, o.id);      /* newest, tied, higher id: the latest */
	c[2].created_at_ms = T0 + 5;
	c[3] = charge_row(8, other.id);  /* another order's, newer still */
	c[3].created_at_ms = T0 + 50;
	for (unsigned int i = 0; i < 4; i++)
		assert_tb_ok(s->charge_insert(t, &c[i]));
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->charge_get_latest_for_order(t, o.id, &got));
	assert_tb_ok(s->commit(t));
	make_id(want, K_CHARGE, 4);
	assert_string_equal(got.id, want);
	assert_charge_equal(&got, &c[2]);
}

static void charge_get_by_provider_id__finds_charge_or_not_found(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_order_row o = seed_order(s, &w, 1, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
	tb_charge_row a = seed_charge(s, o.id, 1), b = seed_charge(s, o.id, 2), got;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->charge_get_by_provider_id(t, b.provider_charge_id, &got));
	assert_charge_equal(&got, &b);
	assert_tb_ok(s->charge_get_by_provider_id(t, a.provider_charge_id, &got));
	assert_charge_equal(&got, &a);
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_status(s->charge_get_by_provider_id(t, "ch_unknown", &got), TB_ENOTFOUND);
	s->rollback(t);
}

/* Charges 1..n of one order with these next_attempt_at values; committed. */
static void seed_charges_due(tb_storage *s, const struct world *w, const int64_t *next,
	unsigned int n)
{
	tb_order_row o = seed_order(s, w, 1, TB_ORDER_AWAITING_PAYMENT, T0 + 1000);
	tb_storage_txn *t = wbegin(s);

	for (unsigned int i = 0; i < n; i++) {
		tb_charge_row c = charge_row(1 + i, o.id);

		c.next_attempt_at_ms = next[i];
		assert_tb_ok(s->charge_insert(t, &c));
	}
	assert_tb_ok(s->commit(t));
}

static void charge_list_due__returns_due_earliest_first_and_skips_unscheduled(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int64_t next[] = { T0 - 5, 0, T0, T0 + 1, T0 - 9, T0 - 5 };
	const unsigned int due[] = { 5, 1, 6, 3 };
	const unsigned int two[] = { 5, 1 };
	struct seen k;
	tb_storage_txn *t;

	seed_charges_due(s, &w, next, 6);
	t = rbegin(s);
	memset(&k, 0, sizeof k);
	assert_tb_ok(s->charge_list_due(t, T0, 100, seen_charge, &k));
	assert_seen_ids(&k, K_CHARGE, due, 4);
	memset(&k, 0, sizeof k);
	assert_tb_ok(s->charge_list_due(t, T0, 2, seen_charge, &k));
	assert_seen_ids(&k, K_CHARGE, two, 2);
	assert_tb_ok(s->commit(t));
}

static void charge_min_next_attempt__ignores_unscheduled_or_reports_no_deadline(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	static const int64_t unscheduled[] = { 0 };
	static const int64_t next[] = { T0 + 30, T0 + 7 };
	int64_t at = 0;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->charge_min_next_attempt(t, &at));
	assert_tb_ok(s->commit(t));
	assert_true(at == TB_NO_DEADLINE);
	seed_charges_due(s, &w, unscheduled, 1);
	t = rbegin(s);
	assert_tb_ok(s->charge_min_next_attempt(t, &at));
	assert_tb_ok(s->commit(t));
	assert_true(at == TB_NO_DEADLINE);

	t = wbegin(s);
	for (unsigned int i = 0; i < 2; i++) {
		char order_id[TB_ID_SIZE];
		tb_charge_row c;

		make_id(order_id, K_ORDER, 1);
		c = charge_row(10 + i, order_id);
		c.next_attempt_at_ms = next[i];
		assert_tb_ok(s->charge_insert(t, &c));
	}
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->charge_min_next_attempt(t, &at));
	assert_tb_ok(s->commit(t));
	assert_int_equal(at, T0 + 7);
}

/* ---------------------------------------------------------------------
 * Events, cursors, seen keys.
 */

struct events_seen {
	size_t n;
	tb_event_row rows[16];
	char payloads[16][64];
};

static tb_status collect_event(const tb_event_row *row, void *payload)
{
	struct events_seen *e = payload;

	if (e->n == 16 || row->payload_len >= sizeof e->payloads[0])
		return TB_EINTERNAL;
	e->rows[e->n] = *row;
	memcpy(e->payloads[e->n], row->payload, row->payload_len);
	e->payloads[e->n][row->payload_len] = '\0';
	e->rows[e->n].payload = NULL; /* borrowed for the call only: see payloads */
	e->n++;
	return TB_OK;
}

static tb_event_row event_row(unsigned int n, char *payload, size_t size)
{
	tb_event_row e;

	memset(&e, 0, sizeof e);
	e.type = (int)(n % 9 + 1);
	make_id(e.aggregate_id, K_TICKET, n);
	e.aggregate_version = n + 1;
	e.occurred_at_ms = T0 + n;
	snprintf(payload, size, "{\"n\":%u}", n);
	e.payload = payload;
	e.payload_len = strlen(payload);
	return e;
}

/* Append events n..n+count-1 in one transaction; seqs out. */
static void append_events(tb_storage *s, unsigned int n, unsigned int count, int commit,
	int64_t *seqs)
{
	tb_storage_txn *t = wbegin(s);

	for (unsigned int i = 0; i < count; i++) {
		char payload[32];
		tb_event_row e = event_row(n + i, payload, sizeof payload);

		e.seq = -1;
		assert_tb_ok(s->event_append(t, &e));
		seqs[i] = e.seq;
	}
	if (commit)
		assert_tb_ok(s->commit(t));
	else
		s->rollback(t);
}

static struct events_seen read_events(tb_storage *s, int64_t after_seq, unsigned int limit)
{
	struct events_seen e;
	tb_storage_txn *t = rbegin(s);

	memset(&e, 0, sizeof e);
	assert_tb_ok(s->event_read(t, after_seq, limit, collect_event, &e));
	assert_tb_ok(s->commit(t));
	return e;
}

static void event_append__assigns_strictly_increasing_seq(void **state)
{
	tb_storage *s = *state;
	int64_t seqs[6];

	append_events(s, 1, 3, 1, seqs);
	append_events(s, 4, 3, 1, seqs + 3);
	assert_true(seqs[0] > 0);
	for (size_t i = 1; i < 6; i++)
		assert_true(seqs[i] > seqs[i - 1]);
}

static void event_read__returns_events_after_seq_in_order_up_to_limit(void **state)
{
	tb_storage *s = *state;
	int64_t seqs[5];
	struct events_seen e;

	append_events(s, 1, 5, 1, seqs);
	e = read_events(s, 0, 100);
	assert_int_equal(e.n, 5);
	for (unsigned int i = 0; i < 5; i++) {
		char payload[32];
		tb_event_row want = event_row(1 + i, payload, sizeof payload);

		assert_int_equal(e.rows[i].seq, seqs[i]);
		assert_int_equal(e.rows[i].type, want.type);
		assert_string_equal(e.rows[i].aggregate_id, want.aggregate_id);
		assert_int_equal(e.rows[i].aggregate_version, want.aggregate_version);
		assert_int_equal(e.rows[i].occurred_at_ms, want.occurred_at_ms);
		assert_int_equal(e.rows[i].payload_len, want.payload_len);
		assert_string_equal(e.payloads[i], payload);
	}
	e = read_events(s, seqs[1], 2);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rows[0].seq, seqs[2]);
	assert_int_equal(e.rows[1].seq, seqs[3]);
	e = read_events(s, seqs[4], 10);
	assert_int_equal(e.n, 0);
}

static void event_last_seq__is_zero_when_empty_then_the_newest(void **state)
{
	tb_storage *s = *state;
	int64_t seqs[3], last = -1;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->event_last_seq(t, &last));
	assert_tb_ok(s->commit(t));
	assert_int_equal(last, 0);
	append_events(s, 1, 3, 1, seqs);
	t = rbegin(s);
	assert_tb_ok(s->event_last_seq(t, &last));
	assert_tb_ok(s->commit(t));
	assert_int_equal(last, seqs[2]);
}

static void cursor_set__inserts_then_overwrites_and_get_is_zero_when_unknown(void **state)
{
	tb_storage *s = *state;
	int64_t seq = -1;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->cursor_get(t, "mailer", &seq));
	assert_tb_ok(s->commit(t));
	assert_int_equal(seq, 0);
	t = wbegin(s);
	assert_tb_ok(s->cursor_set(t, "mailer", 7));
	assert_tb_ok(s->cursor_set(t, "audit", 3));
	assert_tb_ok(s->commit(t));
	t = wbegin(s);
	assert_tb_ok(s->cursor_set(t, "mailer", 42));
	assert_tb_ok(s->commit(t));
	t = rbegin(s);
	assert_tb_ok(s->cursor_get(t, "mailer", &seq));
	assert_int_equal(seq, 42);
	assert_tb_ok(s->cursor_get(t, "audit", &seq));
	assert_int_equal(seq, 3);
	assert_tb_ok(s->commit(t));
}

static void seen_insert__refuses_a_key_seen_before(void **state)
{
	tb_storage *s = *state;
	tb_storage_txn *t = wbegin(s);

	assert_tb_ok(s->seen_insert(t, "evt_1", T0));
	assert_tb_ok(s->seen_insert(t, "evt_2", T0));
	assert_tb_ok(s->commit(t));
	t = wbegin(s);
	assert_tb_status(s->seen_insert(t, "evt_1", T0 + 5), TB_EEXISTS);
	s->rollback(t);
}

/* ---------------------------------------------------------------------
 * Transactions.
 */

static void rollback__discards_writes_and_appended_events(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	tb_user_row u = user_row(9), got_user;
	tb_ticket_row tk = w.ticket, got_ticket;
	int64_t seqs[2], last = -1, seq = -1;
	tb_storage_txn *t = wbegin(s);
	struct events_seen e;

	assert_tb_ok(s->user_insert(t, &u));
	tk.version++;
	tk.price_minor = 1;
	assert_tb_ok(s->ticket_update(t, &tk));
	assert_tb_ok(s->cursor_set(t, "mailer", 5));
	s->rollback(t);
	append_events(s, 1, 2, 0, seqs);

	t = rbegin(s);
	assert_tb_status(s->user_get(t, u.id, &got_user), TB_ENOTFOUND);
	s->rollback(t);
	t = rbegin(s);
	assert_tb_ok(s->ticket_get(t, tk.id, &got_ticket));
	assert_ticket_equal(&got_ticket, &w.ticket);
	assert_tb_ok(s->event_last_seq(t, &last));
	assert_int_equal(last, 0);
	assert_tb_ok(s->cursor_get(t, "mailer", &seq));
	assert_int_equal(seq, 0);
	assert_tb_ok(s->commit(t));
	e = read_events(s, 0, 10);
	assert_int_equal(e.n, 0);
}

static void commit__makes_writes_visible_to_a_new_read_txn(void **state)
{
	tb_storage *s = *state;
	tb_user_row u = user_row(3), got;
	tb_storage_txn *t = wbegin(s);
	int64_t seqs[1];

	assert_tb_ok(s->user_insert(t, &u));
	assert_tb_ok(s->commit(t));
	append_events(s, 1, 1, 1, seqs);
	t = rbegin(s);
	assert_tb_ok(s->user_get(t, u.id, &got));
	assert_tb_ok(s->commit(t));
	assert_user_equal(&got, &u);
	assert_int_equal(read_events(s, 0, 10).n, 1);
}

static void read_txn__refuses_writes(void **state)
{
	tb_storage *s = *state;
	tb_user_row u = user_row(3), got;
	tb_storage_txn *t = rbegin(s);

	assert_true(s->user_insert(t, &u) != TB_OK);
	s->rollback(t);
	t = rbegin(s);
	assert_tb_status(s->user_get(t, u.id, &got), TB_ENOTFOUND);
	s->rollback(t);
}

#define THREADS 4
#define INCREMENTS 200

struct worker {
	pthread_t thread;
	tb_storage *s;
	const char *ticket_id;
	int write;
	int loops;
	int failures;         /* counted here: cmocka asserts are not thread-safe */
	tb_status last_error;
	int64_t last_version; /* readers: versions must never go back */
};

/* One get + version-bumped update in a write transaction, retried on TB_EBUSY. */
static tb_status bump_once(tb_storage *s, const char *ticket_id)
{
	for (int attempt = 0; attempt < 1000; attempt++) {
		tb_storage_txn *t;
		tb_ticket_row row;
		tb_status st = s->begin(s, 1, &t);

		if (st == TB_OK) {
			st = s->ticket_get(t, ticket_id, &row);
			if (st == TB_OK) {
				row.version++;
				st = s->ticket_update(t, &row);
			}
			if (st == TB_OK)
				st = s->commit(t);
			else
				s->rollback(t);
		}
		if (st != TB_EBUSY)
			return st;
	}
	return TB_EBUSY;
}

/* One read transaction; the version seen must not be older than the last one. */
static tb_status read_once(struct worker *wk)
{
	tb_storage_txn *t;
	tb_ticket_row row;
	tb_status st = wk->s->begin(wk->s, 0, &t);

	if (st != TB_OK)
		return st;
	st = wk->s->ticket_get(t, wk->ticket_id, &row);
	if (st == TB_OK && row.version < wk->last_version)
		st = TB_EINTERNAL;
	if (st == TB_OK) {
		wk->last_version = row.version;
		return wk->s->commit(t);
	}
	wk->s->rollback(t);
	return st;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;

	for (int i = 0; i < wk->loops; i++) {
		tb_status st = wk->write ? bump_once(wk->s, wk->ticket_id) : read_once(wk);

		if (st != TB_OK && st != TB_EBUSY) {
			wk->failures++;
			wk->last_error = st;
		}
	}
	return NULL;
}

static void run_workers(struct worker *wk, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_join(wk[i].thread, NULL), 0);
	for (int i = 0; i < n; i++) {
		if (wk[i].failures)
			print_error("worker %d: %d failures, last %d\n", i, wk[i].failures,
				(int)wk[i].last_error);
		assert_int_equal(wk[i].failures, 0);
	}
}

static int64_t ticket_version(tb_storage *s, const char *id)
{
	tb_ticket_row row;
	tb_storage_txn *t = rbegin(s);

	assert_tb_ok(s->ticket_get(t, id, &row));
	assert_tb_ok(s->commit(t));
	return row.version;
}

static void begin__serialises_concurrent_write_txns_without_lost_updates(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	struct worker wk[THREADS];

	memset(wk, 0, sizeof wk);
	for (int i = 0; i < THREADS; i++) {
		wk[i].s = s;
		wk[i].ticket_id = w.ticket.id;
		wk[i].write = 1;
		wk[i].loops = INCREMENTS;
	}
	run_workers(wk, THREADS);
	assert_int_equal(ticket_version(s, w.ticket.id), 1 + THREADS * INCREMENTS);
}

static void begin__lets_readers_run_beside_writers_and_see_committed_rows(void **state)
{
	tb_storage *s = *state;
	struct world w = seed_world(s);
	struct worker wk[THREADS];

	memset(wk, 0, sizeof wk);
	for (int i = 0; i < THREADS; i++) {
		wk[i].s = s;
		wk[i].ticket_id = w.ticket.id;
		wk[i].write = i < 2;
		wk[i].loops = INCREMENTS / 2;
	}
	run_workers(wk, THREADS);
	assert_int_equal(ticket_version(s, w.ticket.id), 1 + 2 * INCREMENTS / 2);
}

static void checkpoint__succeeds_outside_transactions_when_provided(void **state)
{
	tb_storage *s = *state;
	int64_t seqs[3];

	if (!s->checkpoint)
		skip();
	append_events(s, 1, 3, 1, seqs);
	assert_tb_ok(s->checkpoint(s));
	assert_int_equal(read_events(s, 0, 10).n, 3);
}

static void adapter__declares_version_and_every_required_method(void **state)
{
	tb_storage *s = *state;

	assert_int_equal(s->version, TB_STORAGE_VERSION);
	assert_non_null(s->name);
	assert_true(s->begin && s->commit && s->rollback && s->destroy);
	assert_true(s->user_insert && s->user_get && s->user_get_by_email && s->user_update);
	assert_true(s->session_insert && s->session_get && s->session_delete &&
		s->session_delete_for_user);
	assert_true(s->ticket_insert && s->ticket_get && s->ticket_update && s->ticket_list);
	assert_true(s->order_insert && s->order_get && s->order_update && s->order_list_by_buyer &&
		s->order_list_due && s->order_min_expiry);
	assert_true(s->charge_insert && s->charge_get && s->charge_update &&
		s->charge_get_latest_for_order && s->charge_get_by_provider_id &&
		s->charge_list_due && s->charge_min_next_attempt);
	assert_true(s->event_append && s->event_read && s->event_last_seq);
	assert_true(s->cursor_get && s->cursor_set && s->seen_insert);
}

/* ---------------------------------------------------------------------
 * The suite.
 */

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int tb_storage_contract_run(const char *adapter_name, tb_storage_contract_open_fn open_fresh,
	void *ctx)
{
	const struct CMUnitTest cases[] = {
		CASE(adapter__declares_version_and_every_required_method),
		CASE(user_insert__round_trips_every_field),
		CASE(user_get__reports_unknown_id_and_email_as_not_found),
		CASE(user_insert__refuses_taken_email),
		CASE(user_insert__refuses_duplicate_id),
		CASE(user_update__refuses_taken_email),
		CASE(user_update__checks_version_conflict_and_not_found),
		CASE(session_insert__round_trips_every_field),
		CASE(session_get__reports_unknown_hash_as_not_found),
		CASE(session_delete__removes_one_and_ignores_absent),
		CASE(session_delete_for_user__keeps_named_session_and_other_users),
		CASE(session_delete_for_user__removes_all_when_keep_is_null),
		CASE(ticket_insert__round_trips_every_field),
		CASE(ticket_insert__refuses_duplicate_id),
		CASE(ticket_update__checks_version_conflict_and_not_found),
		CASE(ticket_list__available_only_skips_unlisted_and_locked),
		CASE(ticket_list__filters_by_owner_alone_and_with_available_only),
		CASE(ticket_list__matches_title_case_insensitively),
		CASE(ticket_list__treats_like_wildcards_in_title_literally),
		CASE(ticket_list__pages_by_id_with_keyset_and_limit),
		CASE(ticket_list__keyset_pages_survive_inserts_between_pages),
		CASE(ticket_list__stops_at_callback_status_and_returns_it),
		CASE(ticket_list__callback_may_use_the_same_transaction),
		CASE(order_insert__round_trips_every_field),
		CASE(order_insert__refuses_second_live_order_for_ticket),
		CASE(order_insert__refuses_second_live_order_in_same_transaction),
		CASE(order_update__refuses_making_second_order_live),
		CASE(order_insert__allows_new_live_order_once_first_is_finished),
		CASE(order_update__checks_version_conflict_and_not_found),
		CASE(order_list_by_buyer__pages_by_id_and_skips_other_buyers),
		CASE(order_list_due__returns_earliest_first_up_to_limit),
		CASE(order_list_due__excludes_future_and_other_status),
		CASE(order_list_due__callback_may_update_the_listed_orders),
		CASE(order_min_expiry__reports_earliest_of_status_or_no_deadline),
		CASE(charge_insert__round_trips_every_field),
		CASE(charge_update__checks_version_conflict_and_not_found),
		CASE(charge_get_latest_for_order__picks_newest_by_created_then_id),
		CASE(charge_get_by_provider_id__finds_charge_or_not_found),
		CASE(charge_list_due__returns_due_earliest_first_and_skips_unscheduled),
		CASE(charge_min_next_attempt__ignores_unscheduled_or_reports_no_deadline),
		CASE(event_append__assigns_strictly_increasing_seq),
		CASE(event_read__returns_events_after_seq_in_order_up_to_limit),
		CASE(event_last_seq__is_zero_when_empty_then_the_newest),
		CASE(cursor_set__inserts_then_overwrites_and_get_is_zero_when_unknown),
		CASE(seen_insert__refuses_a_key_seen_before),
		CASE(rollback__discards_writes_and_appended_events),
		CASE(commit__makes_writes_visible_to_a_new_read_txn),
		CASE(read_txn__refuses_writes),
		CASE(begin__serialises_concurrent_write_txns_without_lost_updates),
		CASE(begin__lets_readers_run_beside_writers_and_see_committed_rows),
		CASE(checkpoint__succeeds_outside_transactions_when_provided),
	};
	char name[128];

	suite.open = open_fresh;
	suite.ctx = ctx;
	snprintf(name, sizeof name, "storage contract: %s", adapter_name);
	return _cmocka_run_group_tests(name, cases, sizeof cases / sizeof cases[0], NULL, NULL);
}
