/*
 * bindings/ticketyboo.i - the one SWIG interface behind the Python and Node
 * bindings of libticketyboo.
 *
 *   swig -python -I<include> -o ticketyboo_wrap.c ticketyboo.i
 *   swig -javascript -napi -I<include> -o ticketyboo_wrap.cxx ticketyboo.i
 *
 * It produces a low-level module, `core`, that mirrors the C API with the
 * `tb_` / `TB_` prefixes stripped.  Each language puts a thin, idiomatic layer
 * on top of it, written in that language (bindings/python/src/ticketyboo,
 * bindings/node/lib); nothing here tries to be idiomatic.
 *
 * What this file takes care of, so the thin layers do not have to:
 *  - Errors: every tb_status other than TB_OK becomes a language exception
 *    carrying the status, its stable name ("ELOCKED"), the message and the
 *    offending field.  The detail is copied out of tb_last_error() straight
 *    after the call, on the calling thread, before anything else can run on
 *    it (a Python finalizer run by the allocator could call the library and
 *    replace the thread's last error).
 *  - Results: `T **out` parameters disappear from the signature; the new
 *    object is returned (both objects, as a pair, for signup).  Python: a
 *    proxy that owns the record and calls the matching _free; records
 *    borrowed from a page are never handed out, page.get(i) returns a
 *    tb_*_dup copy; every field is an %immutable attribute backed by the C
 *    accessor.  Node: a plain object (camelCase keys) copied on the spot,
 *    the record freed at once, since finalizers only run once the event
 *    loop turns.
 *  - Threads (Python): %module(threads="1"); every call that reaches a
 *    market releases the GIL (record reads keep it); the event subscriber
 *    trampoline takes it back with PyGILState_Ensure.  An exception raised by a Python subscriber is
 *    reported through sys.unraisablehook and the event is not acknowledged,
 *    so the library retries it later.
 *  - Node: calls run on the JS thread; subscribers are called there
 *    synchronously (never from another thread).  Calls that may block (argon2
 *    hashing, a payment provider) also exist as jobs that run on the libuv
 *    worker pool and settle a Promise (job_queue).
 *
 * Where the two languages need different code (the trampoline, raising an
 * exception, who owns a market) the sections are marked SWIGPYTHON and
 * SWIGJAVASCRIPT; everything else is shared.
 */

#if defined(SWIGPYTHON)
%module(package="ticketyboo", threads="1") core
#else
%module core
#endif

%{
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "ticketyboo/ticketyboo.h"
%}

%include <stdint.i>

/* Names: tb_user_signup -> user_signup, TB_ELOCKED -> ELOCKED; our helpers
 * are tbw_* and lose that prefix the same way. */
%rename("%(regex:/^(tb|TB|tbw)_(.*)$/\\2/)s") "";

/* -------------------------------------------------------------------------
 * Shared C helpers: error stash, result appending.
 * ---------------------------------------------------------------------- */
