/*
 * bench/mhd_const.c - the HTTP ceiling: a bare libmicrohttpd server that
 * answers every request with the same JSON body, in the reference server's
 * threading mode (internal polling thread, epoll, a pool of one thread per
 * core), keep-alive as libmicrohttpd does by default.  No routing, no
 * library, no allocation per request: what HTTP itself costs on this
 * machine.
 *
 *   mhd_const [--port N] [--threads N]
 */
#define _POSIX_C_SOURCE 200809L

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result;
#else
typedef enum MHD_Result MHD_Result;
#endif

/* A ticket as GET /api/tickets/:id renders it. */
static const char body[] =
	"{\"id\":\"00000002-0000-7000-8000-000000000001\",\"title\":\"Bench ticket 1\","
	"\"price\":50,\"price_minor\":5000,\"currency\":\"USD\","
	"\"userId\":\"00000001-0000-7000-8000-000000000000\",\"orderId\":null,\"locked\":false,"
	"\"lockedUntil\":null,\"status\":\"listed\",\"version\":1,"
	"\"createdAt\":\"2023-11-14T21:13:20.000Z\"}";

static struct MHD_Response *response;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/* Read the whole request (POST bodies too) before answering. */
	if (*req_cls == NULL) {
		*req_cls = conn;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(conn, MHD_HTTP_OK, response);
}

int main(int argc, char **argv)
{
	unsigned int port = 8081, threads = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = (unsigned int)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = (unsigned int)atoi(argv[i + 1]);
	}
	if (threads == 0)
		threads = 2;
	response = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, answer, NULL,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "mhd_const: cannot listen on port %u\n", port);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "mhd_const: listening on 127.0.0.1:%u (%u threads)\n", port, threads);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	MHD_destroy_response(response);
	return 0;
}
