/*
 * examples/server/server.h - the reference server's modules and how they meet.
 *
 * The server translates HTTP to libticketyboo calls and holds no business
 * rules.  Modules:
 *   main.c     flags, wiring, signals and the graceful shutdown
 *   http.c     libmicrohttpd glue: request bodies, CSRF, cookies, static files
 *   routes.c   the API routes and the one table that maps tb_status to HTTP
 *   json.c     rendering records as the seed's JSON, exact prices, errors
 *   metrics.c  Prometheus counters, the latency histogram, orders by state
 *   sse.c      the Server-Sent Events hub that pushes events to browsers
 *   payments.c the payment provider (fake or Stripe) and its webhook
 *   events.c   the durable "server-log" subscriber: log, metrics, SSE
 *   ticker.c   the timer thread that calls tb_market_tick() when due
 *   pool.c     the worker threads that run state-changing requests
 *   util.c     small helpers: formatted strings, logging, clocks
 */
#ifndef TBS_SERVER_H
#define TBS_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <microhttpd.h>
#include <ticketyboo/ticketyboo.h>

#define TBS_SESSION_COOKIE "tb_session"
#define TBS_SUBSCRIBER_NAME "server-log"

struct tbs_dispatcher;
struct tbs_metrics;
struct tbs_pool;
struct tbs_sse_hub;
struct tbs_ticker;

/* ---- configuration (main.c) --------------------------------------------- */

typedef struct tbs_config {
	const char *host;          /* address to bind, default 127.0.0.1 */
	unsigned int port;         /* 0 = any free port (printed at start) */
	const char *db;            /* SQLite path */
	int64_t lock_ms;           /* order lock window */
	const char *payments;      /* "fake" or "stripe" */
	tb_password_cost password_cost;
	const char *events_log;    /* append events here too, or NULL */
	const char *web_root;      /* static files of the web UI */
	const char *currency;      /* market default currency */
	bool secure_cookies;       /* add Secure to the session cookie */
	unsigned int threads;      /* libmicrohttpd thread pool size */
	unsigned int workers;      /* threads that run state-changing requests (pool.c) */
	size_t body_limit;         /* largest accepted request body, bytes */
} tbs_config;

/* A unit of work for the pool, embedded in whatever it works on. */
typedef struct tbs_job {
	void (*run)(struct tbs_job *job);
	struct tbs_job *next; /* the pool's queue */
} tbs_job;

/* ---- the server ---------------------------------------------------------- */

typedef struct tbs_server {
	tbs_config cfg;
	tb_market *market;
	tb_payment_provider *provider;
	struct MHD_Daemon *daemon;
	struct tbs_pool *pool;        /* runs POST/PUT/PATCH/DELETE off the HTTP threads */
	tbs_job lead_job;             /* a worker runs queued asynchronous writes (http.c) */
	atomic_bool lead_queued;      /* lead_job is in the pool's queue */
	struct tbs_metrics *metrics;
	struct tbs_sse_hub *hub;
	struct tbs_ticker *ticker;
	struct tbs_dispatcher *dispatcher; /* events.c: delivers events off the request threads */
	bool webhook_enabled;         /* --payments stripe with STRIPE_WEBHOOK_SECRET */
	FILE *events_log;             /* NULL unless --events-log */
	pthread_mutex_t log_mu;       /* one event line at a time */
	atomic_bool shutting_down;    /* set once SIGTERM/SIGINT arrived */
	atomic_long inflight;         /* requests begun and not completed */
} tbs_server;

/* ---- one request as the routes see it (http.c fills it) ------------------ */

