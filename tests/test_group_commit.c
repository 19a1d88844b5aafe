/*
 * Group commit: concurrent write operations share one storage transaction,
 * each in its own savepoint.  What every caller must still see: its own
 * result and error detail, its writes kept even when a neighbour in the
 * group fails, a gap-free outbox in commit order, one winner per ticket.
 *
 * Groups form by themselves only under load, so the deterministic cases
 * wrap the SQLite adapter and hold the first transaction's begin until the
 * other operations are queued behind it (white box: the test reads the
 * market's queue).  Nothing here depends on timing.
 */
#include "support/tb_test.h"

#include "core/internal.h"

#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a wrapping adapter -------------------------------------------------------- */

static struct wrap {
	tb_storage base; /* the inner adapter's vtable, a few methods replaced */
	tb_storage *inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int hold;                /* the next begin waits until released */
	int holding;             /* a begin is waiting */
	int lose_next_rollback;  /* the next savepoint_rollback reports the transaction lost */
	int begins, rollbacks_lost;
} w;

static tb_status wrap_begin(tb_storage *self, int write, tb_storage_txn **out)
{
	(void)self;
	pthread_mutex_lock(&w.mu);
	w.begins++;
	if (w.hold) {
		w.hold = 0;
		w.holding = 1;
		pthread_cond_broadcast(&w.cv);
		while (w.holding)
			pthread_cond_wait(&w.cv, &w.mu);
	}
	pthread_mutex_unlock(&w.mu);
	return w.inner->begin(w.inner, write, out);
}

static tb_status wrap_savepoint_rollback(tb_storage_txn *txn)
{
	tb_status st = w.inner->savepoint_rollback(txn);
	pthread_mutex_lock(&w.mu);
	int lose = w.lose_next_rollback;
	w.lose_next_rollback = 0;
	if (lose)
		w.rollbacks_lost++;
	pthread_mutex_unlock(&w.mu);
	if (lose)
		return tb_error_set(TB_ESTORAGE, NULL, "test: the transaction was lost");
	return st;
}

static void wrap_destroy(tb_storage *self)
{
	(void)self;
	w.inner->destroy(w.inner);
	w.inner = NULL;
}

static tb_status wrap_checkpoint(tb_storage *self)
{
	(void)self;
	return w.inner->checkpoint(w.inner);
}

static void wrap_after_commit(tb_storage *self)
{
	(void)self;
	w.inner->after_commit(w.inner);
}

typedef struct fixture {
	tbt *t;          /* clock, provider, file name; t->m is the wrapped market */
	char *seller, *buyers[4], *tickets[8];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->t = tbt_prepare(1);
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	assert_tb_ok(tb_storage_sqlite_open(&w.inner, f->t->db, NULL));
	w.base = *w.inner;
	w.base.begin = wrap_begin;
	w.base.savepoint_rollback = wrap_savepoint_rollback;
	w.base.checkpoint = wrap_checkpoint;
	w.base.after_commit = wrap_after_commit;
	w.base.destroy = wrap_destroy;

	static tb_clock clock;
	tb_clock_manual_bind(f->t->clock, &clock);
	f->t->opts.clock = &clock;
	f->t->opts.payments = f->t->pay;
	f->t->opts.password_cost = TB_PASSWORD_COST_MIN;
	f->t->opts.lock_ms = TBT_LOCK_MS;
	assert_tb_ok(tb_market_open_take(&f->t->m, &w.base, &f->t->opts));
	assert_true(f->t->m->grouped);

	f->seller = tbt_user(f->t, "seller@example.com");
	for (int i = 0; i < 4; i++) {
		char email[64];
		snprintf(email, sizeof(email), "buyer%d@example.com", i);
		f->buyers[i] = tbt_user(f->t, email);
	}
	for (int i = 0; i < 8; i++)
		f->tickets[i] = tbt_ticket(f->t, f->seller, "Concert", 1000 + i);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	free(f->seller);
	for (int i = 0; i < 4; i++)
		free(f->buyers[i]);
	for (int i = 0; i < 8; i++)
		free(f->tickets[i]);
	tbt_free(f->t);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	free(f);
	return 0;
}

/* ---- operations run on their own threads ------------------------------------- */

