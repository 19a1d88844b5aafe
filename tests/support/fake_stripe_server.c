#define _POSIX_C_SOURCE 200809L

#include "fake_stripe_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

struct fake_stripe {
	pid_t pid;
	char dir[512];
	char port_file[600];
	char url[64];
};

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int find_script(char *out, size_t cap)
{
	const char *env = getenv("TB_FAKE_STRIPE");
	const char *src = getenv("TB_SOURCE_DIR");
	const char *here = __FILE__, *slash;
	if (env && access(env, R_OK) == 0) {
		snprintf(out, cap, "%s", env);
		return 0;
	}
	if (src) {
		snprintf(out, cap, "%s/tests/fake_stripe/fake_stripe.py", src);
		if (access(out, R_OK) == 0)
			return 0;
	}
	/* __FILE__ is .../tests/support/fake_stripe_server.c */
	slash = strrchr(here, '/');
	if (slash) {
		snprintf(out, cap, "%.*s/../fake_stripe/fake_stripe.py", (int)(slash - here), here);
		if (access(out, R_OK) == 0)
			return 0;
	}
	return -1;
}

fake_stripe *fake_stripe_start(void)
{
	char script[1024];
	const char *tmp = getenv("TB_TEST_TMPDIR");
	fake_stripe *fs;
	FILE *f;
	int port = 0, i;

	if (find_script(script, sizeof script) != 0) {
		fprintf(stderr, "fake_stripe: cannot find fake_stripe.py (set TB_SOURCE_DIR or TB_FAKE_STRIPE)\n");
		return NULL;
	}
	fs = calloc(1, sizeof *fs);
	if (!fs)
		return NULL;
	snprintf(fs->dir, sizeof fs->dir, "%s/fake_stripe.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fs->dir)) {
		perror("fake_stripe: mkdtemp");
		free(fs);
		return NULL;
	}
	snprintf(fs->port_file, sizeof fs->port_file, "%s/port", fs->dir);
	fs->pid = fork();
	if (fs->pid < 0) {
		perror("fake_stripe: fork");
		rmdir(fs->dir);
		free(fs);
		return NULL;
	}
	if (fs->pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
#endif
		execlp("python3", "python3", script, "--port-file", fs->port_file, "--key", FAKE_STRIPE_KEY,
			(char *)NULL);
		perror("fake_stripe: exec python3");
		_exit(127);
	}
	for (i = 0; i < 200 && port == 0; i++) { /* up to 10 s */
		int status;
		if (waitpid(fs->pid, &status, WNOHANG) == fs->pid) {
			fprintf(stderr, "fake_stripe: the server exited early\n");
			fs->pid = 0;
			fake_stripe_stop(fs);
			return NULL;
		}
		if ((f = fopen(fs->port_file, "r")) != NULL) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (port == 0)
			pause_ms(50);
	}
	if (port == 0) {
		fprintf(stderr, "fake_stripe: no port after 10 s\n");
		fake_stripe_stop(fs);
		return NULL;
	}
	snprintf(fs->url, sizeof fs->url, "http://127.0.0.1:%d", port);
	return fs;
}

void fake_stripe_stop(fake_stripe *fs)
{
	if (!fs)
		return;
	if (fs->pid > 0) {
		kill(fs->pid, SIGTERM);
		while (waitpid(fs->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	unlink(fs->port_file);
	rmdir(fs->dir);
	free(fs);
}

const char *fake_stripe_url(const fake_stripe *fs)
{
	return fs->url;
}

typedef struct body {
	char *data;
	size_t len;
} body;

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	body *b = ud;
	char *p = realloc(b->data, b->len + size * n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, size * n);
	b->len += size * n;
	p[b->len] = '\0';
	b->data = p;
	return size * n;
}

/* POST (json != NULL) or GET a control endpoint; returns the parsed answer or NULL. */
static json_t *control(fake_stripe *fs, const char *path, const char *json)
{
	char url[256];
	body b = { NULL, 0 };
	struct curl_slist *h = NULL;
	json_t *out = NULL;
	long status = 0;
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	snprintf(url, sizeof url, "%s/__control/%s", fs->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (json) {
		h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	}
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200 && b.data)
			out = json_loads(b.data, 0, NULL);
	}
	if (!out)
		fprintf(stderr, "fake_stripe: control %s failed (HTTP %ld): %s\n", path, status, b.data ? b.data : "");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.data);
	return out;
}

static int control_post(fake_stripe *fs, const char *path, const char *json)
{
	json_t *r = control(fs, path, json);
	json_decref(r);
	return r ? 0 : -1;
}

int fake_stripe_reset(fake_stripe *fs)
{
	return control_post(fs, "reset", "{}");
}

int fake_stripe_script(fake_stripe *fs, const char *token, const char *op, const char *responses_json)
{
	json_error_t err;
	json_t *responses = json_loads(responses_json, 0, &err), *req;
	char *text;
	int rc;
	if (!responses) {
		fprintf(stderr, "fake_stripe: bad script JSON: %s\n", err.text);
		return -1;
	}
	req = json_pack("{s:s, s:s, s:o}", "token", token, "op", op ? op : "charge", "responses", responses);
	text = json_dumps(req, 0);
	rc = text ? control_post(fs, "script", text) : -1;
	free(text);
	json_decref(req);
	return rc;
}

int fake_stripe_config(fake_stripe *fs, const char *json)
{
	return control_post(fs, "config", json);
}

json_t *fake_stripe_get(fake_stripe *fs, const char *what)
{
	return control(fs, what, NULL);
}

json_t *fake_stripe_requests(fake_stripe *fs, json_t **holder)
{
	*holder = fake_stripe_get(fs, "log");
	return json_object_get(*holder, "requests");
}

int fake_stripe_violations(fake_stripe *fs)
{
	json_t *v = fake_stripe_get(fs, "violations"), *item;
	size_t i;
	int n;
	if (!v)
		return -1;
	json_array_foreach(json_object_get(v, "violations"), i, item) {
		char *s = json_dumps(item, 0);
		fprintf(stderr, "fake_stripe violation: %s\n", s ? s : "?");
		free(s);
	}
	n = (int)json_array_size(json_object_get(v, "violations"));
	json_decref(v);
	return n;
}

size_t fake_stripe_count(fake_stripe *fs, const char *method, const char *path)
{
	json_t *holder, *reqs = fake_stripe_requests(fs, &holder), *r;
	size_t i, n = 0;
	json_array_foreach(reqs, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "method")), method) == 0
				&& strcmp(json_string_value(json_object_get(r, "path")), path) == 0)
			n++;
	}
	json_decref(holder);
	return n;
}

size_t fake_stripe_objects(fake_stripe *fs, const char *kind)
{
	json_t *st = fake_stripe_get(fs, "state");
	size_t n = json_array_size(json_object_get(st, kind));
	json_decref(st);
	return n;
}

const char *fake_stripe_form(const json_t *req, const char *key)
{
	json_t *pair;
	size_t i;
	json_array_foreach(json_object_get(req, "form"), i, pair) {
		if (strcmp(json_string_value(json_array_get(pair, 0)), key) == 0)
			return json_string_value(json_array_get(pair, 1));
	}
	return NULL;
}

const char *fake_stripe_header(const json_t *req, const char *name)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(req, "headers"), k, v) {
		if (strcasecmp(k, name) == 0)
			return json_string_value(v);
	}
	return NULL;
}
