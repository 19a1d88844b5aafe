/*
 * ticketyboo/ticketyboo.h - the umbrella header of libticketyboo.
 *
 * libticketyboo is an embeddable ticket-resale marketplace: users, listings,
 * orders that lock a ticket for a while and expire, payments through a
 * pluggable provider, and a transactional event outbox, on SQLite.
 *
 * Start with market.h (open a market), then users.h, tickets.h, orders.h,
 * payments.h (stripe.h for real payments) and events.h.  storage.h and
 * sys.h are for adapter and provider authors.
 *
 * Conventions: every fallible call returns tb_status (0 = TB_OK, errors
 * negative) and writes results through out-parameters placed first; on
 * failure `*out` is NULL and tb_last_error() says why.  What comes back
 * through `**out` is the caller's, released with the matching _free.
 * Money is an integer count of minor units plus an ISO 4217 code.
 * Ids are UUIDv7 text (36 characters).
 */
#ifndef TICKETYBOO_H
#define TICKETYBOO_H

#define TB_VERSION_MAJOR 0
#define TB_VERSION_MINOR 1
#define TB_VERSION_PATCH 0
#define TB_VERSION_STRING "0.1.0"

#include "common.h"
#include "clock.h"
#include "money.h"
#include "market.h"
#include "users.h"
#include "tickets.h"
#include "orders.h"
#include "payments.h"
#include "stripe.h"
#include "events.h"
#include "storage.h"
#include "postgres.h"
#include "sys.h"

#endif
