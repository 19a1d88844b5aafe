/*
 * Orders that no thread waits for: tb_order_create_by_session_async(), with
 * a thread of the host's own lent to run the group commits
 * (tb_market_set_lead_hook() + tb_market_lead()), as an event loop would.
 * Two buyers race for one ticket (one wins, one is refused), a third buys
 * another; the results arrive in callbacks.  Exits 0 when they are right.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <ticketyboo/ticketyboo.h>

/* The lending thread: runs the market's queued writes whenever the hook asks. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool asked, stop;
	int done; /* callbacks received */
} loop = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0 };

static void ask(tb_market *m, void *arg)
{
	(void)m;
	(void)arg;
	pthread_mutex_lock(&loop.mu);
	loop.asked = true;
	pthread_cond_broadcast(&loop.cv);
	pthread_mutex_unlock(&loop.mu);
}

static void *lender(void *arg)
{
	tb_market *m = arg;

	pthread_mutex_lock(&loop.mu);
	while (!loop.stop) {
		if (!loop.asked) {
			pthread_cond_wait(&loop.cv, &loop.mu);
			continue;
		}
		loop.asked = false;
		pthread_mutex_unlock(&loop.mu);
		if (tb_market_lead(m, NULL) != TB_OK)
			fprintf(stderr, "lead: %s\n", tb_last_error()->message);
		pthread_mutex_lock(&loop.mu);
	}
	pthread_mutex_unlock(&loop.mu);
	return NULL;
}

/* One order's result, filled by its callback (on the lending thread). */
struct result {
	const char *who;
	tb_status status;
	char detail[160];
};

static void done(tb_status status, tb_order *order, tb_ticket *ticket, void *arg)
{
	struct result *r = arg;

	r->status = status;
	if (status == TB_OK)
		snprintf(r->detail, sizeof r->detail, "order %s locks \"%s\" until %lld", tb_order_id(order),
			tb_ticket_title(ticket), (long long)tb_order_expires_at_ms(order));
	else
		snprintf(r->detail, sizeof r->detail, "%s", tb_last_error()->message);
	tb_order_free(order);
	tb_ticket_free(ticket);
	pthread_mutex_lock(&loop.mu);
	loop.done++;
	pthread_cond_broadcast(&loop.cv);
	pthread_mutex_unlock(&loop.mu);
}

int main(void)
{
	tb_market_options opts = TB_MARKET_OPTIONS_INIT;
	tb_market *m = NULL;
	tb_user *seller = NULL, *u = NULL;
	tb_session *s[3] = { NULL, NULL, NULL };
	tb_ticket *final = NULL, *semi = NULL;
	struct result r[3] = { { "ann", TB_EINTERNAL, "" }, { "bob", TB_EINTERNAL, "" }, { "cat", TB_EINTERNAL, "" } };
	const char *emails[3] = { "ann@example.com", "bob@example.com", "cat@example.com" };
	pthread_t th;
	int submitted = 0, rc = 1;

	opts.db = ":memory:";
	opts.password_cost = TB_PASSWORD_COST_MIN; /* an example: the minimum argon2id cost */
	if (tb_market_open(&m, &opts) != TB_OK || tb_market_set_lead_hook(m, ask, NULL) != TB_OK)
		goto out;
	if (pthread_create(&th, NULL, lender, m) != 0)
		goto out;
	if (tb_user_signup(&seller, NULL, m, "seller@example.com", "correct horse") != TB_OK ||
	    tb_ticket_create(&final, m, tb_user_id(seller), "Cup final", 4500, "GBP") != TB_OK ||
	    tb_ticket_create(&semi, m, tb_user_id(seller), "Semi-final", 2500, "GBP") != TB_OK)
		goto stop;
	for (int i = 0; i < 3; i++) {
		if (tb_user_signup(&u, NULL, m, emails[i], "battery staple") != TB_OK ||
		    tb_user_signin(&s[i], m, emails[i], "battery staple") != TB_OK)
			goto stop;
		tb_user_free(u);
		u = NULL;
	}
	/* Queued at once; the lending thread commits them (ann and bob race for the final). */
	for (int i = 0; i < 3; i++) {
		const char *ticket = tb_ticket_id(i < 2 ? final : semi);
		if (tb_order_create_by_session_async(m, tb_session_token(s[i]), ticket, done, &r[i]) != TB_OK)
			goto stop;
		submitted++;
	}
stop:
	pthread_mutex_lock(&loop.mu);
	while (loop.done < submitted)
		pthread_cond_wait(&loop.cv, &loop.mu);
	loop.stop = true;
	pthread_cond_broadcast(&loop.cv);
	pthread_mutex_unlock(&loop.mu);
	pthread_join(th, NULL);
	if (submitted < 3) {
		fprintf(stderr, "failed: %s\n", tb_last_error()->message);
	} else {
		for (int i = 0; i < 3; i++)
			printf("%s: %s: %s\n", r[i].who, tb_status_name(r[i].status), r[i].detail);
		/* Exactly one of ann and bob holds the final; cat holds the semi-final. */
		bool one_final = (r[0].status == TB_OK) != (r[1].status == TB_OK) &&
			(r[0].status == TB_ELOCKED || r[1].status == TB_ELOCKED);
		rc = one_final && r[2].status == TB_OK ? 0 : 1;
	}
out:
	for (int i = 0; i < 3; i++)
		tb_session_free(s[i]);
	tb_ticket_free(semi);
	tb_ticket_free(final);
	tb_user_free(u);
	tb_user_free(seller);
	tb_market_close(m);
	return rc;
}
