/*
 * sse.c - Server-Sent Events: push the event stream to connected browsers.
 *
 * Each client is a streaming libmicrohttpd response whose content reader
 * hands out what was queued for it.  With nothing queued the reader suspends
 * its connection (returning 0 without suspending would spin the epoll
 * thread), and a broadcast resumes it.  Heartbeat comments every 15 s let a
 * dead client's write fail, which is how a disconnect is noticed: libmicrohttpd
 * then frees the response and its free callback unlinks the client.
 *
 * Locking: the hub's mutex guards the client list and every client's buffer
 * and state; it is taken inside the content reader (under libmicrohttpd's
 * response lock) and by broadcasters, never the other way round.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* A client that falls this far behind is dropped (it reconnects and reloads). */
#define CLIENT_BACKLOG_MAX (1024 * 1024)

struct client {
	struct tbs_sse_hub *hub;
	struct MHD_Connection *conn;
	char *buf;
	size_t len, off, cap;
	bool suspended;
	bool closing;
	struct client *prev, *next;
};

struct tbs_sse_hub {
	pthread_mutex_t mu;
	struct client *head;
	size_t count;
	bool closed;
};

struct tbs_sse_hub *tbs_sse_new(void)
{
	struct tbs_sse_hub *hub = calloc(1, sizeof *hub);

	if (hub)
		pthread_mutex_init(&hub->mu, NULL);
	return hub;
}

void tbs_sse_free(struct tbs_sse_hub *hub)
{
	if (!hub)
		return;
	/* Every client was unlinked by libmicrohttpd before the daemon stopped. */
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

/* Caller holds hub->mu. */
static void wake(struct client *c)
{
	if (c->suspended) {
		c->suspended = false;
		MHD_resume_connection(c->conn);
	}
}

/* Caller holds hub->mu.  False when the client is too far behind. */
static bool append(struct client *c, const char *data, size_t len)
{
	if (c->off > 0 && c->off == c->len)
		c->off = c->len = 0;
	if (c->len - c->off + len > CLIENT_BACKLOG_MAX)
		return false;
	if (c->len + len > c->cap) {
		/* Compact before growing. */
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len + len > c->cap) {
			size_t cap = c->cap ? c->cap : 4096;
			while (cap < c->len + len)
				cap *= 2;
			char *p = realloc(c->buf, cap);
			if (!p)
				return false;
			c->buf = p;
			c->cap = cap;
		}
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	return true;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct client *c = cls;
	struct tbs_sse_hub *hub = c->hub;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&hub->mu);
	if (c->closing || hub->closed) {
		pthread_mutex_unlock(&hub->mu);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	if (c->off < c->len) {
		size_t avail = c->len - c->off;
		size_t take = avail < max ? avail : max;
		memcpy(out, c->buf + c->off, take);
		c->off += take;
		n = (ssize_t)take;
	} else {
		/* Nothing to send: sleep until a broadcast wakes us. */
		c->suspended = true;
		MHD_suspend_connection(c->conn);
		n = 0;
	}
	pthread_mutex_unlock(&hub->mu);
	return n;
}

static void release(void *cls)
{
	struct client *c = cls;
	struct tbs_sse_hub *hub = c->hub;

	pthread_mutex_lock(&hub->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		hub->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	hub->count--;
	pthread_mutex_unlock(&hub->mu);
	free(c->buf);
	free(c);
}

struct MHD_Response *tbs_sse_open(struct tbs_sse_hub *hub, struct MHD_Connection *conn)
{
	static const char hello[] = "retry: 3000\n: connected\n\n";
	struct MHD_Response *resp;
	struct client *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->hub = hub;
	c->conn = conn;
	pthread_mutex_lock(&hub->mu);
	if (hub->closed || !append(c, hello, sizeof hello - 1)) {
		pthread_mutex_unlock(&hub->mu);
		free(c->buf);
		free(c);
		return NULL;
	}
	c->next = hub->head;
	if (hub->head)
		hub->head->prev = c;
	hub->head = c;
	hub->count++;
	pthread_mutex_unlock(&hub->mu);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, c, release);
	if (!resp) {
		release(c);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return resp;
}

void tbs_sse_broadcast(struct tbs_sse_hub *hub, const char *frame, size_t len)
{
	pthread_mutex_lock(&hub->mu);
	for (struct client *c = hub->head; c; c = c->next) {
		if (c->closing)
			continue;
		if (!append(c, frame, len))
			c->closing = true; /* the reader ends the stream; the browser reconnects */
		wake(c);
	}
	pthread_mutex_unlock(&hub->mu);
}

void tbs_sse_close(struct tbs_sse_hub *hub)
{
	pthread_mutex_lock(&hub->mu);
	hub->closed = true;
	for (struct client *c = hub->head; c; c = c->next) {
		c->closing = true;
		wake(c);
	}
	pthread_mutex_unlock(&hub->mu);
}

size_t tbs_sse_clients(struct tbs_sse_hub *hub)
{
	size_t n;

	pthread_mutex_lock(&hub->mu);
	n = hub->count;
	pthread_mutex_unlock(&hub->mu);
	return n;
}
