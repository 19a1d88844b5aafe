/*
 * Payments: paying an order in three steps (record, call, record), the
 * retry of unknown outcomes, refunds, and provider notices (webhooks).
 * The rule "a charge that cannot be honoured is refunded, never lost"
 * lives here.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_BATCH 100
#define RETRY_CAP_MS (60 * 1000)

/* ---- in-flight charges --------------------------------------------------------- */

/*
 * A charge being driven (provider call between two transactions) is held
 * in memory so a concurrent tick does not ask the provider a second time
 * in parallel.  After a crash the set is empty and the tick takes over.
 */
static bool claim(tb_market *m, const char *charge_id)
{
	pthread_mutex_lock(&m->inflight_lock);
	for (size_t i = 0; i < m->inflight_count; i++) {
		if (strcmp(m->inflight[i], charge_id) == 0) {
			pthread_mutex_unlock(&m->inflight_lock);
			return false;
		}
	}
	if (m->inflight_count == m->inflight_cap) {
		size_t cap = m->inflight_cap ? m->inflight_cap * 2 : 16;
		void *grown = realloc(m->inflight, cap * sizeof(*m->inflight));
		if (!grown) {
			pthread_mutex_unlock(&m->inflight_lock);
			return false;
		}
		m->inflight = grown;
		m->inflight_cap = cap;
	}
	tb_str__copy(m->inflight[m->inflight_count++], TB_ID_SIZE, charge_id);
	pthread_mutex_unlock(&m->inflight_lock);
	return true;
}

static void unclaim(tb_market *m, const char *charge_id)
{
	pthread_mutex_lock(&m->inflight_lock);
	for (size_t i = 0; i < m->inflight_count; i++) {
		if (strcmp(m->inflight[i], charge_id) == 0) {
			memmove(m->inflight[i], m->inflight[m->inflight_count - 1], TB_ID_SIZE);
			m->inflight_count--;
			break;
		}
	}
	pthread_mutex_unlock(&m->inflight_lock);
}

/* ---- helpers -------------------------------------------------------------------- */

static int64_t backoff_ms(const tb_market *m, int64_t attempts)
{
	int64_t d = m->payment_retry_ms;
	for (int64_t i = 1; i < attempts && d < RETRY_CAP_MS; i++)
		d *= 2;
	return d < RETRY_CAP_MS ? d : RETRY_CAP_MS;
}

static void new_key(char out[64], const char *prefix)
{
	char id[TB_ID_SIZE];
	tb_id__new(id);
	snprintf(out, 64, "%s_%s", prefix, id);
}

static tb_status charge_save(tb_market *m, tb_storage_txn *txn, tb_charge_row *c, int64_t now,
	tb_event_type event)
{
	c->version++;
	c->updated_at_ms = now;
	tb_status st = m->storage->charge_update(txn, c);
	if (st != TB_OK || event == 0)
		return st;
	return tb_event__append(m, txn, event, c->id, c->version, tb_json__charge(c));
}

static tb_status order_move(tb_market *m, tb_storage_txn *txn, tb_order_row *o, int status, int64_t now,
	tb_event_type event, const char *charge_id, const char *reason)
{
	o->status = status;
	o->version++;
	o->updated_at_ms = now;
	tb_status st = m->storage->order_update(txn, o);
	if (st != TB_OK)
		return st;
	json_t *p = tb_json__order(o, o->status);
	if (p && charge_id)
		json_object_set_new(p, "charge_id", json_string(charge_id));
	if (p && reason)
		json_object_set_new(p, "reason", json_string(reason));
	return tb_event__append(m, txn, event, o->id, o->version, p);
}

/* Hand the ticket to a new owner, unlisted and unlocked (TicketUpdated). */
static tb_status ticket_transfer(tb_market *m, tb_storage_txn *txn, const char *ticket_id, const char *to,
	int64_t now, const char *reason)
{
	tb_ticket_row t;
	tb_status st = m->storage->ticket_get(txn, ticket_id, &t);
	if (st != TB_OK)
		return st;
	tb_str__copy(t.owner_id, sizeof(t.owner_id), to);
	t.order_id[0] = '\0';
	t.locked_until_ms = 0;
	t.status = TB_TICKET_UNLISTED;
	t.version++;
	t.updated_at_ms = now;
	if ((st = m->storage->ticket_update(txn, &t)) != TB_OK)
		return st;
	json_t *p = tb_json__ticket(&t, now);
	if (p)
		json_object_set_new(p, "reason", json_string(reason));
	return tb_event__append(m, txn, TB_EVENT_TICKET_UPDATED, t.id, t.version, p);
}

/*
 * Under the honour policy a late payment still completes if the ticket is
 * still the seller's, listed and not held by another live order.
 */
