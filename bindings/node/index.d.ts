// Type declarations for ticketyboo, the Node binding of libticketyboo.

import { EventEmitter } from 'events';

export type TicketStatus = 'listed' | 'unlisted';
export type OrderStatus = 'created' | 'awaiting_payment' | 'complete' | 'cancelled' | 'expired' | 'refunded';
export type ChargeStatus = 'pending' | 'succeeded' | 'failed' | 'refund_pending' | 'refunded';
export type PasswordCost = 'default' | 'min' | 'interactive' | 'moderate';
export type FakeOutcome = 'succeed' | 'decline' | 'timeout' | 'timeoutAfterCharge' | 'error';
export type PaymentEventType = 'succeeded' | 'failed' | 'refunded';

export interface User {
  id: string;
  email: string;
  version: number;
  createdAtMs: number;
}

/** A signed-in session; `token` is the only copy there is. */
export interface Session {
  token: string;
  userId: string;
  expiresAtMs: number;
}

export interface Ticket {
  id: string;
  title: string;
  /** Price in minor units (cents). */
  priceMinor: number;
  /** ISO 4217, upper case. */
  currency: string;
  ownerId: string;
  /** The live order that locks it, or null (as of the read). */
  orderId: string | null;
  locked: boolean;
  /** When the lock lapses (ms since the epoch), or 0. */
  lockedUntilMs: number;
  status: TicketStatus;
  version: number;
  createdAtMs: number;
}

export interface Order {
  id: string;
  ticketId: string;
  buyerId: string;
  sellerId: string;
  /** The effective status as of the read (a lapsed order reads as expired). */
  status: OrderStatus;
  expiresAtMs: number;
  priceMinor: number;
  currency: string;
  version: number;
  createdAtMs: number;
}

export interface Charge {
  id: string;
  orderId: string;
  status: ChargeStatus;
  amountMinor: number;
  currency: string;
  provider: string;
  providerChargeId: string | null;
  providerRefundId: string | null;
  idempotencyKey: string;
  failureCode: string | null;
  declineCode: string | null;
  failureMessage: string | null;
  refundReason: string | null;
  attempts: number;
  version: number;
  createdAtMs: number;
}

export interface MarketEvent {
  /** Strictly increasing, gap-free in commit order. */
  seq: number;
  /** 'UserCreated', 'OrderExpired', ... */
  type: string;
  /** 'user:created', 'order:expired', ... */
  subject: string;
  aggregateId: string;
  aggregateVersion: number;
  occurredAtMs: number;
  /** The payload: a JSON object without secrets. */
  data: Record<string, unknown>;
}

export interface TickStats {
  ordersExpired: number;
  paymentsRetried: number;
  paymentsResolved: number;
  refundsIssued: number;
  eventsDelivered: number;
  subscriberFailures: number;
}

export interface FakeStats {
  calls: number;
  charges: number;
  refunds: number;
  /** Money taken minus money returned, in minor units. */
  chargedMinor: number;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the next page, or null after the last. */
  nextCursor: string | null;
}

/** A user by id, a user record, or a session (its user). */
export type UserRef = string | User | Session;
export type TicketRef = string | Ticket;
export type OrderRef = string | Order;
export type SessionRef = string | Session;

export interface MarketOptions {
  /** SQLite file, or ':memory:' (the default). */
  path?: string;
  /** Order lock window in minutes (default 15). */
  lockMinutes?: number;
  lockMs?: number;
  /** Time source; default: the real clock. */
  clock?: ManualClock | null;
  /** Payment provider; without one, paying throws ProviderUnavailableError. */
  payments?: FakePayments | StripePayments | null;
  passwordCost?: PasswordCost;
  sessionTtlMs?: number;
  latePayment?: 'refund' | 'honourIfAvailable';
  paymentGraceMs?: number;
  sync?: 'default' | 'normal' | 'full' | 'off';
  /** ISO 4217 code for tickets that name none (default 'USD'). */
  defaultCurrency?: string | null;
  paymentRetryMs?: number;
}

