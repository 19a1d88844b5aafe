/*
 * http.c - libmicrohttpd glue: one request from its headers to its reply.
 *
 * The daemon runs its own epoll threads (a pool sized to the cores).  The
 * access handler is called at least twice per request: once when the
 * headers are in, then once per chunk of body, then once more with no data.
 * The reply is queued only on that last call.  Measured on
 * libmicrohttpd 0.9.75: a reply queued on the very first call, before the
 * request was consumed, costs the connection its keep-alive.
 *
 * A state-changing API request (POST, PUT, PATCH, DELETE) does not run on
 * the HTTP thread: on that last call its connection is suspended and the
 * request goes to the worker pool (pool.c); the worker runs it and resumes
 * the connection, and libmicrohttpd calls the access handler once more,
 * which queues the reply.  An HTTP thread serves many connections, and a
 * write waits for its group commit (a sign-in for argon2id): run inline,
 * it held up every other connection of that thread, and concurrent orders
 * reached the library fewer at a time than they were sent.  POST
 * /api/orders goes further: it stays on the HTTP thread and starts the order
 * without waiting for its commit (tb_order_create_by_session_async); the
 * connection is suspended the same way, and the order's completion resumes
 * it, from whichever thread committed the order's group: no worker, and no
 * hand-off to one.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Where a request is in its life (see on_access). */
enum stage { RECEIVING, SUSPENDED, READY };

struct request {
	tbs_req r;
	tbs_job job;              /* when it runs in the pool */
	_Atomic int stage;        /* enum stage; READY is stored by the worker (or a completion), read by the HTTP thread */
	double started;
	char *body;
	size_t len, cap;
	size_t discarded; /* body bytes over the limit, read and dropped */
	bool responded;   /* a reply was queued */
	bool streaming;   /* SSE: long-lived, kept out of the latency histogram */
};

/*
 * Each connection's libmicrohttpd memory pool (request line, headers, the
 * read buffer).  libmicrohttpd zeroes the used part of it between requests
 * on a keep-alive connection; at its 32 KiB default that memset was 4.5% of
 * the server's time for GET /api/tickets/:id, 3% at 16 KiB, which still takes a request
 * line and headers of over 10 KiB (bodies stream through on_access).
 */
#ifndef TBS_CONNECTION_MEMORY
#define TBS_CONNECTION_MEMORY (16 * 1024)
#endif

/* How much of an over-long chunked body is read (and dropped) before hanging up. */
#define DISCARD_MAX (1024 * 1024)

static const char JSON_TYPE[] = "application/json; charset=utf-8";

const char *tbs_header(const tbs_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *tbs_query(const tbs_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool is_mutating(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
		strcmp(method, "DELETE") == 0 || strcmp(method, "PATCH") == 0;
}

/* ---- CSRF: same-origin check for mutating requests ------------------------ */

/* Length of `host` without a default port suffix for `scheme`. */
static size_t authority_len(const char *host, size_t len, bool https)
{
	const char *port = https ? ":443" : ":80";
	size_t plen = strlen(port);

	if (len > plen && strncmp(host + len - plen, port, plen) == 0)
		return len - plen;
	return len;
}

/*
 * Is the origin of `url` (an Origin or Referer value) the server's own, as
 * named by the Host header?  "null" and anything unparsable are not.
 */
static bool same_origin(const char *url, const char *host)
{
	bool https;
	const char *a, *end;
	size_t alen, hlen;

	if (!host || !*host)
		return false;
	if (strncasecmp(url, "https://", 8) == 0) {
		https = true;
		a = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = false;
		a = url + 7;
	} else {
		return false;
	}
	end = a + strcspn(a, "/?#");
	alen = authority_len(a, (size_t)(end - a), https);
	hlen = authority_len(host, strlen(host), https);
	return alen > 0 && alen == hlen && strncasecmp(a, host, alen) == 0;
}

/* Browsers send Origin (or at least Referer) cross-site; curl sends neither. */
static bool csrf_allowed(const tbs_req *r)
{
	const char *origin = tbs_header(r, "Origin");
	const char *referer = tbs_header(r, "Referer");
	const char *host = tbs_header(r, "Host");

	if (origin)
		return same_origin(origin, host);
	if (referer)
		return same_origin(referer, host);
	return true;
}

/* ---- static files --------------------------------------------------------- */

static const struct {
	const char *ext;
	const char *type;
} content_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".json", "application/json; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".webmanifest", "application/manifest+json" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof content_types / sizeof content_types[0]; i++)
		if (strcasecmp(dot, content_types[i].ext) == 0)
			return content_types[i].type;
	return NULL;
}

/*
 * A path we are willing to look up: only [A-Za-z0-9._-] segments, none
 * starting with a dot (no "..", no hidden files), no empty segments.
 */
static bool safe_path(const char *path)
{
	bool segment_start = true;

	if (path[0] != '/' || strlen(path) > 200)
		return false;
	for (const char *p = path + 1; *p; p++) {
		char c = *p;
		if (c == '/') {
			if (segment_start)
				return false;
			segment_start = true;
			continue;
		}
		if (segment_start && c == '.')
			return false;
		segment_start = false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '.' || c == '_' || c == '-'))
			return false;
	}
	return !segment_start;
}

