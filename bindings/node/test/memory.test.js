'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { tb, setup } = require('./helpers');

const PAGE = 4096;
const rss = () => Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * PAGE;

function workload(ctx, n) {
  const { market, seller, buyer, rival, ticket, session, order } = ctx;
  let calls = 0;
  while (calls < n) {
    market.ticket(ticket.id);
    market.userForSession(session);
    try { market.order(rival, ticket); } catch (e) { if (!(e instanceof tb.TicketLockedError)) throw e; }
    try { market.createTicket(seller, '', 1); } catch (e) { if (!(e instanceof tb.InvalidArgumentError)) throw e; }
    market.ticketsPage({ limit: 5 });
    [...market.events({ after: Math.max(0, market.lastEventSeq() - 3), pageSize: 3 })];
    market.getOrder(buyer, order.id);
    market.tick();
    calls += 9;
  }
  return calls;
}

const settle = async () => {
  // Node-API finalizers run after the collection, once the loop turns.
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
};

test('no leak across 100k calls (RSS after GC)', { skip: !global.gc && 'run with --expose-gc' }, async () => {
  const ctx = setup();
  try {
    for (let i = 0; i < 10; i++) ctx.market.createTicket(ctx.seller, `Seat ${i}`, 100 + i);
    ctx.ticket = ctx.market.createTicket(ctx.seller, 'Locked seat', 999);
    ctx.session = ctx.market.signin('buyer@example.com', 'buyer-password');
    ctx.order = ctx.market.order(ctx.buyer, ctx.ticket);
    // Warm up with as many calls as are measured: V8's heap and the allocator's
    // arenas grow to their working size on the first burst and stay there.
    workload(ctx, 100000);
    await settle();
    const before = rss();
    const heapBefore = process.memoryUsage().heapTotal;
    const done = workload(ctx, 100000);
    await settle();
    const after = rss();
    const heap = (process.memoryUsage().heapTotal - heapBefore) / 1e6;
    const growth = (after - before) / 1e6;
    const mb = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(2)} MB`;
    console.log(`# RSS before ${(before / 1e6).toFixed(1)} MB, after ${done} calls ${(after / 1e6).toFixed(1)} MB: ` +
      `growth ${mb(growth)}, of which V8 heap ${mb(heap)}, outside it ${mb(growth - heap)} (bound 10 MB)`);
    // Native records and strings live outside V8's heap; the heap itself may
    // settle a few MB higher after 100k thrown-and-caught errors.
    assert.ok(growth - heap < 10, `RSS outside the V8 heap grew by ${(growth - heap).toFixed(2)} MB`);
    assert.ok(growth < 20, `RSS grew by ${growth.toFixed(2)} MB`);
  } finally {
    ctx.market.close();
  }
});
