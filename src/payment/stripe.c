/*
 * src/payment/stripe.c - the Stripe payment provider (PaymentIntents and
 * Refunds over libcurl) and Stripe webhook verification and parsing.
 *
 * docs/stripe.md explains the choices; the comments here say why where the
 * code alone does not.  Nothing here writes HTTP, JSON, form escaping or HMAC
 * by hand: libcurl, jansson, curl_easy_escape and libsodium do.
 */
#define _POSIX_C_SOURCE 200809L

#include "ticketyboo/stripe.h"
#include "ticketyboo/sys.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Stripe's limits (docs.stripe.com/api/idempotent_requests, /api/metadata). */
#define IDEMPOTENCY_KEY_MAX 255
#define METADATA_VALUE_MAX 500
#define DESCRIPTION_MAX 1000
/* Answers larger than this are not Stripe's: stop reading (the outcome is unknown). */
#define RESPONSE_MAX (1024 * 1024)
/* Idle curl handles kept for reuse; more concurrent calls create and drop extra ones. */
#define POOL_MAX 16
#define TIMEOUT_MAX_MS (10 * 60 * 1000)
#define BACKOFF_MAX_MS (60 * 1000)
#define PM_KEY_SUFFIX "-pm"

typedef struct stripe_provider {
	tb_payment_provider base;   /* first: the core sees only this */
	char *secret_key;           /* wiped at destroy */
	char *webhook_secret;       /* wiped at destroy; NULL when not configured */
	char *base_url;             /* no trailing slash */
	char *api_version;          /* NULL: no Stripe-Version header */
	long connect_timeout_ms;
	long timeout_ms;
	int max_retries;
	int64_t backoff_base_ms;
	int64_t backoff_cap_ms;
	int64_t webhook_tolerance_s;
	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];       /* idle easy handles; a handle is used by one thread at a time */
	size_t pool_len;
} stripe_provider;

