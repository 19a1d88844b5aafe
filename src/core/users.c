/*
 * Users and sessions: the rules for emails, passwords and session tokens.
 */
#include "internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules ---------------------------------------------------------------- */

static bool email_local_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

/*
 * Trim, lower-case and validate an email into out.  Deliberately ASCII-only
 * and conservative: one '@', a dot-atom local part, a domain of LDH labels
 * with at least one dot.
 */
static tb_status email_normalise(char out[TB_EMAIL_SIZE], const char *email)
{
	if (!email)
		return tb_error_set(TB_EINVAL, "email", "email is required");
	size_t len = strlen(email);
	if (len > 1024)
		return tb_error_set(TB_EINVAL, "email", "email is too long");
	char buf[1025];
	memcpy(buf, email, len + 1);
	char *e = tb_str__trim(buf);
	len = strlen(e);
	if (len == 0)
		return tb_error_set(TB_EINVAL, "email", "email is required");
	if (len > TB_EMAIL_MAX)
		return tb_error_set(TB_EINVAL, "email", "email is longer than %d characters", TB_EMAIL_MAX);
	for (size_t i = 0; i < len; i++)
		if (e[i] >= 'A' && e[i] <= 'Z')
			e[i] = (char)(e[i] + ('a' - 'A'));
	char *at = strchr(e, '@');
	if (!at || strchr(at + 1, '@'))
		return tb_error_set(TB_EINVAL, "email", "email must be valid");
	size_t local_len = (size_t)(at - e);
	const char *domain = at + 1;
	if (local_len == 0 || local_len > 64 || e[0] == '.' || at[-1] == '.')
		return tb_error_set(TB_EINVAL, "email", "email must be valid");
	for (size_t i = 0; i < local_len; i++)
		if (!email_local_char(e[i]) || (e[i] == '.' && e[i + 1] == '.'))
			return tb_error_set(TB_EINVAL, "email", "email must be valid");
	size_t dlen = strlen(domain), label = 0;
	bool dot = false;
	if (dlen == 0 || domain[0] == '.' || domain[dlen - 1] == '.' || domain[0] == '-')
		return tb_error_set(TB_EINVAL, "email", "email must be valid");
	for (size_t i = 0; i < dlen; i++) {
		char c = domain[i];
		if (c == '.') {
			if (label == 0 || domain[i - 1] == '-')
				return tb_error_set(TB_EINVAL, "email", "email must be valid");
			dot = true;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63 || (label == 1 && c == '-'))
				return tb_error_set(TB_EINVAL, "email", "email must be valid");
		} else {
			return tb_error_set(TB_EINVAL, "email", "email must be valid");
		}
	}
	if (!dot)
		return tb_error_set(TB_EINVAL, "email", "email must be valid");
	tb_str__copy(out, TB_EMAIL_SIZE, e);
	return TB_OK;
}

static tb_status password_check(const char *password, const char *field)
{
	if (!password)
		return tb_error_set(TB_EINVAL, field, "password is required");
	size_t len = strnlen(password, TB_PASSWORD_MAX + 1);
	if (len < TB_PASSWORD_MIN || len > TB_PASSWORD_MAX)
		return tb_error_set(TB_EINVAL, field, "password must be between %d and %d characters",
			TB_PASSWORD_MIN, TB_PASSWORD_MAX);
	return TB_OK;
}

static tb_status password_hash(const tb_market *m, char out[TB_HASH_SIZE], const char *password)
{
	if (crypto_pwhash_str(out, password, strlen(password), m->pw_opslimit, m->pw_memlimit) != 0)
		return tb_error__oom(); /* libsodium fails only when it cannot allocate */
	return TB_OK;
}

