/*
 * JSON renderings of records, shared by the *_to_json calls and the event
 * payloads, so a record and its event always agree.  Secrets (password
 * hashes, session tokens, payment tokens) are never rendered.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void tb_json__iso(char out[32], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	int milli = (int)(ms % 1000);
	if (milli < 0) {
		milli += 1000;
		secs -= 1;
	}
	struct tm tm;
	gmtime_r(&secs, &tm);
	char buf[96];
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
	tb_str__copy(out, 32, buf);
}

json_t *tb_json__str_or_null(const char *s)
{
	return (s && *s) ? json_string(s) : json_null();
}

static json_t *iso(int64_t ms)
{
	char buf[32];
	tb_json__iso(buf, ms);
	return json_string(buf);
}

json_t *tb_json__user(const tb_user_row *row)
{
	return json_pack("{s:s, s:s, s:I, s:o}", "id", row->id, "email", row->email, "version",
		(json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__ticket(const tb_ticket_row *row, int64_t now_ms)
{
	bool locked = row->order_id[0] && row->locked_until_ms > now_ms;
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:b, s:o, s:s, s:I, s:o}",
		"id", row->id, "title", row->title, "price_minor", (json_int_t)row->price_minor,
		"currency", row->currency, "owner_id", row->owner_id,
		"order_id", locked ? json_string(row->order_id) : json_null(),
		"locked", locked,
		"locked_until", locked ? iso(row->locked_until_ms) : json_null(),
		"status", tb_ticket_status_name((tb_ticket_status)row->status),
		"version", (json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__order(const tb_order_row *row, int effective_status)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s, s:I, s:o}",
		"id", row->id, "ticket_id", row->ticket_id, "buyer_id", row->buyer_id,
		"seller_id", row->seller_id,
		"status", tb_order_status_name((tb_order_status)effective_status),
		"expires_at", iso(row->expires_at_ms), "expires_at_ms", (json_int_t)row->expires_at_ms,
		"price_minor", (json_int_t)row->price_minor, "currency", row->currency,
		"version", (json_int_t)row->version, "created_at", iso(row->created_at_ms));
}

json_t *tb_json__charge(const tb_charge_row *row)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:o}",
		"id", row->id, "order_id", row->order_id,
		"status", tb_charge_status_name((tb_charge_status)row->status),
		"amount_minor", (json_int_t)row->amount_minor, "currency", row->currency,
		"provider", row->provider,
		"provider_charge_id", tb_json__str_or_null(row->provider_charge_id),
		"provider_refund_id", tb_json__str_or_null(row->provider_refund_id),
		"idempotency_key", row->idempotency_key,
		"failure_code", tb_json__str_or_null(row->failure_code),
		"decline_code", tb_json__str_or_null(row->decline_code),
		"failure_message", tb_json__str_or_null(row->failure_message),
		"refund_reason", tb_json__str_or_null(row->refund_reason),
		"attempts", (json_int_t)row->attempts, "version", (json_int_t)row->version,
		"created_at", iso(row->created_at_ms));
}

tb_status tb_json__dump(char **out, json_t *obj)
{
	if (!out) {
		json_decref(obj);
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	}
	*out = NULL;
	if (!obj)
		return tb_error__oom();
	*out = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return *out ? TB_OK : tb_error__oom();
}