%{
#if defined(__cplusplus)
#define TBW_TLS thread_local
#else
#define TBW_TLS _Thread_local
#endif

/* A copy of the thread's last error, taken right after each call. */
typedef struct tbw_err {
	tb_status status;
	int has_field;
	char message[512];
	char field[64];
} tbw_err;

static TBW_TLS tbw_err tbw_last_err;

/* Copy at most cap-1 bytes of src, never cutting a UTF-8 sequence in two. */
static void tbw_copy_utf8(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Called after every wrapped call: keep the detail of a failure. */
static void tbw_err_stash(void)
{
	const tb_error *e = tb_last_error();
	if (e == NULL || e->status == TB_OK)
		return;
	tbw_last_err.status = e->status;
	tbw_copy_utf8(tbw_last_err.message, sizeof tbw_last_err.message,
		e->message != NULL && e->message[0] != '\0' ? e->message : tb_strerror(e->status));
	tbw_last_err.has_field = e->field != NULL;
	tbw_copy_utf8(tbw_last_err.field, sizeof tbw_last_err.field, e->field != NULL ? e->field : "");
}

/* The stashed detail of `status`, or a generic one if the library set none. */
static void tbw_err_get(tbw_err *out, tb_status status)
{
	if (tbw_last_err.status == status) {
		*out = tbw_last_err;
	} else {
		out->status = status;
		out->has_field = 0;
		out->field[0] = '\0';
		tbw_copy_utf8(out->message, sizeof out->message, tb_strerror(status));
	}
	tbw_last_err.status = TB_OK;
}

/* Record a failure as the library would, for helpers that fail on their own. */
static tb_status tbw_fail(tb_status status, const char *field, const char *message)
{
	return tb_error_set(status, field, "%s", message);
}

/* Wipe and free a copied secret. */
static void tbw_free_secret(char *s)
{
	if (s != NULL) {
		volatile char *p = s;
		while (*p != '\0')
			*p++ = '\0';
		free(s);
	}
}

static char *tbw_strdup(const char *s)
{
	char *copy;
	size_t n;
	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	copy = (char *)malloc(n);
	if (copy != NULL)
		memcpy(copy, s, n);
	return copy;
}
%}

/*
 * Every wrapped call clears the thread's last error, makes the call and
 * stashes the detail of a failure before anything else runs on the thread.
 * Python: calls that reach the market release the GIL around the call and
 * the stash (TBW_CALLS_RELEASE_GIL below); record reads, which take
 * nanoseconds, keep it (releasing it there would only invite a GIL handoff).
 * SWIG's own per-call GIL release is switched off so the two cannot nest.
 */
#if defined(SWIGPYTHON)
%nothread;
%define TBW_CALLS_RELEASE_GIL
%exception {
	tb_error_clear();
	{
		SWIG_PYTHON_THREAD_BEGIN_ALLOW;
		$action
		tbw_err_stash();
		SWIG_PYTHON_THREAD_END_ALLOW;
	}
}
%enddef
#else
%define TBW_CALLS_RELEASE_GIL
%exception {
	tb_error_clear();
	$action
	tbw_err_stash();
}
%enddef
#endif
%define TBW_CALLS_KEEP_GIL
%exception {
	tb_error_clear();
	$action
	tbw_err_stash();
}
%enddef
TBW_CALLS_KEEP_GIL

/* -------------------------------------------------------------------------
 * Language plumbing: raising, appending results, int64 values.
 * ---------------------------------------------------------------------- */
#if defined(SWIGPYTHON)
%{
/* ticketyboo.errors.from_native(status, name, message, field) builds the
 * exception; it lives in pure Python so the classes are ordinary ones. */
static PyObject *tbw_py_factory = NULL;

static void tbw_py_raise(tb_status status)
{
	tbw_err e;
	PyObject *msg, *field, *exc;

	tbw_err_get(&e, status); /* copy first: the code below may run Python code */
	if (tbw_py_factory == NULL) {
		PyObject *mod = PyImport_ImportModule("ticketyboo.errors");
		if (mod != NULL) {
			tbw_py_factory = PyObject_GetAttrString(mod, "from_native");
			Py_DECREF(mod);
		}
		if (tbw_py_factory == NULL) {
			PyErr_Clear();
			PyErr_Format(PyExc_RuntimeError, "%s: %s", tb_status_name(status), e.message);
			return;
		}
	}
	msg = PyUnicode_DecodeUTF8(e.message, (Py_ssize_t)strlen(e.message), "replace");
	field = e.has_field ? PyUnicode_DecodeUTF8(e.field, (Py_ssize_t)strlen(e.field), "replace")
	                    : (Py_INCREF(Py_None), Py_None);
	if (msg == NULL || field == NULL) {
		Py_XDECREF(msg);
		Py_XDECREF(field);
		return;
	}
	exc = PyObject_CallFunction(tbw_py_factory, "isOO", (int)status, tb_status_name(status), msg, field);
	Py_DECREF(msg);
	Py_DECREF(field);
	if (exc != NULL) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
}

/* None -> obj; obj1 -> (obj1, obj). */
static PyObject *tbw_py_append(PyObject *result, PyObject *obj)
{
	PyObject *tuple;
	if (obj == NULL)
		return result;
	if (result == NULL || result == Py_None) {
		Py_XDECREF(result);
		return obj;
	}
	if (PyTuple_Check(result)) {
		Py_ssize_t i, n = PyTuple_GET_SIZE(result);
		tuple = PyTuple_New(n + 1);
		if (tuple != NULL) {
			for (i = 0; i < n; i++) {
				PyObject *item = PyTuple_GET_ITEM(result, i);
				Py_INCREF(item);
				PyTuple_SET_ITEM(tuple, i, item);
			}
			PyTuple_SET_ITEM(tuple, n, obj);
		} else {
			Py_DECREF(obj);
		}
		Py_DECREF(result);
		return tuple;
	}
	tuple = PyTuple_Pack(2, result, obj);
	Py_DECREF(result);
	Py_DECREF(obj);
	return tuple;
}
#define TBW_FROM_I64(v) PyLong_FromLongLong((long long)(v))
#define TBW_FROM_SIZE(v) PyLong_FromSize_t((size_t)(v))
%}
%define TBW_RAISE(status) tbw_py_raise(status) %enddef
%define TBW_APPEND(obj) $result = tbw_py_append($result, obj) %enddef
%typemap(out, noblock=1) tb_status {
	if ($1 != TB_OK) {
		tbw_py_raise($1);
		SWIG_fail;
	}
	$result = SWIG_Py_Void();
}
/* A market, clock and provider are owned by their Python proxy: dropping the
 * last reference closes or frees them, and a call in flight on another
 * thread holds a reference, so close never races with it. */
#define TBW_HANDLE_OWN SWIG_POINTER_OWN

#elif defined(SWIGJAVASCRIPT)
%{
static void tbw_js_raise(napi_env env, tb_status status)
{
	tbw_err e;
	napi_value msg, code, num, field, err;

	tbw_err_get(&e, status);
	if (napi_create_string_utf8(env, e.message, NAPI_AUTO_LENGTH, &msg) != napi_ok
	    || napi_create_string_utf8(env, tb_status_name(status), NAPI_AUTO_LENGTH, &code) != napi_ok
	    || napi_create_int32(env, (int32_t)status, &num) != napi_ok
	    || napi_create_error(env, NULL, msg, &err) != napi_ok)
		return;
	if (e.has_field) {
		if (napi_create_string_utf8(env, e.field, NAPI_AUTO_LENGTH, &field) != napi_ok)
			return;
	} else if (napi_get_null(env, &field) != napi_ok) {
		return;
	}
	napi_set_named_property(env, err, "code", code);
	napi_set_named_property(env, err, "status", num);
	napi_set_named_property(env, err, "field", field);
	napi_throw(env, err);
}

/* undefined -> obj; obj1 -> [obj1, obj]. */
static Napi::Value tbw_js_append(Napi::Env env, Napi::Value result, Napi::Value obj)
{
	if (result.IsEmpty() || result.IsUndefined())
		return obj;
	if (!result.IsArray()) {
		Napi::Array arr = Napi::Array::New(env, 2);
		napi_set_element(env, arr, 0, result);
		napi_set_element(env, arr, 1, obj);
		return arr;
	}
	uint32_t n = result.As<Napi::Array>().Length();
	napi_set_element(env, result, n, obj);
	return result;
}
#define TBW_FROM_I64(v) Napi::Number::New(env, (double)(v))
#define TBW_FROM_SIZE(v) Napi::Number::New(env, (double)(v))
%}
%typemap(out, noblock=1) tb_status {
	if ($1 != TB_OK) {
		tbw_js_raise(env, $1);
		SWIG_fail;
	}
	$result = env.Undefined();
}
%define TBW_APPEND(obj) $result = tbw_js_append(env, $result, obj) %enddef
/* JS has no reference counting: the thin layer closes markets and frees
 * clocks and providers explicitly (and a FinalizationRegistry catches the
 * forgotten ones on the JS thread).  Nothing of theirs runs in a finalizer
 * during environment teardown, when a job may still use them. */
#define TBW_HANDLE_OWN 0

/* NULL strings read as null, not undefined. */
%typemap(out, noblock=1, fragment="SWIG_FromCharPtr") const char *, char * {
	$result = $1 ? SWIG_FromCharPtr((const char *)$1) : env.Null();
}
#else
#error "ticketyboo.i supports -python and -javascript -napi"
#endif

/* -------------------------------------------------------------------------
 * Outputs.
 * ---------------------------------------------------------------------- */

/* T **out: hidden; the new object is returned. */
%define TBW_OUT_OBJECT(TYPE, OWN)
%typemap(in, numinputs=0, noblock=1) TYPE ** (TYPE *tmp = NULL) {
	$1 = &tmp;
}
%typemap(argout, noblock=1) TYPE ** {
	TBW_APPEND(SWIG_NewPointerObj(SWIG_as_voidptr(tmp$argnum), $descriptor(TYPE *), OWN));
}
%enddef

TBW_OUT_OBJECT(tb_user, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_session, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_ticket, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_ticket_page, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_order, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_order_page, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_charge, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_event, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_event_page, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tbw_job, SWIG_POINTER_OWN)
TBW_OUT_OBJECT(tb_market, TBW_HANDLE_OWN)
TBW_OUT_OBJECT(tb_clock_manual, TBW_HANDLE_OWN)
TBW_OUT_OBJECT(tb_payment_provider, TBW_HANDLE_OWN)

/* char **out: a string the library allocated, returned and released. */
%typemap(in, numinputs=0, noblock=1) char **out (char *tmp = NULL) {
	$1 = &tmp;
}
%typemap(argout, noblock=1) char **out {
	if (tmp$argnum != NULL) {
		TBW_APPEND(SWIG_FromCharPtr(tmp$argnum));
	}
}
%typemap(freearg, noblock=1) char **out {
	tb_free(tmp$argnum);
}

/* int64_t *out and size_t *delivered_out: returned as numbers. */
%typemap(in, numinputs=0, noblock=1) int64_t *out (int64_t tmp = 0) {
	$1 = &tmp;
}
%typemap(argout, noblock=1) int64_t *out {
	TBW_APPEND(TBW_FROM_I64(tmp$argnum));
}
%typemap(in, numinputs=0, noblock=1) size_t *delivered_out (size_t tmp = 0) {
	$1 = &tmp;
}
%typemap(argout, noblock=1) size_t *delivered_out {
	TBW_APPEND(TBW_FROM_SIZE(tmp$argnum));
}

/* Stats structs filled by the callee: returned as a new read-only record. */
%define TBW_OUT_STRUCT(TYPE, NAME, INIT)
%typemap(in, numinputs=0, noblock=1) TYPE *NAME (TYPE tmp) {
	memset(&tmp, 0, sizeof tmp);
	INIT;
	$1 = &tmp;
}
%typemap(argout, noblock=1) TYPE *NAME {
	{
		TYPE *copy = (TYPE *)malloc(sizeof(TYPE));
		if (copy == NULL) {
			SWIG_exception_fail(SWIG_MemoryError, "out of memory");
		}
		*copy = tmp$argnum;
		TBW_APPEND(SWIG_NewPointerObj(SWIG_as_voidptr(copy), $descriptor(TYPE *), SWIG_POINTER_OWN));
	}
}
%enddef
TBW_OUT_STRUCT(tb_tick_stats, stats_out, tmp.version = TB_TICK_STATS_VERSION)
TBW_OUT_STRUCT(tb_fake_stats, out, (void)0)

#if defined(SWIGJAVASCRIPT)
/*
 * Node: records come back as plain objects (camelCase keys, null for absent
 * strings), copied on the JS thread and the native record freed at once.
 * Proxies would be freed only by finalizers, which Node-API runs after the
 * event loop turns: a synchronous loop of 100k reads would hold 100k native
 * records (or at least 100k wrapper shells) until it yields.
 */
%{
static void tbw_js_put(napi_env env, napi_value obj, const char *key, napi_value value)
{
	if (obj != NULL && value != NULL)
		napi_set_named_property(env, obj, key, value);
}

static napi_value tbw_js_str(napi_env env, const char *s)
{
	napi_value v = NULL;
	if (s != NULL)
		napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
	else
		napi_get_null(env, &v);
	return v;
}

static napi_value tbw_js_num(napi_env env, double d)
{
	napi_value v = NULL;
	napi_create_double(env, d, &v);
	return v;
}

static napi_value tbw_js_bool(napi_env env, bool b)
{
	napi_value v = NULL;
	napi_get_boolean(env, b, &v);
	return v;
}

static napi_value tbw_js_object(napi_env env)
{
	napi_value v = NULL;
	napi_create_object(env, &v);
	return v;
}

#define TBW_S(key, value) tbw_js_put(env, o, key, tbw_js_str(env, value))
#define TBW_N(key, value) tbw_js_put(env, o, key, tbw_js_num(env, (double)(value)))

static napi_value tbw_js_user(napi_env env, const tb_user *u)
{
	napi_value o = tbw_js_object(env);
	TBW_S("id", tb_user_id(u));
	TBW_S("email", tb_user_email(u));
	TBW_N("version", tb_user_version(u));
	TBW_N("createdAtMs", tb_user_created_at_ms(u));
	return o;
}

static napi_value tbw_js_session(napi_env env, const tb_session *x)
{
	napi_value o = tbw_js_object(env);
	TBW_S("token", tb_session_token(x));
	TBW_S("userId", tb_session_user_id(x));
	TBW_N("expiresAtMs", tb_session_expires_at_ms(x));
	return o;
}

static napi_value tbw_js_ticket(napi_env env, const tb_ticket *t)
{
	napi_value o = tbw_js_object(env);
	TBW_S("id", tb_ticket_id(t));
	TBW_S("title", tb_ticket_title(t));
	TBW_N("priceMinor", tb_ticket_price_minor(t));
	TBW_S("currency", tb_ticket_currency(t));
	TBW_S("ownerId", tb_ticket_owner_id(t));
	TBW_S("orderId", tb_ticket_order_id(t));
	tbw_js_put(env, o, "locked", tbw_js_bool(env, tb_ticket_locked(t) != 0));
	TBW_N("lockedUntilMs", tb_ticket_locked_until_ms(t));
	TBW_S("status", tb_ticket_status_name(tb_ticket_status_get(t)));
	TBW_N("version", tb_ticket_version(t));
	TBW_N("createdAtMs", tb_ticket_created_at_ms(t));
	return o;
}

static napi_value tbw_js_order(napi_env env, const tb_order *r)
{
	napi_value o = tbw_js_object(env);
	TBW_S("id", tb_order_id(r));
	TBW_S("ticketId", tb_order_ticket_id(r));
	TBW_S("buyerId", tb_order_buyer_id(r));
	TBW_S("sellerId", tb_order_seller_id(r));
	TBW_S("status", tb_order_status_name(tb_order_status_get(r)));
	TBW_N("expiresAtMs", tb_order_expires_at_ms(r));
	TBW_N("priceMinor", tb_order_price_minor(r));
	TBW_S("currency", tb_order_currency(r));
	TBW_N("version", tb_order_version(r));
	TBW_N("createdAtMs", tb_order_created_at_ms(r));
	return o;
}

static napi_value tbw_js_charge(napi_env env, const tb_charge *c)
{
	napi_value o = tbw_js_object(env);
	TBW_S("id", tb_charge_id(c));
	TBW_S("orderId", tb_charge_order_id(c));
	TBW_S("status", tb_charge_status_name(tb_charge_status_get(c)));
	TBW_N("amountMinor", tb_charge_amount_minor(c));
	TBW_S("currency", tb_charge_currency(c));
	TBW_S("provider", tb_charge_provider(c));
	TBW_S("providerChargeId", tb_charge_provider_charge_id(c));
	TBW_S("providerRefundId", tb_charge_provider_refund_id(c));
	TBW_S("idempotencyKey", tb_charge_idempotency_key(c));
	TBW_S("failureCode", tb_charge_failure_code(c));
	TBW_S("declineCode", tb_charge_decline_code(c));
	TBW_S("failureMessage", tb_charge_failure_message(c));
	TBW_S("refundReason", tb_charge_refund_reason(c));
	TBW_N("attempts", tb_charge_attempts(c));
	TBW_N("version", tb_charge_version(c));
	TBW_N("createdAtMs", tb_charge_created_at_ms(c));
	return o;
}

/* JSON.parse(text); leaves its exception pending on bad JSON. */
static napi_value tbw_js_parse_json(napi_env env, const char *text)
{
	napi_value global, json, parse, arg, out = NULL;
	if (napi_get_global(env, &global) != napi_ok
	    || napi_get_named_property(env, global, "JSON", &json) != napi_ok
	    || napi_get_named_property(env, json, "parse", &parse) != napi_ok
	    || napi_create_string_utf8(env, text != NULL ? text : "{}", NAPI_AUTO_LENGTH, &arg) != napi_ok
	    || napi_call_function(env, json, parse, 1, &arg, &out) != napi_ok)
		return NULL;
	return out;
}

static napi_value tbw_js_event(napi_env env, const tb_event *e)
{
	napi_value o = tbw_js_object(env);
	TBW_N("seq", tb_event_seq(e));
	TBW_S("type", tb_event_name(e));
	TBW_S("subject", tb_event_type_subject(tb_event_type_get(e)));
	TBW_S("aggregateId", tb_event_aggregate_id(e));
	TBW_N("aggregateVersion", tb_event_aggregate_version(e));
	TBW_N("occurredAtMs", tb_event_occurred_at_ms(e));
	tbw_js_put(env, o, "data", tbw_js_parse_json(env, tb_event_payload(e)));
	return o;
}

static napi_value tbw_js_tick_stats(napi_env env, const tb_tick_stats *s)
{
	napi_value o = tbw_js_object(env);
	TBW_N("ordersExpired", s->orders_expired);
	TBW_N("paymentsRetried", s->payments_retried);
	TBW_N("paymentsResolved", s->payments_resolved);
	TBW_N("refundsIssued", s->refunds_issued);
	TBW_N("eventsDelivered", s->events_delivered);
	TBW_N("subscriberFailures", s->subscriber_failures);
	return o;
}

static napi_value tbw_js_fake_stats(napi_env env, const tb_fake_stats *s)
{
	napi_value o = tbw_js_object(env);
	TBW_N("calls", s->calls);
	TBW_N("charges", s->charges);
	TBW_N("refunds", s->refunds);
	TBW_N("chargedMinor", s->charged_minor);
	return o;
}

/* A page: { items: [...], nextCursor } (the records are read in place). */
#define TBW_JS_PAGE(NAME, PAGE, REC, CONVERT, CURSOR) \
static napi_value NAME(napi_env env, const PAGE *p) \
{ \
	napi_value o = tbw_js_object(env), items = NULL; \
	size_t i, n = PAGE##_count(p); \
	napi_create_array_with_length(env, n, &items); \
	for (i = 0; i < n && items != NULL; i++) { \
		napi_value item = CONVERT(env, PAGE##_at(p, i)); \
		if (item == NULL) \
			return NULL; \
		napi_set_element(env, items, (uint32_t)i, item); \
	} \
	tbw_js_put(env, o, "items", items); \
	CURSOR; \
	return o; \
}
TBW_JS_PAGE(tbw_js_ticket_page, tb_ticket_page, tb_ticket, tbw_js_ticket,
	TBW_S("nextCursor", tb_ticket_page_next_cursor(p)))
TBW_JS_PAGE(tbw_js_order_page, tb_order_page, tb_order, tbw_js_order,
	TBW_S("nextCursor", tb_order_page_next_cursor(p)))
TBW_JS_PAGE(tbw_js_event_page, tb_event_page, tb_event, tbw_js_event, (void)0)

#undef TBW_S
#undef TBW_N

/* The plain object, or a failure (a pending exception, or a generic one). */
static bool tbw_js_plain_ok(napi_env env, napi_value plain)
{
	bool pending = false;
	napi_is_exception_pending(env, &pending);
	if (plain == NULL && !pending)
		napi_throw_error(env, NULL, "ticketyboo: could not copy a record into JS");
	return plain != NULL && !pending;
}
%}

%define TBW_JS_RECORD(TYPE, CONVERT, FREE)
%typemap(argout, noblock=1) TYPE ** {
	{
		napi_value plain = tmp$argnum != NULL ? CONVERT(env, tmp$argnum) : NULL;
		FREE(tmp$argnum);
		tmp$argnum = NULL;
		if (!tbw_js_plain_ok(env, plain))
			SWIG_fail;
		TBW_APPEND(Napi::Value(env, plain));
	}
}
%enddef
TBW_JS_RECORD(tb_user, tbw_js_user, tb_user_free)
TBW_JS_RECORD(tb_session, tbw_js_session, tb_session_free)
TBW_JS_RECORD(tb_ticket, tbw_js_ticket, tb_ticket_free)
TBW_JS_RECORD(tb_ticket_page, tbw_js_ticket_page, tb_ticket_page_free)
TBW_JS_RECORD(tb_order, tbw_js_order, tb_order_free)
TBW_JS_RECORD(tb_order_page, tbw_js_order_page, tb_order_page_free)
TBW_JS_RECORD(tb_charge, tbw_js_charge, tb_charge_free)
TBW_JS_RECORD(tb_event, tbw_js_event, tb_event_free)
TBW_JS_RECORD(tb_event_page, tbw_js_event_page, tb_event_page_free)

%define TBW_JS_STRUCT(TYPE, NAME, CONVERT)
%typemap(argout, noblock=1) TYPE *NAME {
	{
		napi_value plain = CONVERT(env, &tmp$argnum);
		if (!tbw_js_plain_ok(env, plain))
			SWIG_fail;
		TBW_APPEND(Napi::Value(env, plain));
	}
}
%enddef
TBW_JS_STRUCT(tb_tick_stats, stats_out, tbw_js_tick_stats)
TBW_JS_STRUCT(tb_fake_stats, out, tbw_js_fake_stats)
#endif

/* Subscriber registry (see "Event subscribers" below); here because the
 * market destructor needs tbw_market_close(). */
%{
typedef struct tbw_sub {
	struct tbw_sub *next;
	tb_market *market;
	char *name;
#if defined(SWIGPYTHON)
	PyObject *fn;
#else
	napi_env env;
	napi_ref fn;
	pthread_t thread; /* the JS thread: the only one that may call fn */
#endif
} tbw_sub;

static tbw_sub *tbw_subs = NULL;
static pthread_mutex_t tbw_subs_lock = PTHREAD_MUTEX_INITIALIZER;

static void tbw_sub_add(tbw_sub *sub)
{
	pthread_mutex_lock(&tbw_subs_lock);
	sub->next = tbw_subs;
	tbw_subs = sub;
	pthread_mutex_unlock(&tbw_subs_lock);
}

/* Unlink the subscribers of `market` (all of them when name is NULL). */
static tbw_sub *tbw_sub_take(tb_market *market, const char *name)
{
	tbw_sub *taken = NULL, **p;

	pthread_mutex_lock(&tbw_subs_lock);
	p = &tbw_subs;
	while (*p != NULL) {
		tbw_sub *s = *p;
		if (s->market == market && (name == NULL || strcmp(s->name, name) == 0)) {
			*p = s->next;
			s->next = taken;
			taken = s;
		} else {
			p = &s->next;
		}
	}
	pthread_mutex_unlock(&tbw_subs_lock);
	return taken;
}

static void tbw_sub_release(tbw_sub *sub);

static void tbw_sub_release_all(tbw_sub *list)
{
	while (list != NULL) {
		tbw_sub *next = list->next;
		tbw_sub_release(list);
		list = next;
	}
}

/* Close a market, then drop its subscribers' callables. */
static void tbw_market_close(tb_market *market)
{
	if (market == NULL)
		return;
	tb_market_close(market);
	tbw_sub_release_all(tbw_sub_take(market, NULL));
}
%}

/* -------------------------------------------------------------------------
 * Records: opaque in C, read-only proxies here.
 * ---------------------------------------------------------------------- */

/* SWIG needs a (SWIG-only) definition to make a proxy class of an opaque type. */
%define TBW_OPAQUE(TYPE, FREE)
%nodefaultctor TYPE;
%nodefaultdtor TYPE;
struct TYPE {};
%extend TYPE {
	~TYPE() { FREE($self); }
}
%enddef

%{
/* Attribute getters for the %extend blocks below (SWIG calls <type>_<attr>_get). */
#define tb_user_id_get(x) tb_user_id(x)
#define tb_user_email_get(x) tb_user_email(x)
#define tb_user_version_get(x) tb_user_version(x)
#define tb_user_created_at_ms_get(x) tb_user_created_at_ms(x)

#define tb_session_token_get(x) tb_session_token(x)
#define tb_session_user_id_get(x) tb_session_user_id(x)
#define tb_session_expires_at_ms_get(x) tb_session_expires_at_ms(x)

#define tb_ticket_id_get(x) tb_ticket_id(x)
#define tb_ticket_title_get(x) tb_ticket_title(x)
#define tb_ticket_price_minor_get(x) tb_ticket_price_minor(x)
#define tb_ticket_currency_get(x) tb_ticket_currency(x)
#define tb_ticket_owner_id_get(x) tb_ticket_owner_id(x)
#define tb_ticket_order_id_get(x) tb_ticket_order_id(x)
#define tb_ticket_locked_get(x) (tb_ticket_locked(x) != 0)
#define tb_ticket_locked_until_ms_get(x) tb_ticket_locked_until_ms(x)
/* tb_ticket_status_get is the library's own accessor. */
#define tb_ticket_status_name_get(x) tb_ticket_status_name(tb_ticket_status_get(x))
#define tb_ticket_version_get(x) tb_ticket_version(x)
#define tb_ticket_created_at_ms_get(x) tb_ticket_created_at_ms(x)

#define tb_order_id_get(x) tb_order_id(x)
#define tb_order_ticket_id_get(x) tb_order_ticket_id(x)
#define tb_order_buyer_id_get(x) tb_order_buyer_id(x)
#define tb_order_seller_id_get(x) tb_order_seller_id(x)
#define tb_order_status_name_get(x) tb_order_status_name(tb_order_status_get(x))
#define tb_order_expires_at_ms_get(x) tb_order_expires_at_ms(x)
#define tb_order_price_minor_get(x) tb_order_price_minor(x)
#define tb_order_currency_get(x) tb_order_currency(x)
#define tb_order_version_get(x) tb_order_version(x)
#define tb_order_created_at_ms_get(x) tb_order_created_at_ms(x)

#define tb_charge_id_get(x) tb_charge_id(x)
#define tb_charge_order_id_get(x) tb_charge_order_id(x)
#define tb_charge_status_name_get(x) tb_charge_status_name(tb_charge_status_get(x))
#define tb_charge_amount_minor_get(x) tb_charge_amount_minor(x)
#define tb_charge_currency_get(x) tb_charge_currency(x)
#define tb_charge_provider_get(x) tb_charge_provider(x)
#define tb_charge_provider_charge_id_get(x) tb_charge_provider_charge_id(x)
#define tb_charge_provider_refund_id_get(x) tb_charge_provider_refund_id(x)
#define tb_charge_idempotency_key_get(x) tb_charge_idempotency_key(x)
#define tb_charge_failure_code_get(x) tb_charge_failure_code(x)
#define tb_charge_decline_code_get(x) tb_charge_decline_code(x)
#define tb_charge_failure_message_get(x) tb_charge_failure_message(x)
#define tb_charge_refund_reason_get(x) tb_charge_refund_reason(x)
#define tb_charge_attempts_get(x) tb_charge_attempts(x)
#define tb_charge_version_get(x) tb_charge_version(x)
#define tb_charge_created_at_ms_get(x) tb_charge_created_at_ms(x)

#define tb_event_seq_get(x) tb_event_seq(x)
/* tb_event_type_get is the library's own accessor. */
#define tb_event_name_get(x) tb_event_name(x)
#define tb_event_subject_get(x) tb_event_type_subject(tb_event_type_get(x))
#define tb_event_aggregate_id_get(x) tb_event_aggregate_id(x)
#define tb_event_aggregate_version_get(x) tb_event_aggregate_version(x)
#define tb_event_occurred_at_ms_get(x) tb_event_occurred_at_ms(x)
#define tb_event_payload_get(x) tb_event_payload(x)

#define tb_ticket_page_count_get(x) tb_ticket_page_count(x)
#define tb_ticket_page_next_cursor_get(x) tb_ticket_page_next_cursor(x)
#define tb_order_page_count_get(x) tb_order_page_count(x)
#define tb_order_page_next_cursor_get(x) tb_order_page_next_cursor(x)
#define tb_event_page_count_get(x) tb_event_page_count(x)

/* page.get(i): a copy the caller owns, never a pointer into the page. */
#define TBW_PAGE_GET(out, page, i, count, at, dup) \
	((page) == NULL ? tbw_fail(TB_EINVAL, "page", "page is NULL") \
	 : (i) >= count(page) ? tbw_fail(TB_EINVAL, "index", "page index out of range") \
	 : dup(out, at(page, i)))
%}

TBW_OPAQUE(tb_user, tb_user_free)
TBW_OPAQUE(tb_session, tb_session_free)
TBW_OPAQUE(tb_ticket, tb_ticket_free)
TBW_OPAQUE(tb_ticket_page, tb_ticket_page_free)
TBW_OPAQUE(tb_order, tb_order_free)
TBW_OPAQUE(tb_order_page, tb_order_page_free)
TBW_OPAQUE(tb_charge, tb_charge_free)
TBW_OPAQUE(tb_event, tb_event_free)
TBW_OPAQUE(tb_event_page, tb_event_page_free)
TBW_OPAQUE(tb_clock_manual, tb_clock_manual_free)
/* A provider is a vtable struct in C; from here only its name is visible. */
%nodefaultctor tb_payment_provider;
%nodefaultdtor tb_payment_provider;
%immutable tb_payment_provider::name;
%ignore tb_payment_provider::version;
%ignore tb_payment_provider::charge;
%ignore tb_payment_provider::refund;
%ignore tb_payment_provider::lookup;
%ignore tb_payment_provider::destroy;
%extend tb_payment_provider {
	~tb_payment_provider() { tb_payment_provider_free($self); }
}


%immutable;
%extend tb_user {
	const char *id;
	const char *email;
	int64_t version;
	int64_t created_at_ms;
}
%extend tb_session {
	const char *token;
	const char *user_id;
	int64_t expires_at_ms;
}
%extend tb_ticket {
	const char *id;
	const char *title;
	int64_t price_minor;
	const char *currency;
	const char *owner_id;
	const char *order_id;
	bool locked;
	int64_t locked_until_ms;
	tb_ticket_status status;
	const char *status_name;
	int64_t version;
	int64_t created_at_ms;
}
%extend tb_order {
	const char *id;
	const char *ticket_id;
	const char *buyer_id;
	const char *seller_id;
	tb_order_status status;
	const char *status_name;
	int64_t expires_at_ms;
	int64_t price_minor;
	const char *currency;
	int64_t version;
	int64_t created_at_ms;
}
%extend tb_charge {
	const char *id;
	const char *order_id;
	tb_charge_status status;
	const char *status_name;
	int64_t amount_minor;
	const char *currency;
	const char *provider;
	const char *provider_charge_id;
	const char *provider_refund_id;
	const char *idempotency_key;
	const char *failure_code;
	const char *decline_code;
	const char *failure_message;
	const char *refund_reason;
	int64_t attempts;
	int64_t version;
	int64_t created_at_ms;
}
%extend tb_event {
	int64_t seq;
	tb_event_type type;
	const char *name;
	const char *subject;
	const char *aggregate_id;
	int64_t aggregate_version;
	int64_t occurred_at_ms;
	const char *payload;
}
%extend tb_ticket_page {
	size_t count;
	const char *next_cursor;
}
%extend tb_order_page {
	size_t count;
	const char *next_cursor;
}
%extend tb_event_page {
	size_t count;
}
%mutable;

/* Methods are named m_* in C so they cannot clash with the library's own
 * tb_<type>_<name> functions (SWIG emits them as <type>_<method>). */
%rename(get) tb_ticket_page::m_get;
%rename(get) tb_order_page::m_get;
%rename(get) tb_event_page::m_get;
%extend tb_ticket_page {
	tb_status m_get(tb_ticket **out, unsigned int i) {
		return TBW_PAGE_GET(out, $self, i, tb_ticket_page_count, tb_ticket_page_at, tb_ticket_dup);
	}
}
%extend tb_order_page {
	tb_status m_get(tb_order **out, unsigned int i) {
		return TBW_PAGE_GET(out, $self, i, tb_order_page_count, tb_order_page_at, tb_order_dup);
	}
}
%extend tb_event_page {
	tb_status m_get(tb_event **out, unsigned int i) {
		return TBW_PAGE_GET(out, $self, i, tb_event_page_count, tb_event_page_at, tb_event_dup);
	}
}

/* -------------------------------------------------------------------------
 * Releasing early.
 *
 * market_close(m), clock_manual_free(c), payment_provider_free(p) (below):
 * free the native object now and clear the proxy's pointer, so a later use
 * sees NULL (a no-op, or TB_EINVAL) and the proxy's own destructor does
 * nothing.  Node's layer needs them (no reference counting); in Python,
 * dropping the last reference does the same.
 * ---------------------------------------------------------------------- */
%typemap(in, noblock=1) SWIGTYPE *RELEASING (void *argp = 0, int res = 0) {
	res = SWIG_ConvertPtr($input, &argp, $descriptor, SWIG_POINTER_CLEAR);
	if (!SWIG_IsOK(res)) {
		SWIG_exception_fail(SWIG_ArgError(res), "in method '$symname', argument $argnum of type '$type'");
	}
	$1 = ($ltype)argp;
}

/* -------------------------------------------------------------------------
 * What is not wrapped.
 * ---------------------------------------------------------------------- */

/* Accessors: read through the attributes above. */
%rename("$ignore", regextarget=1) "^tb_(user|session|ticket|order|charge|event)_(id|email|version|created_at_ms|token|user_id|expires_at_ms|title|price_minor|currency|owner_id|order_id|locked|locked_until_ms|status_get|ticket_id|buyer_id|seller_id|amount_minor|provider|provider_charge_id|provider_refund_id|idempotency_key|failure_code|decline_code|failure_message|refund_reason|attempts|seq|type_get|name|aggregate_id|aggregate_version|occurred_at_ms|payload)$";
/* Page internals: borrowed records, replaced by page.get(i) and attributes. */
%rename("$ignore", regextarget=1) "^tb_(ticket|order|event)_page_(at|count|next_cursor)$";
/* Records are freed by their proxies (Python) or as soon as they are copied
 * (Node); handles through the releasing helpers. */
%rename("$ignore", regextarget=1) "^tb_(user|session|ticket|ticket_page|order|order_page|charge|event|event_page|clock_manual|payment_provider)_free$";
%ignore tb_market_close;
%ignore tb_free;
/* A C host's savings of a read (tb_user_get_by_session, tb_order_create and
 * tb_ticket_get do the same). */
%ignore tb_order_create_with_ticket;
%ignore tb_order_create_by_session;
/* For a C event loop: its callback runs on whichever thread commits, which
 * no binding's callback support (GIL, JS thread) is built for here. */
%ignore tb_order_create_by_session_async;
%ignore tb_order_done_cb;
%ignore tb_market_set_lead_hook;
%ignore tb_market_lead;
%ignore tb_lead_hook_fn;
/* Copies are made where needed (page.get); the proxies own what they hold. */
%rename("$ignore", regextarget=1) "^tb_(ticket|order|event)_dup$";
/* Options, query and vtable structs with borrowed pointers: replaced by the
 * flat helpers below. */
%ignore tb_market_options;
%ignore tb_market_options_init;
%ignore tb_market_open;
%ignore tb_market_open_take;
%ignore tb_clock;
%ignore tb_clock_manual_bind;
%ignore tb_ticket_query;
%ignore tb_ticket_list;
%ignore tb_event_subscribe;
%ignore tb_event_unsubscribe;
%ignore tb_event_cb;
%ignore tb_pay_request;
%ignore tb_pay_result;
%ignore tb_payment_event;
%ignore tb_market_apply_payment_event;
%ignore tb_last_error;
%ignore tb_error;
%ignore tb_error_clear;
/* Stripe: options struct and webhook calls with (body, len) pairs, replaced
 * by the flat helpers below; the parsed-event API is for C hosts. */
%ignore tb_stripe_options;
%ignore tb_stripe_options_init;
%ignore tb_payment_stripe_new;
%ignore tb_stripe_webhook_verify;
%ignore tb_stripe_webhook_parse;
%ignore tb_stripe_event;
%ignore tb_stripe_event_id;
%ignore tb_stripe_event_type;
%ignore tb_stripe_event_payment;
%ignore tb_stripe_event_free;
%ignore tb_market_stripe_webhook;
%ignore TB_STRIPE_OPTIONS_INIT;
/* Macros that are not plain constants. */
%ignore TB_MARKET_OPTIONS_INIT;
%ignore TB_TICK_STATS_INIT;
%ignore TB_CLOCK_INIT;
%ignore TB_TICKET_QUERY_INIT;
%ignore TB_PAY_REQUEST_INIT;
%ignore TB_PAYMENT_EVENT_INIT;
%ignore TB_DEFAULT_SESSION_TTL_MS;
%ignore TB_PRICE_MAX_MINOR;
%ignore TB_KEEP;
%ignore TB_NO_DEADLINE;
%ignore TB_BEGIN_DECL;
%ignore TB_END_DECL;

/* Counters filled by the library: read-only. */
%immutable tb_tick_stats::version;
%immutable tb_tick_stats::orders_expired;
%immutable tb_tick_stats::payments_retried;
%immutable tb_tick_stats::payments_resolved;
%immutable tb_tick_stats::refunds_issued;
%immutable tb_tick_stats::events_delivered;
%immutable tb_tick_stats::subscriber_failures;
%immutable tb_fake_stats::calls;
%immutable tb_fake_stats::charges;
%immutable tb_fake_stats::refunds;
%immutable tb_fake_stats::charged_minor;
%nodefaultctor tb_tick_stats;
%nodefaultctor tb_fake_stats;

/* From here on, calls release the GIL (Python). */
TBW_CALLS_RELEASE_GIL

/* The market's destructor closes it, which waits for a delivery in progress
 * on another thread, and then forgets its subscribers. */
%nodefaultctor tb_market;
%nodefaultdtor tb_market;
struct tb_market {};
%extend tb_market {
	~tb_market() { tbw_market_close($self); }
}

%include "ticketyboo/common.h"
%include "ticketyboo/clock.h"
%include "ticketyboo/money.h"
%include "ticketyboo/market.h"
%include "ticketyboo/users.h"
%include "ticketyboo/tickets.h"
%include "ticketyboo/orders.h"
%include "ticketyboo/payments.h"
%include "ticketyboo/events.h"
%include "ticketyboo/stripe.h"

/* Sentinels the headers only have as macros. */
%constant int64_t NO_DEADLINE = INT64_MAX;
%constant int64_t PRICE_MAX_MINOR = TB_PRICE_MAX_MINOR;
%constant int64_t DEFAULT_SESSION_TTL_MS = TB_DEFAULT_SESSION_TTL_MS;

/* -------------------------------------------------------------------------
 * Flat helpers for what the C API passes in structs.
 * ---------------------------------------------------------------------- */
%inline %{
/*
 * tb_market_open() with the options as arguments (0 / NULL = default).
 * `clock` (a manual clock) and `payments` are borrowed: keep them alive
 * until the market is closed.
 */
static tb_status tbw_market_open(tb_market **out, const char *db, int64_t lock_ms,
	tb_clock_manual *clock, tb_payment_provider *payments, int password_cost,
	int64_t session_ttl_ms, int late_payment, int64_t payment_grace_ms, int sync,
	const char *default_currency, int64_t payment_retry_ms)
{
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_clock manual = TB_CLOCK_INIT;

	opts.db = db;
	opts.lock_ms = lock_ms;
	if (clock != NULL) {
		tb_clock_manual_bind(clock, &manual);
		opts.clock = &manual;
	}
	opts.payments = payments;
	opts.password_cost = (tb_password_cost)password_cost;
	opts.session_ttl_ms = session_ttl_ms;
	opts.late_payment = (tb_late_payment_policy)late_payment;
	opts.payment_grace_ms = payment_grace_ms;
	opts.sync = (tb_sync_level)sync;
	opts.default_currency = default_currency;
	opts.payment_retry_ms = payment_retry_ms;
	return tb_market_open(out, &opts);
}

/* tb_ticket_list() with the query as arguments (0 / NULL = no filter). */
static tb_status tbw_ticket_list(tb_ticket_page **out, tb_market *market, int available_only,
	const char *owner_id, const char *title_contains, const char *after, unsigned int limit)
{
	tb_ticket_query query = TB_TICKET_QUERY_INIT;

	query.available_only = available_only;
	query.owner_id = owner_id;
	query.title_contains = title_contains;
	query.after = after;
	query.limit = limit;
	return tb_ticket_list(out, market, &query);
}

/*
 * tb_payment_stripe_new() with the options as arguments.  The caller passes
 * every value (the TB_STRIPE_DEFAULT_* constants for the defaults): here 0
 * retries means none and a NULL api_version sends no Stripe-Version.
 */
static tb_status tbw_payment_stripe_new(tb_payment_provider **out, const char *secret_key,
	const char *base_url, int64_t connect_timeout_ms, int64_t timeout_ms, int max_retries,
	int64_t backoff_base_ms, int64_t backoff_cap_ms, const char *api_version,
	const char *webhook_secret, int64_t webhook_tolerance_s)
{
	tb_stripe_options opts = TB_STRIPE_OPTIONS_INIT;

	opts.secret_key = secret_key;
	opts.base_url = base_url;
	opts.connect_timeout_ms = connect_timeout_ms;
	opts.timeout_ms = timeout_ms;
	opts.max_retries = max_retries;
	opts.backoff_base_ms = backoff_base_ms;
	opts.backoff_cap_ms = backoff_cap_ms;
	opts.api_version = api_version;
	opts.webhook_secret = webhook_secret;
	opts.webhook_tolerance_s = webhook_tolerance_s;
	return tb_payment_stripe_new(out, &opts);
}

/* tb_market_stripe_webhook() on a text body (Stripe's bodies are UTF-8 JSON). */
static tb_status tbw_market_stripe_webhook(tb_market *market, tb_payment_provider *stripe,
	const char *signature_header, const char *body)
{
	return tb_market_stripe_webhook(market, stripe, signature_header, body,
		body != NULL ? strlen(body) : 0);
}

/* tb_stripe_webhook_verify() on a text body. */
static tb_status tbw_stripe_webhook_verify(const char *secret, const char *signature_header,
	const char *body, int64_t now_s, int64_t tolerance_s)
{
	return tb_stripe_webhook_verify(secret, signature_header, body,
		body != NULL ? strlen(body) : 0, now_s, tolerance_s);
}

/* tb_market_apply_payment_event() with the event as arguments. */
static tb_status tbw_market_apply_payment_event(tb_market *market, int type, const char *event_id,
	const char *charge_id, const char *provider_charge_id, const char *provider_refund_id,
	const char *failure_code, const char *decline_code, const char *failure_message)
{
	tb_payment_event event = TB_PAYMENT_EVENT_INIT;

	event.type = (tb_payment_event_type)type;
	event.event_id = event_id;
	event.charge_id = charge_id;
	event.provider_charge_id = provider_charge_id;
	event.provider_refund_id = provider_refund_id;
	event.failure_code = failure_code;
	event.decline_code = decline_code;
	event.failure_message = failure_message;
	return tb_market_apply_payment_event(market, &event);
}
%}

/* -------------------------------------------------------------------------
 * Event subscribers.
 *
 * The library calls a C trampoline with the subscriber's record as payload.
 * The record keeps the target-language callable alive and lives in a small
 * registry, so unsubscribe and close can release it.
 * ---------------------------------------------------------------------- */

#if defined(SWIGPYTHON)
%{
static int tbw_py_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
	return Py_IsFinalizing();
#else
	return _Py_IsFinalizing();
#endif
}

/* Runs on whichever thread ticks or dispatches, without the GIL. */
static tb_status tbw_py_event_cb(const tb_event *event, void *payload)
{
	tbw_sub *sub = (tbw_sub *)payload;
	tb_event *copy = NULL;
	tb_status rc = TB_OK;
	PyGILState_STATE gil;
	PyObject *fn, *arg, *res;

	/* After finalization began, PyGILState_Ensure may crash: not acknowledged. */
	if (tbw_py_finalizing())
		return TB_EBUSY;
	if (tb_event_dup(&copy, event) != TB_OK)
		return TB_ENOMEM;
	gil = PyGILState_Ensure();
	/* Our own reference: the callback may unsubscribe itself, which frees
	 * `sub` (and drops its reference) before the call returns. */
	fn = sub->fn;
	Py_INCREF(fn);
	arg = SWIG_NewPointerObj(SWIG_as_voidptr(copy), SWIGTYPE_p_tb_event, SWIG_POINTER_OWN);
	if (arg == NULL) {
		PyErr_WriteUnraisable(fn);
		rc = TB_ENOMEM;
	} else {
		res = PyObject_CallFunctionObjArgs(fn, arg, NULL);
		if (res == NULL) {
			/* Reported through sys.unraisablehook; the library retries the event. */
			PyErr_WriteUnraisable(fn);
			rc = TB_EBUSY;
		} else if (res == Py_False) {
			rc = TB_EBUSY; /* declined without an error: retry later */
		}
		Py_XDECREF(res);
		Py_DECREF(arg);
	}
	Py_DECREF(fn);
	PyGILState_Release(gil);
	return rc;
}

static void tbw_sub_release(tbw_sub *sub)
{
	if (sub->fn != NULL && !tbw_py_finalizing()) {
		PyGILState_STATE gil = PyGILState_Ensure();
		Py_DECREF(sub->fn);
		PyGILState_Release(gil);
	}
	free(sub->name);
	free(sub);
}
%}

%typemap(in) PyObject *callback {
	if (!PyCallable_Check($input)) {
		PyErr_SetString(PyExc_TypeError, "callback must be callable");
		SWIG_fail;
	}
	$1 = $input;
}

%inline %{
/*
 * Register `callback(event)` as the durable subscriber `name`.  It runs on
 * the thread that ticks or dispatches, holding the GIL; an exception leaves
 * the event unacknowledged (retried later) and is reported through
 * sys.unraisablehook; returning False also leaves it unacknowledged.
 */
static tb_status tbw_market_subscribe(tb_market *market, const char *name, PyObject *callback)
{
	tbw_sub *sub;
	tb_status st;

	if (market == NULL || name == NULL)
		return tbw_fail(TB_EINVAL, market == NULL ? "market" : "name", "market and name are required");
	sub = (tbw_sub *)calloc(1, sizeof *sub);
	if (sub == NULL || (sub->name = tbw_strdup(name)) == NULL) {
		free(sub);
		return tbw_fail(TB_ENOMEM, NULL, "out of memory");
	}
	sub->market = market;
	sub->fn = callback;
	{
		/* The wrapper released the GIL around this call. */
		PyGILState_STATE gil = PyGILState_Ensure();
		Py_INCREF(callback);
		PyGILState_Release(gil);
	}
	st = tb_event_subscribe(market, name, tbw_py_event_cb, sub);
	if (st != TB_OK) {
		tbw_err_stash(); /* releasing runs no library call, but be sure */
		tbw_sub_release(sub);
		return tb_error_set(st, tbw_last_err.has_field ? tbw_last_err.field : NULL, "%s",
			tbw_last_err.message);
	}
	tbw_sub_add(sub);
	return TB_OK;
}
%}

#else /* SWIGJAVASCRIPT */
%{
/* Runs on the thread that ticks or dispatches.  Only the JS thread may call
 * into JS; elsewhere (tick on a worker) the event is left for the next
 * dispatch on the JS thread. */
static tb_status tbw_js_event_cb(const tb_event *event, void *payload)
{
	tbw_sub *sub = (tbw_sub *)payload;
	napi_env env = sub->env;
	napi_handle_scope scope;
	napi_value fn, recv, arg, res;
	tb_status rc = TB_EBUSY;
	bool pending = false, ack = true;

	if (!pthread_equal(pthread_self(), sub->thread))
		return TB_EBUSY;
	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return TB_EBUSY;
	/* The event is borrowed for the call: copied into a plain object here.
	 * `sub` is not touched after the call: the callback may unsubscribe
	 * itself, which frees it. */
	arg = tbw_js_event(env, event);
	if (arg != NULL && napi_get_reference_value(env, sub->fn, &fn) == napi_ok && fn != NULL
	    && napi_get_undefined(env, &recv) == napi_ok
	    && napi_call_function(env, recv, fn, 1, &arg, &res) == napi_ok) {
		/* false means "not now"; anything else acknowledges. */
		if (napi_get_value_bool(env, res, &ack) != napi_ok)
			ack = true;
		rc = ack ? TB_OK : TB_EBUSY;
	}
	/* The JS layer reports its callers' errors itself; never leave one
	 * pending inside the library's call. */
	if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
		napi_value exc;
		napi_get_and_clear_last_exception(env, &exc);
		rc = TB_EBUSY;
	}
	napi_close_handle_scope(env, scope);
	return rc;
}

static void tbw_sub_release(tbw_sub *sub)
{
	if (sub->fn != NULL)
		napi_delete_reference(sub->env, sub->fn);
	free(sub->name);
	free(sub);
}
%}

