/*
 * Install test consumer: built OUTSIDE the tree against the installed
 * headers and library (pkg-config and find_package), it walks the sale a
 * new user would try: two users sign up, one lists a ticket, the other
 * orders it, a third is refused, the lock lapses on a manual clock, the
 * ticket is ordered and paid, and every event reads back in order.
 */
#include <stdio.h>
#include <string.h>

#include <ticketyboo/ticketyboo.h>

#define CHECK(call) \
	do { \
		tb_status s_ = (call); \
		if (s_ != TB_OK) { \
			fprintf(stderr, "%s:%d %s -> %s: %s\n", __FILE__, __LINE__, #call, \
				tb_status_name(s_), tb_last_error()->message); \
			return 1; \
		} \
	} while (0)

int main(void)
{
	tb_clock_manual *clock = NULL;
	tb_payment_provider *fake = NULL;
	tb_clock clk;
	tb_market *m = NULL;
	tb_user *seller = NULL, *buyer = NULL, *third = NULL;
	tb_ticket *ticket = NULL;
	tb_order *order = NULL, *refused = NULL;
	tb_charge *charge = NULL;
	tb_event_page *events = NULL;

	CHECK(tb_clock_manual_new(&clock, 1700000000000));
	CHECK(tb_payment_fake_new(&fake));
	tb_clock_manual_bind(clock, &clk);
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	opts.clock = &clk;
	opts.payments = fake;
	opts.lock_ms = 60 * 1000;
	opts.password_cost = TB_PASSWORD_COST_MIN;
	CHECK(tb_market_open(&m, &opts));
	CHECK(tb_user_signup(&seller, NULL, m, "seller@example.com", "seller-password"));
	CHECK(tb_user_signup(&buyer, NULL, m, "buyer@example.com", "buyer-password"));
	CHECK(tb_user_signup(&third, NULL, m, "third@example.com", "third-password"));
	CHECK(tb_ticket_create(&ticket, m, tb_user_id(seller), "Opening night", 2000, "USD"));
	CHECK(tb_order_create(&order, m, tb_user_id(buyer), tb_ticket_id(ticket)));
	if (tb_order_create(&refused, m, tb_user_id(third), tb_ticket_id(ticket)) != TB_ELOCKED) {
		fprintf(stderr, "a locked ticket was ordered twice\n");
		return 1;
	}
	tb_order_free(order);
	tb_clock_manual_advance(clock, 60 * 1000);
	CHECK(tb_market_tick(m, NULL));
	CHECK(tb_order_create(&order, m, tb_user_id(third), tb_ticket_id(ticket)));
	CHECK(tb_order_pay(&charge, m, tb_user_id(third), tb_order_id(order), "tok_visa"));
	if (tb_charge_status_get(charge) != TB_CHARGE_SUCCEEDED || tb_charge_amount_minor(charge) != 2000) {
		fprintf(stderr, "payment did not succeed\n");
		return 1;
	}
	CHECK(tb_event_read(&events, m, 0, 100));
	int64_t prev = 0;
	for (size_t i = 0; i < tb_event_page_count(events); i++) {
		const tb_event *e = tb_event_page_at(events, i);
		if (tb_event_seq(e) <= prev)
			return 1;
		prev = tb_event_seq(e);
		printf("%lld %s\n", (long long)tb_event_seq(e), tb_event_name(e));
	}
	if (tb_event_page_count(events) < 10 || strcmp(tb_event_name(tb_event_page_at(events, 0)), "UserCreated") != 0)
		return 1;
	tb_event_page_free(events);
	tb_charge_free(charge);
	tb_order_free(order);
	tb_ticket_free(ticket);
	tb_user_free(seller);
	tb_user_free(buyer);
	tb_user_free(third);
	tb_market_close(m);
	tb_payment_provider_free(fake);
	tb_clock_manual_free(clock);
	printf("tb_strerror(TB_ELOCKED) = \"%s\"\n", tb_strerror(TB_ELOCKED));
	return 0;
}