bool tbs_static_serve(tbs_req *r)
{
	const char *path = strcmp(r->path, "/") == 0 ? "/index.html" : r->path;
	const char *root = r->srv->cfg.web_root, *type;
	char full[PATH_MAX], real[PATH_MAX];
	size_t rootlen = strlen(root);
	struct stat st;
	int fd;

	if (!safe_path(path) || !(type = content_type(path)))
		return false;
	if ((size_t)snprintf(full, sizeof full, "%s%s", root, path) >= sizeof full)
		return false;
	/* Belt and braces: the resolved file must still be inside the web root. */
	if (!realpath(full, real) || strncmp(real, root, rootlen) != 0 || real[rootlen] != '/')
		return false;
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	r->raw = MHD_create_response_from_fd((size_t)st.st_size, fd);
	if (!r->raw) {
		close(fd);
		return false;
	}
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (strncmp(type, "text/html", 9) == 0) {
		MHD_add_response_header(r->raw, "Content-Security-Policy",
			"default-src 'self'; img-src 'self' data:; style-src 'self'; "
			"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'");
		MHD_add_response_header(r->raw, "X-Frame-Options", "DENY");
		MHD_add_response_header(r->raw, "Referrer-Policy", "same-origin");
	}
	r->status = 200;
	r->route = TBS_ROUTE_STATIC;
	return true;
}

/* ---- building and queueing the reply ------------------------------------- */

static void reply_error(tbs_req *r, unsigned int status, const char *message)
{
	json_decref(r->json);
	free(r->text);
	r->text = NULL;
	r->status = status;
	r->json = tbs_error_body(message, NULL);
}

static struct MHD_Response *json_response(tbs_req *r)
{
	char *text = r->json ? tbs_json_dump(r->json) : NULL;
	size_t len = text ? strlen(text) : 0;
	struct MHD_Response *resp;

	if (!r->json && r->text) { /* written directly: hand it over */
		text = r->text;
		len = r->text_len;
		r->text = NULL;
	}
	if (r->json && !text) {
		r->status = 500;
		text = tbs_printf("{\"errors\":[{\"message\":\"Something went wrong\"}]}");
		len = text ? strlen(text) : 0;
	}
	if (!text) /* 204: no body */
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return resp;
}

static enum MHD_Result queue_reply(struct request *rq)
{
	tbs_req *r = &rq->r;
	struct MHD_Response *resp = r->raw ? r->raw : json_response(r);
	enum MHD_Result ret;

	r->raw = NULL;
	if (!resp)
		return MHD_NO;
	if (r->status == 0)
		r->status = 500;
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->set_cookie)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
	if (r->next_cursor)
		MHD_add_response_header(resp, "X-Next-Cursor", r->next_cursor);
	if (r->retry_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	/* Draining for shutdown: tell keep-alive clients to go. */
	if (atomic_load(&r->srv->shutting_down) && !rq->streaming)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	rq->responded = true;
	return ret;
}

/* 413, queued at once, and the connection closed: the rest of the body is never read. */
static enum MHD_Result too_large(struct request *rq)
{
	char message[100];

	snprintf(message, sizeof message, "Request body too large (the limit is %zu bytes)",
		rq->r.srv->cfg.body_limit);
	reply_error(&rq->r, 413, message);
	rq->r.raw = json_response(&rq->r);
	if (rq->r.raw)
		MHD_add_response_header(rq->r.raw, MHD_HTTP_HEADER_CONNECTION, "close");
	return queue_reply(rq);
}

static bool is_api_path(const char *path)
{
	return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
}

