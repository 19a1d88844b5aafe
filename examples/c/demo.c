/*
 * demo: a sale walked end to end on a SQLite file, printing every event.
 *
 *   demo [DB_PATH]      (default ./ticketyboo-demo.db; recreated on each run)
 *
 * A manual clock stands in for time, so the 15-minute lock lapses at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ticketyboo/ticketyboo.h>

static int fail(const char *what)
{
	const tb_error *e = tb_last_error();
	fprintf(stderr, "demo: %s failed: %s (%s)\n", what, e->message, tb_status_name(e->status));
	return 1;
}

#define CHECK(call, what) \
	do { \
		if ((call) != TB_OK) \
			return fail(what); \
	} while (0)

static tb_status print_event(const tb_event *e, void *payload)
{
	(void)payload;
	char *json = NULL;
	tb_status st = tb_event_to_json(&json, e);
	if (st == TB_OK)
		printf("  event %s\n", json);
	tb_free(json);
	return st;
}

static void say(const char *line)
{
	printf("\n# %s\n", line);
}

typedef struct demo {
	tb_market *m;
	tb_clock_manual *clock;
	tb_payment_provider *fake;
	tb_user *alice, *bob, *carol;
	tb_ticket *ticket;
} demo;

static int walk(demo *d)
{
	tb_order *order = NULL;
	tb_charge *charge = NULL;
	char *price = NULL;

	say("Alice, Bob and Carol sign up");
	CHECK(tb_user_signup(&d->alice, NULL, d->m, "alice@example.com", "alice-password"), "signup");
	CHECK(tb_user_signup(&d->bob, NULL, d->m, "bob@example.com", "bob-password"), "signup");
	CHECK(tb_user_signup(&d->carol, NULL, d->m, "carol@example.com", "carol-password"), "signup");
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");

	say("Alice lists a ticket for 65.00 GBP");
	int64_t minor = 0;
	CHECK(tb_money_parse(&minor, "65.00", "GBP"), "price");
	CHECK(tb_ticket_create(&d->ticket, d->m, tb_user_id(d->alice), "Finsbury Park, standing", minor, "GBP"),
		"list ticket");
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");

	say("Bob orders it: the ticket is locked for 15 minutes");
	CHECK(tb_order_create(&order, d->m, tb_user_id(d->bob), tb_ticket_id(d->ticket)), "order");
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");
	tb_order_free(order);

	say("Carol tries to order it too");
	tb_status st = tb_order_create(&order, d->m, tb_user_id(d->carol), tb_ticket_id(d->ticket));
	printf("  refused: %s (%s)\n", tb_last_error()->message, tb_status_name(st));
	if (st != TB_ELOCKED)
		return fail("lock");

	say("Fifteen minutes pass without payment; the tick expires Bob's order");
	tb_clock_manual_advance(d->clock, tb_market_lock_ms(d->m));
	tb_tick_stats stats = TB_TICK_STATS_INIT;
	CHECK(tb_market_tick(d->m, &stats), "tick");
	printf("  expired %zu order(s)\n", stats.orders_expired);

	say("Carol orders it and her card is declined: the order is cancelled");
	CHECK(tb_order_create(&order, d->m, tb_user_id(d->carol), tb_ticket_id(d->ticket)), "order");
	st = tb_order_pay(&charge, d->m, tb_user_id(d->carol), tb_order_id(order), "tok_chargeDeclined");
	printf("  declined: %s (%s)\n", tb_last_error()->message, tb_status_name(st));
	tb_order_free(order);
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");

	say("Carol orders again and pays with tok_visa: the ticket is hers");
	CHECK(tb_order_create(&order, d->m, tb_user_id(d->carol), tb_ticket_id(d->ticket)), "order");
	CHECK(tb_order_pay(&charge, d->m, tb_user_id(d->carol), tb_order_id(order), "tok_visa"), "pay");
	CHECK(tb_money_format(&price, tb_charge_amount_minor(charge), tb_charge_currency(charge)), "format");
	printf("  charged %s %s (%s)\n", price, tb_charge_currency(charge), tb_charge_provider_charge_id(charge));
	tb_free(price);
	tb_charge_free(charge);
	tb_order_free(order);
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");

	say("Carol lists it again at 80.00 GBP");
	tb_ticket *relisted = NULL;
	CHECK(tb_ticket_update(&relisted, d->m, tb_user_id(d->carol), tb_ticket_id(d->ticket), NULL, 8000,
		TB_ANY_VERSION), "edit");
	tb_ticket_free(relisted);
	CHECK(tb_ticket_set_listed(&relisted, d->m, tb_user_id(d->carol), tb_ticket_id(d->ticket), 1), "relist");
	printf("  owner %s, status %s, version %lld\n", tb_ticket_owner_id(relisted),
		tb_ticket_status_name(tb_ticket_status_get(relisted)), (long long)tb_ticket_version(relisted));
	tb_ticket_free(relisted);
	CHECK(tb_event_dispatch(d->m, NULL), "dispatch");

	int64_t last = 0;
	CHECK(tb_event_last_seq(&last, d->m), "last seq");
	printf("\n%lld events in the outbox.\n", (long long)last);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "ticketyboo-demo.db";
	char side[1024];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);

	demo d;
	memset(&d, 0, sizeof(d));
	tb_clock clock;
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	if (tb_clock_manual_new(&d.clock, tb_clock_real_now_ms()) != TB_OK || tb_payment_fake_new(&d.fake) != TB_OK)
		return fail("setup");
	tb_clock_manual_bind(d.clock, &clock);
	opts.db = path;
	opts.clock = &clock;
	opts.payments = d.fake;
	printf("libticketyboo %s demo on %s\n", tb_version(), path);
	int rc = 1;
	if (tb_market_open(&d.m, &opts) != TB_OK)
		rc = fail("open");
	else if (tb_event_subscribe(d.m, "demo-printer", print_event, NULL) != TB_OK)
		rc = fail("subscribe");
	else
		rc = walk(&d);
	tb_ticket_free(d.ticket);
	tb_user_free(d.alice);
	tb_user_free(d.bob);
	tb_user_free(d.carol);
	tb_market_close(d.m);
	tb_payment_provider_free(d.fake);
	tb_clock_manual_free(d.clock);
	return rc;
}