typedef struct tbs_req tbs_req;
struct tbs_req {
	tbs_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	const char *param;          /* the ":id" segment of the matched route */
	char param_buf[128];        /* its storage (longer segments are cut: still a 404) */
	const char *body;           /* raw request body (NUL-terminated) */
	size_t body_len;
	int route;                  /* index in the route table, or a TBS_ROUTE_* */
	json_t *in;                 /* the parsed body (owned), once a route asked */
	tb_user *user;              /* the signed-in user (owned), once a route asked */
	/* The reply, filled by the route. */
	unsigned int status;
	json_t *json;               /* reply body (owned), or NULL */
	char *text;                 /* or the reply body as JSON text (owned, malloc), text_len bytes */
	size_t text_len;
	struct MHD_Response *raw;   /* a ready response (SSE, files) instead of json */
	char *set_cookie;           /* Set-Cookie value (owned), or NULL */
	char *next_cursor;          /* X-Next-Cursor value (owned), or NULL */
	bool retry_after;           /* add Retry-After: 1 (503) */
	bool mutated;               /* a mutation succeeded: dispatch events */
	bool streaming;             /* raw is a long-lived event stream */
	/*
	 * A route on an HTTP thread (can_suspend) may start a library call that
	 * does not wait (tb_order_create_by_session_async): it sets finish and
	 * its own `pending` state, calls tbs_suspend() before the call and
	 * tbs_resume() from its completion; finish(r) then builds the reply on
	 * the HTTP thread and frees `pending`.
	 */
	bool can_suspend;
	void (*finish)(tbs_req *r);
	void *pending;
};

/* Route indices below 0 are pseudo routes for metrics. */
#define TBS_ROUTE_STATIC (-1)
#define TBS_ROUTE_NOT_FOUND (-2)

/* ---- http.c --------------------------------------------------------------- */

/* Start libmicrohttpd on cfg.host:cfg.port; writes the bound port back. */
int tbs_http_start(tbs_server *srv);
/* Stop accepting, let in-flight requests finish (bounded), stop the daemon. */
void tbs_http_stop(tbs_server *srv, int64_t drain_ms);
/* A header value of the request, or NULL. */
const char *tbs_header(const tbs_req *r, const char *name);
/* A query-string argument of the request, or NULL. */
const char *tbs_query(const tbs_req *r, const char *name);
/* Serve a file under cfg.web_root for `path`; false when there is none. */
bool tbs_static_serve(tbs_req *r);
/* Hold r's reply until tbs_resume(r) (only when r->can_suspend; see tbs_req). */
void tbs_suspend(tbs_req *r);
/* From any thread, once: r->finish(r) then runs on r's HTTP thread and the reply goes out. */
void tbs_resume(tbs_req *r);

/* ---- pool.c --------------------------------------------------------------- */

/* Start `nthreads` workers (at least one must start); NULL on failure. */
struct tbs_pool *tbs_pool_new(unsigned int nthreads);
/* Queue a job; a worker calls job->run(job) soon after, in queue order. */
void tbs_pool_submit(struct tbs_pool *pool, tbs_job *job);
/* Run what is still queued, then stop and free the workers.  NULL is fine. */
void tbs_pool_free(struct tbs_pool *pool);

/* ---- routes.c ------------------------------------------------------------- */

/* Find the route for method+path; sets r->route and r->param. */
bool tbs_routes_match(tbs_req *r);
/* Run the matched route. */
void tbs_routes_run(tbs_req *r);
/* Does the route wait for nothing on the HTTP thread (it suspends instead)?  Not for the pool then. */
bool tbs_route_suspends(int route);
/* Number of routes and each one's method and template (for metrics). */
size_t tbs_routes_count(void);
const char *tbs_route_method(size_t i);
const char *tbs_route_template(size_t i);

/* ---- json.c --------------------------------------------------------------- */

/* {"errors":[{"message":m,"field":f}]} (field omitted when NULL). */
json_t *tbs_error_body(const char *message, const char *field);
/* Append one error to a {"errors":[...]} body made by tbs_error_body(NULL,...) */
void tbs_error_add(json_t *body, const char *message, const char *field);
/* An exact JSON number in major units for `minor` ("19.99" -> 19.99). */
json_t *tbs_money_json(int64_t minor, const char *currency);
/*
 * Read a price (JSON number or string, major units) into minor units of
 * `currency`, exactly.  Returns TB_OK or TB_EINVAL; on failure *message is a
 * static or thread-local text for the client.
 */
tb_status tbs_price_parse(int64_t *out, const json_t *value, const char *currency,
	const char **message);
