'use strict';
// Native records -> plain objects (camelCase, null for absent strings).
// Times are milliseconds since the epoch (`...Ms`); money is an integer count
// of minor units plus an ISO 4217 code.
//
// Each native record is freed as soon as it is copied: the garbage
// collector's finalizers would only run once JS yields, so a synchronous
// loop of 100k calls would otherwise pile up 100k native records.

const core = require('./native');

const nul = (v) => (v === undefined ? null : v);

function user(r) {
  return { id: r.id, email: r.email, version: r.version, createdAtMs: r.created_at_ms };
}

function session(r) {
  return { token: r.token, userId: r.user_id, expiresAtMs: r.expires_at_ms };
}

function ticket(r) {
  return {
    id: r.id,
    title: r.title,
    priceMinor: r.price_minor,
    currency: r.currency,
    ownerId: r.owner_id,
    orderId: nul(r.order_id),
    locked: Boolean(r.locked),
    lockedUntilMs: r.locked_until_ms,
    status: r.status_name,
    version: r.version,
    createdAtMs: r.created_at_ms,
  };
}

function order(r) {
  return {
    id: r.id,
    ticketId: r.ticket_id,
    buyerId: r.buyer_id,
    sellerId: r.seller_id,
    status: r.status_name,
    expiresAtMs: r.expires_at_ms,
    priceMinor: r.price_minor,
    currency: r.currency,
    version: r.version,
    createdAtMs: r.created_at_ms,
  };
}

function charge(r) {
  return {
    id: r.id,
    orderId: r.order_id,
    status: r.status_name,
    amountMinor: r.amount_minor,
    currency: r.currency,
    provider: r.provider,
    providerChargeId: nul(r.provider_charge_id),
    providerRefundId: nul(r.provider_refund_id),
    idempotencyKey: r.idempotency_key,
    failureCode: nul(r.failure_code),
    declineCode: nul(r.decline_code),
    failureMessage: nul(r.failure_message),
    refundReason: nul(r.refund_reason),
    attempts: r.attempts,
    version: r.version,
    createdAtMs: r.created_at_ms,
  };
}

function event(r) {
  const payload = r.payload;
  return {
    seq: r.seq,
    type: r.name,
    subject: r.subject,
    aggregateId: r.aggregate_id,
    aggregateVersion: r.aggregate_version,
    occurredAtMs: r.occurred_at_ms,
    data: payload ? JSON.parse(payload) : {},
  };
}

function tickStats(r) {
  return {
    ordersExpired: r.orders_expired,
    paymentsRetried: r.payments_retried,
    paymentsResolved: r.payments_resolved,
    refundsIssued: r.refunds_issued,
    eventsDelivered: r.events_delivered,
    subscriberFailures: r.subscriber_failures,
  };
}

function fakeStats(r) {
  return { calls: r.calls, charges: r.charges, refunds: r.refunds, chargedMinor: r.charged_minor };
}

function consuming(convert, free) {
  return (raw) => {
    try {
      return convert(raw);
    } finally {
      free(raw);
    }
  };
}

/** Copy every record of a page (freeing the page): { items, nextCursor }. */
function page(raw, convertOne, freeOne, freePage) {
  try {
    const items = [];
    const count = raw.count;
    for (let i = 0; i < count; i++) items.push(consuming(convertOne, freeOne)(raw.get(i)));
    return { items, nextCursor: raw.next_cursor === undefined ? null : raw.next_cursor };
  } finally {
    freePage(raw);
  }
}

module.exports = {
  user: consuming(user, core.user_free),
  session: consuming(session, core.session_free),
  ticket: consuming(ticket, core.ticket_free),
  order: consuming(order, core.order_free),
  charge: consuming(charge, core.charge_free),
  event: consuming(event, core.event_free),
  tickStats: consuming(tickStats, core.tick_stats_free),
  fakeStats: consuming(fakeStats, core.fake_stats_free),
  ticketPage: (raw) => page(raw, ticket, core.ticket_free, core.ticket_page_free),
  orderPage: (raw) => page(raw, order, core.order_free, core.order_page_free),
  eventPage: (raw) => page(raw, event, core.event_free, core.event_page_free),
};