typedef struct call {
	pthread_t th;
	tb_market *m;
	const char *buyer, *ticket;
	tb_status st;
	tb_error err;            /* tb_last_error() as seen on the caller's thread */
	char message[512], field[64];
	char order_id[TB_ID_SIZE];
} call;

static void *order_thread(void *p)
{
	call *c = p;
	tb_order *o = NULL;
	tb_error_clear();
	c->st = tb_order_create(&o, c->m, c->buyer, c->ticket);
	const tb_error *e = tb_last_error();
	c->err = *e;
	snprintf(c->message, sizeof(c->message), "%s", e->message ? e->message : "");
	snprintf(c->field, sizeof(c->field), "%s", e->field ? e->field : "");
	if (o)
		snprintf(c->order_id, sizeof(c->order_id), "%s", tb_order_id(o));
	tb_order_free(o);
	return NULL;
}

/* Start `c` on its own thread and wait until its operation is queued behind the held one. */
static void start_queued(call *c, size_t expect_queued)
{
	assert_int_equal(pthread_create(&c->th, NULL, order_thread, c), 0);
	while (tb_group__queued(c->m) < expect_queued)
		sched_yield();
}

/* Start the first operation and wait until its transaction's begin is held. */
static void start_held(call *c)
{
	pthread_mutex_lock(&w.mu);
	w.hold = 1;
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(pthread_create(&c->th, NULL, order_thread, c), 0);
	pthread_mutex_lock(&w.mu);
	while (!w.holding)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
}

static void release_held(void)
{
	pthread_mutex_lock(&w.mu);
	w.holding = 0;
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.mu);
}

/* Every event in seq order: seqs 1..n with no gap; returns n. */
static int64_t check_gap_free(tb_market *m)
{
	int64_t after = 0;
	for (;;) {
		tb_event_page *p = NULL;
		assert_tb_ok(tb_event_read(&p, m, after, 500));
		size_t n = tb_event_page_count(p);
		for (size_t i = 0; i < n; i++) {
			int64_t seq = tb_event_seq(tb_event_page_at(p, i));
			assert_int_equal(seq, after + 1);
			after = seq;
		}
		tb_event_page_free(p);
		if (n < 500)
			return after;
	}
}

/* The seq of the event of `type` for `aggregate`, or 0. */
static int64_t seq_of(tb_market *m, tb_event_type type, const char *aggregate, int64_t from)
{
	tb_event_page *p = NULL;
	int64_t found = 0;
	assert_tb_ok(tb_event_read(&p, m, from, 500));
	for (size_t i = 0; i < tb_event_page_count(p) && !found; i++) {
		const tb_event *e = tb_event_page_at(p, i);
		if (tb_event_type_get(e) == type && strcmp(tb_event_aggregate_id(e), aggregate) == 0)
			found = tb_event_seq(e);
	}
	tb_event_page_free(p);
	return found;
}

static void assert_order_live(tbt *t, const char *buyer, const char *order_id, const char *ticket)
{
	tb_order *o = NULL;
	assert_tb_ok(tb_order_get(&o, t->m, buyer, order_id));
	assert_int_equal(tb_order_status_get(o), TB_ORDER_CREATED);
	assert_string_equal(tb_order_ticket_id(o), ticket);
	tb_order_free(o);
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, t->m, ticket));
	assert_string_equal(tb_ticket_order_id(tk), order_id);
	tb_ticket_free(tk);
}

/* ---- cases ------------------------------------------------------------------------- */

/* ---- asynchronous orders (tb_order_create_by_session_async) ------------------------ */

typedef struct async_call {
	pthread_t on;            /* the thread that ran the callback */
	int calls;
	tb_status st;
	char message[512];
	char order_id[TB_ID_SIZE], ticket_order_id[TB_ID_SIZE];
} async_call;

static void async_done(tb_status st, tb_order *order, tb_ticket *ticket, void *arg)
{
	async_call *a = arg;
	a->on = pthread_self();
	a->calls++;
	a->st = st;
	snprintf(a->message, sizeof(a->message), "%s", st == TB_OK ? "" : tb_last_error()->message);
	assert_true((st == TB_OK) == (order != NULL) && (st == TB_OK) == (ticket != NULL));
	if (order) {
		snprintf(a->order_id, sizeof(a->order_id), "%s", tb_order_id(order));
		snprintf(a->ticket_order_id, sizeof(a->ticket_order_id), "%s", tb_ticket_order_id(ticket));
	}
	tb_order_free(order);
	tb_ticket_free(ticket);
}