static tb_status can_honour(tb_market *m, tb_storage_txn *txn, const tb_order_row *o, int64_t now, bool *out)
{
	*out = false;
	if (m->late_payment != TB_LATE_PAYMENT_HONOUR_IF_AVAILABLE)
		return TB_OK;
	tb_ticket_row t;
	tb_status st = m->storage->ticket_get(txn, o->ticket_id, &t);
	if (st != TB_OK)
		return st;
	if (strcmp(t.owner_id, o->seller_id) != 0 || t.status != TB_TICKET_LISTED)
		return TB_OK;
	if (t.order_id[0] && strcmp(t.order_id, o->id) != 0) {
		if (t.locked_until_ms > now)
			return TB_OK;
		tb_order_row other;
		st = m->storage->order_get(txn, t.order_id, &other);
		if (st == TB_OK && tb_order__live_status(other.status))
			st = tb_order__expire(m, txn, &other, now);
		if (st != TB_OK && st != TB_ENOTFOUND)
			return st;
	}
	*out = true;
	return TB_OK;
}

/* ---- applying an answer ------------------------------------------------------------ */

typedef struct answer {
	tb_pay_result res;
	bool from_call;   /* a provider call we made (counts as an attempt) */
} answer;

typedef struct apply_out {
	tb_status report;  /* what the payer is told */
	bool refund_due;   /* a refund should be driven now */
	char message[256];
} apply_out;

static void copy_failure(tb_charge_row *c, const tb_pay_result *r)
{
	tb_str__copy(c->failure_code, sizeof(c->failure_code), r->code);
	tb_str__copy(c->decline_code, sizeof(c->decline_code), r->decline_code);
	tb_str__copy(c->failure_message, sizeof(c->failure_message), r->message);
}

static tb_status money_taken(tb_market *m, tb_storage_txn *txn, tb_charge_row *c, const answer *a,
	int64_t now, apply_out *out)
{
	c->status = TB_CHARGE_SUCCEEDED;
	if (a->res.provider_id[0])
		tb_str__copy(c->provider_charge_id, sizeof(c->provider_charge_id), a->res.provider_id);
	c->failure_code[0] = c->decline_code[0] = c->failure_message[0] = '\0';
	c->next_attempt_at_ms = 0;
	tb_status st = charge_save(m, txn, c, now, TB_EVENT_CHARGE_SUCCEEDED);
	if (st != TB_OK)
		return st;

	tb_order_row o;
	if ((st = m->storage->order_get(txn, c->order_id, &o)) != TB_OK)
		return st;
	bool live = o.status == TB_ORDER_AWAITING_PAYMENT && now < tb_order__deadline(&o, m->payment_grace_ms);
	bool honour = false;
	if (!live) {
		if (tb_order__live_status(o.status) && (st = tb_order__expire(m, txn, &o, now)) != TB_OK)
			return st;
		/* Only a lapsed lock may be honoured; a buyer's cancellation stands. */
		if (o.status == TB_ORDER_EXPIRED && (st = can_honour(m, txn, &o, now, &honour)) != TB_OK)
			return st;
	}
	if (live || honour) {
		if (honour && (st = tb_ticket__release(m, txn, o.ticket_id, o.id, now, "unlocked")) != TB_OK)
			return st;
		if ((st = order_move(m, txn, &o, TB_ORDER_COMPLETE, now, TB_EVENT_ORDER_COMPLETED, c->id, NULL)) != TB_OK)
			return st;
		out->report = TB_OK;
		return ticket_transfer(m, txn, o.ticket_id, o.buyer_id, now, "transferred");
	}
	/* The order can no longer complete: the money goes back. */
	c->status = TB_CHARGE_REFUND_PENDING;
	new_key(c->refund_key, "tbr");
	tb_str__copy(c->refund_reason, sizeof(c->refund_reason), "late_payment");
	c->next_attempt_at_ms = now;
	if ((st = charge_save(m, txn, c, now, 0)) != TB_OK)
		return st;
	out->refund_due = true;
	out->report = o.status == TB_ORDER_EXPIRED ? TB_EEXPIRED : TB_ESTATE;
	snprintf(out->message, sizeof(out->message), "the order is %s; the payment will be refunded",
		tb_order_status_name((tb_order_status)o.status));
	return TB_OK;
}