/* Everything between "the request is in" and "the reply is ready". */
static void handle(struct request *rq)
{
	tbs_req *r = &rq->r;
	tbs_server *srv = r->srv;

	if (is_mutating(r->method) && !csrf_allowed(r)) {
		reply_error(r, 403, "Cross-site request refused");
		return;
	}
	if (r->route >= 0) {
		tbs_routes_run(r);
		rq->streaming = r->streaming;
		if (r->mutated)
			tbs_events_kick(srv); /* log line, metrics and browsers follow promptly */
		return;
	}
	if (!is_api_path(r->path) && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) &&
		tbs_static_serve(r))
		return;
	reply_error(r, 404, "Not Found");
}

static struct request *request_of(tbs_req *r)
{
	return (struct request *)((char *)r - offsetof(struct request, r));
}

void tbs_suspend(tbs_req *r)
{
	atomic_store_explicit(&request_of(r)->stage, SUSPENDED, memory_order_relaxed);
	MHD_suspend_connection(r->conn);
}

void tbs_resume(tbs_req *r)
{
	atomic_store_explicit(&request_of(r)->stage, READY, memory_order_release);
	MHD_resume_connection(r->conn);
}

/* In a pool worker: run the request, then hand the connection back to its HTTP thread. */
static void run_in_pool(tbs_job *job)
{
	struct request *rq = (struct request *)((char *)job - offsetof(struct request, job));

	handle(rq);
	tbs_resume(&rq->r);
}

