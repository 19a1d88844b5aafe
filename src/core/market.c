/*
 * The market: options, open/close, the transaction runner, tick.
 */
#include "internal.h"

#include <sched.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

tb_status tb_market_options_init(tb_market_options *opts, unsigned int version)
{
	if (!opts)
		return tb_error_set(TB_EINVAL, "opts", "options must not be NULL");
	if (version != TB_MARKET_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, "version", "unknown market options version %u", version);
	tb_market_options init = TB_MARKET_OPTIONS_INIT;
	*opts = init;
	return TB_OK;
}

static int64_t real_now(void *payload)
{
	(void)payload;
	return tb_clock_real_now_ms();
}

int64_t tb_market__now(const tb_market *m)
{
	return m->clock.now_ms(m->clock.payload);
}

int64_t tb_market_now_ms(const tb_market *market)
{
	return market ? tb_market__now(market) : 0;
}

int64_t tb_market_lock_ms(const tb_market *market)
{
	return market ? market->lock_ms : 0;
}

const char *tb_version(void)
{
	return TB_VERSION_STRING;
}

tb_status tb_check__market(const tb_market *m)
{
	return m ? TB_OK : tb_error_set(TB_EINVAL, "market", "market must not be NULL");
}

tb_status tb_check__out(const void *out)
{
	return out ? TB_OK : tb_error_set(TB_EINVAL, "out", "out must not be NULL");
}

tb_status tb_check__id(const char *id, const char *field, const char *what)
{
	if (!id || !*id)
		return tb_error_set(TB_EINVAL, field, "%s is required", field);
	if (!tb_id__valid(id))
		return tb_error_set(TB_ENOTFOUND, NULL, "%s not found", what);
	return TB_OK;
}

