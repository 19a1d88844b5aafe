'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { tb, setup } = require('./helpers');

test('a subscriber gets every event in order, on dispatch and on tick', () => {
  const { market, seller } = setup();
  try {
    const seen = [];
    market.subscribe('audit', (e) => seen.push(e));
    assert.equal(market.dispatch(), 3);
    market.createTicket(seller, 'Seat', 100);
    assert.equal(market.tick().eventsDelivered, 1);
    assert.deepEqual(seen.map((e) => e.seq), [1, 2, 3, 4]);
    assert.deepEqual(seen.map((e) => e.type), ['UserCreated', 'UserCreated', 'UserCreated', 'TicketCreated']);
    assert.equal(market.subscriberCursor('audit'), 4);
    assert.equal(market.dispatch(), 0);
    assert.throws(() => market.subscribe('audit', () => {}), tb.AlreadyExistsError);
    market.unsubscribe('audit');
    assert.throws(() => market.unsubscribe('audit'), tb.NotFoundError);
  } finally {
    market.close();
  }
});

test('a throwing subscriber is reported and its event retried, never skipped', () => {
  const { market } = setup();
  try {
    const reports = [];
    market.on('subscriberError', (err, info) => reports.push({ err, info }));
    const seen = [];
    let failed = false;
    market.subscribe('mailer', (e) => {
      if (e.seq === 2 && !failed) {
        failed = true;
        throw new Error('mail server down');
      }
      seen.push(e.seq);
    });
    assert.equal(market.dispatch(), 1);
    assert.deepEqual(seen, [1]);
    assert.equal(reports.length, 1);
    assert.equal(reports[0].err.message, 'mail server down');
    assert.equal(reports[0].info.name, 'mailer');
    assert.equal(reports[0].info.event.seq, 2);
    assert.equal(market.subscriberCursor('mailer'), 1);
    const stats = market.tick();
    assert.equal(stats.eventsDelivered, 2);
    assert.deepEqual(seen, [1, 2, 3]);
  } finally {
    market.close();
  }
});

test('without a listener the error becomes a process warning', async () => {
  const { market } = setup();
  try {
    market.subscribe('broken', () => {
      throw new TypeError('oops');
    });
    const warned = once(process, 'warning');
    assert.equal(market.tick().subscriberFailures, 1);
    const [warning] = await warned;
    assert.equal(warning.name, 'TicketybooSubscriberWarning');
    assert.match(warning.message, /broken.*oops/s);
  } finally {
    market.close();
  }
});

test('a subscriber may call back into the market, and even close it', () => {
  const { market, seller } = setup();
  const titles = [];
  market.subscribe('reentrant', (e) => {
    if (e.type === 'TicketCreated') titles.push(market.ticket(e.aggregateId).title);
  });
  market.createTicket(seller, 'Gallery', 100);
  market.dispatch();
  assert.deepEqual(titles, ['Gallery']);
  market.unsubscribe('reentrant');
  market.subscribe('closer', () => market.close());
  market.createTicket(seller, 'Last', 100);
  market.dispatch(); // closes once dispatch has returned
  assert.equal(market.closed, true);
});

test('tickAsync ticks on a worker and delivers on the JS thread', async () => {
  const { market, seller, buyer, clock } = setup();
  try {
    const seen = [];
    market.subscribe('feed', (e) => seen.push(e.type));
    market.order(buyer, market.createTicket(seller, 'Seat', 100));
    clock.advance({ minutes: 20 });
    const stats = await market.tickAsync();
    assert.equal(stats.ordersExpired, 1);
    assert.equal(stats.eventsDelivered, seen.length);
    assert.equal(stats.subscriberFailures, 0);
    assert.deepEqual(seen.slice(-2), ['OrderExpired', 'TicketUpdated']);
  } finally {
    market.close();
  }
});

test('a subscriber may unsubscribe itself, even when it then throws', () => {
  const { market } = setup();
  try {
    const seen = [];
    const reports = [];
    market.on('subscriberError', (err) => reports.push(err.message));
    market.subscribe('once', (e) => {
      seen.push(e.seq);
      market.unsubscribe('once');
      throw new Error('after unsubscribing');
    });
    assert.equal(market.dispatch(), 0);
    assert.deepEqual(seen, [1]);
    assert.deepEqual(reports, ['after unsubscribing']);
    assert.equal(market.dispatch(), 0);
    market.subscribe('once', (e) => seen.push(e.seq));
    market.dispatch();
    assert.deepEqual(seen, [1, 1, 2, 3]);
  } finally {
    market.close();
  }
});
