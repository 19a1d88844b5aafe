/*
 * src/storage/rows.h - the row structs of storage.h described column by
 * column, and small helpers every adapter shares.  Internal: included by
 * the adapters in src/storage only.
 *
 * A column table says which struct field each column of a table fills.  Its
 * order is the order of the *_COLS lists below, which adapters use for
 * SELECT lists and for insert parameters 1..n, so one binder and one reader
 * per adapter serve every row type.
 */
#ifndef TB_STORAGE_ROWS_H
#define TB_STORAGE_ROWS_H

#include "ticketyboo/storage.h"

#include <stddef.h>

enum tb_col_kind { TB_COL_TEXT, TB_COL_I64, TB_COL_INT, TB_COL_BLOB };

struct tb_col {
	const char *name;      /* column name, checked against each SELECT */
	enum tb_col_kind kind;
	size_t off;            /* offsetof the field in the row struct */
	size_t size;           /* sizeof the field: text buffer or exact blob size */
};

struct tb_rowtype {
	const char *table;
	const struct tb_col *cols;
	size_t ncols;
	size_t size;           /* sizeof the row struct */
};

#define TB_USER_COLS "id, email, password_hash, version, created_at, updated_at"
#define TB_SESSION_COLS "token_hash, user_id, created_at, expires_at"
#define TB_TICKET_COLS "id, title, price_minor, currency, owner_id, order_id, locked_until, " \
	"status, version, created_at, updated_at"
#define TB_ORDER_COLS "id, ticket_id, buyer_id, seller_id, status, expires_at, price_minor, " \
	"currency, version, created_at, updated_at"
#define TB_CHARGE_COLS "id, order_id, status, amount_minor, currency, provider, payment_token, " \
	"provider_charge_id, provider_refund_id, idempotency_key, refund_key, failure_code, " \
	"decline_code, failure_message, refund_reason, attempts, next_attempt_at, version, " \
	"created_at, updated_at"
/* The payload (column TB_EVENT_PAYLOAD_COL) is bound and read by hand: it is a borrowed pointer. */
#define TB_EVENT_COLS "seq, type, aggregate_id, aggregate_version, occurred_at, payload"
#define TB_EVENT_PAYLOAD_COL 5

extern const struct tb_rowtype tb_storage__user_rt;
extern const struct tb_rowtype tb_storage__session_rt;
extern const struct tb_rowtype tb_storage__ticket_rt;
extern const struct tb_rowtype tb_storage__order_rt;
extern const struct tb_rowtype tb_storage__charge_rt;
extern const struct tb_rowtype tb_storage__event_rt; /* without the payload */

/* Where list results are handed over: one row type each. */
struct tb_sink {
	tb_status (*emit)(const struct tb_sink *k, const void *row);
	tb_ticket_row_cb ticket;
	tb_order_row_cb order;
	tb_charge_row_cb charge;
	void *payload;
};

struct tb_sink tb_storage__ticket_sink(tb_ticket_row_cb cb, void *payload);
struct tb_sink tb_storage__order_sink(tb_order_row_cb cb, void *payload);
struct tb_sink tb_storage__charge_sink(tb_charge_row_cb cb, void *payload);

#endif