static tb_status check_storage(const tb_storage *s)
{
	if (s->version == 0 || s->version > TB_STORAGE_VERSION)
		return tb_error_set(TB_EVERSION, "storage", "unknown storage adapter version %u", s->version);
	/* Every method but checkpoint is required. */
#define REQUIRE(method) \
	if (!s->method) \
		return tb_error_set(TB_EINVAL, "storage", "storage adapter lacks required method %s", #method)
	REQUIRE(begin); REQUIRE(commit); REQUIRE(rollback);
	REQUIRE(user_insert); REQUIRE(user_get); REQUIRE(user_get_by_email); REQUIRE(user_update);
	REQUIRE(session_insert); REQUIRE(session_get); REQUIRE(session_delete); REQUIRE(session_delete_for_user);
	REQUIRE(ticket_insert); REQUIRE(ticket_get); REQUIRE(ticket_update); REQUIRE(ticket_list);
	REQUIRE(order_insert); REQUIRE(order_get); REQUIRE(order_update); REQUIRE(order_list_by_buyer);
	REQUIRE(order_list_due); REQUIRE(order_min_expiry);
	REQUIRE(charge_insert); REQUIRE(charge_get); REQUIRE(charge_update); REQUIRE(charge_get_latest_for_order);
	REQUIRE(charge_get_by_provider_id); REQUIRE(charge_list_due); REQUIRE(charge_min_next_attempt);
	REQUIRE(event_append); REQUIRE(event_read); REQUIRE(event_last_seq);
	REQUIRE(cursor_get); REQUIRE(cursor_set); REQUIRE(seen_insert); REQUIRE(destroy);
#undef REQUIRE
	return TB_OK;
}

static tb_status apply_options(tb_market *m, const tb_market_options *o)
{
	if (o->version == 0 || o->version > TB_MARKET_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, "version", "unknown market options version %u", o->version);
	if (o->lock_ms < 0)
		return tb_error_set(TB_EINVAL, "lock_ms", "lock window must not be negative");
	if (o->session_ttl_ms < 0)
		return tb_error_set(TB_EINVAL, "session_ttl_ms", "session lifetime must not be negative");
	if (o->payment_grace_ms < 0)
		return tb_error_set(TB_EINVAL, "payment_grace_ms", "payment grace must not be negative");
	if (o->payment_retry_ms < 0)
		return tb_error_set(TB_EINVAL, "payment_retry_ms", "payment retry delay must not be negative");
	m->lock_ms = o->lock_ms ? o->lock_ms : TB_DEFAULT_LOCK_MS;
	m->session_ttl_ms = o->session_ttl_ms ? o->session_ttl_ms : TB_DEFAULT_SESSION_TTL_MS;
	m->payment_grace_ms = o->payment_grace_ms ? o->payment_grace_ms : TB_DEFAULT_PAYMENT_GRACE_MS;
	m->payment_retry_ms = o->payment_retry_ms ? o->payment_retry_ms : 1000;

	if (o->clock) {
		if (o->clock->version == 0 || o->clock->version > TB_CLOCK_VERSION)
			return tb_error_set(TB_EVERSION, "clock", "unknown clock version %u", o->clock->version);
		if (!o->clock->now_ms)
			return tb_error_set(TB_EINVAL, "clock", "clock has no now_ms function");
		m->clock = *o->clock;
	} else {
		m->clock.version = TB_CLOCK_VERSION;
		m->clock.now_ms = real_now;
		m->clock.payload = NULL;
	}

	if (o->payments) {
		const tb_payment_provider *p = o->payments;
		if (p->version == 0 || p->version > TB_PAYMENT_PROVIDER_VERSION)
			return tb_error_set(TB_EVERSION, "payments", "unknown payment provider version %u", p->version);
		if (!p->charge || !p->refund || !p->destroy || !p->name)
			return tb_error_set(TB_EINVAL, "payments", "payment provider lacks a required method");
	}
	m->payments = o->payments;

	switch (o->password_cost) {
	case TB_PASSWORD_COST_MIN:
		m->pw_opslimit = crypto_pwhash_OPSLIMIT_MIN;
		m->pw_memlimit = crypto_pwhash_MEMLIMIT_MIN;
		break;
	case TB_PASSWORD_COST_DEFAULT:
	case TB_PASSWORD_COST_INTERACTIVE:
		m->pw_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		m->pw_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
		break;
	case TB_PASSWORD_COST_MODERATE:
		m->pw_opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
		m->pw_memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
		break;
	default:
		return tb_error_set(TB_EINVAL, "password_cost", "unknown password cost %d", (int)o->password_cost);
	}

	if (o->late_payment != TB_LATE_PAYMENT_REFUND && o->late_payment != TB_LATE_PAYMENT_HONOUR_IF_AVAILABLE)
		return tb_error_set(TB_EINVAL, "late_payment", "unknown late-payment policy %d", (int)o->late_payment);
	m->late_payment = o->late_payment;

	const char *cur = o->default_currency ? o->default_currency : "USD";
	if (tb_currency_exponent(cur) < 0)
		return tb_error_set(TB_EINVAL, "default_currency", "currency must be a three-letter ISO 4217 code");
	for (int i = 0; i < 3; i++)
		m->default_currency[i] = (char)(cur[i] & ~0x20);
	m->default_currency[3] = '\0';
	return TB_OK;
}

static tb_status market_new(tb_market **out, const tb_market_options *opts)
{
	if (sodium_init() < 0)
		return tb_error_set(TB_EINTERNAL, NULL, "libsodium failed to initialise");
	tb_market *m = calloc(1, sizeof(*m));
	if (!m)
		return tb_error__oom();
	tb_market_options defaults = TB_MARKET_OPTIONS_INIT;
	tb_status st = apply_options(m, opts ? opts : &defaults);
	if (st != TB_OK) {
		free(m);
		return st;
	}
	/*
	 * A hash to verify against when the email is unknown, so that an
	 * unknown email costs the same argon2id work as a wrong password.
	 */
	char random_pw[64];
	tb_token__new(random_pw);

	if (crypto_pwhash_str(m->dummy_hash, random_pw, strlen(random_pw), m->pw_opslimit, m->pw_memlimit) != 0) {
		free(m);
		return tb_error__oom();
	}
	sodium_memzero(random_pw, sizeof(random_pw));
	pthread_mutex_init(&m->subs_lock, NULL);
	pthread_cond_init(&m->subs_cond, NULL);
	pthread_mutex_init(&m->inflight_lock, NULL);
	tb_group__init(&m->group);
	*out = m;
	return TB_OK;
}

tb_status tb_market_open_take(tb_market **out, tb_storage *storage, const tb_market_options *opts)
{
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	*out = NULL;
	if (!storage)
		return tb_error_set(TB_EINVAL, "storage", "storage must not be NULL");
	tb_status st = check_storage(storage);
	if (st != TB_OK)
		return st;
	tb_market *m = NULL;
	st = market_new(&m, opts);
	if (st != TB_OK)
		return st;
	m->storage = storage;
	m->grouped = tb_group__supported(storage);
	*out = m;
	return TB_OK;
}

tb_status tb_market_open(tb_market **out, const tb_market_options *opts)
{
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	*out = NULL;
	if (opts && (opts->version == 0 || opts->version > TB_MARKET_OPTIONS_VERSION))
		return tb_error_set(TB_EVERSION, "version", "unknown market options version %u", opts->version);
	tb_sqlite_options sq = TB_SQLITE_OPTIONS_INIT;
	if (opts)
		sq.sync = opts->sync;
	const char *path = (opts && opts->db && *opts->db) ? opts->db : ":memory:";
	tb_storage *storage = NULL;
	/* A PostgreSQL URI opens the PostgreSQL adapter (TB_EINVAL if built without it). */
	tb_status st = strncmp(path, "postgres://", 11) == 0 || strncmp(path, "postgresql://", 13) == 0
		? tb_storage_postgres_open(&storage, path, NULL)
		: tb_storage_sqlite_open(&storage, path, &sq);
	if (st != TB_OK)
		return st;
	st = tb_market_open_take(out, storage, opts);
	if (st != TB_OK) {
		tb_error_saved saved;
		tb_error__save(&saved);
		tb_storage_free(storage);
		tb_error__restore(&saved);
	}
	return st;
}

void tb_market_close(tb_market *market)
{
	if (!market)
		return;
	tb_events__free_subscribers(market);
	tb_storage_free(market->storage);
	pthread_mutex_destroy(&market->subs_lock);
	pthread_cond_destroy(&market->subs_cond);
	pthread_mutex_destroy(&market->inflight_lock);
	tb_group__destroy(&market->group);
	free(market->inflight);
	sodium_memzero(market->dummy_hash, sizeof(market->dummy_hash));
	free(market);
}

void tb_market__after_commit(tb_market *m)
{
	if (m->storage->version < 2 || !m->storage->after_commit)
		return;
	tb_error_saved saved;
	tb_error__save(&saved);
	m->storage->after_commit(m->storage);
	tb_error__restore(&saved);
}

tb_status tb_market__run(tb_market *m, int write, tb_txn_fn fn, void *ctx)
{
	/* Writes share commits with concurrent writes when the adapter has savepoints. */
	if (write && m->grouped)
		return tb_group__run(m, fn, ctx);
	tb_status st = TB_EBUSY;
	for (int attempt = 0; attempt < TB_BUSY_RETRIES; attempt++) {
		tb_storage_txn *txn = NULL;
		st = m->storage->begin(m->storage, write, &txn);
		if (st == TB_OK) {
			st = fn(m, txn, ctx);
			if (st == TB_OK) {
				st = m->storage->commit(txn);
				if (st == TB_OK && write)
					tb_market__after_commit(m);
			} else {
				tb_error_saved saved;
				tb_error__save(&saved);
				m->storage->rollback(txn);
				tb_error__restore(&saved);
			}
		}
		if (st != TB_EBUSY)
			return st;
		sched_yield();
	}
	return st;
}

tb_status tb_market_tick(tb_market *market, tb_tick_stats *stats_out)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (stats_out && (stats_out->version == 0 || stats_out->version > TB_TICK_STATS_VERSION))
		return tb_error_set(TB_EVERSION, "stats_out", "unknown tick stats version %u", stats_out->version);
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	int64_t now = tb_market__now(market);
	st = tb_orders__expire_due(market, now, &stats.orders_expired);
	if (st == TB_OK)
		st = tb_payments__retry_due(market, now, &stats);
	if (st == TB_OK)
		st = tb_events__dispatch_all(market, &stats.events_delivered, &stats.subscriber_failures);
	if (stats_out)
		*stats_out = stats;
	return st;
}