/* ---- small helpers ------------------------------------------------------- */

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void free_secret(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

/* Printable ASCII without spaces: safe inside an HTTP header value. */
static int header_safe(const char *s, size_t max)
{
	size_t n = 0;
	if (!s || !*s)
		return 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= max)
			return 0;
	return 1;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Length of the longest prefix of s, at most max bytes, that ends on a UTF-8 boundary. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* Copy src into a fixed buffer, cut on a UTF-8 boundary (the core puts these in JSON). */
static void put(char *dst, size_t cap, const char *src)
{
	size_t n;
	if (!src)
		src = "";
	n = utf8_prefix(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *jstr(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- results ------------------------------------------------------------- */

static void result_reset(tb_pay_result *res)
{
	memset(res, 0, sizeof *res);
	res->version = TB_PAY_RESULT_VERSION;
	res->outcome = TB_PAY_UNKNOWN;
}

/*
 * Set the result's message.  Whatever Stripe (or a proxy pretending to be
 * it) answered, a message that contains one of our secrets is withheld.
 */
static void set_message(const stripe_provider *sp, tb_pay_result *res, const char *fmt, ...)
	TB_FORMAT_PRINTF(3, 4);

static void set_message(const stripe_provider *sp, tb_pay_result *res, const char *fmt, ...)
{
	char tmp[sizeof res->message * 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (strstr(tmp, sp->secret_key) || (sp->webhook_secret && strstr(tmp, sp->webhook_secret)))
		snprintf(tmp, sizeof tmp, "Stripe's message was withheld: it contained a secret");
	put(res->message, sizeof res->message, tmp);
	sodium_memzero(tmp, sizeof tmp);
}

static void set_outcome(const stripe_provider *sp, tb_pay_result *res, tb_pay_outcome outcome,
	const char *code, const char *message)
{
	res->outcome = outcome;
	put(res->code, sizeof res->code, code);
	set_message(sp, res, "%s", message ? message : "");
}

/* ---- growable buffers (form bodies, responses) ---------------------------- */

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
	int failed; /* out of memory or over RESPONSE_MAX */
} buf;

static void buf_free(buf *b)
{
	if (b->data) {
		/* bodies hold payment tokens and client secrets: wipe them */
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof *b);
}

static int buf_append(buf *b, const char *s, size_t n)
{
	if (b->failed)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = malloc(cap);
		if (!p) {
			b->failed = 1;
			return -1;
		}
		if (b->data) {
			memcpy(p, b->data, b->len);
			sodium_memzero(b->data, b->cap);
			free(b->data);
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Append key=value, both escaped by libcurl. */
static void form_add(buf *f, CURL *h, const char *key, const char *value)
{
	char *k = curl_easy_escape(h, key, 0);
	char *v = curl_easy_escape(h, value, 0);
	if (!k || !v) {
		f->failed = 1;
	} else {
		if (f->len)
			buf_append(f, "&", 1);
		buf_append(f, k, strlen(k));
		buf_append(f, "=", 1);
		buf_append(f, v, strlen(v));
		sodium_memzero(v, strlen(v));
	}
	curl_free(k);
	curl_free(v);
}

static void form_add_cut(buf *f, CURL *h, const char *key, const char *value, size_t max)
{
	char tmp[DESCRIPTION_MAX + 1];
	size_t n = utf8_prefix(value, max < DESCRIPTION_MAX ? max : DESCRIPTION_MAX);
	memcpy(tmp, value, n);
	tmp[n] = '\0';
	form_add(f, h, key, tmp);
}

static void form_add_int(buf *f, CURL *h, const char *key, int64_t value)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%lld", (long long)value);
	form_add(f, h, key, tmp);
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct reply {
	CURLcode cc;
	long status;
	buf body;
	int should_retry;   /* Stripe-Should-Retry: -1 absent, 0 false, 1 true */
	int replayed;       /* Idempotent-Replayed: true */
	char request_id[64];
	char curl_error[CURL_ERROR_SIZE];
	json_t *json;       /* the parsed body, or NULL */
} reply;

static void reply_clear(reply *r)
{
	buf_free(&r->body);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
	r->should_retry = -1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	buf *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > RESPONSE_MAX || buf_append(b, ptr, n) != 0)
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return n;
}

/* Case-insensitive "Name:" match; returns the trimmed value and its length. */
static int header_value(const char *line, size_t len, const char *name, const char **v, size_t *vlen)
{
	size_t n = strlen(name), i;
	if (len <= n || line[n] != ':')
		return 0;
	for (i = 0; i < n; i++) {
		char a = line[i], b = name[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return 0;
	}
	i = n + 1;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (len > i && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	*v = line + i;
	*vlen = len - i;
	return 1;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	reply *r = userdata;
	size_t n = size * nmemb, vlen;
	const char *v;
	if (header_value(ptr, n, "stripe-should-retry", &v, &vlen))
		r->should_retry = (vlen == 4 && memcmp(v, "true", 4) == 0) ? 1 : 0;
	else if (header_value(ptr, n, "idempotent-replayed", &v, &vlen))
		r->replayed = vlen == 4 && memcmp(v, "true", 4) == 0;
	else if (header_value(ptr, n, "request-id", &v, &vlen) && vlen < sizeof r->request_id) {
		memcpy(r->request_id, v, vlen);
		r->request_id[vlen] = '\0';
		if (!header_safe(r->request_id, sizeof r->request_id))
			r->request_id[0] = '\0';
	}
	return n;
}

static CURL *pool_take(stripe_provider *sp)
{
	CURL *h = NULL;
	pthread_mutex_lock(&sp->pool_lock);
	if (sp->pool_len > 0)
		h = sp->pool[--sp->pool_len];
	pthread_mutex_unlock(&sp->pool_lock);
	return h ? h : curl_easy_init();
}

static void pool_give(stripe_provider *sp, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&sp->pool_lock);
	if (sp->pool_len < POOL_MAX) {
		sp->pool[sp->pool_len++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&sp->pool_lock);
	curl_easy_cleanup(h);
}

/* Every header string we handed curl, the key among them, is wiped before it is freed. */
static void headers_free(struct curl_slist *headers)
{
	struct curl_slist *n;
	for (n = headers; n; n = n->next)
		sodium_memzero(n->data, strlen(n->data));
	curl_slist_free_all(headers);
}

static struct curl_slist *header_add(struct curl_slist *list, int *failed, const char *name,
	const char *value)
{
	char line[IDEMPOTENCY_KEY_MAX + 640];
	struct curl_slist *next;
	if (*failed)
		return list;
	if ((size_t)snprintf(line, sizeof line, "%s: %s", name, value) >= sizeof line) {
		*failed = 1;
		return list;
	}
	next = curl_slist_append(list, line);
	sodium_memzero(line, sizeof line);
	if (!next) {
		*failed = 1;
		return list;
	}
	return next;
}

/* One try: fills r (reset first). form == NULL means GET. */
static void http_once(stripe_provider *sp, CURL *h, const char *url, const char *idem_key,
	const buf *form, reply *r)
{
	struct curl_slist *headers = NULL;
	int failed = 0;
	char auth[600];

	reply_clear(r);
	curl_easy_reset(h);
	snprintf(auth, sizeof auth, "Bearer %s", sp->secret_key);
	headers = header_add(headers, &failed, "Authorization", auth);
	sodium_memzero(auth, sizeof auth);
	headers = header_add(headers, &failed, "Accept", "application/json");
	if (sp->api_version)
		headers = header_add(headers, &failed, "Stripe-Version", sp->api_version);
	if (form) {
		headers = header_add(headers, &failed, "Content-Type", "application/x-www-form-urlencoded");
		headers = header_add(headers, &failed, "Idempotency-Key", idem_key);
		/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
		if (!failed && !(headers = curl_slist_append(headers, "Expect:")))
			failed = 1;
	}
	if (failed) {
		headers_free(headers);
		r->cc = CURLE_OUT_OF_MEMORY;
		return;
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, sp->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, sp->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "libticketyboo-stripe/1");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_error);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	if (form) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form->data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form->len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}

	r->cc = curl_easy_perform(h);
	if (r->cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		if (r->body.data)
			r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
	}
	/* curl must not keep pointers to what we free */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	headers_free(headers);
	if (!r->curl_error[0] && r->cc != CURLE_OK)
		snprintf(r->curl_error, sizeof r->curl_error, "%s", curl_easy_strerror(r->cc));
}

/* Network failures after which a retry cannot help (the request never left). */
static int curl_permanent(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_WRITE_ERROR:
		return 1;
	default:
		return 0;
	}
}

/*
 * May this answer change if we ask again with the same key?  Network errors
 * and timeouts, 409 (the same key is still executing), 429, 424 and 5xx: yes,
 * unless Stripe says otherwise (Stripe-Should-Retry) or the 5xx is already an
 * idempotent replay (Stripe saved it and will keep replaying it).
 */
static int transient(const reply *r)
{
	if (r->cc != CURLE_OK)
		return !curl_permanent(r->cc);
	if (r->status >= 200 && r->status < 300)
		return 0;
	if (r->should_retry >= 0)
		return r->should_retry;
	if (r->status >= 500)
		return !r->replayed;
	return r->status == 409 || r->status == 429 || r->status == 424;
}

static void backoff_sleep(const stripe_provider *sp, int retry)
{
	int64_t d = sp->backoff_base_ms, wait;
	struct timespec ts;
	int i;
	for (i = 1; i < retry && d < sp->backoff_cap_ms; i++)
		d *= 2;
	if (d > sp->backoff_cap_ms)
		d = sp->backoff_cap_ms;
	if (d <= 0)
		return;
	/* "equal jitter": half the delay fixed, half drawn at random */
	wait = d / 2 + (int64_t)randombytes_uniform((uint32_t)(d - d / 2) + 1);
	ts.tv_sec = (time_t)(wait / 1000);
	ts.tv_nsec = (long)(wait % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Send with in-call retries.  Every try of one call sends the same body with
 * the same Idempotency-Key.  Returns the number of tries made.
 */
static int http_call(stripe_provider *sp, CURL *h, const char *url, const char *idem_key,
	const buf *form, reply *r)
{
	int tries = 0;
	for (;;) {
		http_once(sp, h, url, idem_key, form, r);
		tries++;
		if (!transient(r) || tries > sp->max_retries)
			return tries;
		backoff_sleep(sp, tries);
	}
}

static int url_for(const stripe_provider *sp, char *dst, size_t cap, const char *path, const char *query)
{
	int n = snprintf(dst, cap, "%s%s%s%s", sp->base_url, path, query ? "?" : "", query ? query : "");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- mapping Stripe's answers ---------------------------------------------- */

typedef enum call_kind { CALL_PAYMENT_METHOD, CALL_PAYMENT_INTENT, CALL_REFUND } call_kind;

static void map_last_error(const stripe_provider *sp, tb_pay_result *res, const json_t *err,
	const char *fallback_code, const char *fallback_message)
{
	const char *code = jstr(err, "code");
	put(res->decline_code, sizeof res->decline_code, jstr(err, "decline_code"));
	set_outcome(sp, res, TB_PAY_DECLINED, code ? code : fallback_code,
		jstr(err, "message") ? jstr(err, "message") : fallback_message);
}

/* A PaymentIntent's status, as an outcome (after confirm=true, or found by search). */
static void map_intent(const stripe_provider *sp, tb_pay_result *res, const json_t *pi)
{
	const char *status = jstr(pi, "status");
	put(res->provider_id, sizeof res->provider_id, jstr(pi, "id"));
	if (!status) {
		set_outcome(sp, res, TB_PAY_UNKNOWN, "api_error", "Stripe answered a PaymentIntent without a status");
	} else if (strcmp(status, "succeeded") == 0) {
		set_outcome(sp, res, TB_PAY_SUCCEEDED, NULL, "");
	} else if (strcmp(status, "requires_payment_method") == 0) {
		/* confirmation failed: Stripe detached the card and wants another */
		map_last_error(sp, res, json_object_get(pi, "last_payment_error"), "payment_failed",
			"The payment failed.");
	} else if (strcmp(status, "requires_action") == 0) {
		/* we confirm server-side with error_on_requires_action: nobody can authenticate */
		set_outcome(sp, res, TB_PAY_DECLINED, "authentication_required",
			"The card needs the customer's authentication (3-D Secure), which a server-side payment cannot do.");
	} else if (strcmp(status, "requires_confirmation") == 0 || strcmp(status, "canceled") == 0) {
		set_outcome(sp, res, TB_PAY_DECLINED, status, "The PaymentIntent was not confirmed; no money was taken.");
	} else {
		/* processing, requires_capture, or a status newer than this code */
		set_outcome(sp, res, TB_PAY_UNKNOWN, status, NULL);
		set_message(sp, res, "the PaymentIntent is %s; its final state will come later", status);
	}
}

static void map_refund_object(const stripe_provider *sp, tb_pay_result *res, const json_t *re)
{
	const char *status = jstr(re, "status");
	put(res->provider_id, sizeof res->provider_id, jstr(re, "id"));
	if (status && (strcmp(status, "succeeded") == 0 || strcmp(status, "pending") == 0)) {
		/* pending: Stripe has accepted the refund and is completing it */
		set_outcome(sp, res, TB_PAY_SUCCEEDED, NULL,
			strcmp(status, "pending") == 0 ? "the refund is pending at Stripe" : "");
	} else if (status && (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0)) {
		const char *why = jstr(re, "failure_reason");
		set_outcome(sp, res, TB_PAY_DECLINED, why ? why : status, NULL);
		set_message(sp, res, "Stripe reports the refund %s", status);
	} else {
		set_outcome(sp, res, TB_PAY_UNKNOWN, status ? status : "api_error", NULL);
		set_message(sp, res, "the refund is %s", status ? status : "in an unknown state");
	}
}

/* Map the final reply of a POST; `tries` counts the tries made. */
static void map_reply(const stripe_provider *sp, tb_pay_result *res, const reply *r, int tries,
	call_kind kind)
{
	const json_t *err = json_object_get(r->json, "error");
	const char *etype = jstr(err, "type");
	const char *ecode = jstr(err, "code");
	const char *emsg = jstr(err, "message");
	const char *rid = r->request_id[0] ? r->request_id : "none";

	if (r->cc != CURLE_OK) {
		if (curl_permanent(r->cc) && r->cc != CURLE_WRITE_ERROR && r->cc != CURLE_OUT_OF_MEMORY) {
			/* the request never reached Stripe: nothing can have been charged */
			set_outcome(sp, res, TB_PAY_ERROR, "connection_error", NULL);
			set_message(sp, res, "cannot reach Stripe: %s", r->curl_error);
		} else {
			set_outcome(sp, res, TB_PAY_UNKNOWN,
				r->cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network_error", NULL);
			set_message(sp, res, "no answer from Stripe after %d tr%s: %s", tries,
				tries == 1 ? "y" : "ies", r->curl_error);
		}
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		if (!json_is_object(r->json)) {
			set_outcome(sp, res, TB_PAY_UNKNOWN, "api_error", NULL);
			set_message(sp, res, "Stripe answered HTTP %ld with a body that is not JSON (request %s)",
				r->status, rid);
		} else if (kind == CALL_PAYMENT_INTENT) {
			map_intent(sp, res, r->json);
		} else if (kind == CALL_REFUND) {
			map_refund_object(sp, res, r->json);
		} else {
			put(res->provider_id, sizeof res->provider_id, jstr(r->json, "id"));
			set_outcome(sp, res, TB_PAY_SUCCEEDED, NULL, "");
		}
		return;
	}
	if (r->status == 402) {
		const json_t *pi = json_object_get(err, "payment_intent");
		put(res->provider_id, sizeof res->provider_id, jstr(pi, "id"));
		map_last_error(sp, res, err, "card_declined", "The card was declined.");
		return;
	}
	if (etype && strcmp(etype, "idempotency_error") == 0 && r->status != 409) {
		/*
		 * The key was used before with other parameters: that earlier request
		 * ran, and what it did is unknown here.  Calling it an error would
		 * let the order be paid again; unknown keeps it pending until a
		 * lookup (search by the key in metadata) or a webhook settles it.
		 */
		set_outcome(sp, res, TB_PAY_UNKNOWN, "idempotency_error", NULL);
		set_message(sp, res, "Stripe refused to reuse the idempotency key with other parameters (request %s): %s",
			rid, emsg ? emsg : "");
		return;
	}
	if (kind == CALL_REFUND && ecode && strcmp(ecode, "charge_already_refunded") == 0) {
		set_outcome(sp, res, TB_PAY_SUCCEEDED, ecode, "the payment had already been refunded");
		return;
	}
	if (r->status == 401) {
		/* Stripe's own message quotes part of the key: leave it out */
		set_outcome(sp, res, TB_PAY_ERROR, "authentication_error", NULL);
		set_message(sp, res, "Stripe rejected the API key (HTTP 401, request %s)", rid);
		return;
	}
	if (r->status == 403) {
		set_outcome(sp, res, TB_PAY_ERROR, ecode ? ecode : "permission_error", NULL);
		set_message(sp, res, "the API key may not do this (HTTP 403, request %s): %s", rid, emsg ? emsg : "");
		return;
	}
	if (transient(r) || r->status >= 500 || r->status == 409 || r->status == 429 || r->status == 424) {
		const char *code = ecode ? ecode
			: r->status == 429 ? "rate_limit"
			: r->status == 409 ? "idempotency_key_in_use" : "api_error";
		set_outcome(sp, res, TB_PAY_UNKNOWN, code, NULL);
		set_message(sp, res, "Stripe answered HTTP %ld after %d tr%s (request %s): %s", r->status, tries,
			tries == 1 ? "y" : "ies", rid, emsg ? emsg : "no message");
		return;
	}
	if (r->status >= 400 && r->status < 500) {
		const char *param = jstr(err, "param");
		set_outcome(sp, res, TB_PAY_ERROR, ecode ? ecode : (etype ? etype : "invalid_request_error"), NULL);
		set_message(sp, res, "Stripe refused the request (HTTP %ld%s%s, request %s): %s", r->status,
			param ? ", parameter " : "", param ? param : "", rid, emsg ? emsg : "no message");
		return;
	}
	/* 1xx/3xx: not an answer Stripe gives; something in between spoke */
	set_outcome(sp, res, TB_PAY_UNKNOWN, "api_error", NULL);
	set_message(sp, res, "unexpected HTTP %ld from %s (request %s)", r->status, sp->base_url, rid);
}

/* ---- requests ---------------------------------------------------------------- */

static int valid_key(const char *key, size_t max)
{
	return header_safe(key, max);
}

static int valid_request(const stripe_provider *sp, const tb_pay_request *req, tb_pay_result *res, int refund)
{
	const char *why = NULL;
	if (!req->idempotency_key || !valid_key(req->idempotency_key, IDEMPOTENCY_KEY_MAX))
		why = "the idempotency key must be 1 to 255 printable characters";
	else if (!refund && req->amount_minor <= 0)
		why = "the amount must be positive";
	else if (refund && req->amount_minor < 0)
		why = "the refund amount must not be negative";
	else if (!refund && (!req->currency || strlen(req->currency) != 3))
		why = "the currency must be a 3-letter ISO 4217 code";
	else if (!refund && (!req->payment_token || !*req->payment_token || has_control(req->payment_token)))
		why = "a payment token is required";
	else if (refund && (!req->provider_charge_id || !*req->provider_charge_id
			|| has_control(req->provider_charge_id)))
		why = "the Stripe payment to refund is unknown";
	if (why) {
		set_outcome(sp, res, TB_PAY_ERROR, "invalid_request", why);
		return 0;
	}
	return 1;
}

static void add_metadata(buf *f, CURL *h, const tb_pay_request *req)
{
	if (req->order_id && *req->order_id)
		form_add_cut(f, h, "metadata[order_id]", req->order_id, METADATA_VALUE_MAX);
	if (req->charge_id && *req->charge_id)
		form_add_cut(f, h, "metadata[charge_id]", req->charge_id, METADATA_VALUE_MAX);
}

/*
 * POST a form under an idempotency key, with in-call retries; r receives the
 * final reply.  Returns the number of tries, or 0 when the request could not
 * be built (res then says why).
 */
static int post_form(stripe_provider *sp, CURL *h, const char *path, const char *key, const buf *form,
	reply *r, tb_pay_result *res)
{
	char url[1024];
	if (form->failed || url_for(sp, url, sizeof url, path, NULL) != 0) {
		set_outcome(sp, res, TB_PAY_UNKNOWN, "out_of_memory", "out of memory building the request");
		return 0;
	}
	return http_call(sp, h, url, key, form, r);
}

/*
 * A legacy card token (tok_...) cannot pay a PaymentIntent directly; Stripe
 * documents turning it into a PaymentMethod (POST /v1/payment_methods with
 * type=card and card[token]).  That call is idempotent too, under the
 * attempt's key plus a suffix, so every retry reuses the same PaymentMethod
 * and the PaymentIntent's parameters stay identical.
 * On success fills pm (the PaymentMethod id) and returns 1; otherwise maps the
 * answer into res and returns 0.
 */
static int convert_token(stripe_provider *sp, CURL *h, const tb_pay_request *req, char *pm, size_t pm_cap,
	tb_pay_result *res)
{
	char key[IDEMPOTENCY_KEY_MAX + 1];
	buf form = { 0 };
	reply r = { 0 };
	int tries, ok = 0;

	if (strlen(req->idempotency_key) + strlen(PM_KEY_SUFFIX) > IDEMPOTENCY_KEY_MAX) {
		set_outcome(sp, res, TB_PAY_ERROR, "invalid_request",
			"the idempotency key is too long to derive the PaymentMethod's key");
		return 0;
	}
	snprintf(key, sizeof key, "%s%s", req->idempotency_key, PM_KEY_SUFFIX);
	form_add(&form, h, "type", "card");
	form_add(&form, h, "card[token]", req->payment_token);
	tries = post_form(sp, h, "/v1/payment_methods", key, &form, &r, res);
	if (tries > 0 && r.cc == CURLE_OK && r.status >= 200 && r.status < 300 && jstr(r.json, "id")
			&& strlen(jstr(r.json, "id")) < pm_cap) {
		snprintf(pm, pm_cap, "%s", jstr(r.json, "id"));
		ok = 1;
	} else if (tries > 0) {
		map_reply(sp, res, &r, tries, CALL_PAYMENT_METHOD);
		if (res->outcome == TB_PAY_SUCCEEDED) /* 2xx without a usable id */
			set_outcome(sp, res, TB_PAY_UNKNOWN, "api_error", "Stripe answered a PaymentMethod without an id");
	}
	reply_clear(&r);
	buf_free(&form);
	return ok;
}

/*
 * The PaymentIntent form: create and confirm in one call, cards only.
 * Returns 0 (res filled) when a legacy token could not be converted.
 */
static int charge_form(stripe_provider *sp, CURL *h, const tb_pay_request *req, buf *form,
	tb_pay_result *res)
{
	char pm[256], currency[4];
	int i;

	snprintf(pm, sizeof pm, "%s", req->payment_token);
	if (starts_with(req->payment_token, "tok_") && !convert_token(sp, h, req, pm, sizeof pm, res))
		return 0;
	for (i = 0; i < 3; i++) /* Stripe wants lower case */
		currency[i] = (char)((req->currency[i] >= 'A' && req->currency[i] <= 'Z')
			? req->currency[i] - 'A' + 'a' : req->currency[i]);
	currency[3] = '\0';

	form_add_int(form, h, "amount", req->amount_minor);
	form_add(form, h, "currency", currency);
	form_add(form, h, "payment_method", pm);
	form_add(form, h, "confirm", "true");
	/* cards only: no redirect-based method can be chosen, so no return_url is needed */
	form_add(form, h, "payment_method_types[]", "card");
	/* a card that needs 3-D Secure fails now instead of waiting for a customer who is not there */
	form_add(form, h, "error_on_requires_action", "true");
	if (req->description && *req->description)
		form_add_cut(form, h, "description", req->description, DESCRIPTION_MAX);
	add_metadata(form, h, req);
	/* what stripe_lookup() searches for */
	form_add(form, h, "metadata[idempotency_key]", req->idempotency_key);
	sodium_memzero(pm, sizeof pm);
	return 1;
}

static int stripe_refund_reason(const char *reason)
{
	return reason && (strcmp(reason, "duplicate") == 0 || strcmp(reason, "fraudulent") == 0
		|| strcmp(reason, "requested_by_customer") == 0);
}

/* The Refund form: Stripe's reason only when it is one of its enum, ours in metadata. */
static void refund_form(CURL *h, const tb_pay_request *req, buf *form)
{
	/* our payments are PaymentIntents; a legacy charge id is refunded as a charge */
	form_add(form, h, starts_with(req->provider_charge_id, "ch_") ? "charge" : "payment_intent",
		req->provider_charge_id);
	if (req->amount_minor > 0)
		form_add_int(form, h, "amount", req->amount_minor);
	if (stripe_refund_reason(req->reason))
		form_add(form, h, "reason", req->reason);
	else if (req->reason && *req->reason)
		form_add_cut(form, h, "metadata[reason]", req->reason, METADATA_VALUE_MAX);
	add_metadata(form, h, req);
}

/* A charge or a refund: one POST under the attempt's key, retried, then mapped. */
static tb_status pay_call(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *res,
	call_kind kind)
{
	stripe_provider *sp = (stripe_provider *)self;
	int refund = kind == CALL_REFUND;
	buf form = { 0 };
	reply r = { 0 };
	CURL *h;
	int tries;

	if (!self || !req || !res)
		return tb_error_set(TB_EINVAL, NULL, "stripe: NULL provider, request or result");
	result_reset(res);
	if (!valid_request(sp, req, res, refund))
		return TB_OK;
	if (!(h = pool_take(sp)))
		return tb_error_set(TB_ENOMEM, NULL, "stripe: cannot create a curl handle");
	if (refund)
		refund_form(h, req, &form);
	else if (!charge_form(sp, h, req, &form, res))
		goto done;
	tries = post_form(sp, h, refund ? "/v1/refunds" : "/v1/payment_intents", req->idempotency_key,
		&form, &r, res);
	if (tries > 0)
		map_reply(sp, res, &r, tries, kind);
done:
	reply_clear(&r);
	buf_free(&form);
	pool_give(sp, h);
	return TB_OK;
}

static tb_status stripe_charge(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *res)
{
	return pay_call(self, req, res, CALL_PAYMENT_INTENT);
}

static tb_status stripe_refund(tb_payment_provider *self, const tb_pay_request *req, tb_pay_result *res)
{
	return pay_call(self, req, res, CALL_REFUND);
}

/*
 * Look up an attempt without creating anything: search PaymentIntents by the
 * idempotency key the charge put in metadata.  Search lags writes (usually
 * under a minute), so "nothing found" is unknown, never "no charge".
 */
static tb_status stripe_lookup(tb_payment_provider *self, const char *idempotency_key, tb_pay_result *res)
{
	stripe_provider *sp = (stripe_provider *)self;
	char query[2 * IDEMPOTENCY_KEY_MAX + 64], url[2048];
	char *escaped = NULL;
	const json_t *data, *pi, *best = NULL;
	reply r = { 0 };
	CURL *h;
	size_t i, q;
	int tries;

	if (!self || !idempotency_key || !res)
		return tb_error_set(TB_EINVAL, NULL, "stripe: NULL provider, key or result");
	result_reset(res);
	if (!valid_key(idempotency_key, IDEMPOTENCY_KEY_MAX)) {
		set_outcome(sp, res, TB_PAY_UNKNOWN, "invalid_request", "the idempotency key is malformed");
		return TB_OK;
	}
	if (!(h = pool_take(sp)))
		return tb_error_set(TB_ENOMEM, NULL, "stripe: cannot create a curl handle");

	/* Stripe's search language: a quoted value escapes ' and \ with a backslash */
	q = (size_t)snprintf(query, sizeof query, "metadata['idempotency_key']:'");
	for (i = 0; idempotency_key[i]; i++) {
		if (idempotency_key[i] == '\'' || idempotency_key[i] == '\\')
			query[q++] = '\\';
		query[q++] = idempotency_key[i];
	}
	query[q++] = '\'';
	query[q] = '\0';
	escaped = curl_easy_escape(h, query, 0);
	if (!escaped || (size_t)snprintf(url, sizeof url, "%s/v1/payment_intents/search?query=%s",
			sp->base_url, escaped) >= sizeof url) {
		set_outcome(sp, res, TB_PAY_UNKNOWN, "out_of_memory", "out of memory building the request");
		goto done;
	}
	tries = http_call(sp, h, url, NULL, NULL, &r);
	if (r.cc != CURLE_OK || r.status < 200 || r.status >= 300 || !json_is_array(json_object_get(r.json, "data"))) {
		map_reply(sp, res, &r, tries, CALL_PAYMENT_INTENT);
		if (res->outcome != TB_PAY_UNKNOWN) {
			/* a failed search says nothing about the payment */
			char why[sizeof res->message + 32];
			snprintf(why, sizeof why, "search failed: %s", res->message);
			set_outcome(sp, res, TB_PAY_UNKNOWN, res->code, why);
		}
		goto done;
	}
	data = json_object_get(r.json, "data");
	json_array_foreach(data, i, pi) {
		const char *status = jstr(pi, "status");
		if (!status)
			continue;
		if (strcmp(status, "succeeded") == 0) {
			best = pi;
			break;
		}
		/* a payment still moving outranks one that failed */
		if (!best || (strcmp(status, "requires_payment_method") != 0 && strcmp(status, "canceled") != 0
				&& strcmp(status, "requires_confirmation") != 0 && strcmp(status, "requires_action") != 0))
			best = pi;
	}
	if (!best) {
		set_outcome(sp, res, TB_PAY_UNKNOWN, "not_found",
			"no PaymentIntent carries this key (yet: Stripe's search can lag by a minute)");
		goto done;
	}
	map_intent(sp, res, best);
	if (res->outcome == TB_PAY_ERROR)
		res->outcome = TB_PAY_UNKNOWN;
done:
	curl_free(escaped);
	reply_clear(&r);
	pool_give(sp, h);
	return TB_OK;
}

static void stripe_destroy(tb_payment_provider *self)
{
	stripe_provider *sp = (stripe_provider *)self;
	size_t i;
	if (!sp)
		return;
	for (i = 0; i < sp->pool_len; i++)
		curl_easy_cleanup(sp->pool[i]);
	pthread_mutex_destroy(&sp->pool_lock);
	free_secret(sp->secret_key);
	free_secret(sp->webhook_secret);
	free(sp->base_url);
	free(sp->api_version);
	sodium_memzero(sp, sizeof *sp);
	free(sp);
}

/* ---- construction ------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void global_init(void)
{
	/* curl_global_init is not thread-safe on every libcurl: run it once, first */
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && sodium_init() >= 0;
}

tb_status tb_stripe_options_init(tb_stripe_options *opts, unsigned int version)
{
	static const tb_stripe_options defaults = TB_STRIPE_OPTIONS_INIT;
	if (!opts)
		return tb_error_set(TB_EINVAL, "opts", "options are NULL");
	if (version != TB_STRIPE_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, NULL, "unknown tb_stripe_options version %u", version);
	*opts = defaults;
	return TB_OK;
}

/* https://, or http:// to a loopback host (tests): never send a key in clear over a network. */
static int base_url_ok(const char *url)
{
	static const char *const loopback[] = { "http://127.0.0.1", "http://localhost", "http://[::1]" };
	size_t i;
	/* no query, fragment or user:password@ part: the URL appears in messages */
	if (has_control(url) || strpbrk(url, " ?#@"))
		return 0;
	if (starts_with(url, "https://") && url[8])
		return 1;
	for (i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
		size_t n = strlen(loopback[i]);
		if (strncmp(url, loopback[i], n) == 0 && (url[n] == '\0' || url[n] == ':' || url[n] == '/'))
			return 1;
	}
	return 0;
}

static tb_status check_options(const tb_stripe_options *o)
{
	if (!o->secret_key || !valid_key(o->secret_key, 512))
		return tb_error_set(TB_EINVAL, "secret_key", "the Stripe secret key is missing or malformed");
	if (o->base_url && !base_url_ok(o->base_url))
		return tb_error_set(TB_EINVAL, "base_url",
			"base_url must be https:// (or http:// to a loopback host), without credentials, query or spaces");
	if (o->api_version && !valid_key(o->api_version, 64))
		return tb_error_set(TB_EINVAL, "api_version", "api_version is malformed");
	if (o->webhook_secret && !valid_key(o->webhook_secret, 512))
		return tb_error_set(TB_EINVAL, "webhook_secret", "the webhook secret is empty or malformed");
	if (o->max_retries < 0 || o->max_retries > TB_STRIPE_MAX_RETRIES_LIMIT)
		return tb_error_set(TB_EINVAL, "max_retries", "max_retries must be 0 to %d",
			TB_STRIPE_MAX_RETRIES_LIMIT);
	if (o->timeout_ms < 0 || o->timeout_ms > TIMEOUT_MAX_MS)
		return tb_error_set(TB_EINVAL, "timeout_ms", "timeout_ms must be 0 to %d", TIMEOUT_MAX_MS);
	if (o->connect_timeout_ms < 0 || o->connect_timeout_ms > TIMEOUT_MAX_MS)
		return tb_error_set(TB_EINVAL, "connect_timeout_ms", "connect_timeout_ms must be 0 to %d",
			TIMEOUT_MAX_MS);
	if (o->backoff_base_ms < 0 || o->backoff_cap_ms < 0 || o->backoff_base_ms > BACKOFF_MAX_MS
			|| o->backoff_cap_ms > BACKOFF_MAX_MS)
		return tb_error_set(TB_EINVAL, "backoff_ms", "backoff_base_ms and backoff_cap_ms must be 0 to %d",
			BACKOFF_MAX_MS);
	return TB_OK;
}

tb_status tb_payment_stripe_new(tb_payment_provider **out, const tb_stripe_options *opts)
{
	stripe_provider *sp;
	size_t n;
	tb_status st;

	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out is NULL");
	*out = NULL;
	if (!opts)
		return tb_error_set(TB_EINVAL, "opts", "Stripe options are required (secret_key)");
	if (opts->version != TB_STRIPE_OPTIONS_VERSION)
		return tb_error_set(TB_EVERSION, NULL, "unknown tb_stripe_options version %u", opts->version);
	if ((st = check_options(opts)) != TB_OK)
		return st;
	pthread_once(&global_once, global_init);
	if (!global_ok)
		return tb_error_set(TB_EINTERNAL, NULL, "libcurl or libsodium failed to initialise");

	if (!(sp = calloc(1, sizeof *sp)))
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	sp->base.version = TB_PAYMENT_PROVIDER_VERSION;
	sp->base.name = "stripe";
	sp->base.charge = stripe_charge;
	sp->base.refund = stripe_refund;
	sp->base.lookup = stripe_lookup;
	sp->base.destroy = stripe_destroy;
	sp->secret_key = dup_str(opts->secret_key);
	sp->webhook_secret = opts->webhook_secret ? dup_str(opts->webhook_secret) : NULL;
	sp->base_url = dup_str(opts->base_url ? opts->base_url : TB_STRIPE_DEFAULT_BASE_URL);
	sp->api_version = opts->api_version ? dup_str(opts->api_version) : NULL;
	if (pthread_mutex_init(&sp->pool_lock, NULL) != 0) {
		free_secret(sp->secret_key);
		free_secret(sp->webhook_secret);
		free(sp->base_url);
		free(sp->api_version);
		free(sp);
		return tb_error_set(TB_ENOMEM, NULL, "cannot create a mutex");
	}
	if (!sp->secret_key || !sp->base_url || (opts->webhook_secret && !sp->webhook_secret)
			|| (opts->api_version && !sp->api_version)) {
		stripe_destroy(&sp->base);
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	}
	n = strlen(sp->base_url);
	while (n > 0 && sp->base_url[n - 1] == '/')
		sp->base_url[--n] = '\0';
	sp->connect_timeout_ms = (long)(opts->connect_timeout_ms ? opts->connect_timeout_ms
		: TB_STRIPE_DEFAULT_CONNECT_TIMEOUT_MS);
	sp->timeout_ms = (long)(opts->timeout_ms ? opts->timeout_ms : TB_STRIPE_DEFAULT_TIMEOUT_MS);
	sp->max_retries = opts->max_retries;
	sp->backoff_base_ms = opts->backoff_base_ms;
	sp->backoff_cap_ms = opts->backoff_cap_ms;
	sp->webhook_tolerance_s = opts->webhook_tolerance_s == 0 ? TB_STRIPE_DEFAULT_WEBHOOK_TOLERANCE_S
		: opts->webhook_tolerance_s;
	*out = &sp->base;
	return TB_OK;
}

/* ---- webhooks -------------------------------------------------------------------- */

/* Next "key=value" item of a Stripe-Signature header; returns 0 at the end. */
static int sig_item(const char **p, const char **key, size_t *klen, const char **val, size_t *vlen)
{
	const char *s = *p, *end, *eq;
	while (*s == ',' || *s == ' ')
		s++;
	if (!*s)
		return 0;
	end = strchr(s, ',');
	if (!end)
		end = s + strlen(s);
	*p = end;
	eq = memchr(s, '=', (size_t)(end - s));
	if (!eq) {
		*key = s;
		*klen = (size_t)(end - s);
		*val = end;
		*vlen = 0;
		return 1;
	}
	*key = s;
	*klen = (size_t)(eq - s);
	*val = eq + 1;
	*vlen = (size_t)(end - eq - 1);
	while (*vlen > 0 && (*val)[*vlen - 1] == ' ')
		(*vlen)--;
	return 1;
}

tb_status tb_stripe_webhook_verify(const char *secret, const char *signature_header, const char *body,
	size_t body_len, int64_t now_s, int64_t tolerance_s)
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char expected[2 * crypto_auth_hmacsha256_BYTES + 1];
	const char *p, *key, *val, *t = NULL;
	size_t klen, vlen, tlen = 0, i;
	int64_t ts = 0;
	uint64_t distance;
	int seen = 0, match = 0;

	if (!secret || !*secret || !signature_header || (!body && body_len))
		return tb_error_set(TB_EINVAL, NULL, "webhook verification needs a secret, a header and a body");
	if (sodium_init() < 0)
		return tb_error_set(TB_EINTERNAL, NULL, "libsodium failed to initialise");

	for (p = signature_header; sig_item(&p, &key, &klen, &val, &vlen);) {
		if (klen == 1 && key[0] == 't' && !t) {
			t = val;
			tlen = vlen;
		}
	}
	if (!t || tlen == 0 || tlen > 18)
		return tb_error_set(TB_ESIGNATURE, NULL, "Stripe-Signature carries no timestamp (t=)");
	for (i = 0; i < tlen; i++) {
		if (t[i] < '0' || t[i] > '9')
			return tb_error_set(TB_ESIGNATURE, NULL, "Stripe-Signature's timestamp is not a number");
		ts = ts * 10 + (t[i] - '0');
	}

	/* the signed payload is "<t>.<body>", t exactly as sent */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, tlen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(expected, sizeof expected, mac, sizeof mac);

	for (p = signature_header; sig_item(&p, &key, &klen, &val, &vlen);) {
		if (klen != 2 || key[0] != 'v' || key[1] != '1')
			continue;
		seen++;
		/* every v1 is compared (constant time), even after a match */
		if (vlen == sizeof expected - 1 && sodium_memcmp(expected, val, vlen) == 0)
			match = 1;
	}
	sodium_memzero(&st, sizeof st);
	sodium_memzero(mac, sizeof mac);
	sodium_memzero(expected, sizeof expected);

	if (!seen)
		return tb_error_set(TB_ESIGNATURE, NULL, "Stripe-Signature carries no v1 signature");
	if (!match)
		return tb_error_set(TB_ESIGNATURE, NULL,
			"no v1 signature matches the body (wrong endpoint secret, or the body was altered)");
	/* |now - t| in unsigned arithmetic: no overflow whatever the caller passes */
	distance = ts >= now_s ? (uint64_t)ts - (uint64_t)now_s : (uint64_t)now_s - (uint64_t)ts;
	if (tolerance_s > 0 && distance > (uint64_t)tolerance_s)
		return tb_error_set(TB_ESIGNATURE, NULL,
			"the webhook's timestamp is %llu s from now, over the tolerance of %lld s (replayed or stale)",
			(unsigned long long)distance, (long long)tolerance_s);
	return TB_OK;
}

struct tb_stripe_event {
	json_t *root;              /* owns every string below */
	const char *id;
	const char *type;
	int has_payment;
	tb_payment_event payment;
};

void tb_stripe_event_free(tb_stripe_event *event)
{
	if (!event)
		return;
	json_decref(event->root);
	free(event);
}

const char *tb_stripe_event_id(const tb_stripe_event *event)
{
	return event ? event->id : NULL;
}

const char *tb_stripe_event_type(const tb_stripe_event *event)
{
	return event ? event->type : NULL;
}

const tb_payment_event *tb_stripe_event_payment(const tb_stripe_event *event)
{
	return event && event->has_payment ? &event->payment : NULL;
}

static const char *metadata_value(const json_t *obj, const char *key)
{
	return jstr(json_object_get(obj, "metadata"), key);
}

/* Fill ev->payment from data.object; returns TB_OK (has_payment may stay 0) or TB_EINVAL. */
static tb_status read_payment(tb_stripe_event *ev, const json_t *obj)
{
	tb_payment_event *pe = &ev->payment;
	const char *oid = jstr(obj, "id");

	if (strcmp(ev->type, "payment_intent.succeeded") == 0
			|| strcmp(ev->type, "payment_intent.payment_failed") == 0) {
		const json_t *err = json_object_get(obj, "last_payment_error");
		if (!oid)
			return tb_error_set(TB_EINVAL, "body", "%s event without data.object.id", ev->type);
		pe->provider_charge_id = oid;
		pe->charge_id = metadata_value(obj, "charge_id");
		if (strcmp(ev->type, "payment_intent.succeeded") == 0) {
			pe->type = TB_PAYMENT_EVENT_SUCCEEDED;
		} else {
			pe->type = TB_PAYMENT_EVENT_FAILED;
			pe->failure_code = jstr(err, "code");
			pe->decline_code = jstr(err, "decline_code");
			pe->failure_message = jstr(err, "message");
		}
		ev->has_payment = 1;
	} else if (strcmp(ev->type, "charge.refunded") == 0) {
		/* data.object is a Charge; our payment is its PaymentIntent */
		const json_t *refunds = json_object_get(json_object_get(obj, "refunds"), "data");
		const json_t *latest = json_array_get(refunds, 0);
		if (!oid)
			return tb_error_set(TB_EINVAL, "body", "charge.refunded event without data.object.id");
		/* a partial refund is not ours: we only ever refund in full */
		if (!json_is_true(json_object_get(obj, "refunded")))
			return TB_OK;
		pe->type = TB_PAYMENT_EVENT_REFUNDED;
		pe->provider_charge_id = jstr(obj, "payment_intent") ? jstr(obj, "payment_intent") : oid;
		pe->provider_refund_id = jstr(latest, "id");
		pe->charge_id = metadata_value(obj, "charge_id") ? metadata_value(obj, "charge_id")
			: metadata_value(latest, "charge_id");
		ev->has_payment = 1;
	}
	return TB_OK;
}

tb_status tb_stripe_webhook_parse(tb_stripe_event **out, const char *body, size_t body_len)
{
	static const tb_payment_event init = TB_PAYMENT_EVENT_INIT;
	tb_stripe_event *ev;
	json_error_t jerr;
	const json_t *obj;
	tb_status st;

	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out is NULL");
	*out = NULL;
	if (!body)
		return tb_error_set(TB_EINVAL, "body", "the event body is NULL");
	if (!(ev = calloc(1, sizeof *ev)))
		return tb_error_set(TB_ENOMEM, NULL, "out of memory");
	ev->payment = init;
	ev->root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(ev->root)) {
		tb_stripe_event_free(ev);
		return tb_error_set(TB_EINVAL, "body", "the event is not a JSON object (line %d column %d)",
			jerr.line, jerr.column);
	}
	ev->id = jstr(ev->root, "id");
	ev->type = jstr(ev->root, "type");
	if (!ev->id || !ev->type || !jstr(ev->root, "object") || strcmp(jstr(ev->root, "object"), "event") != 0) {
		tb_stripe_event_free(ev);
		return tb_error_set(TB_EINVAL, "body", "not a Stripe event (object \"event\" with id and type)");
	}
	ev->payment.event_id = ev->id;
	obj = json_object_get(json_object_get(ev->root, "data"), "object");
	if ((st = read_payment(ev, obj)) != TB_OK) {
		tb_stripe_event_free(ev);
		return st;
	}
	*out = ev;
	return TB_OK;
}

tb_status tb_market_stripe_webhook(tb_market *market, tb_payment_provider *stripe,
	const char *signature_header, const char *body, size_t len)
{
	const stripe_provider *sp = (const stripe_provider *)stripe;
	tb_stripe_event *ev = NULL;
	tb_status st;

	if (!market || !stripe || stripe->charge != stripe_charge)
		return tb_error_set(TB_EINVAL, "stripe", "not a Stripe provider");
	if (!sp->webhook_secret)
		return tb_error_set(TB_EINVAL, "webhook_secret", "the Stripe provider has no webhook secret");
	st = tb_stripe_webhook_verify(sp->webhook_secret, signature_header, body, len,
		tb_market_now_ms(market) / 1000, sp->webhook_tolerance_s);
	if (st != TB_OK)
		return st;
	if ((st = tb_stripe_webhook_parse(&ev, body, len)) != TB_OK)
		return st;
	if (tb_stripe_event_payment(ev))
		st = tb_market_apply_payment_event(market, tb_stripe_event_payment(ev));
	tb_stripe_event_free(ev);
	return st;
}