static tb_session *signin(tb_market *m, int buyer)
{
	char email[64];
	tb_session *s = NULL;
	snprintf(email, sizeof(email), "buyer%d@example.com", buyer);
	assert_tb_ok(tb_user_signin(&s, m, email, "correct horse battery"));
	return s;
}

/*
 * While another write's group runs, an asynchronous order returns at once
 * and that group's thread runs its callback, after the commit; a failing
 * one gets its own status and message; a waiting order queued behind them
 * is run by the same leader (the lead never goes to an asynchronous one).
 */
static void async__queued_behind_a_running_group_completes_on_its_thread(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	tb_session *s1 = signin(m, 1), *s2 = signin(m, 2);
	tb_session *seller = NULL;
	call a = { .m = m, .buyer = f->buyers[0], .ticket = f->tickets[0] };
	call d = { .m = m, .buyer = f->buyers[3], .ticket = f->tickets[3] };
	async_call b = { 0 }, c = { 0 }, own = { 0 };

	assert_tb_ok(tb_user_signin(&seller, m, "seller@example.com", "correct horse battery"));
	start_held(&a);
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s1), f->tickets[1], async_done, &b));
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(seller), f->tickets[4], async_done,
		&own));
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s2), f->tickets[2], async_done, &c));
	assert_int_equal(tb_group__queued(m), 3);
	assert_int_equal(b.calls + c.calls + own.calls, 0); /* nothing ran: a's group holds the writer */
	start_queued(&d, 4);
	release_held();
	pthread_join(a.th, NULL);
	pthread_join(d.th, NULL);

	assert_tb_ok(a.st);
	assert_tb_ok(d.st);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(own.calls, 1);
	assert_tb_ok(b.st);
	assert_tb_ok(c.st);
	assert_true(pthread_equal(b.on, a.th));
	assert_true(pthread_equal(c.on, a.th));
	assert_string_equal(b.ticket_order_id, b.order_id);
	assert_order_live(f->t, f->buyers[1], b.order_id, f->tickets[1]);
	assert_order_live(f->t, f->buyers[2], c.order_id, f->tickets[2]);
	assert_order_live(f->t, f->buyers[3], d.order_id, f->tickets[3]);
	assert_tb_status(own.st, TB_EFORBIDDEN);
	assert_string_equal(own.message, "you cannot order your own ticket");
	check_gap_free(m);
	tb_session_free(s1);
	tb_session_free(s2);
	tb_session_free(seller);
}

/* With no write running, the calling thread runs the order and its callback before returning. */
static void async__alone_runs_on_the_calling_thread(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	tb_session *s = signin(m, 0);
	async_call a = { 0 }, again = { 0 };
	int64_t before = tbt_last_seq(f->t);

	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[5], async_done, &a));
	assert_int_equal(a.calls, 1);
	assert_tb_ok(a.st);
	assert_true(pthread_equal(a.on, pthread_self()));
	assert_order_live(f->t, f->buyers[0], a.order_id, f->tickets[5]);
	assert_int_equal(tbt_last_seq(f->t), before + 2); /* OrderCreated, TicketUpdated */
	/* The same ticket again: refused in the transaction, reported to the callback. */
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[5], async_done, &again));
	assert_int_equal(again.calls, 1);
	assert_tb_status(again.st, TB_ELOCKED);
	assert_string_equal(again.message, "ticket is already reserved");
	assert_int_equal(tbt_last_seq(f->t), before + 2);
	/* Refused before queueing: the callback never runs. */
	async_call never = { 0 };
	assert_tb_status(tb_order_create_by_session_async(m, "not-a-token", f->tickets[6], async_done, &never),
		TB_EUNAUTH);
	assert_tb_status(tb_order_create_by_session_async(m, tb_session_token(s), "nope", async_done, &never),
		TB_ENOTFOUND);
	assert_tb_status(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[6], NULL, &never),
		TB_EINVAL);
	assert_string_equal(tb_last_error()->field, "done");
	assert_tb_status(tb_order_create_by_session_async(NULL, tb_session_token(s), f->tickets[6], async_done,
		&never), TB_EINVAL);
	assert_int_equal(never.calls, 0);
	tb_session_free(s);
}

