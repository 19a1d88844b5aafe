'use strict';
// Market, ManualClock, FakePayments: a thin layer over the generated module,
// which already returns records as plain objects (see ticketyboo.i).
//
// Threads: every synchronous method runs on the JS thread.  The *Async
// methods run the call on the libuv worker pool (argon2 hashing, a payment
// provider, a tick that retries payments) and resolve on the JS thread.
// Subscribers are always called on the JS thread, during tick()/dispatch()
// (tickAsync() ticks on a worker, then dispatches here).
//
// Lifetimes: JS has no reference counting, so native handles are released
// explicitly: market.close(), and a FinalizationRegistry for markets, clocks
// and providers that were dropped without it.  A market is only really
// closed once no async call and no tick/dispatch is running on it.

const { EventEmitter } = require('events');
const core = require('./native');
const { invalid } = require('./errors');

const PASSWORD_COSTS = {
  default: core.PASSWORD_COST_DEFAULT,
  min: core.PASSWORD_COST_MIN,
  interactive: core.PASSWORD_COST_INTERACTIVE,
  moderate: core.PASSWORD_COST_MODERATE,
};
const LATE_PAYMENT = { refund: core.LATE_PAYMENT_REFUND, honourIfAvailable: core.LATE_PAYMENT_HONOUR_IF_AVAILABLE };
const SYNC = { default: core.SYNC_DEFAULT, normal: core.SYNC_NORMAL, full: core.SYNC_FULL, off: core.SYNC_OFF };
const FAKE_OUTCOMES = {
  succeed: core.FAKE_SUCCEED,
  decline: core.FAKE_DECLINE,
  timeout: core.FAKE_TIMEOUT,
  timeoutAfterCharge: core.FAKE_TIMEOUT_AFTER_CHARGE,
  error: core.FAKE_ERROR,
};
const PAYMENT_EVENTS = {
  succeeded: core.PAYMENT_EVENT_SUCCEEDED,
  failed: core.PAYMENT_EVENT_FAILED,
  refunded: core.PAYMENT_EVENT_REFUNDED,
};

function choice(kind, table, value) {
  if (!Object.prototype.hasOwnProperty.call(table, value)) {
    throw invalid(`${kind} must be one of ${Object.keys(table).map((k) => `'${k}'`).join(', ')}, not ${String(value)}`,
      kind);
  }
  return table[value];
}

const str = (v) => (v === undefined ? null : v);
const int = (v, dflt = 0) => (v === undefined || v === null ? dflt : Math.trunc(Number(v)));
// Users may be passed as ids, user records or sessions; tickets and orders as ids or records.
const userId = (u) => (typeof u === 'string' ? u : (u && (u.userId !== undefined && u.token ? u.userId : u.id)));
const idOf = (x) => (typeof x === 'string' ? x : x && x.id);
const tokenOf = (s) => (typeof s === 'string' ? s : s && s.token);

// Native handles dropped without close()/free: released later on the JS thread.
const handles = new FinalizationRegistry((held) => held.release());

class ManualClock {
  /** A clock that only moves when told to (ms since the epoch; default: now). */
  constructor(startMs = Date.now()) {
    this._raw = core.clock_manual_new(int(startMs));
    const raw = this._raw;
    handles.register(this, { release: () => core.clock_manual_free(raw) });
  }

  get nowMs() {
    return core.clock_manual_now(this._raw);
  }

  /** Set the time (moving backwards is allowed). */
  set(nowMs) {
    core.clock_manual_set(this._raw, int(nowMs));
  }

  /**
   * Move the time by `ms`, or by { ms, seconds, minutes, hours }; returns
   * the new time.
   */
  advance(delta) {
    const d = typeof delta === 'object' && delta !== null ? delta : { ms: delta };
    const ms = int(d.ms) + Math.round(((d.seconds || 0) + 60 * (d.minutes || 0) + 3600 * (d.hours || 0)) * 1000);
    core.clock_manual_advance(this._raw, ms);
    return this.nowMs;
  }
}

class FakePayments {
  /**
   * The library's deterministic payment provider: 'tok_visa' succeeds,
   * 'tok_chargeDeclined' is declined, 'tok_chargeDeclinedInsufficientFunds'
   * declined with insufficient_funds, 'tok_timeout' takes the money but the
   * answer is lost, 'tok_timeoutNoCharge' answers unknown; others are errors.
   */
  constructor() {
    this._raw = core.payment_fake_new();
    const raw = this._raw;
    handles.register(this, { release: () => core.payment_provider_free(raw) });
  }

