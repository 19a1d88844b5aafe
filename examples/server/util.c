/*
 * util.c - small helpers shared by the server's modules.
 */
#include "server.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

char *tbs_printf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

double tbs_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tbs_log(const char *fmt, ...)
{
	char stamp[32];
	va_list ap;

	tbs_iso8601(stamp, tb_clock_real_now_ms());
	flockfile(stderr);
	fprintf(stderr, "%s ticketyboo-server: ", stamp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
