/*
 * ticketyboo/money.h - money as an integer count of minor units.
 *
 * Prices are never floats: a price is an int64 count of the currency's minor
 * units (cents for USD) plus an ISO 4217 code.  These helpers convert the
 * decimal text people type ("19.99") to minor units exactly and back.
 *
 * Thread safety: all functions are pure and may be called from any thread.
 */
#ifndef TICKETYBOO_MONEY_H
#define TICKETYBOO_MONEY_H

#include "common.h"

TB_BEGIN_DECL

/** Largest accepted price, in minor units (100 million major units at 2 decimals). */
#define TB_PRICE_MAX_MINOR INT64_C(10000000000)

/**
 * Number of decimal places of an ISO 4217 currency (2 for USD, 0 for JPY,
 * 3 for KWD).
 * @return the exponent (0..3), or -1 when `currency` is not three ASCII letters.
 */
TB_API int tb_currency_exponent(const char *currency);

/**
 * Parse a decimal amount in major units ("20", "20.5", "19.99") into minor
 * units of `currency`, exactly.  No exponent notation, no sign, at most as
 * many decimals as the currency has, no more than TB_PRICE_MAX_MINOR.
 * @param[out] out the amount in minor units (unchanged on failure).
 * @return TB_OK, or TB_EINVAL with field "price" for anything else.
 */
TB_API TB_MUST_CHECK tb_status tb_money_parse(int64_t *out, const char *decimal, const char *currency);

/**
 * Format minor units as a decimal in major units ("19.99", "20.50", "1000").
 * @param[out] out a new string; free with tb_free().
 * @return TB_OK, TB_EINVAL (bad currency), TB_ENOMEM.
 */
TB_API TB_MUST_CHECK tb_status tb_money_format(char **out, int64_t minor, const char *currency);

TB_END_DECL

#endif