  get name() {
    return 'fake';
  }

  /**
   * Queue an outcome for the next call carrying `token`: 'succeed',
   * 'decline', 'timeout', 'timeoutAfterCharge' or 'error'.
   */
  script(token, outcome) {
    core.payment_fake_script(this._raw, token, choice('outcome', FAKE_OUTCOMES, outcome));
  }

  /** { calls, charges, refunds, chargedMinor } */
  get stats() {
    return core.payment_fake_stats(this._raw);
  }
}

class StripePayments {
  /**
   * Stripe, through its PaymentIntents and Refunds APIs (libcurl, TLS).  Its
   * calls block while Stripe answers: use payAsync()/refundAsync()/
   * tickAsync() so they run on the worker pool.
   * @param {object} options
   * @param {string} options.secretKey 'sk_live_...', 'sk_test_...' or 'rk_...'.
   * @param {string} [options.baseUrl] Default Stripe's API; plain http only to a loopback host (tests).
   * @param {string|null} [options.apiVersion] Stripe-Version (default the pinned one; null: none).
   * @param {string} [options.webhookSecret] 'whsec_...' to accept webhooks (market.stripeWebhook()).
   */
  constructor({
    secretKey, baseUrl = null, connectTimeoutMs = core.STRIPE_DEFAULT_CONNECT_TIMEOUT_MS,
    timeoutMs = core.STRIPE_DEFAULT_TIMEOUT_MS, maxRetries = core.STRIPE_DEFAULT_MAX_RETRIES,
    backoffBaseMs = core.STRIPE_DEFAULT_BACKOFF_BASE_MS, backoffCapMs = core.STRIPE_DEFAULT_BACKOFF_CAP_MS,
    apiVersion = core.STRIPE_DEFAULT_API_VERSION, webhookSecret = null, webhookToleranceS = 0,
  } = {}) {
    this._raw = core.payment_stripe_new(str(secretKey), str(baseUrl), int(connectTimeoutMs), int(timeoutMs),
      int(maxRetries), int(backoffBaseMs), int(backoffCapMs), str(apiVersion), str(webhookSecret),
      int(webhookToleranceS));
    const raw = this._raw;
    handles.register(this, { release: () => core.payment_provider_free(raw) });
  }

  get name() {
    return 'stripe';
  }
}

class Market extends EventEmitter {
  /**
   * Open a marketplace.
   * @param {object} [options]
   * @param {string} [options.path=':memory:'] SQLite file.
   * @param {number} [options.lockMinutes] Order lock window (default 15); or lockMs.
   * @param {ManualClock} [options.clock] Time source (default: the real clock).
   * @param {FakePayments|StripePayments} [options.payments] Payment provider (default: none; paying fails).
   * @param {'default'|'min'|'interactive'|'moderate'} [options.passwordCost]
   * @param {'refund'|'honourIfAvailable'} [options.latePayment]
   * @param {'default'|'normal'|'full'|'off'} [options.sync]
   */
  constructor(options = {}) {
    const {
      path = ':memory:', lockMinutes, lockMs, clock = null, payments = null, passwordCost = 'default',
      sessionTtlMs, latePayment = 'refund', paymentGraceMs, sync = 'default', defaultCurrency = null,
      paymentRetryMs,
    } = options;
    if (lockMinutes !== undefined && lockMs !== undefined) throw invalid('give lockMinutes or lockMs, not both', 'lockMs');
    let lock = int(lockMs);
    if (lockMinutes !== undefined) {
      lock = Math.round(Number(lockMinutes) * 60000);
      if (!(lock > 0)) throw invalid('lockMinutes must be positive', 'lockMinutes');
    }
    if (clock !== null && !(clock instanceof ManualClock)) throw invalid('clock must be a ManualClock', 'clock');
    if (payments !== null && !(payments instanceof FakePayments) && !(payments instanceof StripePayments)) {
      throw invalid('payments must be a FakePayments or StripePayments provider', 'payments');
    }
    super();
    this.path = String(path);
    this.clock = clock;
    this.payments = payments;
    this._busy = 0; // async jobs and tick/dispatch calls running
    this._closeWhenIdle = null;
    this._subscribers = new Map();
    this._subscriberFailures = 0;
    this._raw = core.market_open(this.path, lock, clock && clock._raw, payments && payments._raw,
      choice('passwordCost', PASSWORD_COSTS, passwordCost), int(sessionTtlMs),
      choice('latePayment', LATE_PAYMENT, latePayment), int(paymentGraceMs), choice('sync', SYNC, sync),
      str(defaultCurrency), int(paymentRetryMs));
    // Holding clock and payments keeps them alive until the market is closed.
    const raw = this._raw;
    handles.register(this, { release: () => core.market_close(raw), clock, payments }, this);
  }