%typemap(in, numinputs=0, noblock=1) napi_env env {
	$1 = (napi_env)env;
}
%typemap(in, noblock=1) napi_value callback {
	if (!$input.IsFunction()) {
		SWIG_Error(SWIG_TypeError, "callback must be a function");
	}
	$1 = (napi_value)$input;
}

%inline %{
/*
 * Register `callback(event)` as the durable subscriber `name`.  It is only
 * ever called on the JS thread, during tick() or dispatch(); returning false
 * leaves the event unacknowledged (retried later).
 */
static tb_status tbw_market_subscribe(tb_market *market, const char *name, napi_value callback, napi_env env)
{
	tbw_sub *sub;
	tb_status st;

	if (market == NULL || name == NULL)
		return tbw_fail(TB_EINVAL, market == NULL ? "market" : "name", "market and name are required");
	sub = (tbw_sub *)calloc(1, sizeof *sub);
	if (sub == NULL || (sub->name = tbw_strdup(name)) == NULL) {
		free(sub);
		return tbw_fail(TB_ENOMEM, NULL, "out of memory");
	}
	sub->market = market;
	sub->env = env;
	sub->thread = pthread_self();
	if (napi_create_reference(env, callback, 1, &sub->fn) != napi_ok) {
		sub->fn = NULL;
		tbw_sub_release(sub);
		return tbw_fail(TB_EINTERNAL, NULL, "napi_create_reference failed");
	}
	st = tb_event_subscribe(market, name, tbw_js_event_cb, sub);
	if (st != TB_OK) {
		tbw_err_stash();
		tbw_sub_release(sub);
		return tb_error_set(st, tbw_last_err.has_field ? tbw_last_err.field : NULL, "%s",
			tbw_last_err.message);
	}
	tbw_sub_add(sub);
	return TB_OK;
}
%}
#endif

