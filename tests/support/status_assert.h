/*
 * tests/support/status_assert.h - cmocka assertions on tb_status that, on
 * failure, also print the calling thread's tb_last_error() message.
 * Main thread only, like every cmocka assertion.
 */
#ifndef TB_TESTS_STATUS_ASSERT_H
#define TB_TESTS_STATUS_ASSERT_H

#include "ticketyboo/common.h"

/** Fail the running cmocka test unless got == want. */
void tb_test_check_status(tb_status got, tb_status want, const char *expr, const char *file,
	int line);

#define assert_status(expr, want) \
	tb_test_check_status((expr), (want), #expr, __FILE__, __LINE__)
#define assert_ok(expr) assert_status((expr), TB_OK)

#endif