/* Parse a Content-Length and say whether it is over the limit. */
static bool declared_too_large(const char *value, size_t limit)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(value, &end, 10);
	return errno != 0 || (end != value && n > limit);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **con_cls)
{
	tbs_server *srv = cls;
	struct request *rq = *con_cls;
	const char *cl;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		rq->started = tbs_monotonic();
		rq->r.srv = srv;
		rq->r.conn = conn;
		rq->r.method = method;
		rq->r.path = url;
		rq->r.route = TBS_ROUTE_NOT_FOUND;
		(void)tbs_routes_match(&rq->r);
		*con_cls = rq;
		atomic_fetch_add(&srv->inflight, 1);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && declared_too_large(cl, srv->cfg.body_limit))
			return too_large(rq);
		return MHD_YES; /* reply later, once the request is consumed (keep-alive) */
	}
	if (rq->responded) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (atomic_load_explicit(&rq->stage, memory_order_acquire)) {
	case READY: /* back from the pool, or a call that did not wait: its reply is ready */
		if (rq->r.finish) {
			void (*finish)(tbs_req *) = rq->r.finish;
			rq->r.finish = NULL;
			finish(&rq->r);
			if (rq->r.mutated)
				tbs_events_kick(srv); /* log line, metrics and browsers follow promptly */
		}
		return queue_reply(rq);
	case SUSPENDED: /* not called while suspended; nothing to do if it were */
		*upload_data_size = 0;
		return MHD_YES;
	default:
		break;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		/*
		 * A chunked body that outgrows the limit: libmicrohttpd 0.9.75 refuses
		 * a reply queued mid-body, so drop the rest and answer 413 at its end,
		 * or hang up if it goes on and on.
		 */
		if (rq->discarded > 0 || n > srv->cfg.body_limit - rq->len) {
			rq->discarded += n;
			*upload_data_size = 0;
			return rq->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		if (rq->len + n + 1 > rq->cap) {
			size_t cap = rq->cap ? rq->cap : 1024;
			while (cap < rq->len + n + 1)
				cap *= 2;
			char *p = realloc(rq->body, cap);
			if (!p)
				return MHD_NO;
			rq->body = p;
			rq->cap = cap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		rq->body[rq->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->discarded > 0)
		return too_large(rq);
	rq->r.body = rq->body ? rq->body : "";
	rq->r.body_len = rq->len;
	if (srv->pool && rq->r.route >= 0 && is_mutating(method) && !tbs_route_suspends(rq->r.route)) {
		tbs_suspend(&rq->r);
		rq->job.run = run_in_pool;
		tbs_pool_submit(srv->pool, &rq->job);
		return MHD_YES;
	}
	rq->r.can_suspend = true;
	handle(rq);
	if (rq->r.finish)
		return MHD_YES; /* suspended: the reply follows tbs_resume() */
	return queue_reply(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	enum MHD_RequestTerminationCode toe)
{
	tbs_server *srv = cls;
	struct request *rq = *con_cls;

	(void)conn;
	(void)toe;
	if (!rq)
		return;
	if (rq->responded)
		tbs_metrics_request(srv->metrics, rq->r.route, rq->r.status,
			tbs_monotonic() - rq->started, !rq->streaming);
	json_decref(rq->r.json);
	json_decref(rq->r.in);
	free(rq->r.text);
	tb_user_free(rq->r.user);
	if (rq->r.raw)
		MHD_destroy_response(rq->r.raw);
	free(rq->r.set_cookie);
	free(rq->r.next_cursor);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->inflight, 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decoding of paths and query arguments, in place.  Unlike the
 * default, "%00" stays encoded: a decoded NUL would silently cut the string
 * short ("/index.html%00.js" read as "/index.html").
 */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *out = s;

	(void)cls;
	(void)conn;
	for (char *in = s; *in; in++) {
		int hi, lo;
		if (*in == '%' && (hi = hex_digit(in[1])) >= 0 && (lo = hex_digit(in[2])) >= 0 && (hi | lo) != 0) {
			*out++ = (char)(hi * 16 + lo);
			in += 2;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
	return (size_t)(out - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	tbs_log("libmicrohttpd: %s", line);
}

/*
 * The market's lead hook: asynchronous orders (POST /api/orders) are queued
 * by HTTP threads, which must not run a group commit (its connections would
 * wait); when nobody runs the queue, a worker does, in tb_market_lead().
 */
static void lead_run(tbs_job *job)
{
	tbs_server *srv = (tbs_server *)((char *)job - offsetof(tbs_server, lead_job));

	atomic_store(&srv->lead_queued, false); /* a later ask queues it again */
	if (tb_market_lead(srv->market, NULL) != TB_OK)
		tbs_log("running queued writes failed: %s", tb_last_error()->message);
}

static void lead_hook(tb_market *market, void *arg)
{
	tbs_server *srv = arg;

	(void)market;
	if (!atomic_exchange(&srv->lead_queued, true))
		tbs_pool_submit(srv->pool, &srv->lead_job);
}

/* No more asks of the hook (a late order runs on its own thread), then the workers finish. */
static void stop_pool(tbs_server *srv)
{
	if (!srv->pool)
		return;
	if (tb_market_set_lead_hook(srv->market, NULL, NULL) != TB_OK)
		tbs_log("cannot clear the market's lead hook: %s", tb_last_error()->message);
	tbs_pool_free(srv->pool);
	srv->pool = NULL;
}

int tbs_http_start(tbs_server *srv)
{
	struct addrinfo hints, *ai = NULL;
	char port[16];
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
		MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof port, "%u", srv->cfg.port);
	rc = getaddrinfo(srv->cfg.host, port, &hints, &ai);
	if (rc != 0) {
		tbs_log("cannot resolve --host %s: %s", srv->cfg.host, gai_strerror(rc));
		return -1;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (srv->cfg.workers > 0 && !(srv->pool = tbs_pool_new(srv->cfg.workers))) {
		freeaddrinfo(ai);
		tbs_log("cannot start the worker threads");
		return -1;
	}
	if (srv->pool) {
		srv->lead_job.run = lead_run;
		atomic_store(&srv->lead_queued, false);
		if (tb_market_set_lead_hook(srv->market, lead_hook, srv) != TB_OK) {
			freeaddrinfo(ai);
			tbs_pool_free(srv->pool);
			srv->pool = NULL;
			tbs_log("cannot set the market's lead hook: %s", tb_last_error()->message);
			return -1;
		}
	}
	srv->daemon = MHD_start_daemon(flags, (uint16_t)srv->cfg.port, NULL, NULL, on_access, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, so it sees every message */
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)srv->cfg.threads,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TBS_CONNECTION_MEMORY,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!srv->daemon) {
		tbs_log("cannot listen on %s:%u (in use?)", srv->cfg.host, srv->cfg.port);
		stop_pool(srv);
		return -1;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		srv->cfg.port = info->port;
	return 0;
}

void tbs_http_stop(tbs_server *srv, int64_t drain_ms)
{
	MHD_socket listener;
	double deadline = tbs_monotonic() + (double)drain_ms / 1000.0;
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	if (!srv->daemon)
		return;
	atomic_store(&srv->shutting_down, true);
	listener = MHD_quiesce_daemon(srv->daemon);
	tbs_sse_close(srv->hub);
	/* In-flight requests finish; idle keep-alive connections are simply closed. */
	while (atomic_load(&srv->inflight) > 0 && tbs_monotonic() < deadline)
		nanosleep(&pause, NULL);
	if (atomic_load(&srv->inflight) > 0)
		tbs_log("stopping with %ld request(s) still in flight", atomic_load(&srv->inflight));
	/* Requests in the pool finish and resume their connections while the daemon still runs. */
	stop_pool(srv);
	MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
	if (listener != MHD_INVALID_SOCKET)
		close(listener);
}