export interface SubscriberErrorInfo {
  name: string;
  event: MarketEvent | undefined;
}

/** A clock that only moves when told to. */
export class ManualClock {
  constructor(startMs?: number);
  readonly nowMs: number;
  set(nowMs: number): void;
  /** Move by `ms` or by { ms, seconds, minutes, hours }; returns the new time. */
  advance(delta: number | { ms?: number; seconds?: number; minutes?: number; hours?: number }): number;
}

/** The library's deterministic payment provider (Stripe-like test tokens). */
export class FakePayments {
  constructor();
  readonly name: 'fake';
  /** Queue an outcome for the next call carrying `token`. */
  script(token: string, outcome: FakeOutcome): void;
  readonly stats: FakeStats;
}

export interface StripeOptions {
  /** 'sk_live_...', 'sk_test_...' or 'rk_...'. */
  secretKey: string;
  /** Default Stripe's API; plain http only to a loopback host (tests). */
  baseUrl?: string | null;
  connectTimeoutMs?: number;
  timeoutMs?: number;
  maxRetries?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** The Stripe-Version header (default the pinned one; null: none). */
  apiVersion?: string | null;
  /** 'whsec_...' to accept webhooks (Market.stripeWebhook()). */
  webhookSecret?: string | null;
  webhookToleranceS?: number;
}

/** Stripe (PaymentIntents and Refunds over libcurl); use the *Async calls with it. */
export class StripePayments {
  constructor(options: StripeOptions);
  readonly name: 'stripe';
}

export class Market extends EventEmitter {
  constructor(options?: MarketOptions);
  readonly path: string;
  readonly clock: ManualClock | null;
  readonly payments: FakePayments | StripePayments | null;
  /** Close (idempotent); waits for async calls in flight. */
  close(): void;
  readonly closed: boolean;
  [Symbol.dispose](): void;

  readonly nowMs: number;
  readonly lockMs: number;
  tick(): TickStats;
  /** Tick on a worker thread; subscribers are then called on the JS thread. */
  tickAsync(): Promise<TickStats>;
  /** When the next tick has work (ms since the epoch), or null. */
  nextDeadline(): number | null;
  checkpoint(): void;

  signup(email: string, password: string): { user: User; session: Session };
  signupAsync(email: string, password: string): Promise<{ user: User; session: Session }>;
  signin(email: string, password: string): Session;
  signinAsync(email: string, password: string): Promise<Session>;
  signout(session: SessionRef): void;
  userForSession(session: SessionRef): User;
  user(id: string): User;
  updateEmail(user: UserRef, currentPassword: string, newEmail: string): User;
  updateEmailAsync(user: UserRef, currentPassword: string, newEmail: string): Promise<User>;
  updatePassword(user: UserRef, currentPassword: string, newPassword: string): User;
  updatePasswordAsync(user: UserRef, currentPassword: string, newPassword: string): Promise<User>;

  createTicket(owner: UserRef, title: string, priceMinor: number, currency?: string | null): Ticket;
  ticket(id: string): Ticket;
  updateTicket(user: UserRef, ticket: TicketRef,
    changes?: { title?: string | null; priceMinor?: number | null; expectedVersion?: number | null }): Ticket;
  setListed(user: UserRef, ticket: TicketRef, listed?: boolean): Ticket;
  ticketsPage(query?: { availableOnly?: boolean; owner?: UserRef | null; titleContains?: string | null;
    after?: string | null; limit?: number }): Page<Ticket>;
  tickets(query?: { availableOnly?: boolean; owner?: UserRef | null; titleContains?: string | null;
    pageSize?: number }): Generator<Ticket, void, undefined>;

  order(buyer: UserRef, ticket: TicketRef): Order;
  getOrder(user: UserRef, id: string): Order;
  ordersPage(buyer: UserRef, options?: { after?: string | null; limit?: number }): Page<Order>;
  orders(buyer: UserRef, options?: { pageSize?: number }): Generator<Order, void, undefined>;
  cancel(user: UserRef, order: OrderRef): Order;