/* ISO 8601 UTC with milliseconds, as JavaScript's toISOString(). */
void tbs_iso8601(char out[32], int64_t ms);
json_t *tbs_user_json(const tb_user *user);
json_t *tbs_ticket_json(const tb_ticket *ticket);
/* The same JSON as text (what tbs_json_dump(tbs_ticket_json()) gives), written directly; free(); NULL when out of memory. */
char *tbs_ticket_text(const tb_ticket *ticket, size_t *len);
/* The seed's order shape; `ticket` may be NULL (then only its id is known). */
json_t *tbs_order_json(const tb_order *order, const tb_ticket *ticket);
/* The same as text, written directly (free()); NULL when out of memory. */
char *tbs_order_text(const tb_order *order, const tb_ticket *ticket, size_t *len);
/* The SSE frame announcing an event ("id: SEQ\ndata: {...}\n\n"); free(); NULL when out of memory. */
char *tbs_event_frame(const tb_event *event, size_t *len);
/* The seed's status strings: "awaiting:payment" for awaiting_payment. */
const char *tbs_order_status_string(tb_order_status status);
/* Dump compactly with exact prices; caller frees with free(). */
char *tbs_json_dump(const json_t *json);

/* ---- metrics.c ------------------------------------------------------------ */

struct tbs_metrics *tbs_metrics_new(void);
void tbs_metrics_free(struct tbs_metrics *m);
/* Rebuild "orders by state" from the event log (before serving). */
tb_status tbs_metrics_replay(struct tbs_metrics *m, tb_market *market);
void tbs_metrics_request(struct tbs_metrics *m, int route, unsigned int status,
	double seconds, bool observe_latency);
void tbs_metrics_event(struct tbs_metrics *m, const tb_event *event);
void tbs_metrics_tick(struct tbs_metrics *m, const tb_tick_stats *stats, tb_status st);
/* The Prometheus text exposition; caller frees with free(). */
char *tbs_metrics_render(struct tbs_metrics *m, const tbs_server *srv, size_t *len_out);

/* ---- sse.c ---------------------------------------------------------------- */

struct tbs_sse_hub *tbs_sse_new(void);
void tbs_sse_free(struct tbs_sse_hub *hub);
/* A streaming response for a new client, or NULL when the hub is closed. */
struct MHD_Response *tbs_sse_open(struct tbs_sse_hub *hub, struct MHD_Connection *conn);
/* Queue one already formatted SSE frame for every client. */
void tbs_sse_broadcast(struct tbs_sse_hub *hub, const char *frame, size_t len);
/* End every stream and refuse new ones (before stopping the daemon). */
void tbs_sse_close(struct tbs_sse_hub *hub);
size_t tbs_sse_clients(struct tbs_sse_hub *hub);

/* ---- payments.c ----------------------------------------------------------- */

/* Create the provider named by cfg.payments ("fake" or "stripe"); 0 on success. */
int tbs_payments_open(tbs_server *srv);
void tbs_payments_close(tbs_server *srv);
/* Whether POST /api/payments/webhook is served (a provider with webhooks). */
bool tbs_payments_webhook_enabled(const tbs_server *srv);
/* Verify and apply a provider's webhook delivery. */
tb_status tbs_payments_webhook(tbs_server *srv, const char *signature, const char *body, size_t len);

/* ---- events.c ------------------------------------------------------------- */

/* Subscribe "server-log" (log lines, metrics, SSE) and start its dispatcher thread. */
tb_status tbs_events_start(tbs_server *srv);
/*
 * After a mutation: wake the dispatcher thread, which delivers every event
 * committed before its next pass begins.  Returns at once.
 */
void tbs_events_kick(tbs_server *srv);
/* Stop and join the dispatcher thread (the final tick delivers the rest); NULL-safe. */
void tbs_events_stop(tbs_server *srv);

/* ---- ticker.c ------------------------------------------------------------- */

/* Start the timer thread; it ticks when tb_market_next_deadline() says. */
int tbs_ticker_start(tbs_server *srv);
/* A new deadline (market ms): wake the thread early if it planned to sleep past it. */
void tbs_ticker_wake_by(tbs_server *srv, int64_t deadline_ms);
/* Stop and join it, then run one final tick. */
void tbs_ticker_stop(tbs_server *srv);

/* ---- small shared helpers ------------------------------------------------- */

/* printf into a new string (free()), or NULL when out of memory. */
char *tbs_printf(const char *fmt, ...) TB_FORMAT_PRINTF(1, 2);
/* Monotonic time in seconds. */
double tbs_monotonic(void);
/* Log a line to stderr with a timestamp. */
void tbs_log(const char *fmt, ...) TB_FORMAT_PRINTF(1, 2);

#endif