static tb_status payment_failed(tb_market *m, tb_storage_txn *txn, tb_charge_row *c, const answer *a,
	int64_t now, apply_out *out)
{
	c->status = TB_CHARGE_FAILED;
	copy_failure(c, &a->res);
	c->next_attempt_at_ms = 0;
	tb_status st = charge_save(m, txn, c, now, TB_EVENT_CHARGE_FAILED);
	if (st != TB_OK)
		return st;
	bool declined = a->res.outcome == TB_PAY_DECLINED;
	out->report = declined ? TB_EDECLINED : TB_EPROVIDER;
	tb_str__copy(out->message, sizeof(out->message),
		a->res.message[0] ? a->res.message : (declined ? "payment declined" : "payment provider refused the request"));
	/* A failed payment cancels the order and unlocks the ticket. */
	tb_order_row o;
	if ((st = m->storage->order_get(txn, c->order_id, &o)) != TB_OK)
		return st;
	if (o.status != TB_ORDER_AWAITING_PAYMENT)
		return TB_OK;
	if ((st = order_move(m, txn, &o, TB_ORDER_CANCELLED, now, TB_EVENT_ORDER_CANCELLED, c->id,
		     declined ? "payment_declined" : "payment_error")) != TB_OK)
		return st;
	return tb_ticket__release(m, txn, o.ticket_id, o.id, now, "unlocked");
}

static tb_status refund_answer(tb_market *m, tb_storage_txn *txn, tb_charge_row *c, const answer *a,
	int64_t now, apply_out *out)
{
	switch (a->res.outcome) {
	case TB_PAY_SUCCEEDED:
		c->status = TB_CHARGE_REFUNDED;
		tb_str__copy(c->provider_refund_id, sizeof(c->provider_refund_id), a->res.provider_id);
		c->next_attempt_at_ms = 0;
		out->report = TB_OK;
		return charge_save(m, txn, c, now, TB_EVENT_CHARGE_REFUNDED);
	case TB_PAY_UNKNOWN:
		c->next_attempt_at_ms = now + backoff_ms(m, c->attempts);
		out->report = TB_OK;
		return charge_save(m, txn, c, now, 0);
	default:
		/* A refused refund is kept and retried slowly: money is never left behind. */
		copy_failure(c, &a->res);
		c->next_attempt_at_ms = now + RETRY_CAP_MS;
		out->report = TB_EPROVIDER;
		tb_str__copy(out->message, sizeof(out->message), a->res.message[0] ? a->res.message : "refund refused");
		return charge_save(m, txn, c, now, 0);
	}
}

/* The one place an answer about a charge changes state (calls, retries, webhooks). */
static tb_status apply_answer(tb_market *m, tb_storage_txn *txn, tb_charge_row *c, const answer *a,
	int64_t now, apply_out *out)
{
	out->report = TB_OK;
	out->refund_due = false;
	out->message[0] = '\0';
	if (a->from_call)
		c->attempts++;
	if (c->status == TB_CHARGE_REFUND_PENDING)
		return refund_answer(m, txn, c, a, now, out);
	bool open = c->status == TB_CHARGE_PENDING;
	/* A success reported for a charge we had marked failed still took money. */
	bool late_success = c->status == TB_CHARGE_FAILED && a->res.outcome == TB_PAY_SUCCEEDED && !a->from_call;
	if (!open && !late_success)
		return TB_OK; /* already settled by someone else: nothing more changes */
	switch (a->res.outcome) {
	case TB_PAY_SUCCEEDED:
		return money_taken(m, txn, c, a, now, out);
	case TB_PAY_DECLINED:
	case TB_PAY_ERROR:
		return payment_failed(m, txn, c, a, now, out);
	default:
		c->next_attempt_at_ms = now + backoff_ms(m, c->attempts);
		return charge_save(m, txn, c, now, 0);
	}
}

/* ---- driving a charge: provider call, then record ---------------------------------- */

typedef struct record_ctx {
	const char *charge_id;
	answer a;
	int64_t now;
	tb_charge_row charge;
	apply_out out;
} record_ctx;

static tb_status record_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	record_ctx *c = vctx;
	tb_status st = m->storage->charge_get(txn, c->charge_id, &c->charge);
	if (st != TB_OK)
		return st;
	return apply_answer(m, txn, &c->charge, &c->a, c->now, &c->out);
}

/*
 * Providers forget idempotency keys after a day (Stripe prunes them after
 * 24 hours), after which the same key would be a new payment: past this age
 * a pending charge is only ever looked up, never asked for again.
 */
#define KEY_TRUST_MS (INT64_C(23) * 60 * 60 * 1000)

/*
 * A retry first asks the provider what became of the attempt, when it can
 * say without creating anything: a definite answer is used as is.
 */
static bool looked_up(tb_market *m, const tb_charge_row *c, tb_pay_result *res)
{
	if (c->status != TB_CHARGE_PENDING || !m->payments->lookup)
		return false;
	tb_status st = m->payments->lookup(m->payments, c->idempotency_key, res);
	if (st == TB_OK && (res->outcome == TB_PAY_SUCCEEDED || res->outcome == TB_PAY_DECLINED))
		return true;
	if (tb_market__now(m) - c->created_at_ms >= KEY_TRUST_MS) {
		memset(res, 0, sizeof(*res));
		res->version = TB_PAY_RESULT_VERSION;
		res->outcome = TB_PAY_UNKNOWN;
		tb_str__copy(res->message, sizeof(res->message),
			"the provider has no answer and the attempt is too old to repeat safely");
		return true;
	}
	return false;
}

