/*
 * Start, script and inspect the fake Stripe server (tests/fake_stripe/fake_stripe.py)
 * from a C test.  The script is found through $TB_FAKE_STRIPE, else
 * $TB_SOURCE_DIR/tests/fake_stripe/fake_stripe.py (ctest sets TB_SOURCE_DIR),
 * else next to this source file.  It needs python3 on PATH and nothing else.
 */
#ifndef TB_FAKE_STRIPE_SERVER_H
#define TB_FAKE_STRIPE_SERVER_H

#include <jansson.h>

/* The API key the fake accepts. */
#define FAKE_STRIPE_KEY "sk_test_ticketyboo_fake_0123456789"

typedef struct fake_stripe fake_stripe;

/* Start a server on a free loopback port; NULL on failure (reason on stderr). */
fake_stripe *fake_stripe_start(void);
/* Kill it and reap it.  NULL is a no-op. */
void fake_stripe_stop(fake_stripe *fs);
/* "http://127.0.0.1:<port>", borrowed. */
const char *fake_stripe_url(const fake_stripe *fs);

/* Forget every object, script, logged request and violation.  0 on success. */
int fake_stripe_reset(fake_stripe *fs);
/*
 * Queue answers for requests about `token` (op: "charge", "refund",
 * "payment_method", "search"); responses_json is a JSON array of actions as
 * fake_stripe.py documents, e.g. "[{\"action\":\"error\",\"status\":429}]".
 */
int fake_stripe_script(fake_stripe *fs, const char *token, const char *op, const char *responses_json);
/* POST /__control/config with a JSON object. */
int fake_stripe_config(fake_stripe *fs, const char *json);

/* GET /__control/<what> ("log", "violations", "state"); a new reference or NULL. */
json_t *fake_stripe_get(fake_stripe *fs, const char *what);
/* The logged API requests (borrowed from *holder, which the caller decrefs). */
json_t *fake_stripe_requests(fake_stripe *fs, json_t **holder);
/* Number of violations recorded; prints them to stderr.  -1 on failure. */
int fake_stripe_violations(fake_stripe *fs);
/* Number of logged requests to `method` `path`. */
size_t fake_stripe_count(fake_stripe *fs, const char *method, const char *path);
/* Number of PaymentIntents (or "refunds") the fake holds. */
size_t fake_stripe_objects(fake_stripe *fs, const char *kind);

/* The value of form field `key` in a logged request, or NULL (borrowed from req). */
const char *fake_stripe_form(const json_t *req, const char *key);
/* A header of a logged request (case-insensitive), or NULL (borrowed from req). */
const char *fake_stripe_header(const json_t *req, const char *name);

#endif