  // -- lifetime -------------------------------------------------------------

  /**
   * Close the market (idempotent); later calls throw InvalidArgumentError.
   * If async calls are still running it closes when the last one settles.
   */
  close() {
    const raw = this._raw;
    if (raw === null) return;
    this._raw = null;
    handles.unregister(this);
    if (this._busy > 0) {
      this._closeWhenIdle = raw;
    } else {
      core.market_close(raw);
    }
    this._subscribers.clear();
  }

  get closed() {
    return this._raw === null;
  }

  _m() {
    if (this._raw === null) throw invalid('the market is closed', 'market');
    return this._raw;
  }

  _enter() {
    const raw = this._m();
    this._busy += 1;
    return raw;
  }

  _leave() {
    this._busy -= 1;
    if (this._busy === 0 && this._closeWhenIdle !== null) {
      const raw = this._closeWhenIdle;
      this._closeWhenIdle = null;
      core.market_close(raw);
    }
  }

  async _job(make, take, ...args) {
    const raw = this._enter();
    let job;
    try {
      job = make(raw, ...args);
      await core.job_queue(job);
    } finally {
      this._leave();
    }
    return take(job);
  }

  // -- time -----------------------------------------------------------------

  /** The market's clock reading (ms since the epoch). */
  get nowMs() {
    return core.market_now_ms(this._m());
  }

  /** The order lock window in milliseconds. */
  get lockMs() {
    return core.market_lock_ms(this._m());
  }

  /**
   * Do what is due: expire orders, retry unknown payments and refunds,
   * refund late payments, deliver events to subscribers.
   */
  tick() {
    const raw = this._enter();
    try {
      return core.market_tick(raw);
    } finally {
      this._leave();
    }
  }

  /** tick() on a worker thread, then the subscribers' deliveries here. */
  async tickAsync() {
    const stats = await this._job(core.job_tick, core.job_take_tick);
    // Subscribers only ever run on the JS thread: the worker left the events to us.
    const failuresBefore = this._subscriberFailures;
    stats.eventsDelivered = this.closed ? 0 : this.dispatch();
    stats.subscriberFailures = this._subscriberFailures - failuresBefore;
    return stats;
  }

  /** When the next tick has work (ms since the epoch), or null. */
  nextDeadline() {
    const deadline = core.market_next_deadline(this._m());
    return deadline === core.NO_DEADLINE ? null : deadline;
  }

  checkpoint() {
    core.market_checkpoint(this._m());
  }

  // -- users ----------------------------------------------------------------

  /** Create an account: { user, session }. */
  signup(email, password) {
    const [user, session] = core.user_signup(this._m(), email, password);
    return { user, session };
  }

  /** signup() with the password hashed on a worker thread. */
  signupAsync(email, password) {
    return this._job(core.job_signup, (job) => {
      const [user, session] = core.job_take_signup(job);
      return { user, session };
    }, email, password);
  }

  /** Verify the password and start a session (UnauthenticatedError otherwise). */
  signin(email, password) {
    return core.user_signin(this._m(), email, password);
  }

  signinAsync(email, password) {
    return this._job(core.job_signin, core.job_take_session, email, password);
  }

  /** Revoke a session (a session record or its token); idempotent. */
  signout(session) {
    core.user_signout(this._m(), tokenOf(session));
  }

  /** The user a session (or token) belongs to. */
  userForSession(session) {
    return core.user_get_by_session(this._m(), tokenOf(session));
  }

  user(id) {
    return core.user_get(this._m(), id);
  }

