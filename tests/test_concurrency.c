/* Many threads on one market: exactly one winner per ticket, events agree. */
#include "support/tb_test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 8, TICKETS = 24, ROUNDS = 3 };

typedef struct race {
	tbt *t;
	char *tickets[TICKETS];
	char *buyers[THREADS];
	int wins[THREADS][TICKETS];
	int unexpected;
	pthread_barrier_t start;
} race;

typedef struct arg {
	race *r;
	int index;
} arg;

static void *racer(void *p)
{
	arg *a = p;
	race *r = a->r;
	pthread_barrier_wait(&r->start);
	for (int k = 0; k < TICKETS; k++) {
		int ticket = (k + a->index * 5) % TICKETS; /* different orders: real contention */
		tb_order *o = NULL;
		tb_status st = tb_order_create(&o, r->t->m, r->buyers[a->index], r->tickets[ticket]);
		if (st == TB_OK)
			r->wins[a->index][ticket]++;
		else if (st != TB_ELOCKED)
			__atomic_add_fetch(&r->unexpected, 1, __ATOMIC_SEQ_CST);
		tb_order_free(o);
	}
	return NULL;
}

/* Replay the event log: per ticket, live orders may never overlap. */
static void check_log(tbt *t, int expected_created)
{
	char live[TICKETS * ROUNDS + 64][2][TB_ID_SIZE]; /* order id -> ticket id */
	size_t nlive = 0;
	int created = 0;
	int64_t after = 0;
	for (;;) {
		tb_event_page *p = NULL;
		assert_tb_ok(tb_event_read(&p, t->m, after, 500));
		size_t n = tb_event_page_count(p);
		for (size_t i = 0; i < n; i++) {
			const tb_event *e = tb_event_page_at(p, i);
			after = tb_event_seq(e);
			tb_event_type ty = tb_event_type_get(e);
			if (ty != TB_EVENT_ORDER_CREATED && ty != TB_EVENT_ORDER_EXPIRED)
				continue;
			json_t *j = json_loads(tb_event_payload(e), 0, NULL);
			const char *ticket = json_string_value(json_object_get(j, "ticket_id"));
			if (ty == TB_EVENT_ORDER_CREATED) {
				created++;
				for (size_t k = 0; k < nlive; k++)
					if (strcmp(live[k][1], ticket) == 0)
						fail_msg("two live orders for ticket %s", ticket);
				snprintf(live[nlive][0], TB_ID_SIZE, "%s", tb_event_aggregate_id(e));
				snprintf(live[nlive][1], TB_ID_SIZE, "%s", ticket);
				nlive++;
			} else {
				for (size_t k = 0; k < nlive; k++) {
					if (strcmp(live[k][0], tb_event_aggregate_id(e)) == 0) {
						memcpy(live[k], live[nlive - 1], sizeof(live[k]));
						nlive--;
						break;
					}
				}
			}
			json_decref(j);
		}
		tb_event_page_free(p);
		if (n < 500)
			break;
	}
	assert_int_equal(created, expected_created);
}

static void race__one_live_order_per_ticket(void **state)
{
	tbt *t = *state;
	race *r = calloc(1, sizeof(*r));
	r->t = t;
	char *seller = tbt_user(t, "seller@example.com");
	for (int i = 0; i < TICKETS; i++)
		r->tickets[i] = tbt_ticket(t, seller, "Hot", 100);
	for (int i = 0; i < THREADS; i++) {
		char email[64];
		snprintf(email, sizeof(email), "buyer%d@example.com", i);
		r->buyers[i] = tbt_user(t, email);
	}
	for (int round = 0; round < ROUNDS; round++) {
		memset(r->wins, 0, sizeof(r->wins));
		pthread_barrier_init(&r->start, NULL, THREADS);
		pthread_t th[THREADS];
		arg args[THREADS];
		for (int i = 0; i < THREADS; i++) {
			args[i].r = r;
			args[i].index = i;
			pthread_create(&th[i], NULL, racer, &args[i]);
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&r->start);
		assert_int_equal(r->unexpected, 0);
		for (int k = 0; k < TICKETS; k++) {
			int winners = 0;
			for (int i = 0; i < THREADS; i++)
				winners += r->wins[i][k];
			assert_int_equal(winners, 1);
		}
		/* Every lock lapses; the next round races again. */
		tbt_advance(t, TBT_LOCK_MS);
		tb_tick_stats stats = TB_TICK_STATS_INIT;
		assert_tb_ok(tb_market_tick(t->m, &stats));
		assert_int_equal(stats.orders_expired, TICKETS);
	}
	check_log(t, TICKETS * ROUNDS);
	assert_int_equal(tbt_event_count(t, TB_EVENT_ORDER_EXPIRED), TICKETS * ROUNDS);
	for (int i = 0; i < TICKETS; i++)
		free(r->tickets[i]);
	for (int i = 0; i < THREADS; i++)
		free(r->buyers[i]);
	free(seller);
	free(r);
}

typedef struct payer_arg {
	tbt *t;
	const char *buyer;
	const char *order;
	tb_status st;
} payer_arg;

static void *payer(void *p)
{
	payer_arg *a = p;
	tb_charge *c = NULL;
	a->st = tb_order_pay(&c, a->t->m, a->buyer, a->order, "tok_visa");
	tb_charge_free(c);
	return NULL;
}

static void race__paying_one_order_from_many_threads_charges_once(void **state)
{
	tbt *t = *state;
	char *seller = tbt_user(t, "seller@example.com");
	char *buyer = tbt_user(t, "buyer@example.com");
	char *ticket = tbt_ticket(t, seller, "One", 100);
	char *order = tbt_order(t, buyer, ticket, NULL);
	pthread_t th[THREADS];
	payer_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (payer_arg){ t, buyer, order, TB_OK };
		pthread_create(&th[i], NULL, payer, &args[i]);
	}
	int ok = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (args[i].st == TB_OK)
			ok++;
		else
			assert_int_equal(args[i].st, TB_ESTATE);
	}
	assert_int_equal(ok, 1);
	tb_fake_stats fs;
	tb_payment_fake_stats(t->pay, &fs);
	assert_int_equal(fs.charges, 1);
	free(seller); free(buyer); free(ticket); free(order);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(race__one_live_order_per_ticket, tbt_setup_file, tbt_teardown),
		cmocka_unit_test_setup_teardown(race__paying_one_order_from_many_threads_charges_once, tbt_setup_file, tbt_teardown),
	};
	return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