static void group__failing_operation_undoes_only_its_own_writes(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	int64_t before = tbt_last_seq(f->t);
	call a = { .m = m, .buyer = f->buyers[0], .ticket = f->tickets[0] };
	call b = { .m = m, .buyer = f->buyers[1], .ticket = f->tickets[1] };
	call c = { .m = m, .buyer = f->seller, .ticket = f->tickets[2] };   /* own ticket: refused */
	call d = { .m = m, .buyer = f->buyers[2], .ticket = f->tickets[3] };

	start_held(&a);
	start_queued(&b, 1);
	start_queued(&c, 2);
	start_queued(&d, 3);
	int begins = w.begins;
	release_held();
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	pthread_join(c.th, NULL);
	pthread_join(d.th, NULL);
	/* b, c and d, queued while a ran, joined a's transaction before its commit. */
	assert_int_equal(w.begins, begins);

	assert_tb_ok(a.st);
	assert_tb_ok(b.st);
	assert_tb_ok(d.st);
	assert_int_equal(c.st, TB_EFORBIDDEN);
	assert_int_equal(c.err.status, TB_EFORBIDDEN);
	assert_string_equal(c.message, "you cannot order your own ticket");
	assert_order_live(f->t, f->buyers[0], a.order_id, f->tickets[0]);
	assert_order_live(f->t, f->buyers[1], b.order_id, f->tickets[1]);
	assert_order_live(f->t, f->buyers[2], d.order_id, f->tickets[3]);

	/* Three orders, two events each, gap-free, in queue order: a, b, d. */
	assert_int_equal(check_gap_free(m), before + 6);
	int64_t sa = seq_of(m, TB_EVENT_ORDER_CREATED, a.order_id, before);
	int64_t sb = seq_of(m, TB_EVENT_ORDER_CREATED, b.order_id, before);
	int64_t sd = seq_of(m, TB_EVENT_ORDER_CREATED, d.order_id, before);
	assert_int_equal(sa, before + 1);
	assert_int_equal(sb, before + 3);
	assert_int_equal(sd, before + 5);
	assert_int_equal(seq_of(m, TB_EVENT_TICKET_UPDATED, f->tickets[1], before), before + 4);
	assert_int_equal(seq_of(m, TB_EVENT_TICKET_UPDATED, f->tickets[3], before), before + 6);
}

static void group__later_operation_sees_earlier_writes_of_its_group(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	call a = { .m = m, .buyer = f->buyers[0], .ticket = f->tickets[7] };
	call b = { .m = m, .buyer = f->buyers[1], .ticket = f->tickets[0] };
	call c = { .m = m, .buyer = f->buyers[2], .ticket = f->tickets[0] }; /* same ticket as b */

	start_held(&a);
	start_queued(&b, 1);
	start_queued(&c, 2);
	release_held();
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	pthread_join(c.th, NULL);
	assert_tb_ok(a.st);
	assert_tb_ok(b.st);
	assert_int_equal(c.st, TB_ELOCKED);
	assert_int_equal(c.err.status, TB_ELOCKED);
	assert_string_equal(c.message, "ticket is already reserved");
	assert_order_live(f->t, f->buyers[1], b.order_id, f->tickets[0]);
	check_gap_free(m);
}

static void group__lost_transaction_reruns_the_operations_that_had_succeeded(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	int64_t before = tbt_last_seq(f->t);
	call a = { .m = m, .buyer = f->buyers[0], .ticket = f->tickets[4] };
	call b = { .m = m, .buyer = f->buyers[1], .ticket = f->tickets[5] };
	call c = { .m = m, .buyer = f->buyers[2], .ticket = "0190a000-0000-7000-8000-000000000000" };
	call d = { .m = m, .buyer = f->buyers[3], .ticket = f->tickets[6] };

	start_held(&a);
	start_queued(&b, 1);
	start_queued(&c, 2);
	start_queued(&d, 3);
	pthread_mutex_lock(&w.mu);
	w.lose_next_rollback = 1; /* undoing c "loses" the transaction b was in */
	pthread_mutex_unlock(&w.mu);
	release_held();
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	pthread_join(c.th, NULL);
	pthread_join(d.th, NULL);
	assert_int_equal(w.rollbacks_lost, 1);

	assert_tb_ok(a.st);
	assert_tb_ok(b.st);
	assert_tb_ok(d.st);
	assert_int_equal(c.st, TB_ENOTFOUND);
	assert_string_equal(c.message, "ticket not found");
	assert_order_live(f->t, f->buyers[1], b.order_id, f->tickets[5]);
	assert_order_live(f->t, f->buyers[3], d.order_id, f->tickets[6]);
	assert_int_equal(check_gap_free(m), before + 6);
}