%inline %{
/* Stop delivering to `name` (its stored cursor is kept); waits for a
 * delivery in progress on another thread. */
static tb_status tbw_market_unsubscribe(tb_market *market, const char *name)
{
	tb_status st = tb_event_unsubscribe(market, name);
	if (st == TB_OK)
		tbw_sub_release_all(tbw_sub_take(market, name));
	return st;
}
%}

/* market_close(m), clock_manual_free(c), payment_provider_free(p): see
 * "Releasing early"; for markets this also forgets their subscribers. */
%rename(market_close) tbw_market_close_now;
%rename(clock_manual_free) tbw_clock_manual_free_now;
%rename(payment_provider_free) tbw_payment_provider_free_now;
%inline %{
/* Close a market now (its proxy's destructor does it otherwise).  NULL or an
 * already closed market is a no-op.  Not while a call on it is running. */
static void tbw_market_close_now(tb_market *RELEASING)
{
	tbw_market_close(RELEASING);
}
/* Free a manual clock now; only after closing every market that reads it. */
static void tbw_clock_manual_free_now(tb_clock_manual *RELEASING)
{
	tb_clock_manual_free(RELEASING);
}
/* Free a payment provider now; only after closing every market that uses it. */
static void tbw_payment_provider_free_now(tb_payment_provider *RELEASING)
{
	tb_payment_provider_free(RELEASING);
}
%}

