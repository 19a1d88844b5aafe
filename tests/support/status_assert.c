/*
 * tests/support/status_assert.c - see status_assert.h.
 */
#include "status_assert.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void tb_test_check_status(tb_status got, tb_status want, const char *expr, const char *file,
	int line)
{
	if (got == want)
		return;
	print_error("%s returned %d, expected %d (last error: %s)\n", expr, (int)got, (int)want,
		got != TB_OK ? tb_last_error()->message : "none");
	_fail(file, line);
}
