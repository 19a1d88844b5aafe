/*
 * pool.c - the worker threads that run state-changing requests.
 *
 * A write waits for its group commit, a sign-in for argon2id: tens of
 * microseconds to tens of milliseconds in which a libmicrohttpd thread that
 * ran it inline could serve none of its other connections.  So http.c
 * suspends such a request's connection and hands the request here; a worker
 * runs it and resumes the connection, whose thread then queues the reply.
 * Jobs run in the order they came; the queue is unbounded (each job is a
 * request libmicrohttpd already holds: its connection limit bounds it).
 * examples/server/README.md (design notes) says what it measured.
 */
#include "server.h"

#include <stdlib.h>

struct tbs_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	tbs_job *head, *tail;
	bool stopping;
	unsigned int nthreads;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	struct tbs_pool *p = arg;

	pthread_setname_np(pthread_self(), "tbs-worker"); /* for top -H, perf and gdb */

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		tbs_job *job = p->head;
		if (!job)
			break; /* stopping, and nothing left to run */
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		job->run(job);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct tbs_pool *tbs_pool_new(unsigned int nthreads)
{
	struct tbs_pool *p;

	if (nthreads == 0)
		return NULL;
	p = calloc(1, sizeof *p + nthreads * sizeof p->threads[0]);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (; p->nthreads < nthreads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
			break;
	if (p->nthreads == 0) {
		tbs_pool_free(p);
		return NULL;
	}
	return p;
}

void tbs_pool_submit(struct tbs_pool *p, tbs_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void tbs_pool_free(struct tbs_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
