/*
 * ticketyboo/clock.h - where a market's time comes from.
 *
 * A market reads the time through a tb_clock vtable: the real wall clock by
 * default, or a manual clock that tests and demos step by hand so expiry can
 * be walked through to the millisecond.
 *
 * Thread safety: a tb_clock_manual may be read and stepped from any thread.
 * Ownership: a tb_clock struct is copied by tb_market_open(); the payload it
 * points to (e.g. a tb_clock_manual) must outlive every market using it.
 */
#ifndef TICKETYBOO_CLOCK_H
#define TICKETYBOO_CLOCK_H

#include "common.h"

TB_BEGIN_DECL

/** Returns the current time in milliseconds since the Unix epoch. */
typedef int64_t (*tb_clock_now_fn)(void *payload);

#define TB_CLOCK_VERSION 1

/** A time source.  Grows only by appending fields. */
typedef struct tb_clock {
	unsigned int version;   /**< TB_CLOCK_VERSION */
	tb_clock_now_fn now_ms; /**< required */
	void *payload;          /**< passed to now_ms */
} tb_clock;

#define TB_CLOCK_INIT { TB_CLOCK_VERSION, NULL, NULL }

/** The real clock: CLOCK_REALTIME in milliseconds. */
TB_API int64_t tb_clock_real_now_ms(void);

/** A clock that only moves when told to. */
typedef struct tb_clock_manual tb_clock_manual;

/**
 * Create a manual clock reading `start_ms`.
 * @param[out] out the new clock; free with tb_clock_manual_free().
 * @return TB_OK, TB_EINVAL (out NULL or start_ms negative), TB_ENOMEM.
 */
TB_API TB_MUST_CHECK tb_status tb_clock_manual_new(tb_clock_manual **out, int64_t start_ms);

/** Set the time.  Moving backwards is allowed (tests of clock skew). */
TB_API void tb_clock_manual_set(tb_clock_manual *clock, int64_t now_ms);

/** Move the time forward (or back, for a negative delta). */
TB_API void tb_clock_manual_advance(tb_clock_manual *clock, int64_t delta_ms);

/** The manual clock's current reading. */
TB_API int64_t tb_clock_manual_now(const tb_clock_manual *clock);

/**
 * Fill `out` with a tb_clock that reads `clock`; pass it in the market
 * options.  The manual clock must outlive the market.
 */
TB_API void tb_clock_manual_bind(tb_clock_manual *clock, tb_clock *out);

/** Release a manual clock.  NULL is a no-op. */
TB_API void tb_clock_manual_free(tb_clock_manual *clock);

TB_END_DECL

#endif
