'use strict';
// The package under test: this checkout, or an installed copy
// (TICKETYBOO_MODULE=<dir>, e.g. a tarball installed into a scratch project).
const tb = require(process.env.TICKETYBOO_MODULE || '..');

const START_MS = 1700000000000; // 2023-11-14T22:13:20Z

function setup({ payments = true } = {}) {
  const clock = new tb.ManualClock(START_MS);
  const fake = payments ? new tb.FakePayments() : null;
  const market = new tb.Market({ clock, payments: fake, passwordCost: 'min', lockMinutes: 15 });
  const { user: seller } = market.signup('seller@example.com', 'seller-password');
  const { user: buyer } = market.signup('buyer@example.com', 'buyer-password');
  const { user: rival } = market.signup('rival@example.com', 'rival-password');
  return { tb, clock, payments: fake, market, seller, buyer, rival };
}

module.exports = { tb, START_MS, setup };
