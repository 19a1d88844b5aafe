/*
 * The real clock and the manual clock.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

int64_t tb_clock_real_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct tb_clock_manual {
	_Atomic int64_t now_ms; /* read from any thread without a lock */
};

tb_status tb_clock_manual_new(tb_clock_manual **out, int64_t start_ms)
{
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	*out = NULL;
	if (start_ms < 0)
		return tb_error_set(TB_EINVAL, "start_ms", "start time must not be negative");
	tb_clock_manual *c = malloc(sizeof(*c));
	if (!c)
		return tb_error__oom();
	atomic_init(&c->now_ms, start_ms);
	*out = c;
	return TB_OK;
}

void tb_clock_manual_set(tb_clock_manual *clock, int64_t now_ms)
{
	if (clock)
		atomic_store(&clock->now_ms, now_ms);
}

void tb_clock_manual_advance(tb_clock_manual *clock, int64_t delta_ms)
{
	if (clock)
		atomic_fetch_add(&clock->now_ms, delta_ms);
}

int64_t tb_clock_manual_now(const tb_clock_manual *clock)
{
	return clock ? atomic_load(&((tb_clock_manual *)clock)->now_ms) : 0;
}

static int64_t manual_now(void *payload)
{
	return tb_clock_manual_now(payload);
}

void tb_clock_manual_bind(tb_clock_manual *clock, tb_clock *out)
{
	if (!out)
		return;
	out->version = TB_CLOCK_VERSION;
	out->now_ms = manual_now;
	out->payload = clock;
}

void tb_clock_manual_free(tb_clock_manual *clock)
{
	free(clock);
}