static void call_provider(tb_market *m, const tb_charge_row *c, bool retry, tb_pay_result *res)
{
	char description[96];
	snprintf(description, sizeof(description), "Ticketyboo order %s", c->order_id);
	tb_pay_request req = TB_PAY_REQUEST_INIT;
	req.amount_minor = c->amount_minor;
	req.currency = c->currency;
	req.description = description;
	req.order_id = c->order_id;
	req.charge_id = c->id;
	memset(res, 0, sizeof(*res));
	res->version = TB_PAY_RESULT_VERSION;
	if (retry && looked_up(m, c, res))
		return;
	memset(res, 0, sizeof(*res));
	res->version = TB_PAY_RESULT_VERSION;
	tb_status st;
	if (c->status == TB_CHARGE_REFUND_PENDING) {
		req.idempotency_key = c->refund_key;
		req.provider_charge_id = c->provider_charge_id;
		req.reason = c->refund_reason;
		st = m->payments->refund(m->payments, &req, res);
	} else {
		req.idempotency_key = c->idempotency_key;
		req.payment_token = c->payment_token;
		st = m->payments->charge(m->payments, &req, res);
	}
	if (st != TB_OK || res->outcome < TB_PAY_SUCCEEDED || res->outcome > TB_PAY_ERROR) {
		/* A local failure says nothing about the money: ask again later. */
		res->outcome = TB_PAY_UNKNOWN;
		tb_str__copy(res->message, sizeof(res->message), "payment provider call failed locally");
	}
}

static tb_status drive_once(tb_market *m, const tb_charge_row *snapshot, bool retry, record_ctx *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->charge_id = snapshot->id;
	call_provider(m, snapshot, retry, &rec->a.res);
	rec->a.from_call = true;
	rec->now = tb_market__now(m);
	return tb_market__run(m, 1, record_txn, rec);
}

/*
 * Ask the provider about `snapshot` (a charge, or its refund, by status)
 * and record the answer; a refund that became due (a late success) is asked
 * for at once.  The caller has claimed the charge.  What the payer is told
 * stays the answer to the first call.
 */
static tb_status drive(tb_market *m, const tb_charge_row *snapshot, bool retry, record_ctx *rec)
{
	tb_status st = drive_once(m, snapshot, retry, rec);
	if (st != TB_OK || !rec->out.refund_due)
		return st;
	apply_out first = rec->out;
	tb_charge_row due = rec->charge;
	st = drive_once(m, &due, false, rec);
	rec->out = first;
	rec->out.refund_due = false;
	return st;
}

static tb_status charge_new(tb_charge **out, const tb_charge_row *row)
{
	tb_charge *c = malloc(sizeof(*c));
	if (!c)
		return tb_error__oom();
	c->row = *row;
	*out = c;
	return TB_OK;
}

static tb_status report(tb_charge **out, const record_ctx *rec)
{
	if (rec->out.report != TB_OK)
		return tb_error_set(rec->out.report, NULL, "%s", rec->out.message);
	return out ? charge_new(out, &rec->charge) : TB_OK;
}

/* ---- pay ------------------------------------------------------------------------------ */

/* One attempt to move money for an order: a payment or the seller's refund. */
typedef struct attempt_ctx {
	const char *user_id;
	const char *order_id;
	const char *text;     /* the payment token, or the refund reason */
	int64_t now;
	tb_charge_row charge;
} attempt_ctx;

/*
 * After the first transaction recorded the attempt: claim it, ask the
 * provider, record the answer, and tell the caller.
 */
static tb_status attempt_finish(tb_charge **out, tb_market *m, attempt_ctx *c)
{
	if (!claim(m, c->charge.id))
		return charge_new(out, &c->charge); /* cannot track it: the tick will */
	record_ctx rec;
	tb_status st = drive(m, &c->charge, false, &rec);
	unclaim(m, c->charge.id);
	memset(c->charge.payment_token, 0, sizeof(c->charge.payment_token));
	memset(rec.charge.payment_token, 0, sizeof(rec.charge.payment_token));
	if (st != TB_OK)
		return st;
	return report(out, &rec);
}

