/* Users and sessions: sign-up rules, sign-in, sessions, updates. */
#include "support/tb_test.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static void signup__normalises_email(void **state)
{
	tbt *t = *state;
	tb_user *u = NULL;
	tb_session *s = NULL;
	assert_tb_ok(tb_user_signup(&u, &s, t->m, "  Alice@Example.COM \t", "correct horse"));
	assert_string_equal(tb_user_email(u), "alice@example.com");
	assert_int_equal(strlen(tb_user_id(u)), TB_ID_LEN);
	assert_int_equal(tb_user_version(u), 0);
	assert_non_null(s);
	assert_int_equal(strlen(tb_session_token(s)), 43);
	assert_string_equal(tb_session_user_id(s), tb_user_id(u));
	tb_user *back = NULL;
	assert_tb_ok(tb_user_get_by_session(&back, t->m, tb_session_token(s)));
	assert_string_equal(tb_user_id(back), tb_user_id(u));
	tb_user_free(back);
	tb_session_free(s);
	tb_user_free(u);
}

static void signup__refuses_invalid_email_and_changes_nothing(void **state)
{
	tbt *t = *state;
	char oversized[400];
	memset(oversized, 'a', sizeof(oversized) - 1);
	oversized[sizeof(oversized) - 1] = '\0';
	memcpy(oversized + 300, "@example.com", 13);
	const char *bad[] = { "", "   ", "no-at-sign", "a@b", "a@@b.com", "a b@c.com", "@x.com", "x@.com",
		"x@com.", "\xff\xfe@x.com", "caf\xc3\xa9@x.com", "a..b@x.com", ".a@x.com", "x@-x.com", oversized };
	size_t before = tbt_event_count(t, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tb_user *u = (tb_user *)1;
		tb_status st = tb_user_signup(&u, NULL, t->m, bad[i], "correct horse");
		if (st != TB_EINVAL)
			fail_msg("email '%s' gave %s", bad[i], tb_status_name(st));
		assert_null(u);
		assert_string_equal(tbt_field(), "email");
	}
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, NULL, "correct horse"), TB_EINVAL);
	assert_int_equal(tbt_event_count(t, 0), before);
}

static void signup__refuses_bad_passwords(void **state)
{
	tbt *t = *state;
	char big[1100];
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, "a@x.com", "short12"), TB_EINVAL);
	assert_string_equal(tbt_field(), "password");
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, "a@x.com", big), TB_EINVAL);
	assert_string_equal(tbt_field(), "password");
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, "a@x.com", NULL), TB_EINVAL);
	big[1024] = '\0';
	assert_tb_ok(tb_user_signup(NULL, NULL, t->m, "a@x.com", big));
	assert_tb_ok(tb_user_signup(NULL, NULL, t->m, "b@x.com", "12345678"));
	assert_int_equal(tbt_event_count(t, TB_EVENT_USER_CREATED), 2);
}

static void signup__refuses_taken_email_case_insensitively(void **state)
{
	tbt *t = *state;
	free(tbt_user(t, "bob@example.com"));
	assert_tb_status(tb_user_signup(NULL, NULL, t->m, "BOB@example.com ", "correct horse"), TB_EEXISTS);
	assert_string_equal(tbt_field(), "email");
	assert_int_equal(tbt_event_count(t, TB_EVENT_USER_CREATED), 1);
}

static void signup__stores_argon2id_hash_and_events_hold_no_secret(void **state)
{
	tbt *t = *state;
	free(tbt_user(t, "carol@example.com"));
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT password_hash FROM users", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *hash = (const char *)sqlite3_column_text(st, 0);
	assert_non_null(strstr(hash, "$argon2id$"));
	assert_null(strstr(hash, "correct horse"));
	sqlite3_finalize(st);
	sqlite3_close(db);

	tb_event_page *p = NULL;
	assert_tb_ok(tb_event_read(&p, t->m, 0, 10));
	assert_int_equal(tb_event_page_count(p), 1);
	const tb_event *e = tb_event_page_at(p, 0);
	assert_string_equal(tb_event_name(e), "UserCreated");
	assert_null(strstr(tb_event_payload(e), "argon2"));
	assert_null(strstr(tb_event_payload(e), "password"));
	assert_non_null(strstr(tb_event_payload(e), "carol@example.com"));
	tb_event_page_free(p);
}

