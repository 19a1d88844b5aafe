/*
 * ticketyboo/common.h - export macros, status codes, error detail, memory.
 *
 * Every fallible call in libticketyboo returns a tb_status: TB_OK (0) on
 * success, a negative code on failure.  Codes are only ever appended, never
 * renumbered.  The calling thread's detail for the last failure (message and,
 * for validation failures, the offending field) is read with tb_last_error().
 *
 * Thread safety: everything in this header may be called from any thread.
 * Ownership: strings the library returns through a `char **out` are owned by
 * the caller and released with tb_free().
 */
#ifndef TICKETYBOO_COMMON_H
#define TICKETYBOO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define TB_BEGIN_DECL extern "C" {
#define TB_END_DECL }
#else
#define TB_BEGIN_DECL
#define TB_END_DECL
#endif

/* TB_API marks exported symbols; the library builds with -fvisibility=hidden. */
#ifndef TB_API
#if defined(_WIN32)
#if defined(TB_BUILDING_LIBRARY)
#define TB_API __declspec(dllexport)
#else
#define TB_API
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define TB_API __attribute__((visibility("default")))
#else
#define TB_API
#endif
#endif

/* TB_MUST_CHECK: the returned status must not be ignored. */
#ifndef TB_MUST_CHECK
#if defined(__GNUC__) && !defined(SWIG)
#define TB_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TB_MUST_CHECK
#endif
#endif

#if defined(__GNUC__) && !defined(SWIG)
#define TB_FORMAT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TB_FORMAT_PRINTF(a, b)
#endif

TB_BEGIN_DECL

/**
 * Result of every fallible call.  0 is success; errors are negative and
 * only ever appended.
 */
typedef enum tb_status {
	TB_OK = 0,
	TB_EINVAL = -1,      /**< invalid argument or validation failure (see field) */
	TB_ENOTFOUND = -2,   /**< no such user, ticket, order, charge or session */
	TB_EEXISTS = -3,     /**< already exists (e.g. email in use) */
	TB_EUNAUTH = -4,     /**< bad credentials, unknown, revoked or expired session */
	TB_EFORBIDDEN = -5,  /**< the record belongs to someone else */
	TB_ELOCKED = -6,     /**< the ticket is locked by a live order */
	TB_ECONFLICT = -7,   /**< stale expected version */
	TB_EEXPIRED = -8,    /**< the order's lock window has passed */
	TB_ESTATE = -9,      /**< not allowed in the record's current state */
	TB_EDECLINED = -10,  /**< the payment provider declined the payment */
	TB_EPROVIDER = -11,  /**< payment provider unavailable or refused the request */
	TB_ESTORAGE = -12,   /**< the storage adapter failed */
	TB_ENOMEM = -13,     /**< out of memory */
	TB_EBUSY = -14,      /**< storage busy; the operation may be retried */
	TB_EVERSION = -15,   /**< unknown version of an options struct or vtable */
	TB_ESIGNATURE = -16, /**< a webhook signature did not verify */
	TB_EINTERNAL = -17   /**< a bug in libticketyboo; please report it */
} tb_status;

/** Number of distinct status codes (TB_OK included); grows when codes are appended. */
#define TB_STATUS_COUNT 18

/**
 * Static, human-readable name of a status ("ticket is locked", ...).
 * Never NULL; unknown codes give "unknown status".
 */
TB_API const char *tb_strerror(tb_status status);

/**
 * Short stable identifier of a status ("EINVAL", "ELOCKED", ...), for
 * bindings that map codes to exception classes.  Never NULL.
 */
TB_API const char *tb_status_name(tb_status status);

/** Detail of the calling thread's last failure. */
typedef struct tb_error {
	tb_status status;    /**< the failing call's status; TB_OK if none */
	const char *message; /**< human-readable, never NULL, never contains secrets */
	const char *field;   /**< offending input field for TB_EINVAL, else NULL */
} tb_error;

/**
 * The calling thread's last error.  Never NULL.  The pointer and its strings
 * stay valid until the next libticketyboo call on the same thread.
 * Successful calls do not clear it; a failing call always replaces it.
 */
TB_API const tb_error *tb_last_error(void);

/** Reset the calling thread's last error to TB_OK. */
TB_API void tb_error_clear(void);

/** Release memory the library returned through a `char **out`.  NULL is a no-op. */
TB_API void tb_free(void *ptr);

/** Sentinel for "leave unchanged" in integer arguments (e.g. a price). */
#define TB_KEEP INT64_MIN
/** Sentinel for "any version" in expected-version arguments. */
#define TB_ANY_VERSION (-1)
/** Length of a record id (UUIDv7 text, without the terminating NUL). */
#define TB_ID_LEN 36

/* Functions beside the macros, for bindings that cannot see macros. */
TB_API int64_t tb_keep(void);
TB_API int64_t tb_any_version(void);

TB_END_DECL

#endif