static tb_status pay_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	attempt_ctx *c = vctx;
	tb_order_row o;
	tb_status st = tb_order__load(m, txn, c->order_id, &o);
	if (st != TB_OK)
		return st;
	if (strcmp(o.buyer_id, c->user_id) != 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "this order belongs to someone else");
	switch (o.status) {
	case TB_ORDER_CREATED:
		break;
	case TB_ORDER_AWAITING_PAYMENT:
		return tb_error_set(TB_ESTATE, NULL, "a payment for this order is already in progress");
	case TB_ORDER_COMPLETE:
	case TB_ORDER_REFUNDED:
		return tb_error_set(TB_ESTATE, NULL, "order is already paid");
	case TB_ORDER_CANCELLED:
		return tb_error_set(TB_ESTATE, NULL, "cannot pay for a cancelled order");
	case TB_ORDER_EXPIRED:
	default:
		return tb_error_set(TB_EEXPIRED, NULL, "order has expired");
	}
	if (c->now >= o.expires_at_ms)
		return tb_error_set(TB_EEXPIRED, NULL, "order has expired");

	/* 1. A pending charge with a fresh key, before the provider hears of it. */
	tb_charge_row *ch = &c->charge;
	memset(ch, 0, sizeof(*ch));
	tb_id__new(ch->id);
	tb_str__copy(ch->order_id, sizeof(ch->order_id), o.id);
	ch->status = TB_CHARGE_PENDING;
	ch->amount_minor = o.price_minor;
	tb_str__copy(ch->currency, sizeof(ch->currency), o.currency);
	tb_str__copy(ch->provider, sizeof(ch->provider), m->payments->name);
	tb_str__copy(ch->payment_token, sizeof(ch->payment_token), c->text);
	new_key(ch->idempotency_key, "tbc");
	/* If this process dies mid-call, the tick picks the charge up from here. */
	ch->next_attempt_at_ms = c->now + m->payment_retry_ms;
	ch->created_at_ms = ch->updated_at_ms = c->now;
	if ((st = m->storage->charge_insert(txn, ch)) != TB_OK)
		return st;
	if ((st = tb_event__append(m, txn, TB_EVENT_CHARGE_CREATED, ch->id, ch->version, tb_json__charge(ch))) != TB_OK)
		return st;
	if ((st = order_move(m, txn, &o, TB_ORDER_AWAITING_PAYMENT, c->now, TB_EVENT_ORDER_AWAITING_PAYMENT, ch->id,
		     NULL)) != TB_OK)
		return st;
	/* The lock now lasts through the payment's grace period. */
	tb_ticket_row t;
	if ((st = m->storage->ticket_get(txn, o.ticket_id, &t)) != TB_OK)
		return st;
	if (strcmp(t.order_id, o.id) != 0)
		return tb_error_set(TB_EINTERNAL, NULL, "live order does not hold its ticket");
	t.locked_until_ms = tb_order__deadline(&o, m->payment_grace_ms);
	t.version++;
	t.updated_at_ms = c->now;
	if ((st = m->storage->ticket_update(txn, &t)) != TB_OK)
		return st;
	json_t *p = tb_json__ticket(&t, c->now);
	if (p)
		json_object_set_new(p, "reason", json_string("payment_started"));
	return tb_event__append(m, txn, TB_EVENT_TICKET_UPDATED, t.id, t.version, p);
}

static tb_status check_token(const char *token)
{
	if (!token || !*token)
		return tb_error_set(TB_EINVAL, "token", "payment token is required");
	size_t len = strnlen(token, 128);
	if (len >= 128)
		return tb_error_set(TB_EINVAL, "token", "payment token is too long");
	for (size_t i = 0; i < len; i++)
		if (token[i] <= 0x20 || token[i] >= 0x7f)
			return tb_error_set(TB_EINVAL, "token", "payment token must be printable ASCII");
	return TB_OK;
}

tb_status tb_order_pay(tb_charge **out, tb_market *market, const char *user_id, const char *order_id,
	const char *payment_token)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK ||
	    (st = tb_check__id(order_id, "order_id", "order")) != TB_OK || (st = check_token(payment_token)) != TB_OK)
		return st;
	if (!market->payments)
		return tb_error_set(TB_EPROVIDER, NULL, "no payment provider is configured");
	attempt_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = user_id;
	c.order_id = order_id;
	c.text = payment_token;
	c.now = tb_market__now(market);
	if ((st = tb_market__run(market, 1, pay_txn, &c)) != TB_OK)
		return st;
	/* 2 and 3: call the provider outside any transaction, then record. */
	return attempt_finish(out, market, &c);
}

/* ---- refund (the seller's call) ----------------------------------------------------- */