static bool password_verify(const char *hash, const char *password)
{
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static tb_status user_new(tb_user **out, const tb_user_row *row)
{
	tb_user *u = malloc(sizeof(*u));
	if (!u)
		return tb_error__oom();
	u->row = *row;
	/* The record handed out never carries the password hash. */
	sodium_memzero(u->row.password_hash, sizeof(u->row.password_hash));
	*out = u;
	return TB_OK;
}

static tb_status session_new(tb_session **out, const char *token, const char *user_id, int64_t expires)
{
	tb_session *s = malloc(sizeof(*s));
	if (!s)
		return tb_error__oom();
	tb_str__copy(s->token, sizeof(s->token), token);
	tb_str__copy(s->user_id, sizeof(s->user_id), user_id);
	s->expires_at_ms = expires;
	*out = s;
	return TB_OK;
}

static json_t *user_payload(const tb_user_row *row, const char *changed)
{
	json_t *p = tb_json__user(row);
	if (p && changed)
		json_object_set_new(p, "changed", json_pack("[s]", changed));
	return p;
}

/* ---- sign up --------------------------------------------------------------- */

typedef struct signup_ctx {
	tb_user_row row;
	bool with_session;
	unsigned char token_hash[TB_TOKEN_HASH_SIZE];
	int64_t session_expires;
} signup_ctx;

static tb_status signup_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	signup_ctx *c = vctx;
	tb_status st = m->storage->user_insert(txn, &c->row);
	if (st == TB_EEXISTS)
		return tb_error_set(TB_EEXISTS, "email", "email in use");
	if (st != TB_OK)
		return st;
	st = tb_event__append(m, txn, TB_EVENT_USER_CREATED, c->row.id, c->row.version, user_payload(&c->row, NULL));
	if (st != TB_OK || !c->with_session)
		return st;
	tb_session_row s;
	memset(&s, 0, sizeof(s));
	memcpy(s.token_hash, c->token_hash, sizeof(s.token_hash));
	tb_str__copy(s.user_id, sizeof(s.user_id), c->row.id);
	s.created_at_ms = c->row.created_at_ms;
	s.expires_at_ms = c->session_expires;
	return m->storage->session_insert(txn, &s);
}

tb_status tb_user_signup(tb_user **user_out, tb_session **session_out, tb_market *market,
	const char *email, const char *password)
{
	if (user_out)
		*user_out = NULL;
	if (session_out)
		*session_out = NULL;
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	signup_ctx c;
	memset(&c, 0, sizeof(c));
	if ((st = email_normalise(c.row.email, email)) != TB_OK || (st = password_check(password, "password")) != TB_OK)
		return st;
	/* Hash before the transaction: argon2id must not hold the write lock. */
	if ((st = password_hash(market, c.row.password_hash, password)) != TB_OK)
		return st;
	tb_id__new(c.row.id);
	c.row.created_at_ms = c.row.updated_at_ms = tb_market__now(market);
	char token[64] = "";
	if (session_out) {
		c.with_session = true;
		tb_token__new(token);
		tb_token__hash(token, c.token_hash);
		c.session_expires = c.row.created_at_ms + market->session_ttl_ms;
	}
	st = tb_market__run(market, 1, signup_txn, &c);
	if (st == TB_OK && user_out)
		st = user_new(user_out, &c.row);
	if (st == TB_OK && session_out)
		st = session_new(session_out, token, c.row.id, c.session_expires);
	if (st != TB_OK && user_out) {
		tb_user_free(*user_out);
		*user_out = NULL;
	}
	sodium_memzero(token, sizeof(token));
	sodium_memzero(&c, sizeof(c));
	return st;
}

/* ---- sign in / out / resolve ----------------------------------------------- */

typedef struct lookup_ctx {
	const char *key;  /* email or id */
	tb_user_row row;
	tb_status found;
} lookup_ctx;

static tb_status by_email_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	lookup_ctx *c = vctx;
	c->found = m->storage->user_get_by_email(txn, c->key, &c->row);
	return c->found == TB_ENOTFOUND ? TB_OK : c->found;
}

static tb_status by_id_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	lookup_ctx *c = vctx;
	c->found = m->storage->user_get(txn, c->key, &c->row);
	return c->found == TB_ENOTFOUND ? TB_OK : c->found;
}

static tb_status session_insert_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	return m->storage->session_insert(txn, vctx);
}

/*
 * Verify credentials with equal work whether or not the email exists:
 * an unknown email is verified against the market's dummy hash.
 */
static tb_status verify_credentials(tb_market *m, const char *email, const char *password, tb_user_row *row)
{
	lookup_ctx c;
	memset(&c, 0, sizeof(c));
	char norm[TB_EMAIL_SIZE];
	bool email_ok = email_normalise(norm, email) == TB_OK;
	tb_status st = TB_OK;
	if (email_ok) {
		c.key = norm;
		st = tb_market__run(m, 0, by_email_txn, &c);
		if (st != TB_OK)
			return st;
	}
	bool known = email_ok && c.found == TB_OK;
	bool ok = password_verify(known ? c.row.password_hash : m->dummy_hash, password) && known;
	if (!ok) {
		sodium_memzero(&c.row, sizeof(c.row));
		return tb_error_set(TB_EUNAUTH, NULL, "invalid credentials");
	}
	*row = c.row;
	sodium_memzero(&c.row, sizeof(c.row));
	return TB_OK;
}