  updateEmail(user, currentPassword, newEmail) {
    return core.user_update_email(this._m(), userId(user), currentPassword, newEmail);
  }

  updateEmailAsync(user, currentPassword, newEmail) {
    return this._job(core.job_update_email, core.job_take_user, userId(user),
      currentPassword, newEmail);
  }

  /** Change the password; every other session of the user is revoked. */
  updatePassword(user, currentPassword, newPassword) {
    return core.user_update_password(this._m(), userId(user), currentPassword, newPassword);
  }

  updatePasswordAsync(user, currentPassword, newPassword) {
    return this._job(core.job_update_password, core.job_take_user, userId(user),
      currentPassword, newPassword);
  }

  // -- tickets --------------------------------------------------------------

  /** List a ticket for sale (price in minor units; currency defaults to the market's). */
  createTicket(owner, title, priceMinor, currency = null) {
    return core.ticket_create(this._m(), userId(owner), title, int(priceMinor), str(currency));
  }

  ticket(id) {
    return core.ticket_get(this._m(), id);
  }

  /**
   * Change title and/or price; with expectedVersion, ConflictError if the
   * ticket changed since.
   */
  updateTicket(user, ticket, { title = null, priceMinor, expectedVersion } = {}) {
    return core.ticket_update(this._m(), userId(user), idOf(ticket), str(title),
      priceMinor === undefined || priceMinor === null ? core.keep() : int(priceMinor),
      expectedVersion === undefined || expectedVersion === null ? core.any_version() : int(expectedVersion));
  }

  /** List (or, with listed = false, withdraw) a ticket the user owns. */
  setListed(user, ticket, listed = true) {
    return core.ticket_set_listed(this._m(), userId(user), idOf(ticket), listed ? 1 : 0);
  }

  /** One page of tickets, oldest first: { items, nextCursor }. */
  ticketsPage({ availableOnly = false, owner = null, titleContains = null, after = null, limit = 50 } = {}) {
    return core.ticket_list(this._m(), availableOnly ? 1 : 0, owner === null ? null : userId(owner),
      str(titleContains), str(after), int(limit));
  }

  /** Every matching ticket, fetched a page at a time. */
  * tickets({ availableOnly = false, owner = null, titleContains = null, pageSize = 50 } = {}) {
    let after = null;
    do {
      const page = this.ticketsPage({ availableOnly, owner, titleContains, after, limit: pageSize });
      yield* page.items;
      after = page.nextCursor;
    } while (after !== null);
  }

  // -- orders ---------------------------------------------------------------

  /** Order a ticket, locking it; TicketLockedError if a live order holds it. */
  order(buyer, ticket) {
    return core.order_create(this._m(), userId(buyer), idOf(ticket));
  }

  getOrder(user, id) {
    return core.order_get(this._m(), userId(user), id);
  }

  ordersPage(buyer, { after = null, limit = 50 } = {}) {
    return core.order_list(this._m(), userId(buyer), str(after), int(limit));
  }

  * orders(buyer, { pageSize = 50 } = {}) {
    let after = null;
    do {
      const page = this.ordersPage(buyer, { after, limit: pageSize });
      yield* page.items;
      after = page.nextCursor;
    } while (after !== null);
  }

  /** Cancel an order (buyer only), unlocking its ticket. */
  cancel(user, order) {
    return core.order_cancel(this._m(), userId(user), idOf(order));
  }

  // -- payments -------------------------------------------------------------

  /**
   * Pay an order with a provider token ('tok_visa').  The charge is
   * 'succeeded', or 'pending' if the provider's answer was lost.  Throws
   * PaymentDeclinedError, ExpiredError, WrongStateError, ...
   */
  pay(user, order, token) {
    return core.order_pay(this._m(), userId(user), idOf(order), token);
  }

  /** pay() on a worker thread: a real provider's HTTP call does not block the loop. */
  payAsync(user, order, token) {
    return this._job(core.job_pay, core.job_take_charge, userId(user), idOf(order), token);
  }

  /** Refund a complete order (seller only); the ticket returns to the seller. */
  refund(seller, order, reason = null) {
    return core.order_refund(this._m(), userId(seller), idOf(order), str(reason));
  }

  refundAsync(seller, order, reason = null) {
    return this._job(core.job_refund, core.job_take_charge, userId(seller), idOf(order),
      str(reason));
  }

