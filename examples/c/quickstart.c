/* The README's example: list a ticket, order it, pay for it. */
#include <stdio.h>
#include <ticketyboo/ticketyboo.h>

int main(void)
{
	tb_payment_provider *fake = NULL;
	tb_market *m = NULL;
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_user *seller = NULL, *buyer = NULL;
	tb_ticket *ticket = NULL;
	tb_order *order = NULL;
	tb_charge *charge = NULL;
	int rc = 1;

	if (tb_payment_fake_new(&fake) != TB_OK)
		return 1;
	opts.db = ":memory:"; /* or a file path */
	opts.payments = fake;
	if (tb_market_open(&m, &opts) != TB_OK ||
	    tb_user_signup(&seller, NULL, m, "seller@example.com", "correct horse") != TB_OK ||
	    tb_user_signup(&buyer, NULL, m, "buyer@example.com", "battery staple") != TB_OK ||
	    tb_ticket_create(&ticket, m, tb_user_id(seller), "Cup final", 4500, "GBP") != TB_OK ||
	    tb_order_create(&order, m, tb_user_id(buyer), tb_ticket_id(ticket)) != TB_OK ||
	    tb_order_pay(&charge, m, tb_user_id(buyer), tb_order_id(order), "tok_visa") != TB_OK)
		fprintf(stderr, "failed: %s\n", tb_last_error()->message);
	else if ((rc = 0) == 0)
		printf("paid %lld minor units of %s, charge %s\n", (long long)tb_charge_amount_minor(charge),
			tb_charge_currency(charge), tb_charge_status_name(tb_charge_status_get(charge)));
	tb_charge_free(charge);
	tb_order_free(order);
	tb_ticket_free(ticket);
	tb_user_free(buyer);
	tb_user_free(seller);
	tb_market_close(m);
	tb_payment_provider_free(fake);
	return rc;
}