tb_status tb_user_signin(tb_session **out, tb_market *market, const char *email, const char *password)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK)
		return st;
	if (!email || !*email)
		return tb_error_set(TB_EINVAL, "email", "email is required");
	if (!password || !*password)
		return tb_error_set(TB_EINVAL, "password", "password is required");
	if (strnlen(password, TB_PASSWORD_MAX + 1) > TB_PASSWORD_MAX)
		return tb_error_set(TB_EUNAUTH, NULL, "invalid credentials");
	tb_user_row user;
	if ((st = verify_credentials(market, email, password, &user)) != TB_OK)
		return st;
	char token[64];
	tb_token__new(token);
	tb_session_row s;
	memset(&s, 0, sizeof(s));
	tb_token__hash(token, s.token_hash);
	tb_str__copy(s.user_id, sizeof(s.user_id), user.id);
	s.created_at_ms = tb_market__now(market);
	s.expires_at_ms = s.created_at_ms + market->session_ttl_ms;
	st = tb_market__run(market, 1, session_insert_txn, &s);
	if (st == TB_OK)
		st = session_new(out, token, user.id, s.expires_at_ms);
	sodium_memzero(token, sizeof(token));
	return st;
}

static tb_status signout_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	return m->storage->session_delete(txn, vctx);
}

tb_status tb_user_signout(tb_market *market, const char *token)
{
	tb_status st = tb_check__market(market);
	if (st != TB_OK)
		return st;
	if (!token)
		return tb_error_set(TB_EINVAL, "token", "token is required");
	if (!tb_token__valid(token))
		return TB_OK; /* nothing such could exist: sign-out is idempotent */
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	tb_token__hash(token, hash);
	return tb_market__run(market, 1, signout_txn, hash);
}

typedef struct session_ctx {
	unsigned char hash[TB_TOKEN_HASH_SIZE];
	int64_t now;
	tb_user_row row;
} session_ctx;

tb_status tb_session__user_id(tb_market *m, tb_storage_txn *txn, const unsigned char *hash, int64_t now_ms,
	char user_id[TB_ID_SIZE])
{
	tb_session_row s;
	tb_status st = m->storage->session_get(txn, hash, &s);
	if (st == TB_ENOTFOUND || (st == TB_OK && s.expires_at_ms <= now_ms))
		return tb_error_set(TB_EUNAUTH, NULL, "session is unknown, revoked or expired");
	if (st == TB_OK)
		tb_str__copy(user_id, TB_ID_SIZE, s.user_id);
	return st;
}

static tb_status by_session_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	session_ctx *c = vctx;
	char user_id[TB_ID_SIZE];
	tb_status st = tb_session__user_id(m, txn, c->hash, c->now, user_id);
	if (st != TB_OK)
		return st;
	st = m->storage->user_get(txn, user_id, &c->row);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_EUNAUTH, NULL, "session is unknown, revoked or expired");
	return st;
}

tb_status tb_user_get_by_session(tb_user **out, tb_market *market, const char *token)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK)
		return st;
	if (!token || !tb_token__valid(token))
		return tb_error_set(TB_EUNAUTH, NULL, "session is unknown, revoked or expired");
	session_ctx c;
	tb_token__hash(token, c.hash);
	c.now = tb_market__now(market);
	st = tb_market__run(market, 0, by_session_txn, &c);
	if (st == TB_OK)
		st = user_new(out, &c.row);
	sodium_memzero(&c.row, sizeof(c.row));
	return st;
}

tb_status tb_user_get(tb_user **out, tb_market *market, const char *user_id)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK)
		return st;
	lookup_ctx c;
	memset(&c, 0, sizeof(c));
	c.key = user_id;
	st = tb_market__run(market, 0, by_id_txn, &c);
	if (st == TB_OK && c.found == TB_ENOTFOUND)
		st = tb_error_set(TB_ENOTFOUND, NULL, "user not found");
	if (st == TB_OK)
		st = user_new(out, &c.row);
	sodium_memzero(&c.row, sizeof(c.row));
	return st;
}

/* ---- updates ----------------------------------------------------------------- */

typedef struct update_ctx {
	const char *user_id;
	const char *new_email;         /* normalised, or NULL */
	const char *new_hash;          /* or NULL */
	int64_t expected_version;      /* what the password was verified against */
	int64_t now;
	tb_user_row row;
} update_ctx;