static tb_status refund_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	attempt_ctx *c = vctx;
	tb_order_row o;
	tb_status st = tb_order__load(m, txn, c->order_id, &o);
	if (st != TB_OK)
		return st;
	if (strcmp(o.seller_id, c->user_id) != 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "only the seller may refund an order");
	if (o.status != TB_ORDER_COMPLETE)
		return tb_error_set(TB_ESTATE, NULL, "only a complete order can be refunded");
	tb_ticket_row t;
	if ((st = m->storage->ticket_get(txn, o.ticket_id, &t)) != TB_OK)
		return st;
	if (strcmp(t.owner_id, o.buyer_id) != 0 || (t.order_id[0] && t.locked_until_ms > c->now))
		return tb_error_set(TB_ESTATE, NULL, "the buyer has since sold or reserved the ticket");
	st = m->storage->charge_get_latest_for_order(txn, o.id, &c->charge);
	if (st == TB_ENOTFOUND || (st == TB_OK && c->charge.status != TB_CHARGE_SUCCEEDED))
		return tb_error_set(TB_ESTATE, NULL, "the order has no successful charge to refund");
	if (st != TB_OK)
		return st;
	c->charge.status = TB_CHARGE_REFUND_PENDING;
	new_key(c->charge.refund_key, "tbr");
	tb_str__copy(c->charge.refund_reason, sizeof(c->charge.refund_reason), c->text ? c->text : "requested_by_seller");
	c->charge.next_attempt_at_ms = c->now + m->payment_retry_ms;
	if ((st = charge_save(m, txn, &c->charge, c->now, 0)) != TB_OK)
		return st;
	if (t.order_id[0] && (st = tb_ticket__release(m, txn, t.id, t.order_id, c->now, "unlocked")) != TB_OK)
		return st;
	if ((st = order_move(m, txn, &o, TB_ORDER_REFUNDED, c->now, TB_EVENT_ORDER_REFUNDED, c->charge.id,
		     c->charge.refund_reason)) != TB_OK)
		return st;
	return ticket_transfer(m, txn, o.ticket_id, o.seller_id, c->now, "returned");
}

tb_status tb_order_refund(tb_charge **out, tb_market *market, const char *seller_id, const char *order_id,
	const char *reason)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(seller_id, "seller_id", "user")) != TB_OK ||
	    (st = tb_check__id(order_id, "order_id", "order")) != TB_OK)
		return st;
	if (reason && (strlen(reason) >= 128 || !tb_utf8__valid(reason, strlen(reason), NULL)))
		return tb_error_set(TB_EINVAL, "reason", "reason must be valid UTF-8 under 128 bytes");
	if (!market->payments)
		return tb_error_set(TB_EPROVIDER, NULL, "no payment provider is configured");
	attempt_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = seller_id;
	c.order_id = order_id;
	c.text = reason;
	c.now = tb_market__now(market);
	if ((st = tb_market__run(market, 1, refund_txn, &c)) != TB_OK)
		return st;
	return attempt_finish(out, market, &c);
}

/* ---- tick: retry unknown outcomes ------------------------------------------------------ */

static tb_status collect_charge(const tb_charge_row *row, void *payload)
{
	tb_vec *v = payload;
	tb_charge_row *slot = tb_vec__push(v);
	if (!slot)
		return tb_error__oom();
	*slot = *row;
	return TB_OK;
}

typedef struct due_ctx {
	int64_t now;
	tb_vec v;
} due_ctx;

static tb_status due_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	due_ctx *c = vctx;
	c->v.count = 0;
	return m->storage->charge_list_due(txn, c->now, RETRY_BATCH, collect_charge, &c->v);
}

tb_status tb_payments__retry_due(tb_market *m, int64_t now_ms, tb_tick_stats *stats)
{
	if (!m->payments)
		return TB_OK;
	due_ctx c;
	memset(&c, 0, sizeof(c));
	c.now = now_ms;
	c.v.item_size = sizeof(tb_charge_row);
	tb_status st = tb_market__run(m, 0, due_txn, &c);
	for (size_t i = 0; st == TB_OK && i < c.v.count; i++) {
		tb_charge_row *row = &((tb_charge_row *)c.v.items)[i];
		if (!claim(m, row->id))
			continue;
		bool refund = row->status == TB_CHARGE_REFUND_PENDING;
		record_ctx rec;
		st = drive(m, row, true, &rec);
		unclaim(m, row->id);
		if (st != TB_OK)
			break;
		stats->payments_retried++;
		int s = rec.charge.status;
		if (s != TB_CHARGE_PENDING && s != TB_CHARGE_REFUND_PENDING)
			stats->payments_resolved++;
		if (s == TB_CHARGE_REFUNDED && (refund || strcmp(rec.charge.refund_reason, "late_payment") == 0))
			stats->refunds_issued++;
	}
	for (size_t i = 0; i < c.v.count; i++)
		memset(((tb_charge_row *)c.v.items)[i].payment_token, 0, sizeof(((tb_charge_row *)c.v.items)[i].payment_token));
	tb_vec__free_items(&c.v);
	return st;
}

