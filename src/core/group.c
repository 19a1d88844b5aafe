/*
 * Group commit: concurrent write operations share one storage transaction.
 *
 * A write operation queues itself.  If no thread is leading, it becomes the
 * leader: it takes every queued operation (its own included, up to
 * GROUP_MAX), begins one write transaction, runs each operation inside its
 * own savepoint, commits once, and hands every operation its own result.
 * Meanwhile the next operations queue up and the next leader takes them
 * all, so under load a commit carries as many operations as arrived during
 * the previous one; alone, an operation runs by itself with no savepoint.
 *
 * What each caller sees is what it would see with a transaction of its own:
 * - An operation that fails rolls back to its savepoint: only its own
 *   writes (and events) are undone; the others in the group commit.
 * - An operation returns only after the COMMIT that holds its writes
 *   returned, so a returned result is as durable as the sync level makes
 *   any commit; if the COMMIT fails, every operation in it reports that
 *   failure (TB_EBUSY re-runs the whole group, as the runner always did).
 * - Operations in a group run one after another on the leader's thread, in
 *   queue order, each seeing the writes of those before it: the events
 *   they append get consecutive seqs in that order, gap-free.
 * - Error detail is thread-local, so the leader saves each failing
 *   operation's detail and the operation's own thread restores it.
 * - A finished operation's thread is woken through the operation's own
 *   mutex and condition, not the group lock, so it returns without
 *   queueing for that lock behind the leader.
 * - If the storage loses the whole transaction while undoing one operation
 *   (SQLite does so on I/O errors and out of memory), the operations that
 *   had succeeded in it are re-run in a fresh transaction.
 *
 * Adapters without savepoints (storage version 1, or the optional methods
 * NULL) get one transaction per operation, as before.
 *
 * Asynchronous operations (tb_group__submit) queue the same way but have no
 * thread waiting for them: whoever runs their group calls their completion
 * right after the commit.  So the lead never passes to one: a thread that
 * submits one while no group is running leads until the queue is empty, and
 * a leader whose own operation is done leads on while the queue's head is
 * asynchronous, handing the lead only to a waiting (synchronous) operation.
 * No thread is started for them (DESIGN.md): they run on threads that are
 * inside a write call of this market.  A host can lend threads instead
 * (tb_market_set_lead_hook): then a submitter never leads; when nobody
 * leads it calls the hook, and the host's thread runs the queue in
 * tb_market_lead(); a waiting leader done with its own operation hands
 * asynchronous ones to the hook rather than leading on.
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* At most this many operations share one commit. */
#define GROUP_MAX 64
/* Groups a leader runs for others once its own operation is done. */
#define LEAD_ROUNDS 4

typedef struct tb_group_op {
	tb_txn_fn fn;
	void *ctx;
	tb_status status;
	tb_error_saved err;
	int attempts;
	bool taken;          /* under the group lock: a leader took it from the queue */
	/*
	 * Its own wake-up, under mu: the leader wakes a finished operation
	 * without the group lock, so the woken thread does not queue for that
	 * lock behind the leader and the other waiters.  `done` (its result is
	 * final) is set by the leader that ran it, under mu, in the same step
	 * that wakes it; the leader of its own operation sets it directly.
	 */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool posted;
	bool done;
	struct tb_group_op *next;
	/* Asynchronous: no thread waits (mu and cv unused); this runs once, then op is freed. */
	tb_group_done_fn complete;
	void *complete_arg;
} tb_group_op;

bool tb_group__supported(const tb_storage *s)
{
	return s->version >= 2 && s->savepoint && s->savepoint_release && s->savepoint_rollback;
}

void tb_group__init(tb_group *g)
{
	pthread_mutex_init(&g->lock, NULL);
	g->head = g->tail = NULL;
	g->leading = false;
	g->hook = NULL;
	g->hook_arg = NULL;
}

void tb_group__destroy(tb_group *g)
{
	pthread_mutex_destroy(&g->lock);
}

