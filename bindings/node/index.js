'use strict';
// ticketyboo: Node binding of libticketyboo, an embeddable ticket-resale
// marketplace.  See README.md; the generated low-level module is `core`.

const core = require('./lib/native');
const errors = require('./lib/errors');
const { Market, ManualClock, FakePayments, StripePayments } = require('./lib/market');

function parseMoney(amount, currency) {
  return core.money_parse(amount, currency);
}

function formatMoney(minor, currency) {
  return core.money_format(Math.trunc(minor), currency);
}

function currencyExponent(currency) {
  const exponent = core.currency_exponent(currency);
  return exponent < 0 ? null : exponent;
}

module.exports = {
  Market,
  ManualClock,
  FakePayments,
  StripePayments,
  ...Object.fromEntries(Object.entries(errors).filter(([k]) => /Error$/.test(k))),
  errorClass: errors.errorClass,
  parseMoney,
  formatMoney,
  currencyExponent,
  libraryVersion: () => core.version(),
  version: require('./package.json').version,
  core,
};
