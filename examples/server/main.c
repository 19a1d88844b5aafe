/*
 * main.c - ticketyboo-server: the marketplace over HTTP, with a web UI.
 *
 * Start-up opens the market, replays the event log into the metrics,
 * subscribes the event logger, starts libmicrohttpd and the timer thread,
 * then waits for SIGTERM or SIGINT.  Shutdown is graceful: stop accepting,
 * end the event streams, let in-flight requests finish (up to 10 s), stop
 * the daemon, run a final tick, close the market, exit 0.
 */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TBS_SOURCE_WEB_ROOT
#define TBS_SOURCE_WEB_ROOT ""
#endif
#ifndef TBS_INSTALL_WEB_ROOT
#define TBS_INSTALL_WEB_ROOT ""
#endif

#define DRAIN_MS 10000

static void usage(FILE *f)
{
	fputs(
		"usage: ticketyboo-server [options]\n"
		"\n"
		"The ticketyboo marketplace over HTTP: the REST API under /api and a web UI at /.\n"
		"\n"
		"  --host ADDR             address to listen on (default 127.0.0.1)\n"
		"  --port N                port (default 8080; 0 = any free port)\n"
		"  --db PATH               SQLite database, created if missing (default ./ticketyboo.db)\n"
		"  --lock-seconds S        how long an order locks its ticket (default 900)\n"
		"  --payments fake|stripe  payment provider (default fake; stripe reads\n"
		"                          STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE)\n"
		"  --password-cost min|interactive|moderate\n"
		"                          argon2id cost (default interactive; min is for tests)\n"
		"  --events-log FILE       also append every event as a JSON line to FILE\n"
		"  --web-root DIR          the web UI's files (default: the installed or source web/)\n"
		"  --currency CODE         currency of tickets that name none (default USD)\n"
		"  --secure-cookies        mark the session cookie Secure (serve behind HTTPS)\n"
		"  --threads N             HTTP threads (default: 8 per core, at most 256)\n"
		"  --workers N             threads that run POST/PUT/PATCH/DELETE requests\n"
		"                          (default: 8 per core, at most 256; 0 = on the HTTP threads)\n"
		"  --body-limit BYTES      largest request body (default 65536)\n"
		"  --version               print the version and exit\n"
		"  --help                  this text\n"
		"\n"
		"Events are written to stdout as JSON lines; diagnostics go to stderr.\n"
		"SIGTERM or SIGINT stops it gracefully.\n",
		f);
#if defined(TBS_HAVE_STRIPE)
	fputs("\nstripe: built in\n", f);
#else
	fputs("\nstripe: not in this build of libticketyboo\n", f);
#endif
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return path && *path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The web UI: --web-root, else next to an installed binary, else the source tree. */
static char *find_web_root(const char *flag)
{
	char exe[PATH_MAX], candidate[PATH_MAX + 64];
	ssize_t n;

	if (flag)
		return realpath(flag, NULL);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(candidate, sizeof candidate, "%s/../share/ticketyboo/web", exe);
			if (is_dir(candidate))
				return realpath(candidate, NULL);
		}
	}
	if (is_dir(TBS_SOURCE_WEB_ROOT))
		return realpath(TBS_SOURCE_WEB_ROOT, NULL);
	if (is_dir(TBS_INSTALL_WEB_ROOT))
		return realpath(TBS_INSTALL_WEB_ROOT, NULL);
	return NULL;
}

enum {
	OPT_HOST = 256, OPT_PORT, OPT_DB, OPT_LOCK, OPT_PAYMENTS, OPT_COST, OPT_EVENTS_LOG,
	OPT_WEB_ROOT, OPT_CURRENCY, OPT_SECURE, OPT_THREADS, OPT_WORKERS, OPT_BODY_LIMIT, OPT_VERSION, OPT_HELP,
};

