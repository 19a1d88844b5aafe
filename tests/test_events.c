/* Events: appended with their change, replayable, delivered at least once. */
#include "support/tb_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void append__each_change_adds_its_events_failures_add_none(void **state)
{
	tbt *t = *state;
	char *seller = tbt_user(t, "seller@example.com");
	char *buyer = tbt_user(t, "buyer@example.com");
	char *ticket = tbt_ticket(t, seller, "Gig", 1500);
	char *order = tbt_order(t, buyer, ticket, NULL);
	tb_charge *c = NULL;
	assert_tb_ok(tb_order_pay(&c, t->m, buyer, order, "tok_visa"));
	tb_charge_free(c);
	static const tb_event_type expected[] = {
		TB_EVENT_USER_CREATED, TB_EVENT_USER_CREATED, TB_EVENT_TICKET_CREATED,
		TB_EVENT_ORDER_CREATED, TB_EVENT_TICKET_UPDATED,
		TB_EVENT_CHARGE_CREATED, TB_EVENT_ORDER_AWAITING_PAYMENT, TB_EVENT_TICKET_UPDATED,
		TB_EVENT_CHARGE_SUCCEEDED, TB_EVENT_ORDER_COMPLETED, TB_EVENT_TICKET_UPDATED,
	};
	size_t n = sizeof(expected) / sizeof(expected[0]);
	tb_event_page *p = NULL;
	assert_tb_ok(tb_event_read(&p, t->m, 0, 100));
	assert_int_equal(tb_event_page_count(p), n);
	int64_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		const tb_event *e = tb_event_page_at(p, i);
		assert_int_equal(tb_event_type_get(e), expected[i]);
		assert_true(tb_event_seq(e) > prev);
		prev = tb_event_seq(e);
		json_t *payload = json_loads(tb_event_payload(e), 0, NULL);
		assert_non_null(payload);
		/* The payload carries the aggregate's version after the change. */
		assert_int_equal(json_integer_value(json_object_get(payload, "version")), tb_event_aggregate_version(e));
		assert_null(strstr(tb_event_payload(e), "tok_visa"));
		assert_null(strstr(tb_event_payload(e), "argon2"));
		json_decref(payload);
	}
	/* The ticket's last event names the version the ticket has now. */
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_get(&tk, t->m, ticket));
	assert_int_equal(tb_event_aggregate_version(tb_event_page_at(p, n - 1)), tb_ticket_version(tk));
	assert_string_equal(tb_event_aggregate_id(tb_event_page_at(p, n - 1)), ticket);
	tb_ticket_free(tk);
	char *json = NULL;
	assert_tb_ok(tb_event_to_json(&json, tb_event_page_at(p, 3)));
	assert_non_null(strstr(json, "\"type\":\"OrderCreated\""));
	assert_non_null(strstr(json, "\"subject\":\"order:created\""));
	tb_free(json);
	tb_event_page_free(p);
	/* Refused operations append nothing. */
	int64_t last = tbt_last_seq(t);
	tb_order *o = NULL;
	assert_tb_status(tb_order_create(&o, t->m, seller, ticket), TB_ESTATE);
	assert_tb_status(tb_ticket_create(&tk, t->m, seller, "", 5, NULL), TB_EINVAL);
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, "seller@example.com", "whatever12"), TB_EEXISTS);
	assert_int_equal(tbt_last_seq(t), last);
	free(seller); free(buyer); free(ticket); free(order);
}

static void read__replays_from_any_seq(void **state)
{
	tbt *t = *state;
	char *u = tbt_user(t, "u@example.com");
	for (int i = 0; i < 9; i++)
		free(tbt_ticket(t, u, "T", 10 + i));
	tb_event_page *p = NULL;
	assert_tb_ok(tb_event_read(&p, t->m, 4, 3));
	assert_int_equal(tb_event_page_count(p), 3);
	assert_int_equal(tb_event_seq(tb_event_page_at(p, 0)), 5);
	assert_int_equal(tb_event_seq(tb_event_page_at(p, 2)), 7);
	tb_event_page_free(p);
	assert_tb_ok(tb_event_read(&p, t->m, 10, 0));
	assert_int_equal(tb_event_page_count(p), 0);
	tb_event_page_free(p);
	assert_tb_status(tb_event_read(&p, t->m, -1, 10), TB_EINVAL);
	assert_tb_status(tb_event_read(&p, t->m, 0, TB_EVENT_READ_MAX + 1), TB_EINVAL);
	assert_int_equal(tbt_last_seq(t), 10);
	free(u);
}

typedef struct recorder {
	int64_t seqs[256];
	size_t count;
	int fail_at_seq;     /* fail once when this seq arrives */
	int failures;
} recorder;

static tb_status record(const tb_event *e, void *payload)
{
	recorder *r = payload;
	if (r->fail_at_seq && tb_event_seq(e) == r->fail_at_seq) {
		r->fail_at_seq = 0;
		r->failures++;
		return TB_EINTERNAL;
	}
	r->seqs[r->count++] = tb_event_seq(e);
	return TB_OK;
}

