/*
 * Out of memory: every allocation the library makes on a sale's path is
 * failed in turn.  Each call must fail cleanly (TB_ENOMEM, nothing half
 * written), never crash, and the market must stay consistent.  Leaks on
 * these paths are caught when this suite runs under ASan.
 */
#include "support/tb_test.h"

#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static long fail_at = -1; /* which allocation fails; -1 = none */
static long seen = 0;

static int should_fail(void)
{
	return fail_at >= 0 && __atomic_fetch_add(&seen, 1, __ATOMIC_SEQ_CST) == fail_at;
}

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }

static void arm(long n)
{
	seen = 0;
	fail_at = n;
}

/* Disarm; true when the armed failure was reached. */
static int disarm(void)
{
	int hit = fail_at >= 0 && seen > fail_at;
	fail_at = -1;
	return hit;
}

static void expect_ok_or_enomem(tb_status st, const char *what)
{
	if (st != TB_OK && st != TB_ENOMEM)
		fail_msg("%s: %s (%s)", what, tb_status_name(st), tb_last_error()->message);
	if (st == TB_ENOMEM)
		assert_non_null(strstr(tb_last_error()->message, "out of memory"));
}

static void sale__every_allocation_failure_is_clean(void **state)
{
	(void)state;
	long n;
	for (n = 0; n < 10000; n++) {
		tbt *t = tbt_new(0);
		char *seller = tbt_user(t, "seller@example.com");
		char *buyer = tbt_user(t, "buyer@example.com");
		char *ticket = tbt_ticket(t, seller, "Show", 1000);

		arm(n);
		tb_order *o = NULL;
		tb_charge *c = NULL;
		tb_ticket_page *page = NULL;
		tb_event_page *events = NULL;
		tb_ticket *locked = NULL;
		tb_status st = tb_order_create_with_ticket(&o, &locked, t->m, buyer, ticket);
		expect_ok_or_enomem(st, "order");
		assert_true(st == TB_OK ? o && locked : !o && !locked);
		tb_ticket_free(locked);
		if (st == TB_OK) {
			tb_status pay = tb_order_pay(&c, t->m, buyer, tb_order_id(o), "tok_visa");
			expect_ok_or_enomem(pay, "pay");
		}
		expect_ok_or_enomem(tb_ticket_list(&page, t->m, NULL), "list");
		expect_ok_or_enomem(tb_event_read(&events, t->m, 0, 100), "events");
		tb_tick_stats stats = TB_TICK_STATS_INIT;
		expect_ok_or_enomem(tb_market_tick(t->m, &stats), "tick");
		int hit = disarm();

		/* Consistent afterwards: the ticket is locked or sold exactly when an order says so. */
		tb_order_page *orders = NULL;
		assert_tb_ok(tb_order_list(&orders, t->m, buyer, NULL, 10));
		tb_ticket *tk = NULL;
		assert_tb_ok(tb_ticket_get(&tk, t->m, ticket));
		size_t count = tb_order_page_count(orders);
		assert_true(count <= 1);
		if (count == 0) {
			assert_false(tb_ticket_locked(tk));
			assert_string_equal(tb_ticket_owner_id(tk), seller);
			assert_int_equal(tbt_event_count(t, TB_EVENT_ORDER_CREATED), 0);
		} else {
			tb_order_status s = tb_order_status_get(tb_order_page_at(orders, 0));
			assert_int_equal(tbt_event_count(t, TB_EVENT_ORDER_CREATED), 1);
			if (s == TB_ORDER_COMPLETE)
				assert_string_equal(tb_ticket_owner_id(tk), buyer);
			else
				assert_true(tb_ticket_locked(tk)); /* created, or a payment pending */
		}
		tb_ticket_free(tk);
		tb_order_page_free(orders);
		tb_event_page_free(events);
		tb_ticket_page_free(page);
		tb_charge_free(c);
		tb_order_free(o);
		free(seller);
		free(buyer);
		free(ticket);
		tbt_free(t);
		if (!hit)
			break; /* the whole path ran without reaching failure n: all covered */
	}
	assert_true(n > 10); /* the path does allocate: the sweep really ran */
	print_message("failed %ld allocations in turn\n", n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sale__every_allocation_failure_is_clean),
	};
	return cmocka_run_group_tests_name("out of memory", tests, NULL, NULL);
}