size_t tb_group__queued(tb_market *m)
{
	size_t n = 0;
	pthread_mutex_lock(&m->group.lock);
	for (const tb_group_op *op = m->group.head; op; op = op->next)
		n++;
	pthread_mutex_unlock(&m->group.lock);
	return n;
}

/* Wake op's thread; with `done`, op's result is final and this is the caller's last use of op. */
static void op_wake(tb_group_op *op, bool done)
{
	pthread_mutex_lock(&op->mu);
	op->done = op->done || done;
	op->posted = true;
	pthread_cond_signal(&op->cv);
	pthread_mutex_unlock(&op->mu);
}

/* Sleep until woken; true when the operation is done. */
static bool op_sleep(tb_group_op *op)
{
	pthread_mutex_lock(&op->mu);
	while (!op->posted)
		pthread_cond_wait(&op->cv, &op->mu);
	op->posted = false;
	bool done = op->done;
	pthread_mutex_unlock(&op->mu);
	return done;
}

/*
 * The leader is done with op: wake its thread, or (asynchronous) run its
 * completion with its error detail in this thread's tb_last_error(), then
 * put the leader's own back.
 */
static void finish_op(tb_group_op *op)
{
	if (!op->complete) {
		op_wake(op, true); /* the thread may return at once */
		return;
	}
	tb_error_saved mine;
	tb_error__save(&mine);
	if (op->status != TB_OK)
		tb_error__restore(&op->err);
	op->complete(op->status, op->complete_arg);
	tb_error__restore(&mine);
	free(op);
}

static void fail_op(tb_group_op *op, tb_status st)
{
	op->status = st;
	tb_error__save(&op->err);
}

/*
 * Run one operation of a group inside its savepoint.  Returns false when
 * undoing it failed, which means the whole transaction is lost.
 */
static bool run_in_savepoint(tb_market *m, tb_storage_txn *txn, tb_group_op *op)
{
	tb_storage *s = m->storage;
	tb_status st = s->savepoint(txn);

	if (st != TB_OK) {
		fail_op(op, st);
		return true;
	}
	st = op->fn(m, txn, op->ctx);
	if (st == TB_OK && (st = s->savepoint_release(txn)) == TB_OK) {
		op->status = TB_OK;
		return true;
	}
	fail_op(op, st);
	return s->savepoint_rollback(txn) == TB_OK;
}

/* Every operation of batch[from..n) fails with st; on TB_EBUSY they are to be retried. */
static void fail_rest(tb_group_op **batch, size_t from, size_t n, tb_status st, tb_group_op **retry,
	size_t *nretry)
{
	for (size_t i = from; i < n; i++) {
		fail_op(batch[i], st);
		if (st == TB_EBUSY)
			retry[(*nretry)++] = batch[i];
	}
}

/* Append op to the queue; the group lock is held. */
static void enqueue(tb_group *g, tb_group_op *op)
{
	if (g->tail)
		g->tail->next = op;
	else
		g->head = op;
	g->tail = op;
}

/* Move queued operations to batch[*n..GROUP_MAX); returns how many came. */
static size_t take_queued(tb_group *g, tb_group_op **batch, size_t *n)
{
	size_t taken = 0;
	while (g->head && *n < GROUP_MAX) {
		g->head->taken = true;
		batch[(*n)++] = g->head;
		g->head = g->head->next;
		taken++;
	}
	if (!g->head)
		g->tail = NULL;
	return taken;
}

/*
 * Run a batch in one transaction.  With `join`, operations queued while it
 * runs join it before the commit (up to GROUP_MAX; *np grows): a commit then
 * carries what arrived during its own work, with no thread to wake first.
 * Operations to run again (busy, or lost with the transaction) come back in
 * retry[]; the others are finished.
 */
