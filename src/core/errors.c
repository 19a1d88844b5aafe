/*
 * Status names and the thread-local last error.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct status_info {
	tb_status status;
	const char *name;
	const char *text;
} status_info;

/* Indexed by -status; codes are only ever appended. */
static const status_info statuses[TB_STATUS_COUNT] = {
	{ TB_OK, "OK", "success" },
	{ TB_EINVAL, "EINVAL", "invalid argument" },
	{ TB_ENOTFOUND, "ENOTFOUND", "not found" },
	{ TB_EEXISTS, "EEXISTS", "already exists" },
	{ TB_EUNAUTH, "EUNAUTH", "not authenticated" },
	{ TB_EFORBIDDEN, "EFORBIDDEN", "forbidden" },
	{ TB_ELOCKED, "ELOCKED", "ticket is locked by an order" },
	{ TB_ECONFLICT, "ECONFLICT", "version conflict" },
	{ TB_EEXPIRED, "EEXPIRED", "order has expired" },
	{ TB_ESTATE, "ESTATE", "not allowed in the current state" },
	{ TB_EDECLINED, "EDECLINED", "payment declined" },
	{ TB_EPROVIDER, "EPROVIDER", "payment provider unavailable" },
	{ TB_ESTORAGE, "ESTORAGE", "storage error" },
	{ TB_ENOMEM, "ENOMEM", "out of memory" },
	{ TB_EBUSY, "EBUSY", "storage busy" },
	{ TB_EVERSION, "EVERSION", "unsupported struct or vtable version" },
	{ TB_ESIGNATURE, "ESIGNATURE", "signature verification failed" },
	{ TB_EINTERNAL, "EINTERNAL", "internal error" },
};

static const status_info *info_of(tb_status status)
{
	int i = -(int)status;
	if (i < 0 || i >= TB_STATUS_COUNT)
		return NULL;
	return &statuses[i];
}

const char *tb_strerror(tb_status status)
{
	const status_info *info = info_of(status);
	return info ? info->text : "unknown status";
}

const char *tb_status_name(tb_status status)
{
	const status_info *info = info_of(status);
	return info ? info->name : "EUNKNOWN";
}

typedef struct thread_error {
	tb_error pub;
	char message[512];
	char field[64];
} thread_error;

static _Thread_local thread_error last_error = { { TB_OK, "", NULL }, "", "" };

const tb_error *tb_last_error(void)
{
	last_error.pub.message = last_error.message;
	return &last_error.pub;
}

void tb_error_clear(void)
{
	last_error.pub.status = TB_OK;
	last_error.pub.field = NULL;
	last_error.message[0] = '\0';
	last_error.field[0] = '\0';
}

static void set_field(const char *field)
{
	if (field && *field) {
		tb_str__copy(last_error.field, sizeof(last_error.field), field);
		last_error.pub.field = last_error.field;
	} else {
		last_error.field[0] = '\0';
		last_error.pub.field = NULL;
	}
}

tb_status tb_error_set(tb_status status, const char *field, const char *fmt, ...)
{
	last_error.pub.status = status;
	set_field(field);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(last_error.message, sizeof(last_error.message), fmt, ap);
		va_end(ap);
	} else {
		tb_str__copy(last_error.message, sizeof(last_error.message), tb_strerror(status));
	}
	last_error.pub.message = last_error.message;
	return status;
}

tb_status tb_error__oom(void)
{
	last_error.pub.status = TB_ENOMEM;
	set_field(NULL);
	tb_str__copy(last_error.message, sizeof(last_error.message), "out of memory");
	return TB_ENOMEM;
}

void tb_error__save(tb_error_saved *saved)
{
	saved->status = last_error.pub.status;
	tb_str__copy(saved->message, sizeof(saved->message), last_error.message);
	tb_str__copy(saved->field, sizeof(saved->field), last_error.pub.field ? last_error.field : "");
}

void tb_error__restore(const tb_error_saved *saved)
{
	last_error.pub.status = saved->status;
	tb_str__copy(last_error.message, sizeof(last_error.message), saved->message);
	set_field(saved->field);
}

void tb_free(void *ptr)
{
	free(ptr);
}

int64_t tb_keep(void)
{
	return TB_KEEP;
}

int64_t tb_any_version(void)
{
	return TB_ANY_VERSION;
}

void tb_str__copy(char *dst, size_t dst_size, const char *src)
{
	if (dst_size == 0)
		return;
	if (!src)
		src = "";
	size_t n = strlen(src);
	if (n >= dst_size)
		n = dst_size - 1;
	memmove(dst, src, n);
	dst[n] = '\0';
}
