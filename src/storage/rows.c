/*
 * src/storage/rows.c - column tables of the storage rows and helpers shared
 * by the adapters (see rows.h).
 */
#include "rows.h"


#define FIELD_SIZE(T, f) sizeof(((T *)0)->f)
#define COL(T, kind, name, f) { name, kind, offsetof(T, f), FIELD_SIZE(T, f) }
#define ROWTYPE(table, cols, T) { table, cols, sizeof cols / sizeof cols[0], sizeof(T) }

static const struct tb_col user_cols[] = {
	COL(tb_user_row, TB_COL_TEXT, "id", id),
	COL(tb_user_row, TB_COL_TEXT, "email", email),
	COL(tb_user_row, TB_COL_TEXT, "password_hash", password_hash),
	COL(tb_user_row, TB_COL_I64, "version", version),
	COL(tb_user_row, TB_COL_I64, "created_at", created_at_ms),
	COL(tb_user_row, TB_COL_I64, "updated_at", updated_at_ms),
};

static const struct tb_col session_cols[] = {
	COL(tb_session_row, TB_COL_BLOB, "token_hash", token_hash),
	COL(tb_session_row, TB_COL_TEXT, "user_id", user_id),
	COL(tb_session_row, TB_COL_I64, "created_at", created_at_ms),
	COL(tb_session_row, TB_COL_I64, "expires_at", expires_at_ms),
};

static const struct tb_col ticket_cols[] = {
	COL(tb_ticket_row, TB_COL_TEXT, "id", id),
	COL(tb_ticket_row, TB_COL_TEXT, "title", title),
	COL(tb_ticket_row, TB_COL_I64, "price_minor", price_minor),
	COL(tb_ticket_row, TB_COL_TEXT, "currency", currency),
	COL(tb_ticket_row, TB_COL_TEXT, "owner_id", owner_id),
	COL(tb_ticket_row, TB_COL_TEXT, "order_id", order_id),
	COL(tb_ticket_row, TB_COL_I64, "locked_until", locked_until_ms),
	COL(tb_ticket_row, TB_COL_INT, "status", status),
	COL(tb_ticket_row, TB_COL_I64, "version", version),
	COL(tb_ticket_row, TB_COL_I64, "created_at", created_at_ms),
	COL(tb_ticket_row, TB_COL_I64, "updated_at", updated_at_ms),
};

static const struct tb_col order_cols[] = {
	COL(tb_order_row, TB_COL_TEXT, "id", id),
	COL(tb_order_row, TB_COL_TEXT, "ticket_id", ticket_id),
	COL(tb_order_row, TB_COL_TEXT, "buyer_id", buyer_id),
	COL(tb_order_row, TB_COL_TEXT, "seller_id", seller_id),
	COL(tb_order_row, TB_COL_INT, "status", status),
	COL(tb_order_row, TB_COL_I64, "expires_at", expires_at_ms),
	COL(tb_order_row, TB_COL_I64, "price_minor", price_minor),
	COL(tb_order_row, TB_COL_TEXT, "currency", currency),
	COL(tb_order_row, TB_COL_I64, "version", version),
	COL(tb_order_row, TB_COL_I64, "created_at", created_at_ms),
	COL(tb_order_row, TB_COL_I64, "updated_at", updated_at_ms),
};

static const struct tb_col charge_cols[] = {
	COL(tb_charge_row, TB_COL_TEXT, "id", id),
	COL(tb_charge_row, TB_COL_TEXT, "order_id", order_id),
	COL(tb_charge_row, TB_COL_INT, "status", status),
	COL(tb_charge_row, TB_COL_I64, "amount_minor", amount_minor),
	COL(tb_charge_row, TB_COL_TEXT, "currency", currency),
	COL(tb_charge_row, TB_COL_TEXT, "provider", provider),
	COL(tb_charge_row, TB_COL_TEXT, "payment_token", payment_token),
	COL(tb_charge_row, TB_COL_TEXT, "provider_charge_id", provider_charge_id),
	COL(tb_charge_row, TB_COL_TEXT, "provider_refund_id", provider_refund_id),
	COL(tb_charge_row, TB_COL_TEXT, "idempotency_key", idempotency_key),
	COL(tb_charge_row, TB_COL_TEXT, "refund_key", refund_key),
	COL(tb_charge_row, TB_COL_TEXT, "failure_code", failure_code),
	COL(tb_charge_row, TB_COL_TEXT, "decline_code", decline_code),
	COL(tb_charge_row, TB_COL_TEXT, "failure_message", failure_message),
	COL(tb_charge_row, TB_COL_TEXT, "refund_reason", refund_reason),
	COL(tb_charge_row, TB_COL_I64, "attempts", attempts),
	COL(tb_charge_row, TB_COL_I64, "next_attempt_at", next_attempt_at_ms),
	COL(tb_charge_row, TB_COL_I64, "version", version),
	COL(tb_charge_row, TB_COL_I64, "created_at", created_at_ms),
	COL(tb_charge_row, TB_COL_I64, "updated_at", updated_at_ms),
};

static const struct tb_col event_cols[] = {
	COL(tb_event_row, TB_COL_I64, "seq", seq),
	COL(tb_event_row, TB_COL_INT, "type", type),
	COL(tb_event_row, TB_COL_TEXT, "aggregate_id", aggregate_id),
	COL(tb_event_row, TB_COL_I64, "aggregate_version", aggregate_version),
	COL(tb_event_row, TB_COL_I64, "occurred_at", occurred_at_ms),
};

const struct tb_rowtype tb_storage__user_rt = ROWTYPE("users", user_cols, tb_user_row);
const struct tb_rowtype tb_storage__session_rt = ROWTYPE("sessions", session_cols, tb_session_row);
const struct tb_rowtype tb_storage__ticket_rt = ROWTYPE("tickets", ticket_cols, tb_ticket_row);
const struct tb_rowtype tb_storage__order_rt = ROWTYPE("orders", order_cols, tb_order_row);
const struct tb_rowtype tb_storage__charge_rt = ROWTYPE("charges", charge_cols, tb_charge_row);
const struct tb_rowtype tb_storage__event_rt = ROWTYPE("events", event_cols, tb_event_row);

static tb_status emit_ticket(const struct tb_sink *k, const void *row)
{
	return k->ticket(row, k->payload);
}

static tb_status emit_order(const struct tb_sink *k, const void *row)
{
	return k->order(row, k->payload);
}

static tb_status emit_charge(const struct tb_sink *k, const void *row)
{
	return k->charge(row, k->payload);
}

struct tb_sink tb_storage__ticket_sink(tb_ticket_row_cb cb, void *payload)
{
	struct tb_sink k = { emit_ticket, cb, NULL, NULL, payload };

	return k;
}

struct tb_sink tb_storage__order_sink(tb_order_row_cb cb, void *payload)
{
	struct tb_sink k = { emit_order, NULL, cb, NULL, payload };

	return k;
}

struct tb_sink tb_storage__charge_sink(tb_charge_row_cb cb, void *payload)
{
	struct tb_sink k = { emit_charge, NULL, NULL, cb, payload };

	return k;
}
