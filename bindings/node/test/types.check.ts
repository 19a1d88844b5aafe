// Compiled (not run) by scripts/test.d/40-bindings.sh with `tsc --strict`
// against the installed package: index.d.ts must describe the real surface.
import * as tb from 'ticketyboo';

async function walkthrough(): Promise<number> {
  const clock = new tb.ManualClock(1700000000000);
  const payments = new tb.FakePayments();
  payments.script('tok_visa', 'timeoutAfterCharge');
  const market = new tb.Market({ clock, payments, lockMinutes: 15, passwordCost: 'min' });
  const { user: seller, session } = market.signup('seller@example.com', 'correct horse');
  const buyer: tb.User = (await market.signupAsync('buyer@example.com', 'battery staple')).user;
  const ticket: tb.Ticket = market.createTicket(seller, 'Front row', 1250, 'EUR');
  const listed: tb.TicketStatus = ticket.status;
  const page: tb.Page<tb.Ticket> = market.ticketsPage({ availableOnly: true, limit: 10 });
  for (const t of market.tickets({ owner: session })) console.log(t.orderId ?? 'unlocked', listed, page.nextCursor);
  const order: tb.Order = market.order(buyer, ticket);
  try {
    market.order(seller, ticket);
  } catch (err) {
    if (err instanceof tb.TicketLockedError) console.log(err.code, err.status, err.field);
  }
  clock.advance({ minutes: 16 });
  const stats: tb.TickStats = await market.tickAsync();
  const charge: tb.Charge = await market.payAsync(buyer, order, 'tok_visa');
  const chargeStatus: tb.ChargeStatus = charge.status;
  market.subscribe('log', (e: tb.MarketEvent) => console.log(e.seq, e.type, e.data));
  market.on('subscriberError', (err, info) => console.log(info.name, info.event?.seq, err));
  const deadline: number | null = market.nextDeadline();
  const fake: tb.FakeStats = payments.stats;
  market.close();
  return stats.ordersExpired + fake.calls + (deadline ?? 0) + chargeStatus.length + tb.parseMoney('1.00', 'USD');
}

function stripe(): void {
  const payments = new tb.StripePayments({ secretKey: 'sk_test_x', webhookSecret: 'whsec_x', maxRetries: 0 });
  const market = new tb.Market({ path: 'postgres://localhost/market', payments });
  market.stripeWebhook('t=1,v1=00', Buffer.from('{}'));
  market.close();
}

void walkthrough();
void stripe;