static void signin__unknown_email_and_wrong_password_fail_alike(void **state)
{
	tbt *t = *state;
	free(tbt_user(t, "dave@example.com"));
	tb_session *s = (tb_session *)1;
	assert_tb_status(tb_user_signin(&s, t->m, "nobody@example.com", "correct horse battery"), TB_EUNAUTH);
	assert_null(s);
	char first[256];
	snprintf(first, sizeof(first), "%s", tb_last_error()->message);
	assert_tb_status(tb_user_signin(&s, t->m, "dave@example.com", "wrong password!"), TB_EUNAUTH);
	assert_string_equal(first, tb_last_error()->message);
	assert_tb_status(tb_user_signin(&s, t->m, "not an email", "wrong password!"), TB_EUNAUTH);
	assert_string_equal(first, tb_last_error()->message);
	assert_tb_ok(tb_user_signin(&s, t->m, " DAVE@example.com", "correct horse battery"));
	tb_session_free(s);
}

static void signin__rotates_token_and_signout_revokes_it(void **state)
{
	tbt *t = *state;
	free(tbt_user(t, "erin@example.com"));
	tb_session *a = NULL, *b = NULL;
	assert_tb_ok(tb_user_signin(&a, t->m, "erin@example.com", "correct horse battery"));
	assert_tb_ok(tb_user_signin(&b, t->m, "erin@example.com", "correct horse battery"));
	assert_string_not_equal(tb_session_token(a), tb_session_token(b));
	assert_tb_ok(tb_user_signout(t->m, tb_session_token(a)));
	tb_user *u = NULL;
	assert_tb_status(tb_user_get_by_session(&u, t->m, tb_session_token(a)), TB_EUNAUTH);
	assert_null(u);
	assert_tb_ok(tb_user_get_by_session(&u, t->m, tb_session_token(b)));
	tb_user_free(u);
	/* Sign-out is idempotent, and refuses only a missing token. */
	assert_tb_ok(tb_user_signout(t->m, tb_session_token(a)));
	assert_tb_ok(tb_user_signout(t->m, "garbage"));
	assert_tb_status(tb_user_signout(t->m, NULL), TB_EINVAL);
	tb_session_free(a);
	tb_session_free(b);
}

static void session__expires_after_its_lifetime(void **state)
{
	(void)state;
	tbt *t = tbt_prepare(0);
	t->opts.session_ttl_ms = 60 * 1000;
	tbt_open(t);
	tb_session *s = NULL;
	assert_tb_ok(tb_user_signup(NULL, &s, t->m, "frank@example.com", "correct horse"));
	assert_int_equal(tb_session_expires_at_ms(s), TBT_T0 + 60 * 1000);
	tb_user *u = NULL;
	tbt_advance(t, 60 * 1000 - 1);
	assert_tb_ok(tb_user_get_by_session(&u, t->m, tb_session_token(s)));
	tb_user_free(u);
	tbt_advance(t, 1);
	assert_tb_status(tb_user_get_by_session(&u, t->m, tb_session_token(s)), TB_EUNAUTH);
	tb_session_free(s);
	tbt_free(t);
}

static void session__garbage_tokens_are_unauthenticated(void **state)
{
	tbt *t = *state;
	tb_user *u = NULL;
	const char *bad[] = { "", "x", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };
	for (size_t i = 0; i < 4; i++)
		assert_tb_status(tb_user_get_by_session(&u, t->m, bad[i]), TB_EUNAUTH);
	assert_tb_status(tb_user_get_by_session(&u, t->m, NULL), TB_EUNAUTH);
	assert_tb_status(tb_user_get_by_session(NULL, t->m, "x"), TB_EINVAL);
}

