'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { tb, START_MS, setup } = require('./helpers');

test('async calls resolve to the same records as the sync ones', async () => {
  const { market, seller, payments } = setup();
  try {
    const { user, session } = await market.signupAsync('async@example.com', 'async password');
    assert.equal(user.email, 'async@example.com');
    assert.equal(session.userId, user.id);
    const again = await market.signinAsync('async@example.com', 'async password');
    assert.deepEqual(market.userForSession(again), user);
    const moved = await market.updateEmailAsync(user, 'async password', 'moved@example.com');
    assert.equal(moved.email, 'moved@example.com');
    await market.updatePasswordAsync(user, 'async password', 'new async password');
    const order = market.order(user, market.createTicket(seller, 'Seat', 4200));
    const charge = await market.payAsync(user, order, 'tok_visa');
    assert.equal(charge.status, 'succeeded');
    const refund = await market.refundAsync(seller, order, 'changed my mind');
    assert.equal(refund.status, 'refunded');
    assert.equal(payments.stats.chargedMinor, 0);
  } finally {
    market.close();
  }
});

test('hashing runs off the event loop: timers keep firing during a moderate signup', async () => {
  const clock = new tb.ManualClock(START_MS);
  const market = new tb.Market({ clock, passwordCost: 'moderate' });
  try {
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 5);
    const started = process.hrtime.bigint();
    await market.signupAsync('slow@example.com', 'a moderately hashed password');
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(timer);
    console.log(`# signupAsync at moderate cost took ${ms.toFixed(0)} ms; the loop ran ${ticks} timer callbacks`);
    assert.ok(ticks >= 5, `the event loop was blocked (${ticks} timer callbacks in ${ms} ms)`);
  } finally {
    market.close();
  }
});

test('concurrent async orders and payments: every charge lands once', async () => {
  const { market, seller, payments } = setup();
  try {
    const buyers = [];
    for (let i = 0; i < 10; i++) buyers.push((await market.signupAsync(`b${i}@example.com`, 'buyer password')).user);
    const tickets = buyers.map((_, i) => market.createTicket(seller, `Seat ${i}`, 100 + i));
    const charges = await Promise.all(buyers.map((b, i) => market.payAsync(b, market.order(b, tickets[i]), 'tok_visa')));
    assert.ok(charges.every((c) => c.status === 'succeeded'));
    assert.equal(payments.stats.charges, 10);
  } finally {
    market.close();
  }
});

test('close() waits for async calls in flight', async () => {
  const { market, seller, buyer } = setup();
  const order = market.order(buyer, market.createTicket(seller, 'Seat', 100));
  const pending = market.payAsync(buyer, order, 'tok_visa');
  market.close();
  assert.equal(market.closed, true);
  assert.equal((await pending).status, 'succeeded');
  assert.throws(() => market.tick(), tb.InvalidArgumentError);
});