static tb_status update_txn(tb_market *m, tb_storage_txn *txn, void *vctx)
{
	update_ctx *c = vctx;
	tb_status st = m->storage->user_get(txn, c->user_id, &c->row);
	if (st == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "user not found");
	if (st != TB_OK)
		return st;
	if (c->row.version != c->expected_version)
		return tb_error_set(TB_ECONFLICT, NULL, "the account changed while updating; try again");
	if (c->new_email)
		tb_str__copy(c->row.email, sizeof(c->row.email), c->new_email);
	if (c->new_hash)
		tb_str__copy(c->row.password_hash, sizeof(c->row.password_hash), c->new_hash);
	c->row.version++;
	c->row.updated_at_ms = c->now;
	st = m->storage->user_update(txn, &c->row);
	if (st == TB_EEXISTS)
		return tb_error_set(TB_EEXISTS, "email", "email in use");
	if (st != TB_OK)
		return st;
	if (c->new_hash && (st = m->storage->session_delete_for_user(txn, c->row.id, NULL)) != TB_OK)
		return st;
	return tb_event__append(m, txn, TB_EVENT_USER_UPDATED, c->row.id, c->row.version,
		user_payload(&c->row, c->new_email ? "email" : "password"));
}

static tb_status update_user(tb_user **out, tb_market *market, const char *user_id,
	const char *current_password, const char *new_email, const char *new_password)
{
	tb_status st = tb_check__out(out);
	if (st != TB_OK)
		return st;
	*out = NULL;
	if ((st = tb_check__market(market)) != TB_OK || (st = tb_check__id(user_id, "user_id", "user")) != TB_OK)
		return st;
	if (!current_password || !*current_password)
		return tb_error_set(TB_EINVAL, "current_password", "current password is required");
	char email[TB_EMAIL_SIZE];
	char hash[TB_HASH_SIZE];
	if (new_email && (st = email_normalise(email, new_email)) != TB_OK)
		return st;
	if (new_password && (st = password_check(new_password, "password")) != TB_OK)
		return st;

	update_ctx c;
	memset(&c, 0, sizeof(c));
	lookup_ctx l;
	memset(&l, 0, sizeof(l));
	l.key = user_id;
	if ((st = tb_market__run(market, 0, by_id_txn, &l)) != TB_OK)
		return st;
	if (l.found == TB_ENOTFOUND)
		return tb_error_set(TB_ENOTFOUND, NULL, "user not found");
	bool ok = strnlen(current_password, TB_PASSWORD_MAX + 1) <= TB_PASSWORD_MAX &&
		password_verify(l.row.password_hash, current_password);
	c.expected_version = l.row.version;
	sodium_memzero(&l.row, sizeof(l.row));
	if (!ok)
		return tb_error_set(TB_EUNAUTH, NULL, "invalid credentials");
	if (new_password && (st = password_hash(market, hash, new_password)) != TB_OK)
		return st;
	c.user_id = user_id;
	c.new_email = new_email ? email : NULL;
	c.new_hash = new_password ? hash : NULL;
	c.now = tb_market__now(market);
	st = tb_market__run(market, 1, update_txn, &c);
	if (st == TB_OK)
		st = user_new(out, &c.row);
	sodium_memzero(&c.row, sizeof(c.row));
	sodium_memzero(hash, sizeof(hash));
	return st;
}

tb_status tb_user_update_email(tb_user **out, tb_market *market, const char *user_id,
	const char *current_password, const char *new_email)
{
	if (!new_email) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "email", "email is required");
	}
	return update_user(out, market, user_id, current_password, new_email, NULL);
}

tb_status tb_user_update_password(tb_user **out, tb_market *market, const char *user_id,
	const char *current_password, const char *new_password)
{
	if (!new_password) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "password", "password is required");
	}
	return update_user(out, market, user_id, current_password, NULL, new_password);
}

/* ---- accessors ----------------------------------------------------------------- */

const char *tb_user_id(const tb_user *user) { return user ? user->row.id : NULL; }
const char *tb_user_email(const tb_user *user) { return user ? user->row.email : NULL; }
int64_t tb_user_version(const tb_user *user) { return user ? user->row.version : 0; }
int64_t tb_user_created_at_ms(const tb_user *user) { return user ? user->row.created_at_ms : 0; }

tb_status tb_user_to_json(char **out, const tb_user *user)
{
	if (!user) {
		if (out)
			*out = NULL;
		return tb_error_set(TB_EINVAL, "user", "user must not be NULL");
	}
	return tb_json__dump(out, tb_json__user(&user->row));
}

void tb_user_free(tb_user *user)
{
	free(user);
}

const char *tb_session_token(const tb_session *session) { return session ? session->token : NULL; }
const char *tb_session_user_id(const tb_session *session) { return session ? session->user_id : NULL; }
int64_t tb_session_expires_at_ms(const tb_session *session) { return session ? session->expires_at_ms : 0; }

void tb_session_free(tb_session *session)
{
	if (!session)
		return;
	sodium_memzero(session, sizeof(*session));
	free(session);
}