typedef struct deadline_ctx {
	int64_t grace;
	int64_t out;
} deadline_ctx;

static tb_status deadline_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	deadline_ctx *ctx = vctx;
	int64_t created, awaiting, charge;
	tb_status st = m->storage->order_min_expiry(txn, TB_ORDER_CREATED, &created);
	if (st == TB_OK)
		st = m->storage->order_min_expiry(txn, TB_ORDER_AWAITING_PAYMENT, &awaiting);
	if (st == TB_OK)
		st = m->storage->charge_min_next_attempt(txn, &charge);
	if (st != TB_OK)
		return st;
	if (awaiting != TB_NO_DEADLINE)
		awaiting += ctx->grace;
	ctx->out = created;
	if (awaiting < ctx->out)
		ctx->out = awaiting;
	if (charge < ctx->out)
		ctx->out = charge;
	return TB_OK;
}

tb_status tb_market_set_lead_hook(tb_market *market, tb_lead_hook_fn fn, void *arg)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	tb_group__set_hook(market, fn, arg);
	return TB_OK;
}

tb_status tb_market_lead(tb_market *market, size_t *ran_out)
{
	tb_status st = tb_check__market(market);
	if (ran_out)
		*ran_out = 0;
	if (st != TB_OK)
		return st;
	size_t ran = tb_group__lead(market);
	if (ran_out)
		*ran_out = ran;
	return TB_OK;
}