/* ---- a lead hook: the host's thread runs asynchronous writes ------------------------- */

static atomic_int hook_calls;

static void count_hook(tb_market *m, void *arg)
{
	(void)m;
	(void)arg;
	atomic_fetch_add(&hook_calls, 1);
}

static void async__with_a_lead_hook_the_submitter_never_leads(void **state)
{
	fixture *f = *state;
	tb_market *m = f->t->m;
	tb_session *s = signin(m, 0);
	async_call a = { 0 }, b = { 0 }, c = { 0 };
	size_t ran = 99;

	atomic_store(&hook_calls, 0);
	assert_tb_ok(tb_market_set_lead_hook(m, count_hook, NULL));
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[0], async_done, &a));
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[1], async_done, &b));
	assert_int_equal(a.calls + b.calls, 0);       /* queued, not run */
	assert_int_equal(atomic_load(&hook_calls), 2); /* nobody leads: asked each time */
	assert_int_equal(tb_group__queued(m), 2);
	assert_tb_ok(tb_market_lead(m, &ran));
	assert_int_equal(ran, 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_true(pthread_equal(a.on, pthread_self()));
	assert_order_live(f->t, f->buyers[0], a.order_id, f->tickets[0]);
	assert_order_live(f->t, f->buyers[0], b.order_id, f->tickets[1]);
	assert_tb_ok(tb_market_lead(m, &ran));
	assert_int_equal(ran, 0);
	assert_tb_status(tb_market_lead(NULL, &ran), TB_EINVAL);
	assert_tb_status(tb_market_set_lead_hook(NULL, count_hook, NULL), TB_EINVAL);
	/* Without the hook again, the submitter runs it. */
	assert_tb_ok(tb_market_set_lead_hook(m, NULL, NULL));
	assert_tb_ok(tb_order_create_by_session_async(m, tb_session_token(s), f->tickets[2], async_done, &c));
	assert_int_equal(c.calls, 1);
	assert_int_equal(atomic_load(&hook_calls), 2);
	tb_session_free(s);
}

/* The host's lending thread for race(): runs tb_market_lead() whenever the hook asks. */
static struct lender {
	pthread_t th;
	tb_market *m;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool asked, stop;
	atomic_long ran;
} lender;

static void lender_hook(tb_market *m, void *arg)
{
	(void)m;
	(void)arg;
	pthread_mutex_lock(&lender.mu);
	lender.asked = true;
	pthread_cond_signal(&lender.cv);
	pthread_mutex_unlock(&lender.mu);
}

static void *lender_main(void *p)
{
	(void)p;
	pthread_mutex_lock(&lender.mu);
	while (!lender.stop) {
		if (!lender.asked) {
			pthread_cond_wait(&lender.cv, &lender.mu);
			continue;
		}
		lender.asked = false;
		pthread_mutex_unlock(&lender.mu);
		size_t ran = 0;
		if (tb_market_lead(lender.m, &ran) == TB_OK)
			atomic_fetch_add(&lender.ran, (long)ran);
		pthread_mutex_lock(&lender.mu);
	}
	pthread_mutex_unlock(&lender.mu);
	return NULL;
}

/* ---- many threads, no holding: whatever groups form ------------------------------- */

enum { RACERS = 8, HOT = 6, ROUNDS = 40 };

typedef struct racer racer;
typedef struct async_race {
	racer *r;
	int ticket;
} async_race;

struct racer {
	pthread_t th;
	tb_market *m;
	const char *buyer;
	char *const *tickets;
	int index;
	int wins[HOT], refused, wrong_detail, unexpected;
	/* Asynchronous orders (every other one when `async`): counted by their callbacks. */
	bool async;
	const char *token;
	async_race calls[ROUNDS];
	atomic_int async_wins[HOT], async_refused, async_calls, async_unexpected;
};

