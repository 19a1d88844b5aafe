'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { tb, setup } = require('./helpers');

const CLASSES = {
  EINVAL: 'InvalidArgumentError',
  ENOTFOUND: 'NotFoundError',
  EEXISTS: 'AlreadyExistsError',
  EUNAUTH: 'UnauthenticatedError',
  EFORBIDDEN: 'ForbiddenError',
  ELOCKED: 'TicketLockedError',
  ECONFLICT: 'ConflictError',
  EEXPIRED: 'ExpiredError',
  ESTATE: 'WrongStateError',
  EDECLINED: 'PaymentDeclinedError',
  EPROVIDER: 'ProviderUnavailableError',
  ESTORAGE: 'StorageError',
  ENOMEM: 'OutOfMemoryError',
  EBUSY: 'BusyError',
  EVERSION: 'VersionMismatchError',
  ESIGNATURE: 'InvalidSignatureError',
  EINTERNAL: 'InternalError',
};

test('every library status has its Error subclass', () => {
  const { core } = tb;
  assert.equal(Object.keys(CLASSES).length + 1, core.STATUS_COUNT);
  for (const [code, name] of Object.entries(CLASSES)) {
    const cls = tb[name];
    assert.equal(typeof cls, 'function', name);
    assert.equal(tb.errorClass(code), cls);
    assert.equal(core.status_name(core[code]), code);
    const err = new cls('boom', { field: 'f' });
    assert.ok(err instanceof tb.TicketybooError && err instanceof Error);
    assert.equal(err.code, code);
    assert.equal(err.status, core[code]);
    assert.equal(err.field, 'f');
    assert.equal(err.name, name);
  }
  assert.equal(tb.errorClass('EFUTURE'), tb.TicketybooError);
});

function throwsCode(fn, cls, code, field = null) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof cls, `${err && err.name} is not ${cls.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    assert.equal(err.field, field);
    assert.ok(err.message.length > 0);
    return true;
  });
}

test('real failures throw their classes with code and field', () => {
  const { market, clock, seller, buyer, rival } = setup();
  try {
    const ticket = market.createTicket(seller, 'Upper circle', 3000);
    throwsCode(() => market.createTicket(seller, 'x'.repeat(201), 100), tb.InvalidArgumentError, 'EINVAL', 'title');
    throwsCode(() => market.createTicket(seller, 'ok', 0), tb.InvalidArgumentError, 'EINVAL', 'price');
    throwsCode(() => market.signup('nope', 'long enough password'), tb.InvalidArgumentError, 'EINVAL', 'email');
    throwsCode(() => market.ticket('00000000-0000-7000-8000-000000000000'), tb.NotFoundError, 'ENOTFOUND');
    throwsCode(() => market.signup('seller@example.com', 'other password'), tb.AlreadyExistsError, 'EEXISTS', 'email');
    throwsCode(() => market.signin('seller@example.com', 'wrong password'), tb.UnauthenticatedError, 'EUNAUTH');
    throwsCode(() => market.updateTicket(buyer, ticket, { title: 'mine' }), tb.ForbiddenError, 'EFORBIDDEN');
    throwsCode(() => market.updateTicket(seller, ticket, { title: 't', expectedVersion: 7 }), tb.ConflictError,
      'ECONFLICT', 'version');
    let order = market.order(buyer, ticket);
    throwsCode(() => market.order(rival, ticket), tb.TicketLockedError, 'ELOCKED');
    market.cancel(buyer, order);
    throwsCode(() => market.pay(buyer, order, 'tok_visa'), tb.WrongStateError, 'ESTATE');
    order = market.order(buyer, ticket);
    clock.advance({ minutes: 16 });
    throwsCode(() => market.pay(buyer, order, 'tok_visa'), tb.ExpiredError, 'EEXPIRED');
    order = market.order(rival, ticket);
    throwsCode(() => market.pay(rival, order, 'tok_chargeDeclined'), tb.PaymentDeclinedError, 'EDECLINED');
    order = market.order(rival, ticket);
    throwsCode(() => market.pay(rival, order, 'tok_unknown'), tb.ProviderUnavailableError, 'EPROVIDER');
  } finally {
    market.close();
  }
  throwsCode(() => new tb.Market({ path: '/nonexistent/dir/m.db' }), tb.StorageError, 'ESTORAGE');
  throwsCode(() => new tb.Market({ passwordCost: 'extreme' }), tb.InvalidArgumentError, 'EINVAL', 'passwordCost');
  throwsCode(() => market.tick(), tb.InvalidArgumentError, 'EINVAL', 'market');
});

test('async variants reject with the same classes', async () => {
  const { market, seller, buyer } = setup();
  try {
    await assert.rejects(market.signinAsync('seller@example.com', 'wrong password'), tb.UnauthenticatedError);
    await assert.rejects(market.signupAsync('buyer@example.com', 'whatever pass'),
      (e) => e instanceof tb.AlreadyExistsError && e.field === 'email');
    const order = market.order(buyer, market.createTicket(seller, 'Seat', 100));
    await assert.rejects(market.payAsync(buyer, order, 'tok_chargeDeclined'), tb.PaymentDeclinedError);
  } finally {
    market.close();
  }
});

test('wrong argument types are TypeErrors', () => {
  const { market } = setup();
  try {
    assert.throws(() => market.ticket(42), TypeError);
    assert.throws(() => market.subscribe('x', 'not a function'), TypeError);
  } finally {
    market.close();
  }
});