/* -------------------------------------------------------------------------
 * Jobs: a blocking call packaged so it can run on another thread.
 *
 * job = job_pay(market, user, order, token)   copies the arguments
 * job_run(job)                                 runs it here (GIL released)
 * job_queue(job) -> Promise                    Node: runs it on the libuv pool
 * job_take_charge(job) -> charge               result, or the call's error
 * ---------------------------------------------------------------------- */
%{
enum { TBW_JOB_NEW = 0, TBW_JOB_RUNNING = 1, TBW_JOB_DONE = 2 };
enum {
	TBW_JOB_SIGNUP = 1, TBW_JOB_SIGNIN, TBW_JOB_PAY, TBW_JOB_REFUND, TBW_JOB_TICK,
	TBW_JOB_UPDATE_EMAIL, TBW_JOB_UPDATE_PASSWORD
};

typedef struct tbw_job {
	int kind;
	int state;            /* TBW_JOB_*, read and written atomically */
	tb_market *market;    /* borrowed: the caller keeps the market open */
	char *arg[3];         /* copies; secrets are wiped when freed */
	int secret[3];
	tb_status status;
	tbw_err err;
	tb_user *user;
	tb_session *session;
	tb_charge *charge;
	tb_tick_stats stats;
} tbw_job;

static void tbw_job_free(tbw_job *job)
{
	int i;
	if (job == NULL)
		return;
	/* Only at teardown can a running job lose its owner: leak it rather
	 * than pull it from under the worker. */
	if (__atomic_load_n(&job->state, __ATOMIC_ACQUIRE) == TBW_JOB_RUNNING)
		return;
	for (i = 0; i < 3; i++) {
		if (job->secret[i])
			tbw_free_secret(job->arg[i]);
		else
			free(job->arg[i]);
	}
	tb_user_free(job->user);
	tb_session_free(job->session);
	tb_charge_free(job->charge);
	free(job);
}

static tb_status tbw_job_new(tbw_job **out, int kind, tb_market *market,
	const char *a0, const char *a1, const char *a2, int secret_mask)
{
	const char *args[3];
	tbw_job *job;
	int i;

	*out = NULL;
	if (market == NULL)
		return tbw_fail(TB_EINVAL, "market", "market is NULL");
	job = (tbw_job *)calloc(1, sizeof *job);
	if (job == NULL)
		return tbw_fail(TB_ENOMEM, NULL, "out of memory");
	args[0] = a0;
	args[1] = a1;
	args[2] = a2;
	job->kind = kind;
	job->market = market;
	job->stats.version = TB_TICK_STATS_VERSION;
	for (i = 0; i < 3; i++) {
		job->secret[i] = (secret_mask >> i) & 1;
		if (args[i] != NULL && (job->arg[i] = tbw_strdup(args[i])) == NULL) {
			tbw_job_free(job);
			return tbw_fail(TB_ENOMEM, NULL, "out of memory");
		}
	}
	*out = job;
	return TB_OK;
}

/* Run the job on the calling thread; any thread will do. */
static void tbw_job_execute(tbw_job *job)
{
	tb_status st = TB_EINTERNAL;

	tb_error_clear();
	switch (job->kind) {
	case TBW_JOB_SIGNUP:
		st = tb_user_signup(&job->user, &job->session, job->market, job->arg[0], job->arg[1]);
		break;
	case TBW_JOB_SIGNIN:
		st = tb_user_signin(&job->session, job->market, job->arg[0], job->arg[1]);
		break;
	case TBW_JOB_PAY:
		st = tb_order_pay(&job->charge, job->market, job->arg[0], job->arg[1], job->arg[2]);
		break;
	case TBW_JOB_REFUND:
		st = tb_order_refund(&job->charge, job->market, job->arg[0], job->arg[1], job->arg[2]);
		break;
	case TBW_JOB_TICK:
		st = tb_market_tick(job->market, &job->stats);
		break;
	case TBW_JOB_UPDATE_EMAIL:
		st = tb_user_update_email(&job->user, job->market, job->arg[0], job->arg[1], job->arg[2]);
		break;
	case TBW_JOB_UPDATE_PASSWORD:
		st = tb_user_update_password(&job->user, job->market, job->arg[0], job->arg[1], job->arg[2]);
		break;
	default:
		tbw_fail(TB_EINTERNAL, NULL, "unknown job kind");
		break;
	}
	job->status = st;
	if (st != TB_OK) {
		tbw_err_stash();
		tbw_err_get(&job->err, st);
	}
	__atomic_store_n(&job->state, TBW_JOB_DONE, __ATOMIC_RELEASE);
}

/* Check a job is done and of the right kind; replay its error if it failed. */
static tb_status tbw_job_result(tbw_job *job, int kind)
{
	if (job == NULL)
		return tbw_fail(TB_EINVAL, "job", "job is NULL");
	if (job->kind != kind)
		return tbw_fail(TB_EINVAL, "job", "this job returns something else");
	if (__atomic_load_n(&job->state, __ATOMIC_ACQUIRE) != TBW_JOB_DONE)
		return tbw_fail(TB_ESTATE, "job", "the job has not run yet");
	if (job->status != TB_OK)
		return tb_error_set(job->status, job->err.has_field ? job->err.field : NULL, "%s",
			job->err.message);
	return TB_OK;
}
%}