static void subscriber__failure_is_retried_never_skipped(void **state)
{
	tbt *t = *state;
	recorder r;
	memset(&r, 0, sizeof(r));
	r.fail_at_seq = 3;
	assert_tb_ok(tb_event_subscribe(t->m, "mailer", record, &r));
	char *u = tbt_user(t, "u@example.com");
	for (int i = 0; i < 4; i++)
		free(tbt_ticket(t, u, "T", 10));
	int64_t deadline = 0;
	assert_tb_ok(tb_market_next_deadline(t->m, &deadline));
	assert_int_equal(deadline, tbt_now(t)); /* a subscriber is behind: due now */
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	assert_tb_ok(tb_market_tick(t->m, &stats));
	assert_int_equal(stats.events_delivered, 2);
	assert_int_equal(stats.subscriber_failures, 1);
	int64_t cursor = -1;
	assert_tb_ok(tb_event_cursor(&cursor, t->m, "mailer"));
	assert_int_equal(cursor, 2);
	assert_tb_ok(tb_market_tick(t->m, &stats));
	assert_int_equal(stats.events_delivered, 3);
	assert_int_equal(r.count, 5);
	for (size_t i = 0; i < r.count; i++)
		assert_int_equal(r.seqs[i], (int64_t)i + 1);
	size_t delivered = 99;
	assert_tb_ok(tb_event_dispatch(t->m, &delivered));
	assert_int_equal(delivered, 0);
	assert_tb_ok(tb_market_next_deadline(t->m, &deadline));
	assert_int_equal(deadline, TB_NO_DEADLINE);
	free(u);
}

static void subscriber__cursor_survives_a_restart(void **state)
{
	tbt *t = *state;
	recorder r;
	memset(&r, 0, sizeof(r));
	assert_tb_ok(tb_event_subscribe(t->m, "search-index", record, &r));
	char *u = tbt_user(t, "u@example.com");
	free(tbt_ticket(t, u, "T", 10));
	assert_tb_ok(tb_event_dispatch(t->m, NULL));
	assert_int_equal(r.count, 2);
	free(tbt_ticket(t, u, "Made before the restart, not yet delivered", 10));
	tbt_reopen(t);
	recorder r2;
	memset(&r2, 0, sizeof(r2));
	assert_tb_ok(tb_event_subscribe(t->m, "search-index", record, &r2));
	assert_tb_ok(tb_event_dispatch(t->m, NULL));
	assert_int_equal(r2.count, 1);
	assert_int_equal(r2.seqs[0], 3);
	/* A new name starts from the beginning. */
	recorder r3;
	memset(&r3, 0, sizeof(r3));
	assert_tb_ok(tb_event_subscribe(t->m, "audit", record, &r3));
	assert_tb_ok(tb_event_dispatch(t->m, NULL));
	assert_int_equal(r3.count, 3);
	free(u);
}

static void subscribe__validates_names(void **state)
{
	tbt *t = *state;
	recorder r;
	memset(&r, 0, sizeof(r));
	assert_tb_ok(tb_event_subscribe(t->m, "a", record, &r));
	assert_tb_status(tb_event_subscribe(t->m, "a", record, &r), TB_EEXISTS);
	assert_tb_status(tb_event_subscribe(t->m, "", record, &r), TB_EINVAL);
	assert_tb_status(tb_event_subscribe(t->m, "b", NULL, &r), TB_EINVAL);
	assert_tb_status(tb_event_subscribe(t->m, "\xff", record, &r), TB_EINVAL);
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[199] = '\0';
	assert_tb_status(tb_event_subscribe(t->m, longname, record, &r), TB_EINVAL);
	assert_tb_ok(tb_event_unsubscribe(t->m, "a"));
	assert_tb_status(tb_event_unsubscribe(t->m, "a"), TB_ENOTFOUND);
	assert_tb_ok(tb_event_subscribe(t->m, "a", record, &r));
}

typedef struct quitter {
	tb_market *m;
	int seen;
} quitter;

static tb_status quit_after_two(const tb_event *e, void *payload)
{
	(void)e;
	quitter *q = payload;
	if (++q->seen == 2 && tb_event_unsubscribe(q->m, "quitter") != TB_OK)
		return TB_EINTERNAL;
	return TB_OK;
}

static void unsubscribe__from_its_own_callback_stops_delivery(void **state)
{
	tbt *t = *state;
	char *u = tbt_user(t, "u@example.com");
	for (int i = 0; i < 4; i++)
		free(tbt_ticket(t, u, "T", 10));
	quitter q = { t->m, 0 };
	assert_tb_ok(tb_event_subscribe(t->m, "quitter", quit_after_two, &q));
	assert_tb_ok(tb_event_dispatch(t->m, NULL));
	assert_int_equal(q.seen, 2);
	assert_tb_status(tb_event_unsubscribe(t->m, "quitter"), TB_ENOTFOUND);
	assert_tb_ok(tb_event_dispatch(t->m, NULL));
	assert_int_equal(q.seen, 2);
	free(u);
}

static void names__every_type_has_a_name_and_subject(void **state)
{
	(void)state;
	for (int ty = TB_EVENT_USER_CREATED; ty <= TB_EVENT_ORDER_REFUNDED; ty++) {
		assert_string_not_equal(tb_event_type_name((tb_event_type)ty), "Unknown");
		assert_non_null(strchr(tb_event_type_subject((tb_event_type)ty), ':'));
	}
	assert_string_equal(tb_event_type_name((tb_event_type)0), "Unknown");
	assert_string_equal(tb_event_type_subject(TB_EVENT_ORDER_CANCELLED), "order:cancelled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(append__each_change_adds_its_events_failures_add_none, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(read__replays_from_any_seq, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(subscriber__failure_is_retried_never_skipped, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(subscriber__cursor_survives_a_restart, tbt_setup_file, tbt_teardown),
		cmocka_unit_test_setup_teardown(subscribe__validates_names, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(unsubscribe__from_its_own_callback_stops_delivery, tbt_setup, tbt_teardown),
		cmocka_unit_test(names__every_type_has_a_name_and_subject),
	};
	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