static void run_batch(tb_market *m, tb_group_op **batch, size_t *np, bool join, tb_group_op **retry,
	size_t *nretry)
{
	tb_storage *s = m->storage;
	tb_storage_txn *txn = NULL;
	size_t n = *np, i = 0;
	tb_status st = s->begin(s, 1, &txn);

	*nretry = 0;
	if (st != TB_OK) {
		fail_rest(batch, 0, n, st, retry, nretry);
		return;
	}
	if (n == 1) {
		/* Alone: no savepoint, exactly the one-transaction-per-operation path. */
		st = batch[0]->fn(m, txn, batch[0]->ctx);
		if (st != TB_OK) {
			fail_op(batch[0], st);
			s->rollback(txn);
			if (st == TB_EBUSY)
				retry[(*nretry)++] = batch[0];
			return;
		}
		batch[0]->status = TB_OK;
		i = 1;
	}
	for (;;) {
		for (; i < n; i++) {
			if (run_in_savepoint(m, txn, batch[i]))
				continue;
			/*
			 * The storage dropped the transaction while undoing operation i:
			 * it keeps its own failure (unless busy); those before it lost
			 * their writes and those after never ran, so all run again.
			 */
			s->rollback(txn);
			for (size_t k = 0; k < n; k++)
				if (k != i || batch[k]->status == TB_EBUSY)
					retry[(*nretry)++] = batch[k];
			*np = n;
			return;
		}
		if (!join)
			break;
		pthread_mutex_lock(&m->group.lock);
		size_t more = take_queued(&m->group, batch, &n);
		pthread_mutex_unlock(&m->group.lock);
		if (!more)
			break;
	}
	*np = n;
	st = s->commit(txn);
	if (st != TB_OK) {
		/* Nothing of the group was kept: every operation reports the failure (or runs again). */
		fail_rest(batch, 0, n, st, retry, nretry);
		return;
	}
	for (i = 0; i < n; i++)
		if (batch[i]->status == TB_EBUSY)
			retry[(*nretry)++] = batch[i];
}

/*
 * The leader's work: run the group to completion, running again (in a new
 * transaction) what came back busy or lost, a bounded number of times.
 * Operations queued meanwhile may join the first transaction: they are
 * appended to `group` (*n grows), and the caller wakes every one of them.
 */
static void lead(tb_market *m, tb_group_op **group, size_t *n)
{
	tb_group_op *batch[GROUP_MAX], *retry[GROUP_MAX];
	size_t nretry;

	run_batch(m, group, n, true, retry, &nretry);
	size_t k = nretry;
	memcpy(batch, retry, nretry * sizeof(*batch));
	while (k > 0) {
		size_t next = 0;
		for (size_t i = 0; i < k; i++) {
			tb_group_op *op = batch[i];
			if (++op->attempts < TB_BUSY_RETRIES) {
				batch[next++] = op;
			} else if (op->status != TB_EBUSY) {
				/* Its writes were lost with a transaction too often: say so. */
				fail_op(op, tb_error_set(TB_ESTORAGE, NULL, "the storage kept losing the transaction"));
			}
		}
		k = next;
		if (!k)
			break;
		sched_yield();
		run_batch(m, batch, &k, false, retry, &nretry);
		memcpy(batch, retry, nretry * sizeof(*batch));
		k = nretry;
	}
}