static void race_done(tb_status st, tb_order *order, tb_ticket *ticket, void *arg)
{
	async_race *a = arg;
	atomic_fetch_add(&a->r->async_calls, 1);
	if (st == TB_OK)
		atomic_fetch_add(&a->r->async_wins[a->ticket], 1);
	else if (st == TB_ELOCKED && strcmp(tb_last_error()->message, "ticket is already reserved") == 0)
		atomic_fetch_add(&a->r->async_refused, 1);
	else
		atomic_fetch_add(&a->r->async_unexpected, 1);
	tb_order_free(order);
	tb_ticket_free(ticket);
}

static void *racer_main(void *p)
{
	racer *r = p;
	for (int k = 0; k < ROUNDS; k++) {
		int i = (k + r->index) % HOT;
		tb_order *o = NULL;
		tb_status st;
		if (r->async && k % 2 == 0) {
			/* Every other order without waiting: its callback counts it, on some leader's thread. */
			async_race *a = &r->calls[k];
			a->r = r;
			a->ticket = i;
			st = tb_order_create_by_session_async(r->m, r->token, r->tickets[i], race_done, a);
			if (st != TB_OK)
				atomic_fetch_add(&r->async_unexpected, 1);
			continue;
		}
		st = tb_order_create(&o, r->m, r->buyer, r->tickets[i]);
		if (st == TB_OK) {
			r->wins[i]++;
		} else if (st == TB_ELOCKED) {
			r->refused++;
			if (tb_last_error()->status != TB_ELOCKED ||
			    strcmp(tb_last_error()->message, "ticket is already reserved") != 0)
				r->wrong_detail++;
		} else {
			r->unexpected++;
		}
		tb_order_free(o);
	}
	return NULL;
}

/*
 * RACERS threads race for HOT tickets; with `async`, half the orders of half
 * the threads are asynchronous; with `hooked`, a lending thread runs them.
 */
static void race(fixture *f, bool async, bool hooked)
{
	tb_market *m = f->t->m;
	if (hooked) {
		memset(&lender, 0, sizeof(lender));
		lender.m = m;
		pthread_mutex_init(&lender.mu, NULL);
		pthread_cond_init(&lender.cv, NULL);
		assert_int_equal(pthread_create(&lender.th, NULL, lender_main, NULL), 0);
		assert_tb_ok(tb_market_set_lead_hook(m, lender_hook, NULL));
	}
	int64_t before = tbt_last_seq(f->t);
	racer *r = calloc(RACERS, sizeof(*r));
	tb_session *sessions[4] = { NULL };
	for (int i = 0; async && i < 4; i++)
		sessions[i] = signin(m, i);
	for (int i = 0; i < RACERS; i++) {
		r[i].m = m;
		r[i].buyer = f->buyers[i % 4];
		r[i].tickets = f->tickets;
		r[i].index = i;
		r[i].async = async && i % 2 == 0;
		r[i].token = async ? tb_session_token(sessions[i % 4]) : NULL;
		assert_int_equal(pthread_create(&r[i].th, NULL, racer_main, &r[i]), 0);
	}
	int wins[HOT] = { 0 }, refused = 0;
	for (int i = 0; i < RACERS; i++)
		pthread_join(r[i].th, NULL);
	if (hooked) {
		/* The lender may still be running the last ones. */
		for (int i = 0; i < RACERS; i++)
			while (atomic_load(&r[i].async_calls) < (r[i].async ? (ROUNDS + 1) / 2 : 0))
				sched_yield();
		pthread_mutex_lock(&lender.mu);
		lender.stop = true;
		pthread_cond_signal(&lender.cv);
		pthread_mutex_unlock(&lender.mu);
		pthread_join(lender.th, NULL);
		/* (The racers' waiting orders may have run every asynchronous one: no count is asserted.) */
		assert_tb_ok(tb_market_set_lead_hook(m, NULL, NULL));
		pthread_mutex_destroy(&lender.mu);
		pthread_cond_destroy(&lender.cv);
	}
	/* Every thread has returned: every asynchronous order has had its callback, once. */
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(r[i].unexpected, 0);
		assert_int_equal(r[i].wrong_detail, 0);
		assert_int_equal(atomic_load(&r[i].async_unexpected), 0);
		assert_int_equal(atomic_load(&r[i].async_calls), r[i].async ? (ROUNDS + 1) / 2 : 0);
		refused += r[i].refused + atomic_load(&r[i].async_refused);
		for (int k = 0; k < HOT; k++)
			wins[k] += r[i].wins[k] + atomic_load(&r[i].async_wins[k]);
	}
	free(r);
	for (int i = 0; i < 4; i++)
		tb_session_free(sessions[i]);
	for (int k = 0; k < HOT; k++)
		assert_int_equal(wins[k], 1);
	assert_int_equal(refused, RACERS * ROUNDS - HOT);
	/* Exactly the winners' events, gap-free. */
	assert_int_equal(check_gap_free(m), before + 2 * HOT);
	assert_int_equal(tbt_event_count(f->t, TB_EVENT_ORDER_CREATED), HOT);
}