tb_status tb_market_next_deadline(tb_market *market, int64_t *out)
{
	tb_status st = tb_check__market(market);
	if (st == TB_OK)
		st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	deadline_ctx ctx = { market->payment_grace_ms, TB_NO_DEADLINE };
	st = tb_market__run(market, 0, deadline_txn, &ctx);
	if (st != TB_OK)
		return st;
	if (tb_events__any_behind(market)) {
		int64_t now = tb_market__now(market);
		if (now < ctx.out)
			ctx.out = now;
	}
	*out = ctx.out;
	return TB_OK;
}

tb_status tb_market_checkpoint(tb_market *market)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (!market->storage->checkpoint)
		return TB_OK;
	return market->storage->checkpoint(market->storage);
}

void *tb_vec__push(tb_vec *v)
{
	if (v->count == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *items = realloc(v->items, cap * v->item_size);
		if (!items)
			return NULL;
		v->items = items;
		v->cap = cap;
	}
	void *slot = (char *)v->items + v->count * v->item_size;
	memset(slot, 0, v->item_size);
	v->count++;
	return slot;
}

void tb_vec__free_items(tb_vec *v)
{
	free(v->items);
	v->items = NULL;
	v->count = v->cap = 0;
}

void *tb_vec__into_page(tb_vec *v, size_t limit)
{
	if (v->count > limit) {
		v->count = limit;
		v->has_next = true;
		tb_str__copy(v->next_cursor, sizeof(v->next_cursor), (const char *)v->items + (limit - 1) * v->item_size);
	}
	tb_vec *page = malloc(sizeof(*page));
	if (!page) {
		tb_vec__free_items(v);
		return NULL;
	}
	*page = *v;
	return page;
}

const void *tb_vec__at(const tb_vec *v, size_t i)
{
	if (!v || i >= v->count)
		return NULL;
	return (const char *)v->items + i * v->item_size;
}

const char *tb_vec__cursor(const tb_vec *v)
{
	return (v && v->has_next) ? v->next_cursor : NULL;
}
