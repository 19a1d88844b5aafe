/*
 * ticketyboo/sys.h - for authors of storage adapters and payment providers.
 *
 * Adapters and providers report failures the way the core does: return a
 * tb_status and set the calling thread's detail with tb_error_set().
 *
 * Thread safety: thread-local; any thread.
 */
#ifndef TICKETYBOO_SYS_H
#define TICKETYBOO_SYS_H

#include "common.h"

TB_BEGIN_DECL

/**
 * Set the calling thread's last error and return `status`, so a failing
 * path reads `return tb_error_set(TB_EINVAL, "price", "price must be > 0");`.
 * @param field the offending input for TB_EINVAL, else NULL.
 * @param fmt printf-style message; never put a secret in it.
 */
TB_API tb_status tb_error_set(tb_status status, const char *field, const char *fmt, ...)
	TB_FORMAT_PRINTF(3, 4);

TB_END_DECL

#endif