static void group__many_threads_get_one_winner_per_ticket_and_a_gap_free_log(void **state)
{
	race(*state, false, false);
}

static void async__mixed_with_waiting_orders_one_winner_per_ticket_every_callback_once(void **state)
{
	race(*state, true, false);
}

static void async__run_by_a_lending_thread_one_winner_per_ticket_every_callback_once(void **state)
{
	race(*state, true, true);
}

/* ---- adapters without savepoints ------------------------------------------------- */

static void group__version_1_adapter_runs_one_transaction_per_operation(void **state)
{
	(void)state;
	tbt *t = tbt_prepare(1);
	tb_storage *s = NULL;
	assert_tb_ok(tb_storage_sqlite_open(&s, t->db, NULL));
	s->version = 1; /* as an adapter written before savepoints existed */
	static tb_clock clock;
	tb_clock_manual_bind(t->clock, &clock);
	t->opts.clock = &clock;
	t->opts.password_cost = TB_PASSWORD_COST_MIN;
	assert_tb_ok(tb_market_open_take(&t->m, s, &t->opts));
	assert_false(t->m->grouped);

	char *seller = tbt_user(t, "seller@example.com");
	char *buyer = tbt_user(t, "buyer@example.com");
	char *ticket = tbt_ticket(t, seller, "Concert", 1000);
	tb_status st;
	char *order = tbt_order(t, buyer, ticket, &st);
	assert_non_null(order);
	free(tbt_order(t, buyer, ticket, &st));
	assert_int_equal(st, TB_ELOCKED);
	/* Without groups an asynchronous order runs at once, on the calling thread. */
	char *second = tbt_ticket(t, seller, "Encore", 1200);
	tb_session *s2 = NULL;
	async_call a = { 0 };
	assert_tb_ok(tb_user_signin(&s2, t->m, "buyer@example.com", "correct horse battery"));
	assert_tb_ok(tb_order_create_by_session_async(t->m, tb_session_token(s2), second, async_done, &a));
	assert_int_equal(a.calls, 1);
	assert_tb_ok(a.st);
	assert_true(pthread_equal(a.on, pthread_self()));
	assert_string_equal(a.ticket_order_id, a.order_id);
	tb_session_free(s2);
	free(second);
	free(order);
	free(ticket);
	free(buyer);
	free(seller);
	tbt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(group__failing_operation_undoes_only_its_own_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(async__queued_behind_a_running_group_completes_on_its_thread, setup,
			teardown),
		cmocka_unit_test_setup_teardown(async__alone_runs_on_the_calling_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(group__later_operation_sees_earlier_writes_of_its_group, setup, teardown),
		cmocka_unit_test_setup_teardown(group__lost_transaction_reruns_the_operations_that_had_succeeded, setup,
			teardown),
		cmocka_unit_test_setup_teardown(group__many_threads_get_one_winner_per_ticket_and_a_gap_free_log, setup,
			teardown),
		cmocka_unit_test_setup_teardown(async__mixed_with_waiting_orders_one_winner_per_ticket_every_callback_once,
			setup, teardown),
		cmocka_unit_test_setup_teardown(async__with_a_lead_hook_the_submitter_never_leads, setup, teardown),
		cmocka_unit_test_setup_teardown(async__run_by_a_lending_thread_one_winner_per_ticket_every_callback_once,
			setup, teardown),
		cmocka_unit_test(group__version_1_adapter_runs_one_transaction_per_operation),
	};
	return cmocka_run_group_tests_name("group_commit", tests, NULL, NULL);
}
