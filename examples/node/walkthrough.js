#!/usr/bin/env node
'use strict';
// The ticketyboo walkthrough in Node.
//
// Sign up, list a ticket, order it, watch another buyer be refused while the
// lock holds, let the lock expire on a manual clock, pay with the fake
// provider, and read the events in order.
//
//   npm install ./bindings/node
//   node examples/node/walkthrough.js

const tb = require('ticketyboo');

async function main() {
  const clock = new tb.ManualClock(1700000000000); // 2023-11-14T22:13:20Z, moved by hand
  const payments = new tb.FakePayments();
  const market = new tb.Market({ clock, payments, lockMinutes: 15, passwordCost: 'min' });
  try {
    // Everything the market does reaches a subscriber, in order.
    market.subscribe('printer', (e) => console.log(`    event ${String(e.seq).padStart(2)}: ${e.type} ${e.aggregateId.slice(0, 8)}`));

    const { user: seller } = market.signup('seller@example.com', 'correct horse battery');
    const { user: alice } = await market.signupAsync('alice@example.com', "alice's long password");
    const { user: bob } = market.signup('bob@example.com', "bob's long password");
    console.log(`signed up ${seller.email}, ${alice.email}, ${bob.email}`);

    const ticket = market.createTicket(seller, 'Front row, night one', 1250, 'EUR');
    console.log(`listed '${ticket.title}' at ${tb.formatMoney(ticket.priceMinor, ticket.currency)} ${ticket.currency}`);
    console.log('for sale:', [...market.tickets({ availableOnly: true })].map((t) => t.title));

    let order = market.order(alice, ticket);
    console.log(`alice ordered it; the lock holds until ${order.expiresAtMs} (status ${order.status})`);
    try {
      market.order(bob, ticket);
    } catch (err) {
      if (!(err instanceof tb.TicketLockedError)) throw err;
      console.log(`bob is refused: ${err.message} [${err.code}]`);
    }

    clock.advance({ minutes: 16 });
    console.log(`16 minutes later alice's order reads ${market.getOrder(alice, order.id).status}`);
    const stats = market.tick();
    console.log(`the tick expired ${stats.ordersExpired} order(s)`);
    try {
      market.pay(alice, order, 'tok_visa');
    } catch (err) {
      if (!(err instanceof tb.ExpiredError)) throw err;
      console.log(`alice can no longer pay: ${err.message} [${err.code}]`);
    }

    order = market.order(bob, ticket);
    const charge = await market.payAsync(bob, order, 'tok_visa'); // runs on the libuv pool
    console.log(`bob paid: charge ${charge.status}, ${charge.amountMinor} ${charge.currency} via ${charge.provider}`);
    console.log(`the ticket now belongs to bob: ${market.ticket(ticket.id).ownerId === bob.id}`);
    console.log('fake provider:', payments.stats);

    console.log('events, in order:');
    market.dispatch();
    const seqs = [...market.events()].map((e) => e.seq);
    if (seqs.some((s, i) => s !== i + 1)) throw new Error(`events out of order: ${seqs}`);
  } finally {
    market.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