static void update_email__needs_password_and_emits_UserUpdated(void **state)
{
	tbt *t = *state;
	char *id = tbt_user(t, "gina@example.com");
	free(tbt_user(t, "taken@example.com"));
	tb_user *u = NULL;
	assert_tb_status(tb_user_update_email(&u, t->m, id, "wrong password", "new@example.com"), TB_EUNAUTH);
	assert_tb_status(tb_user_update_email(&u, t->m, id, "correct horse battery", "TAKEN@example.com"), TB_EEXISTS);
	assert_string_equal(tbt_field(), "email");
	assert_tb_status(tb_user_update_email(&u, t->m, id, "correct horse battery", "not-an-email"), TB_EINVAL);
	assert_int_equal(tbt_event_count(t, TB_EVENT_USER_UPDATED), 0);
	assert_tb_ok(tb_user_update_email(&u, t->m, id, "correct horse battery", "New@Example.com"));
	assert_string_equal(tb_user_email(u), "new@example.com");
	assert_int_equal(tb_user_version(u), 1);
	tb_user_free(u);
	assert_int_equal(tbt_event_count(t, TB_EVENT_USER_UPDATED), 1);
	tb_session *s = NULL;
	assert_tb_status(tb_user_signin(&s, t->m, "gina@example.com", "correct horse battery"), TB_EUNAUTH);
	assert_tb_ok(tb_user_signin(&s, t->m, "new@example.com", "correct horse battery"));
	tb_session_free(s);
	free(id);
}

static void update_password__revokes_sessions(void **state)
{
	tbt *t = *state;
	tb_user *u = NULL;
	tb_session *s = NULL;
	assert_tb_ok(tb_user_signup(&u, &s, t->m, "hank@example.com", "old password"));
	tb_user *v = NULL;
	assert_tb_status(tb_user_update_password(&v, t->m, tb_user_id(u), "old password", "short"), TB_EINVAL);
	assert_string_equal(tbt_field(), "password");
	assert_tb_ok(tb_user_update_password(&v, t->m, tb_user_id(u), "old password", "new password"));
	tb_user_free(v);
	assert_tb_status(tb_user_get_by_session(&v, t->m, tb_session_token(s)), TB_EUNAUTH);
	tb_session *s2 = NULL;
	assert_tb_status(tb_user_signin(&s2, t->m, "hank@example.com", "old password"), TB_EUNAUTH);
	assert_tb_ok(tb_user_signin(&s2, t->m, "hank@example.com", "new password"));
	tb_session_free(s2);
	tb_session_free(s);
	tb_user_free(u);
}

static void user_get__unknown_malformed_and_json(void **state)
{
	tbt *t = *state;
	tb_user *u = NULL;
	assert_tb_status(tb_user_get(&u, t->m, "0190f1a2-0000-7000-8000-000000000000"), TB_ENOTFOUND);
	assert_tb_status(tb_user_get(&u, t->m, "'; DROP TABLE users; --"), TB_ENOTFOUND);
	assert_tb_status(tb_user_get(&u, t->m, NULL), TB_EINVAL);
	assert_tb_status(tb_user_get(&u, NULL, "x"), TB_EINVAL);
	char *id = tbt_user(t, "ivy@example.com");
	assert_tb_ok(tb_user_get(&u, t->m, id));
	char *json = NULL;
	assert_tb_ok(tb_user_to_json(&json, u));
	assert_non_null(strstr(json, "\"email\":\"ivy@example.com\""));
	assert_null(strstr(json, "argon"));
	tb_free(json);
	tb_user_free(u);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(signup__normalises_email, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(signup__refuses_invalid_email_and_changes_nothing, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(signup__refuses_bad_passwords, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(signup__refuses_taken_email_case_insensitively, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(signup__stores_argon2id_hash_and_events_hold_no_secret, tbt_setup_file, tbt_teardown),
		cmocka_unit_test_setup_teardown(signin__unknown_email_and_wrong_password_fail_alike, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(signin__rotates_token_and_signout_revokes_it, tbt_setup, tbt_teardown),
		cmocka_unit_test(session__expires_after_its_lifetime),
		cmocka_unit_test_setup_teardown(session__garbage_tokens_are_unauthenticated, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(update_email__needs_password_and_emits_UserUpdated, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(update_password__revokes_sessions, tbt_setup, tbt_teardown),
		cmocka_unit_test_setup_teardown(user_get__unknown_malformed_and_json, tbt_setup, tbt_teardown),
	};
	return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
