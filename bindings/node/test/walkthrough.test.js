'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { tb, START_MS, setup } = require('./helpers');

test('walkthrough: sign up, list, order, lock refused, expiry, pay, events', () => {
  const clock = new tb.ManualClock(START_MS);
  const payments = new tb.FakePayments();
  const market = new tb.Market({ clock, payments, passwordCost: 'min', lockMinutes: 15 });
  try {
    const { user: seller, session } = market.signup(' Seller@Example.com', 'correct horse battery');
    const { user: buyer } = market.signup('buyer@example.com', 'another good password');
    const { user: rival } = market.signup('rival@example.com', 'yet another password');
    assert.equal(seller.email, 'seller@example.com');
    assert.deepEqual(market.userForSession(session), seller);

    const ticket = market.createTicket(seller, 'Front row, night one', 1250, 'eur');
    assert.equal(ticket.currency, 'EUR');
    assert.equal(ticket.status, 'listed');
    assert.equal(ticket.orderId, null);
    assert.deepEqual([...market.tickets({ availableOnly: true })].map((t) => t.id), [ticket.id]);

    const order = market.order(buyer, ticket);
    assert.equal(order.status, 'created');
    assert.equal(order.expiresAtMs, START_MS + 15 * 60000);
    assert.equal(market.ticket(ticket.id).locked, true);

    assert.throws(() => market.order(rival, ticket), (err) => {
      assert.ok(err instanceof tb.TicketLockedError);
      assert.ok(err instanceof tb.TicketybooError);
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'ELOCKED');
      assert.equal(err.status, -6);
      assert.equal(err.name, 'TicketLockedError');
      return true;
    });

    clock.advance({ minutes: 15, ms: 1 });
    assert.equal(market.getOrder(buyer, order.id).status, 'expired');
    assert.equal(market.tick().ordersExpired, 1);
    assert.throws(() => market.pay(buyer, order, 'tok_visa'), tb.ExpiredError);

    const second = market.order(rival, ticket);
    const charge = market.pay(rival, second, 'tok_visa');
    assert.equal(charge.status, 'succeeded');
    assert.equal(charge.amountMinor, 1250);
    assert.equal(market.getOrder(rival, second.id).status, 'complete');
    assert.equal(market.ticket(ticket.id).ownerId, rival.id);
    assert.deepEqual(payments.stats, { calls: 1, charges: 1, refunds: 0, chargedMinor: 1250 });

    const events = [...market.events()];
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.deepEqual(events.map((e) => e.type), [
      'UserCreated', 'UserCreated', 'UserCreated', 'TicketCreated',
      'OrderCreated', 'TicketUpdated',
      'OrderExpired', 'TicketUpdated',
      'OrderCreated', 'TicketUpdated',
      'ChargeCreated', 'OrderAwaitingPayment', 'TicketUpdated',
      'ChargeSucceeded', 'OrderCompleted', 'TicketUpdated',
    ]);
    assert.equal(events[4].subject, 'order:created');
    assert.equal(events[4].data.id, order.id);
    assert.equal(market.lastEventSeq(), events.length);
  } finally {
    market.close();
  }
});

test('records are plain objects; paging walks every page', () => {
  const { market, seller, buyer } = setup();
  try {
    const made = [];
    for (let i = 0; i < 23; i++) made.push(market.createTicket(seller, `Seat ${i}`, 100 + i));
    market.createTicket(buyer, 'Not the seller\'s', 5);
    const got = [...market.tickets({ owner: seller, pageSize: 5 })];
    assert.deepEqual(got.map((t) => t.id), made.map((t) => t.id));
    assert.equal(Object.getPrototypeOf(got[0]), Object.prototype);
    assert.deepEqual(JSON.parse(JSON.stringify(got[0])), got[0]);
    const page = market.ticketsPage({ limit: 10 });
    assert.equal(page.items.length, 10);
    assert.equal(typeof page.nextCursor, 'string');
  } finally {
    market.close();
  }
});

test('update, cancel, refund, decline', () => {
  const { market, seller, buyer, rival, payments } = setup();
  try {
    const ticket = market.createTicket(seller, 'Stalls', 2000);
    const updated = market.updateTicket(seller, ticket, { priceMinor: 2500, expectedVersion: ticket.version });
    assert.equal(updated.priceMinor, 2500);
    assert.equal(updated.title, 'Stalls');
    assert.throws(() => market.updateTicket(seller, ticket, { title: 'x', expectedVersion: ticket.version }),
      (e) => e instanceof tb.ConflictError && e.field === 'version');
    const order = market.order(buyer, ticket);
    assert.equal(market.cancel(buyer, order).status, 'cancelled');
    assert.deepEqual([...market.orders(buyer)].map((o) => o.id), [order.id]);

    const declined = market.order(rival, ticket);
    assert.throws(() => market.pay(rival, declined, 'tok_chargeDeclinedInsufficientFunds'), tb.PaymentDeclinedError);
    assert.equal(market.latestCharge(rival, declined).declineCode, 'insufficient_funds');

    const bought = market.order(rival, ticket);
    market.pay(rival, bought, 'tok_visa');
    const refund = market.refund(seller, bought, 'event cancelled');
    assert.equal(refund.status, 'refunded');
    assert.equal(payments.stats.chargedMinor, 0);
  } finally {
    market.close();
  }
});

test('money helpers and versions', () => {
  assert.equal(tb.parseMoney('19.99', 'USD'), 1999);
  assert.equal(tb.formatMoney(1999, 'USD'), '19.99');
  assert.equal(tb.currencyExponent('JPY'), 0);
  assert.equal(tb.currencyExponent('nope'), null);
  assert.throws(() => tb.parseMoney('1.999', 'USD'), (e) => e instanceof tb.InvalidArgumentError && e.field === 'price');
  assert.equal(tb.version, tb.libraryVersion());
});