tb_status tb_group__run(tb_market *m, tb_txn_fn fn, void *ctx)
{
	tb_group *g = &m->group;
	tb_group_op op;
	tb_group_op *batch[GROUP_MAX];

	memset(&op, 0, sizeof(op));
	op.fn = fn;
	op.ctx = ctx;
	op.status = TB_EINTERNAL;
	pthread_mutex_init(&op.mu, NULL);
	pthread_cond_init(&op.cv, NULL);

	pthread_mutex_lock(&g->lock);
	enqueue(g, &op);
	for (;;) {
		if (op.taken || g->leading) {
			/* Woken when done, or when the lead is handed to it while still queued. */
			pthread_mutex_unlock(&g->lock);
			if (op_sleep(&op))
				break;
			pthread_mutex_lock(&g->lock);
			continue;
		}
		/*
		 * Lead, group after group while operations are queued: until ours
		 * is done, then for at most LEAD_ROUNDS more, so the lead does not
		 * pass to a thread that must first be woken and scheduled.
		 */
		g->leading = true;
		for (int rounds = 0;
		     g->head && (!op.done || rounds < LEAD_ROUNDS || (g->head->complete && !g->hook)); rounds++) {
			size_t n = 0;
			take_queued(g, batch, &n);
			pthread_mutex_unlock(&g->lock);

			lead(m, batch, &n);
			for (size_t i = 0; i < n; i++) {
				if (batch[i] == &op)
					op.done = true;
				else
					finish_op(batch[i]);
			}

			pthread_mutex_lock(&g->lock);
		}
		g->leading = false;
		/* Hand the lead to the first operation still queued, or (asynchronous) to the hook. */
		tb_lead_hook_fn hook = NULL;
		void *hook_arg = g->hook_arg;
		if (g->head && g->head->complete)
			hook = g->hook; /* set: else the loop above leads on */
		else if (g->head)
			op_wake(g->head, false);
		pthread_mutex_unlock(&g->lock);
		if (hook)
			hook(m, hook_arg);
		if (op.done) {
			/* Checkpoint (if due) while the next group writes. */
			tb_market__after_commit(m);
			break;
		}
		pthread_mutex_lock(&g->lock);
	}
	pthread_cond_destroy(&op.cv);
	pthread_mutex_destroy(&op.mu);
	if (op.status != TB_OK)
		tb_error__restore(&op.err);
	return op.status;
}

tb_status tb_group__submit(tb_market *m, tb_txn_fn fn, void *ctx, tb_group_done_fn done, void *arg)
{
	tb_group *g = &m->group;

	if (!m->grouped) {
		/* One transaction per operation, here and now. */
		done(tb_market__run(m, 1, fn, ctx), arg);
		return TB_OK;
	}
	tb_group_op *op = calloc(1, sizeof(*op));
	if (!op)
		return tb_error_set(TB_ENOMEM, NULL, "out of memory queueing a write");
	op->fn = fn;
	op->ctx = ctx;
	op->status = TB_EINTERNAL;
	op->complete = done;
	op->complete_arg = arg;

	pthread_mutex_lock(&g->lock);
	enqueue(g, op);
	if (g->leading) {
		/* The running leader takes it, or leads on until it does (see tb_group__run). */
		pthread_mutex_unlock(&g->lock);
		return TB_OK;
	}
	if (g->hook) {
		/* The host's thread runs it (tb_market_lead); op may be done before this returns. */
		tb_lead_hook_fn hook = g->hook;
		void *hook_arg = g->hook_arg;
		pthread_mutex_unlock(&g->lock);
		hook(m, hook_arg);
		return TB_OK;
	}
	pthread_mutex_unlock(&g->lock);
	/* Nobody leads: lead until nothing is queued (op may be freed after its group). */
	(void)tb_group__lead(m);
	return TB_OK;
}

size_t tb_group__lead(tb_market *m)
{
	tb_group *g = &m->group;
	tb_group_op *batch[GROUP_MAX];
	size_t ran = 0;

	pthread_mutex_lock(&g->lock);
	if (g->leading) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	g->leading = true;
	while (g->head) {
		size_t n = 0;
		take_queued(g, batch, &n);
		pthread_mutex_unlock(&g->lock);
		lead(m, batch, &n);
		for (size_t i = 0; i < n; i++)
			finish_op(batch[i]);
		ran += n;
		pthread_mutex_lock(&g->lock);
	}
	g->leading = false;
	pthread_mutex_unlock(&g->lock);
	/* Checkpoint (if due), as a waiting caller does once its operation is done. */
	if (ran)
		tb_market__after_commit(m);
	return ran;
}

void tb_group__set_hook(tb_market *m, tb_lead_hook_fn fn, void *arg)
{
	pthread_mutex_lock(&m->group.lock);
	m->group.hook = fn;
	m->group.hook_arg = arg;
	pthread_mutex_unlock(&m->group.lock);
}