/* ---- provider notices (webhooks) ---------------------------------------------------------- */

typedef struct notice_ctx {
	const tb_payment_event *ev;
	int64_t now;
	tb_charge_row charge;
	apply_out out;
} notice_ctx;

static tb_status notice_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	notice_ctx *c = vctx;
	const tb_payment_event *ev = c->ev;
	memset(&c->out, 0, sizeof(c->out));
	tb_status st;
	if (ev->charge_id && *ev->charge_id && tb_id__valid(ev->charge_id))
		st = m->storage->charge_get(txn, ev->charge_id, &c->charge);
	else if (ev->provider_charge_id && *ev->provider_charge_id)
		st = m->storage->charge_get_by_provider_id(txn, ev->provider_charge_id, &c->charge);
	else
		st = TB_ENOTFOUND;
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "no charge matches the payment event");
	if (st != TB_OK)
		return st;
	char key[200];
	snprintf(key, sizeof(key), "payment-event:%s", ev->event_id);
	st = m->storage->seen_insert(txn, key, c->now);
	if (st == TB_EEXISTS)
		return TB_OK; /* the same notice again: nothing more changes */
	if (st != TB_OK)
		return st;

	answer a;
	memset(&a, 0, sizeof(a));
	if (ev->provider_charge_id)
		tb_str__copy(a.res.provider_id, sizeof(a.res.provider_id), ev->provider_charge_id);
	switch (ev->type) {
	case TB_PAYMENT_EVENT_SUCCEEDED:
		if (c->charge.status == TB_CHARGE_REFUND_PENDING)
			return TB_OK; /* a refund is already under way */
		a.res.outcome = TB_PAY_SUCCEEDED;
		break;
	case TB_PAYMENT_EVENT_FAILED:
		a.res.outcome = TB_PAY_DECLINED;
		tb_str__copy(a.res.code, sizeof(a.res.code), ev->failure_code);
		tb_str__copy(a.res.decline_code, sizeof(a.res.decline_code), ev->decline_code);
		tb_str__copy(a.res.message, sizeof(a.res.message), ev->failure_message);
		break;
	case TB_PAYMENT_EVENT_REFUNDED:
		if (c->charge.status != TB_CHARGE_SUCCEEDED && c->charge.status != TB_CHARGE_REFUND_PENDING)
			return TB_OK;
		c->charge.status = TB_CHARGE_REFUNDED;
		c->charge.next_attempt_at_ms = 0;
		tb_str__copy(c->charge.provider_refund_id, sizeof(c->charge.provider_refund_id), ev->provider_refund_id);
		if (!c->charge.refund_reason[0])
			tb_str__copy(c->charge.refund_reason, sizeof(c->charge.refund_reason), "refunded_at_provider");
		return charge_save(m, txn, &c->charge, c->now, TB_EVENT_CHARGE_REFUNDED);
	}
	return apply_answer(m, txn, &c->charge, &a, c->now, &c->out);
}

tb_status tb_market_apply_payment_event(tb_market *market, const tb_payment_event *event)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (!event)
		return tb_error_set(TB_EINVAL, "event", "event must not be NULL");
	if (event->version == 0 || event->version > TB_PAYMENT_EVENT_VERSION)
		return tb_error_set(TB_EVERSION, "version", "unknown payment event version %u", event->version);
	if (!event->event_id || !*event->event_id || strlen(event->event_id) > 150)
		return tb_error_set(TB_EINVAL, "event_id", "event id is required (at most 150 bytes)");
	if (event->type < TB_PAYMENT_EVENT_SUCCEEDED || event->type > TB_PAYMENT_EVENT_REFUNDED)
		return tb_error_set(TB_EINVAL, "type", "unknown payment event type %d", (int)event->type);
	notice_ctx c;
	memset(&c, 0, sizeof(c));
	c.ev = event;
	c.now = tb_market__now(market);
	if ((st = tb_market__run(market, 1, notice_txn, &c)) != TB_OK)
		return st;
	if (c.out.refund_due && market->payments && claim(market, c.charge.id)) {
		record_ctx rec;
		st = drive(market, &c.charge, false, &rec);
		unclaim(market, c.charge.id);
	}
	return st;
}

/* ---- reading charges ---------------------------------------------------------------------- */

typedef struct charge_get_ctx {
	const char *user_id;
	const char *id;      /* charge id, or order id when latest */
	bool latest;
	tb_charge_row row;
} charge_get_ctx;

