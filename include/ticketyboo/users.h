/*
 * ticketyboo/users.h - accounts and sessions.
 *
 * A user signs up with an email and a password.  Emails are trimmed,
 * lower-cased, validated and unique.  Passwords (8 to 1024 bytes) are hashed
 * with argon2id; only the hash is stored.  Signing in returns an opaque
 * session token (43 URL-safe characters, 256 random bits); only its hash is
 * stored, signing out revokes it, and it expires after the market's session
 * lifetime.  An unknown email and a wrong password fail the same way
 * (TB_EUNAUTH, "invalid credentials") and take the same time.
 *
 * Thread safety: tb_user and tb_session records are immutable snapshots and
 * may be read from any thread; free each once.
 * Ownership: `**out` results are the caller's; strings read from a record are
 * borrowed and live as long as the record.
 */
#ifndef TICKETYBOO_USERS_H
#define TICKETYBOO_USERS_H

#include "common.h"
#include "market.h"

TB_BEGIN_DECL

typedef struct tb_user tb_user;
typedef struct tb_session tb_session;

#define TB_EMAIL_MAX 254
#define TB_PASSWORD_MIN 8
#define TB_PASSWORD_MAX 1024

/**
 * Create an account.  Emits UserCreated.
 * @param[out] user_out the new user (may be NULL if not wanted).
 * @param[out] session_out a signed-in session for it (may be NULL).
 * @return TB_OK; TB_EINVAL with field "email" or "password"; TB_EEXISTS
 *         ("email in use"); TB_ESTORAGE.
 */
TB_API TB_MUST_CHECK tb_status tb_user_signup(tb_user **user_out, tb_session **session_out,
	tb_market *market, const char *email, const char *password);

/**
 * Sign in: verify the password and start a new session.
 * @param[out] out the session; its token is the only copy that exists.
 * @return TB_OK; TB_EUNAUTH ("invalid credentials") for an unknown email or
 *         a wrong password alike; TB_EINVAL for missing arguments.
 */
TB_API TB_MUST_CHECK tb_status tb_user_signin(tb_session **out, tb_market *market,
	const char *email, const char *password);

/**
 * Revoke a session.  Revoking an unknown or already revoked token is TB_OK
 * (sign-out is idempotent).
 * @return TB_OK; TB_EINVAL (NULL token); TB_ESTORAGE.
 */
TB_API TB_MUST_CHECK tb_status tb_user_signout(tb_market *market, const char *token);

/**
 * Resolve a session token to its user.
 * @return TB_OK; TB_EUNAUTH for an unknown, revoked or expired token.
 */
TB_API TB_MUST_CHECK tb_status tb_user_get_by_session(tb_user **out, tb_market *market,
	const char *token);

/** Fetch a user by id.  @return TB_OK, TB_ENOTFOUND. */
TB_API TB_MUST_CHECK tb_status tb_user_get(tb_user **out, tb_market *market, const char *user_id);

/**
 * Change the email.  Requires the current password.  Emits UserUpdated.
 * @return TB_OK; TB_EUNAUTH (wrong password); TB_EINVAL (field "email");
 *         TB_EEXISTS (email in use); TB_ENOTFOUND.
 */
TB_API TB_MUST_CHECK tb_status tb_user_update_email(tb_user **out, tb_market *market,
	const char *user_id, const char *current_password, const char *new_email);

/**
 * Change the password.  Requires the current password; revokes every
 * session of the user (sign in again with the new one).  Emits UserUpdated
 * (without any secret).
 * @return TB_OK; TB_EUNAUTH; TB_EINVAL (field "password"); TB_ENOTFOUND.
 */
TB_API TB_MUST_CHECK tb_status tb_user_update_password(tb_user **out, tb_market *market,
	const char *user_id, const char *current_password, const char *new_password);

/** The user's id (borrowed). */
TB_API const char *tb_user_id(const tb_user *user);
/** The normalised email (borrowed). */
TB_API const char *tb_user_email(const tb_user *user);
/** Incremented by every change, starting at 0. */
TB_API int64_t tb_user_version(const tb_user *user);
TB_API int64_t tb_user_created_at_ms(const tb_user *user);
/**
 * JSON object {"id","email","version","created_at"} (no secrets).
 * @param[out] out free with tb_free().
 */
TB_API TB_MUST_CHECK tb_status tb_user_to_json(char **out, const tb_user *user);
/** Release a user record.  NULL is a no-op. */
TB_API void tb_user_free(tb_user *user);

/** The session token (borrowed; wiped by tb_session_free()). */
TB_API const char *tb_session_token(const tb_session *session);
TB_API const char *tb_session_user_id(const tb_session *session);
TB_API int64_t tb_session_expires_at_ms(const tb_session *session);
/** Release a session record, wiping the token.  NULL is a no-op. */
TB_API void tb_session_free(tb_session *session);

TB_END_DECL

#endif