  pay(user: UserRef, order: OrderRef, token: string): Charge;
  payAsync(user: UserRef, order: OrderRef, token: string): Promise<Charge>;
  refund(seller: UserRef, order: OrderRef, reason?: string | null): Charge;
  refundAsync(seller: UserRef, order: OrderRef, reason?: string | null): Promise<Charge>;
  charge(user: UserRef, id: string): Charge;
  latestCharge(user: UserRef, order: OrderRef): Charge;
  applyPaymentEvent(type: PaymentEventType, eventId: string, detail?: {
    chargeId?: string | null; providerChargeId?: string | null; providerRefundId?: string | null;
    failureCode?: string | null; declineCode?: string | null; failureMessage?: string | null;
  }): void;

  /** Verify and apply one Stripe webhook delivery (InvalidSignatureError: answer 400). */
  stripeWebhook(signatureHeader: string, body: string | Buffer): void;

  events(options?: { after?: number; pageSize?: number }): Generator<MarketEvent, void, undefined>;
  lastEventSeq(): number;
  /** Durable subscriber, called on the JS thread during tick()/dispatch(); throw to have the event retried. */
  subscribe(name: string, fn: (event: MarketEvent) => void): void;
  unsubscribe(name: string): void;
  subscriberCursor(name: string): number;
  /** Deliver pending events now; returns how many were acknowledged. */
  dispatch(): number;

  on(event: 'subscriberError', listener: (err: unknown, info: SubscriberErrorInfo) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type ErrorCode =
  | 'EINVAL' | 'ENOTFOUND' | 'EEXISTS' | 'EUNAUTH' | 'EFORBIDDEN' | 'ELOCKED' | 'ECONFLICT' | 'EEXPIRED'
  | 'ESTATE' | 'EDECLINED' | 'EPROVIDER' | 'ESTORAGE' | 'ENOMEM' | 'EBUSY' | 'EVERSION' | 'ESIGNATURE'
  | 'EINTERNAL';

export interface ErrorDetail {
  code?: string;
  status?: number;
  field?: string | null;
}

/** Base class of every error libticketyboo reports. */
export class TicketybooError extends Error {
  constructor(message: string, detail?: ErrorDetail);
  /** Stable status name, e.g. 'ELOCKED'. */
  readonly code: ErrorCode | string;
  /** The library's numeric status (negative). */
  readonly status: number;
  /** The offending input of a validation failure ('title', 'price', ...), else null. */
  readonly field: string | null;
}
export class InvalidArgumentError extends TicketybooError {}
export class NotFoundError extends TicketybooError {}
export class AlreadyExistsError extends TicketybooError {}
export class UnauthenticatedError extends TicketybooError {}
export class ForbiddenError extends TicketybooError {}
export class TicketLockedError extends TicketybooError {}
export class ConflictError extends TicketybooError {}
export class ExpiredError extends TicketybooError {}
export class WrongStateError extends TicketybooError {}
export class PaymentDeclinedError extends TicketybooError {}
export class ProviderUnavailableError extends TicketybooError {}
export class StorageError extends TicketybooError {}
export class OutOfMemoryError extends TicketybooError {}
export class BusyError extends TicketybooError {}
export class VersionMismatchError extends TicketybooError {}
export class InvalidSignatureError extends TicketybooError {}
export class InternalError extends TicketybooError {}

/** The class for a status code; TicketybooError for an unknown one. */
export function errorClass(code: string): typeof TicketybooError;

/** Exact decimal text in major units ('19.99') to minor units (1999). */
export function parseMoney(amount: string, currency: string): number;
/** Minor units to decimal text in major units (1999, 'USD' -> '19.99'). */
export function formatMoney(minor: number, currency: string): string;
/** Decimal places of an ISO 4217 currency, or null. */
export function currencyExponent(currency: string): number | null;
/** The libticketyboo version the addon was built with. */
export function libraryVersion(): string;
export const version: string;
/** The generated low-level module (the C API without the tb_ prefix). */
export const core: Record<string, any>;