%nodefaultctor tbw_job;
%nodefaultdtor tbw_job;
struct tbw_job {};
%extend tbw_job {
	~tbw_job() { tbw_job_free($self); }
}

%inline %{
static tb_status tbw_job_signup(tbw_job **out, tb_market *market, const char *email, const char *password)
{
	return tbw_job_new(out, TBW_JOB_SIGNUP, market, email, password, NULL, 2);
}
static tb_status tbw_job_signin(tbw_job **out, tb_market *market, const char *email, const char *password)
{
	return tbw_job_new(out, TBW_JOB_SIGNIN, market, email, password, NULL, 2);
}
static tb_status tbw_job_pay(tbw_job **out, tb_market *market, const char *user_id,
	const char *order_id, const char *payment_token)
{
	return tbw_job_new(out, TBW_JOB_PAY, market, user_id, order_id, payment_token, 4);
}
static tb_status tbw_job_refund(tbw_job **out, tb_market *market, const char *seller_id,
	const char *order_id, const char *reason)
{
	return tbw_job_new(out, TBW_JOB_REFUND, market, seller_id, order_id, reason, 0);
}
static tb_status tbw_job_tick(tbw_job **out, tb_market *market)
{
	return tbw_job_new(out, TBW_JOB_TICK, market, NULL, NULL, NULL, 0);
}
static tb_status tbw_job_update_email(tbw_job **out, tb_market *market, const char *user_id,
	const char *current_password, const char *new_email)
{
	return tbw_job_new(out, TBW_JOB_UPDATE_EMAIL, market, user_id, current_password, new_email, 2);
}
static tb_status tbw_job_update_password(tbw_job **out, tb_market *market, const char *user_id,
	const char *current_password, const char *new_password)
{
	return tbw_job_new(out, TBW_JOB_UPDATE_PASSWORD, market, user_id, current_password, new_password, 6);
}

/* Run a job on this thread (Python: with the GIL released). */
static tb_status tbw_job_run(tbw_job *job)
{
	int expected = TBW_JOB_NEW;
	if (job == NULL)
		return tbw_fail(TB_EINVAL, "job", "job is NULL");
	if (!__atomic_compare_exchange_n(&job->state, &expected, TBW_JOB_RUNNING, 0,
	                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return tbw_fail(TB_ESTATE, "job", "the job already ran");
	tbw_job_execute(job);
	return TB_OK;
}

static tb_status tbw_job_take_signup(tb_user **user_out, tb_session **session_out, tbw_job *job)
{
	tb_status st = tbw_job_result(job, TBW_JOB_SIGNUP);
	if (st == TB_OK) {
		*user_out = job->user;
		*session_out = job->session;
		job->user = NULL;
		job->session = NULL;
	}
	return st;
}
static tb_status tbw_job_take_session(tb_session **out, tbw_job *job)
{
	tb_status st = tbw_job_result(job, TBW_JOB_SIGNIN);
	if (st == TB_OK) {
		*out = job->session;
		job->session = NULL;
	}
	return st;
}
static tb_status tbw_job_take_user(tb_user **out, tbw_job *job)
{
	tb_status st = job != NULL && job->kind == TBW_JOB_UPDATE_PASSWORD
		? tbw_job_result(job, TBW_JOB_UPDATE_PASSWORD)
		: tbw_job_result(job, TBW_JOB_UPDATE_EMAIL);
	if (st == TB_OK) {
		*out = job->user;
		job->user = NULL;
	}
	return st;
}
static tb_status tbw_job_take_charge(tb_charge **out, tbw_job *job)
{
	tb_status st = job != NULL && job->kind == TBW_JOB_REFUND
		? tbw_job_result(job, TBW_JOB_REFUND)
		: tbw_job_result(job, TBW_JOB_PAY);
	if (st == TB_OK) {
		*out = job->charge;
		job->charge = NULL;
	}
	return st;
}
static tb_status tbw_job_take_tick(tb_tick_stats *stats_out, tbw_job *job)
{
	tb_status st = tbw_job_result(job, TBW_JOB_TICK);
	if (st == TB_OK)
		*stats_out = job->stats;
	return st;
}
%}

#if defined(SWIGJAVASCRIPT)
%{
typedef struct tbw_js_work {
	napi_async_work work;
	napi_deferred deferred;
	tbw_job *job;
} tbw_js_work;

/* On a libuv worker: no JS here. */
static void tbw_js_job_execute(napi_env env, void *data)
{
	(void)env;
	tbw_job_execute(((tbw_js_work *)data)->job);
}

/* Back on the JS thread: settle the promise; job_take_* gives the result. */
static void tbw_js_job_complete(napi_env env, napi_status status, void *data)
{
	tbw_js_work *w = (tbw_js_work *)data;
	napi_value undefined;

	if (status == napi_cancelled)
		__atomic_store_n(&w->job->state, TBW_JOB_NEW, __ATOMIC_RELEASE);
	napi_get_undefined(env, &undefined);
	napi_resolve_deferred(env, w->deferred, undefined);
	napi_delete_async_work(env, w->work);
	free(w);
}
%}

%typemap(in, numinputs=0, noblock=1) napi_value *promise_out (napi_value tmp = NULL) {
	$1 = &tmp;
}
%typemap(argout, noblock=1) napi_value *promise_out {
	TBW_APPEND(Napi::Value(env, tmp$argnum));
}

%inline %{
/*
 * Run a job on the libuv worker pool.  Returns a Promise that resolves (to
 * undefined) when it is done; then job_take_*() gives its result or throws
 * its error.  Keep the job object and its market alive until then.
 */
static tb_status tbw_job_queue(napi_value *promise_out, tbw_job *job, napi_env env)
{
	int expected = TBW_JOB_NEW;
	tbw_js_work *w;
	napi_value name;

	if (job == NULL)
		return tbw_fail(TB_EINVAL, "job", "job is NULL");
	w = (tbw_js_work *)calloc(1, sizeof *w);
	if (w == NULL)
		return tbw_fail(TB_ENOMEM, NULL, "out of memory");
	if (!__atomic_compare_exchange_n(&job->state, &expected, TBW_JOB_RUNNING, 0,
	                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		free(w);
		return tbw_fail(TB_ESTATE, "job", "the job already ran");
	}
	w->job = job;
	if (napi_create_string_utf8(env, "ticketyboo", NAPI_AUTO_LENGTH, &name) != napi_ok
	    || napi_create_promise(env, &w->deferred, promise_out) != napi_ok
	    || napi_create_async_work(env, NULL, name, tbw_js_job_execute, tbw_js_job_complete, w,
	                              &w->work) != napi_ok) {
		__atomic_store_n(&job->state, TBW_JOB_NEW, __ATOMIC_RELEASE);
		free(w); /* a created promise that is never settled is only garbage */
		return tbw_fail(TB_EINTERNAL, NULL, "could not create the async work");
	}
	if (napi_queue_async_work(env, w->work) != napi_ok) {
		__atomic_store_n(&job->state, TBW_JOB_NEW, __ATOMIC_RELEASE);
		napi_delete_async_work(env, w->work);
		free(w);
		return tbw_fail(TB_EINTERNAL, NULL, "could not queue the async work");
	}
	return TB_OK;
}
%}
#endif
