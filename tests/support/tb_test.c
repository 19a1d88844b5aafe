#include "tb_test.h"
#ifdef TB_WITH_POSTGRES
#include "tb_pg.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *tbt_field(void)
{
	const char *f = tb_last_error()->field;
	return f ? f : "";
}

static unsigned file_counter = 0;

/* TB_TEST_MARKET_DB=postgres: every market of the suite lives in a fresh PostgreSQL schema. */
static int on_postgres(void)
{
	const char *db = getenv("TB_TEST_MARKET_DB");
	return db && strcmp(db, "postgres") == 0;
}

static int is_file(const char *db)
{
	return db[0] && strncmp(db, "postgres", 8) != 0;
}

tbt *tbt_prepare(int file)
{
	tbt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_tb_ok(tb_clock_manual_new(&t->clock, TBT_T0));
	assert_tb_ok(tb_payment_fake_new(&t->pay));
	if (on_postgres()) {
#ifdef TB_WITH_POSTGRES
		char schema[64], conninfo[2048];
		if (!tbt_pg_conninfo()) {
			/* ctest's SKIP_RETURN_CODE: the fixture found no server to start. */
			printf("skipped: TB_TEST_MARKET_DB=postgres but no server (see tests/support/tb_pg.h)\n");
			exit(77);
		}
		tbt_pg_schema(schema, conninfo, sizeof(conninfo), t->db, sizeof(t->db));
#else
		fail_msg("TB_TEST_MARKET_DB=postgres, but the library is built without PostgreSQL");
#endif
	} else if (file) {
		const char *dir = getenv("TB_TEST_TMPDIR");
		snprintf(t->db, sizeof(t->db), "%s/market-%d-%u.db", dir ? dir : "/tmp", (int)getpid(), file_counter++);
		unlink(t->db);
		char side[600];
		snprintf(side, sizeof(side), "%s-wal", t->db);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", t->db);
		unlink(side);
	}
	assert_tb_ok(tb_market_options_init(&t->opts, TB_MARKET_OPTIONS_VERSION));
	return t;
}

static tb_clock bound_clock; /* copied by tb_market_open */

void tbt_open(tbt *t)
{
	tb_clock_manual_bind(t->clock, &bound_clock);
	t->opts.clock = &bound_clock;
	t->opts.payments = t->pay;
	t->opts.password_cost = TB_PASSWORD_COST_MIN;
	t->opts.db = t->db[0] ? t->db : ":memory:";
	if (t->opts.lock_ms == 0)
		t->opts.lock_ms = TBT_LOCK_MS;
	assert_tb_ok(tb_market_open(&t->m, &t->opts));
}

tbt *tbt_new(int file)
{
	tbt *t = tbt_prepare(file);
	tbt_open(t);
	return t;
}

void tbt_reopen(tbt *t)
{
	tb_market_close(t->m);
	t->m = NULL;
	assert_tb_ok(tb_market_open(&t->m, &t->opts));
}

void tbt_free(tbt *t)
{
	if (!t)
		return;
	tb_market_close(t->m);
	tb_payment_provider_free(t->pay);
	tb_clock_manual_free(t->clock);
	if (is_file(t->db))
		unlink(t->db);
	free(t);
}

int tbt_setup(void **state)
{
	*state = tbt_new(0);
	return 0;
}

int tbt_setup_file(void **state)
{
	*state = tbt_new(1);
	return 0;
}

int tbt_teardown(void **state)
{
	tbt_free(*state);
	return 0;
}

char *tbt_user(tbt *t, const char *email)
{
	tb_user *u = NULL;
	assert_tb_ok(tb_user_signup(&u, NULL, t->m, email, "correct horse battery"));
	char *id = strdup(tb_user_id(u));
	tb_user_free(u);
	return id;
}

char *tbt_ticket(tbt *t, const char *owner, const char *title, int64_t price_minor)
{
	tb_ticket *tk = NULL;
	assert_tb_ok(tb_ticket_create(&tk, t->m, owner, title, price_minor, NULL));
	char *id = strdup(tb_ticket_id(tk));
	tb_ticket_free(tk);
	return id;
}

char *tbt_order(tbt *t, const char *buyer, const char *ticket, tb_status *st)
{
	tb_order *o = NULL;
	tb_status s = tb_order_create(&o, t->m, buyer, ticket);
	if (st)
		*st = s;
	if (s != TB_OK)
		return NULL;
	char *id = strdup(tb_order_id(o));
	tb_order_free(o);
	return id;
}

size_t tbt_event_count(tbt *t, tb_event_type type)
{
	size_t n = 0;
	int64_t after = 0;
	for (;;) {
		tb_event_page *p = NULL;
		assert_tb_ok(tb_event_read(&p, t->m, after, 1000));
		size_t count = tb_event_page_count(p);
		for (size_t i = 0; i < count; i++) {
			const tb_event *e = tb_event_page_at(p, i);
			if (type == 0 || tb_event_type_get(e) == type)
				n++;
			after = tb_event_seq(e);
		}
		tb_event_page_free(p);
		if (count < 1000)
			return n;
	}
}

int64_t tbt_last_seq(tbt *t)
{
	int64_t seq = -1;
	assert_tb_ok(tb_event_last_seq(&seq, t->m));
	return seq;
}

tb_event_type tbt_event_back(tbt *t, size_t n)
{
	int64_t last = tbt_last_seq(t);
	tb_event_page *p = NULL;
	assert_tb_ok(tb_event_read(&p, t->m, last - (int64_t)n - 1, 1));
	assert_int_equal(tb_event_page_count(p), 1);
	tb_event_type type = tb_event_type_get(tb_event_page_at(p, 0));
	tb_event_page_free(p);
	return type;
}

void tbt_advance(tbt *t, int64_t ms)
{
	tb_clock_manual_advance(t->clock, ms);
}

int64_t tbt_now(tbt *t)
{
	return tb_clock_manual_now(t->clock);
}