/* 0 = run, 1 = exit 0 (help, version), -1 = usage error. */
static int parse_args(int argc, char **argv, tbs_config *cfg, const char **web_root_flag)
{
	static const struct option options[] = {
		{ "host", required_argument, NULL, OPT_HOST },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "db", required_argument, NULL, OPT_DB },
		{ "lock-seconds", required_argument, NULL, OPT_LOCK },
		{ "payments", required_argument, NULL, OPT_PAYMENTS },
		{ "password-cost", required_argument, NULL, OPT_COST },
		{ "events-log", required_argument, NULL, OPT_EVENTS_LOG },
		{ "web-root", required_argument, NULL, OPT_WEB_ROOT },
		{ "currency", required_argument, NULL, OPT_CURRENCY },
		{ "secure-cookies", no_argument, NULL, OPT_SECURE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "body-limit", required_argument, NULL, OPT_BODY_LIMIT },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long n;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_HOST: cfg->host = optarg; break;
		case OPT_PORT:
			if (!parse_uint(optarg, 65535, &n)) {
				fprintf(stderr, "ticketyboo-server: --port must be 0..65535\n");
				return -1;
			}
			cfg->port = (unsigned int)n;
			break;
		case OPT_DB: cfg->db = optarg; break;
		case OPT_LOCK: {
			char *end;
			double s = strtod(optarg, &end);
			if (end == optarg || *end || !(s > 0) || s > 366.0 * 24 * 3600) {
				fprintf(stderr, "ticketyboo-server: --lock-seconds must be a positive number\n");
				return -1;
			}
			cfg->lock_ms = (int64_t)llround(s * 1000.0);
			if (cfg->lock_ms < 1)
				cfg->lock_ms = 1;
			break;
		}
		case OPT_PAYMENTS: cfg->payments = optarg; break;
		case OPT_COST:
			if (strcmp(optarg, "min") == 0)
				cfg->password_cost = TB_PASSWORD_COST_MIN;
			else if (strcmp(optarg, "interactive") == 0)
				cfg->password_cost = TB_PASSWORD_COST_INTERACTIVE;
			else if (strcmp(optarg, "moderate") == 0)
				cfg->password_cost = TB_PASSWORD_COST_MODERATE;
			else {
				fprintf(stderr, "ticketyboo-server: --password-cost must be min, interactive or moderate\n");
				return -1;
			}
			break;
		case OPT_EVENTS_LOG: cfg->events_log = optarg; break;
		case OPT_WEB_ROOT: *web_root_flag = optarg; break;
		case OPT_CURRENCY: cfg->currency = optarg; break;
		case OPT_SECURE: cfg->secure_cookies = true; break;
		case OPT_THREADS:
			if (!parse_uint(optarg, 256, &n) || n == 0) {
				fprintf(stderr, "ticketyboo-server: --threads must be 1..256\n");
				return -1;
			}
			cfg->threads = (unsigned int)n;
			break;
		case OPT_WORKERS:
			if (!parse_uint(optarg, 256, &n)) {
				fprintf(stderr, "ticketyboo-server: --workers must be 0..256\n");
				return -1;
			}
			cfg->workers = (unsigned int)n;
			break;
		case OPT_BODY_LIMIT:
			if (!parse_uint(optarg, 64UL * 1024 * 1024, &n) || n == 0) {
				fprintf(stderr, "ticketyboo-server: --body-limit must be 1..67108864\n");
				return -1;
			}
			cfg->body_limit = n;
			break;
		case OPT_VERSION:
			printf("ticketyboo-server %s\n", tb_version());
			return 1;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ticketyboo-server: unexpected argument: %s\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int open_market(tbs_server *srv)
{
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_sqlite_options sqlite = TB_SQLITE_OPTIONS_INIT;
	tb_storage *storage = NULL;
	tb_status st;

	opts.lock_ms = srv->cfg.lock_ms;
	opts.payments = srv->provider;
	opts.password_cost = srv->cfg.password_cost;
	opts.default_currency = srv->cfg.currency;
	/*
	 * A read connection per HTTP thread (at most 64, the adapter's limit):
	 * with the default 4, GETs on 16 threads queued for a connection.
	 * Measured on 2 cores, GET /api/tickets/:id over a million tickets:
	 * 16 readers 38.9-43.8k req/s against 31.5-31.9k with 4, same runs.
	 */
	sqlite.readers = srv->cfg.threads < 64 ? srv->cfg.threads : 64;
	if (strncmp(srv->cfg.db, "postgres://", 11) == 0 || strncmp(srv->cfg.db, "postgresql://", 13) == 0) {
		opts.db = srv->cfg.db; /* the library opens PostgreSQL (when built with it) */
		st = tb_market_open(&srv->market, &opts);
	} else if ((st = tb_storage_sqlite_open(&storage, srv->cfg.db, &sqlite)) == TB_OK &&
		   (st = tb_market_open_take(&srv->market, storage, &opts)) != TB_OK) {
		tb_storage_free(storage); /* not taken */
	}
	if (st != TB_OK) {
		const tb_error *e = tb_last_error();
		tbs_log("cannot open the market on %s: %s%s%s", srv->cfg.db, e->message,
			e->field ? " (" : "", e->field ? e->field : "");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static tbs_server srv;
	const char *web_root_flag = NULL;
	char *web_root = NULL;
	sigset_t stop_signals;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int sig = 0, rc = 1, parsed;

	srv.cfg.host = "127.0.0.1";
	srv.cfg.port = 8080;
	srv.cfg.db = "./ticketyboo.db";
	srv.cfg.lock_ms = 900 * 1000;
	srv.cfg.payments = "fake";
	srv.cfg.password_cost = TB_PASSWORD_COST_INTERACTIVE;
	srv.cfg.currency = "USD";
	/*
	 * Handlers block in library calls: a GET on a read that misses the page
	 * cache, a write on its commit.  So more HTTP threads than cores (a GET
	 * that waits does not stall the other connections of its thread; GET
	 * /api/tickets/:id is no slower with 16 than with 2 on 2 cores), and
	 * writes run on a pool of their own, as many as can usefully wait for
	 * one group commit together (docs/server-threads.md).
	 */
	unsigned int per_cores = cores > 0 ? (unsigned int)(cores < 32 ? cores * 8 : 256) : 16;
	srv.cfg.threads = per_cores;
	srv.cfg.workers = per_cores;
	srv.cfg.body_limit = 64 * 1024;
	parsed = parse_args(argc, argv, &srv.cfg, &web_root_flag);
	if (parsed != 0)
		return parsed > 0 ? 0 : 2;

	/* Signals are taken by sigwait() in main only; every thread inherits the mask. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_mutex_init(&srv.log_mu, NULL);

	web_root = find_web_root(web_root_flag);
	if (!web_root) {
		tbs_log("no web UI found%s%s; pass --web-root DIR", web_root_flag ? " at " : "",
			web_root_flag ? web_root_flag : "");
		goto out;
	}
	srv.cfg.web_root = web_root;
	if (srv.cfg.events_log && !(srv.events_log = fopen(srv.cfg.events_log, "a"))) {
		tbs_log("cannot open --events-log %s: %s", srv.cfg.events_log, strerror(errno));
		goto out;
	}
	if (tbs_payments_open(&srv) != 0 || open_market(&srv) != 0)
		goto out;
	if (!(srv.metrics = tbs_metrics_new()) || !(srv.hub = tbs_sse_new())) {
		tbs_log("out of memory");
		goto out;
	}
	if (tbs_metrics_replay(srv.metrics, srv.market) != TB_OK)
		tbs_log("could not replay the event log into the metrics: %s", tb_last_error()->message);
	if (tbs_events_start(&srv) != TB_OK) {
		tbs_log("cannot subscribe to events: %s", tb_last_error()->message);
		goto out;
	}
	if (tbs_http_start(&srv) != 0)
		goto out;
	if (tbs_ticker_start(&srv) != 0) {
		tbs_log("cannot start the timer thread");
		tbs_http_stop(&srv, 0);
		goto out;
	}
	tbs_log("listening on http://%s%s%s:%u/ (db %s, payments %s, lock %llds, %u threads, %u workers, web %s)",
		strchr(srv.cfg.host, ':') ? "[" : "", srv.cfg.host, strchr(srv.cfg.host, ':') ? "]" : "",
		srv.cfg.port, srv.cfg.db, srv.cfg.payments, (long long)(srv.cfg.lock_ms / 1000),
		srv.cfg.threads, srv.cfg.workers, web_root);

	while (sigwait(&stop_signals, &sig) != 0)
		;
	tbs_log("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	tbs_http_stop(&srv, DRAIN_MS);
	tbs_events_stop(&srv);
	tbs_ticker_stop(&srv);
	rc = 0;
	tbs_log("stopped");
out:
	tbs_events_stop(&srv);
	tb_market_close(srv.market);
	tbs_payments_close(&srv);
	tbs_sse_free(srv.hub);
	tbs_metrics_free(srv.metrics);
	if (srv.events_log)
		fclose(srv.events_log);
	pthread_mutex_destroy(&srv.log_mu);
	free(web_root);
	return rc;
}