static tb_status charge_get_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	charge_get_ctx *c = vctx;
	tb_order_row o;
	tb_status st;
	if (c->latest) {
		if ((st = tb_order__load(m, txn, c->id, &o)) != TB_OK)
			return st;
		st = m->storage->charge_get_latest_for_order(txn, c->id, &c->row);
	} else {
		st = m->storage->charge_get(txn, c->id, &c->row);
		if (st == TB_OK)
			st = m->storage->order_get(txn, c->row.order_id, &o);
	}
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "charge not found");
	if (st != TB_OK)
		return st;
	if (strcmp(o.buyer_id, c->user_id) != 0 && strcmp(o.seller_id, c->user_id) != 0)
		return tb_error_set(TB_EFORBIDDEN, NULL, "this charge belongs to someone else");
	return TB_OK;
}

static tb_status charge_fetch(tb_charge **out, tb_market *market, const char *user_id, const char *id,
	bool latest)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK ||
	    (st = tb_check__id(id, latest ? "order_id" : "charge_id", latest ? "order" : "charge")) != TB_OK)
		return st;
	charge_get_ctx c;
	memset(&c, 0, sizeof(c));
	c.user_id = user_id;
	c.id = id;
	c.latest = latest;
	if ((st = tb_market__run(market, 0, charge_get_txn, &c)) == TB_OK)
		st = charge_new(out, &c.row);
	return st;
}

tb_status tb_charge_get(tb_charge **out, tb_market *market, const char *user_id, const char *charge_id)
{
	return charge_fetch(out, market, user_id, charge_id, false);
}

tb_status tb_charge_get_latest(tb_charge **out, tb_market *market, const char *user_id, const char *order_id)
{
	return charge_fetch(out, market, user_id, order_id, true);
}

static const char *or_null(const char *s) { return (s && *s) ? s : NULL; }

const char *tb_charge_id(const tb_charge *c) { return c ? c->row.id : NULL; }
const char *tb_charge_order_id(const tb_charge *c) { return c ? c->row.order_id : NULL; }
tb_charge_status tb_charge_status_get(const tb_charge *c) { return c ? (tb_charge_status)c->row.status : (tb_charge_status)0; }
int64_t tb_charge_amount_minor(const tb_charge *c) { return c ? c->row.amount_minor : 0; }
const char *tb_charge_currency(const tb_charge *c) { return c ? c->row.currency : NULL; }
const char *tb_charge_provider(const tb_charge *c) { return c ? c->row.provider : NULL; }
const char *tb_charge_provider_charge_id(const tb_charge *c) { return c ? or_null(c->row.provider_charge_id) : NULL; }
const char *tb_charge_provider_refund_id(const tb_charge *c) { return c ? or_null(c->row.provider_refund_id) : NULL; }
const char *tb_charge_idempotency_key(const tb_charge *c) { return c ? c->row.idempotency_key : NULL; }
const char *tb_charge_failure_code(const tb_charge *c) { return c ? or_null(c->row.failure_code) : NULL; }
const char *tb_charge_decline_code(const tb_charge *c) { return c ? or_null(c->row.decline_code) : NULL; }
const char *tb_charge_failure_message(const tb_charge *c) { return c ? or_null(c->row.failure_message) : NULL; }
const char *tb_charge_refund_reason(const tb_charge *c) { return c ? or_null(c->row.refund_reason) : NULL; }
int64_t tb_charge_attempts(const tb_charge *c) { return c ? c->row.attempts : 0; }
int64_t tb_charge_version(const tb_charge *c) { return c ? c->row.version : 0; }
int64_t tb_charge_created_at_ms(const tb_charge *c) { return c ? c->row.created_at_ms : 0; }

const char *tb_charge_status_name(tb_charge_status status)
{
	switch (status) {
	case TB_CHARGE_PENDING: return "pending";
	case TB_CHARGE_SUCCEEDED: return "succeeded";
	case TB_CHARGE_FAILED: return "failed";
	case TB_CHARGE_REFUND_PENDING: return "refund_pending";
	case TB_CHARGE_REFUNDED: return "refunded";
	}
	return "unknown";
}

tb_status tb_charge_to_json(char **out, const tb_charge *c)
{
	if (!c) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "charge", "charge must not be NULL");
	}
	return tb_json__dump(out, tb_json__charge(&c->row));
}

void tb_charge_free(tb_charge *c)
{
	if (!c)
		return;
	memset(c->row.payment_token, 0, sizeof(c->row.payment_token));
	free(c);
}

void tb_payment_provider_free(tb_payment_provider *provider)
{
	if (provider && provider->destroy)
		provider->destroy(provider);
}

const char *tb_pay_outcome_name(tb_pay_outcome outcome)
{
	switch (outcome) {
	case TB_PAY_SUCCEEDED: return "succeeded";
	case TB_PAY_DECLINED: return "declined";
	case TB_PAY_UNKNOWN: return "unknown";
	case TB_PAY_ERROR: return "error";
	}
	return "invalid";
}
