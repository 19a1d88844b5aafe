'use strict';
// The Stripe provider through the binding, without the network: a local
// server that never answers stands in for a slow Stripe.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { tb, START_MS } = require('./helpers');

function silentServer() {
  const sockets = [];
  const server = net.createServer((socket) => sockets.push(socket));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { sockets.forEach((s) => s.destroy()); server.close(); },
  })));
}

test('options are validated with their field', () => {
  assert.throws(() => new tb.StripePayments({ secretKey: '' }),
    (e) => e instanceof tb.InvalidArgumentError && e.field === 'secret_key');
  assert.throws(() => new tb.StripePayments({ secretKey: 'sk_test_x', baseUrl: 'http://stripe.example.com' }),
    (e) => e instanceof tb.InvalidArgumentError && e.field === 'base_url');
});

test('payAsync through a slow provider keeps the event loop running', async () => {
  const server = await silentServer();
  const stripe = new tb.StripePayments({ secretKey: 'sk_test_x', baseUrl: server.url, timeoutMs: 800,
    connectTimeoutMs: 500, maxRetries: 0 });
  const market = new tb.Market({ clock: new tb.ManualClock(START_MS), payments: stripe, passwordCost: 'min' });
  try {
    const { user: seller } = market.signup('seller@example.com', 'seller-password');
    const { user: buyer } = market.signup('buyer@example.com', 'buyer-password');
    const order = market.order(buyer, market.createTicket(seller, 'Seat', 4200));
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 5);
    const started = Date.now();
    const charge = await market.payAsync(buyer, order, 'pm_card_visa');
    const ms = Date.now() - started;
    clearInterval(timer);
    console.log(`# payAsync through a silent Stripe took ${ms} ms; the loop ran ${ticks} timer callbacks`);
    assert.equal(charge.status, 'pending'); // no answer: the tick will ask again
    assert.equal(charge.provider, 'stripe');
    assert.equal(market.getOrder(buyer, order.id).status, 'awaiting_payment');
    assert.ok(ms >= 500);
    assert.ok(ticks >= 20, `the event loop was blocked (${ticks} timer callbacks in ${ms} ms)`);
  } finally {
    market.close();
    server.close();
  }
});

function signature(secret, body, t) {
  return `t=${t},v1=${crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

test('webhooks are verified, then applied', () => {
  const clock = new tb.ManualClock(START_MS);
  const stripe = new tb.StripePayments({ secretKey: 'sk_test_x', webhookSecret: 'whsec_test' });
  const market = new tb.Market({ clock, payments: stripe });
  try {
    const now = Math.floor(clock.nowMs / 1000);
    const body = '{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}';
    market.stripeWebhook(signature('whsec_test', body, now), body);
    market.stripeWebhook(signature('whsec_test', body, now), Buffer.from(body));
    assert.throws(() => market.stripeWebhook(signature('whsec_other', body, now), body),
      (e) => e instanceof tb.InvalidSignatureError && e.code === 'ESIGNATURE');
    const unknown = '{"id":"evt_2","object":"event","type":"payment_intent.succeeded",' +
      '"data":{"object":{"id":"pi_1","metadata":{}}}}';
    assert.throws(() => market.stripeWebhook(signature('whsec_test', unknown, now), unknown), tb.NotFoundError);
  } finally {
    market.close();
  }
});