  charge(user, id) {
    return core.charge_get(this._m(), userId(user), id);
  }

  latestCharge(user, order) {
    return core.charge_get_latest(this._m(), userId(user), idOf(order));
  }

  /** Apply a provider's verified notice: type 'succeeded' | 'failed' | 'refunded'. Idempotent. */
  applyPaymentEvent(type, eventId, {
    chargeId = null, providerChargeId = null, providerRefundId = null, failureCode = null, declineCode = null,
    failureMessage = null,
  } = {}) {
    core.market_apply_payment_event(this._m(), choice('type', PAYMENT_EVENTS, type), eventId, chargeId,
      providerChargeId, providerRefundId, failureCode, declineCode, failureMessage);
  }

  /**
   * Handle one Stripe webhook delivery: verify Stripe-Signature against the
   * raw body (a string or Buffer) with the provider's webhookSecret, then
   * apply the event (idempotent).  Throws InvalidSignatureError (answer HTTP
   * 400), NotFoundError (no charge of this market matches), ...
   */
  stripeWebhook(signatureHeader, body) {
    if (!(this.payments instanceof StripePayments)) {
      throw invalid("the market's payments provider is not Stripe", 'payments');
    }
    const text = Buffer.isBuffer(body) ? body.toString('utf8') : body;
    core.market_stripe_webhook(this._m(), this.payments._raw, signatureHeader, text);
  }

  // -- events ---------------------------------------------------------------

  /** Events with seq > after, oldest first, until the newest. */
  * events({ after = 0, pageSize = 100 } = {}) {
    let cursor = int(after);
    for (;;) {
      const { items } = core.event_read(this._m(), cursor, int(pageSize));
      if (items.length === 0) return;
      for (const e of items) {
        cursor = e.seq;
        yield e;
      }
    }
  }

  /** Sequence number of the newest event (0 when none). */
  lastEventSeq() {
    return core.event_last_seq(this._m());
  }

  /**
   * Deliver every event to `fn(event)` as the durable subscriber `name`, at
   * least once and in order, on the JS thread during tick()/dispatch().  A
   * subscriber seen before resumes after the last event it acknowledged.
   * If `fn` throws, the event is not acknowledged (delivered again later)
   * and the error is reported: emitted as 'subscriberError' (err, { name,
   * event }) if the market has listeners for it, else as a process warning.
   * `fn` must be synchronous.
   */
  subscribe(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('the subscriber must be a function');
    // The trampoline passes a plain object and reads the result: false = not acknowledged.
    const deliver = (event) => {
      try {
        fn(event);
        return true;
      } catch (err) {
        this._subscriberFailures += 1;
        this._reportSubscriberError(name, err, event);
        return false;
      }
    };
    core.market_subscribe(this._m(), name, deliver);
    this._subscribers.set(name, fn);
  }

  /** Stop delivering to `name` (its stored cursor is kept). */
  unsubscribe(name) {
    core.market_unsubscribe(this._m(), name);
    this._subscribers.delete(name);
  }

  /** The last sequence number `name` acknowledged (0 if none). */
  subscriberCursor(name) {
    return core.event_cursor(this._m(), name);
  }

  /** Deliver pending events to every subscriber now; returns how many were acknowledged. */
  dispatch() {
    const raw = this._enter();
    try {
      return core.event_dispatch(raw);
    } finally {
      this._leave();
    }
  }

  _reportSubscriberError(name, err, event) {
    const seq = event ? event.seq : '?';
    if (this.listenerCount('subscriberError') > 0) {
      try {
        this.emit('subscriberError', err, { name, event });
      } catch (e) {
        process.emitWarning(`ticketyboo: a 'subscriberError' listener threw: ${e && e.stack}`);
      }
      return;
    }
    const detail = err && err.stack ? err.stack : String(err);
    process.emitWarning(`subscriber '${name}' threw on event ${seq}; it will be delivered again.\n${detail}`,
      { type: 'TicketybooSubscriberWarning', code: 'TICKETYBOO_SUBSCRIBER' });
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Market { path: '${this.path}'${this.closed ? ', closed' : ''} }`;
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Market.prototype[Symbol.dispose] = Market.prototype.close;
}


module.exports = { Market, ManualClock, FakePayments, StripePayments, PASSWORD_COSTS, FAKE_OUTCOMES };
