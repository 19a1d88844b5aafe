/*
 * Money: ISO 4217 exponents and exact decimal <-> minor-unit conversion.
 * The seed multiplied float prices by 100 (19.99 * 100 = 1998.999...); we
 * never let a float near an amount.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_code(const char *c)
{
	if (!c || strlen(c) != 3)
		return false;
	for (int i = 0; i < 3; i++) {
		char ch = c[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
			return false;
	}
	return true;
}

static bool code_in(const char *up, const char *list)
{
	for (const char *p = list; *p; p += 3)
		if (strncmp(p, up, 3) == 0)
			return true;
	return false;
}

int tb_currency_exponent(const char *currency)
{
	if (!is_code(currency))
		return -1;
	char up[4];
	for (int i = 0; i < 3; i++)
		up[i] = (char)(currency[i] & ~0x20);
	up[3] = '\0';
	/* ISO 4217 currencies without minor units, and with three decimals. */
	if (code_in(up, "BIFCLPDJFGNFISKJPYKMFKRWPYGRWFUGXUYIVNDVUVXAFXOFXPF"))
		return 0;
	if (code_in(up, "BHDIQDJODKWDLYDOMRTND"))
		return 3;
	return 2;
}

tb_status tb_money_parse(int64_t *out, const char *decimal, const char *currency)
{
	int exp = tb_currency_exponent(currency);
	if (exp < 0)
		return tb_error_set(TB_EINVAL, "currency", "currency must be a three-letter ISO 4217 code");
	if (!out || !decimal)
		return tb_error_set(TB_EINVAL, "price", "price is required");
	const char *p = decimal;
	if (*p < '0' || *p > '9')
		return tb_error_set(TB_EINVAL, "price", "price must be a positive decimal number");
	int64_t whole = 0;
	int int_digits = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++int_digits > 15)
			return tb_error_set(TB_EINVAL, "price", "price is too large");
		whole = whole * 10 + (*p - '0');
	}
	int64_t frac = 0;
	int frac_digits = 0;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return tb_error_set(TB_EINVAL, "price", "price must be a positive decimal number");
		for (; *p >= '0' && *p <= '9'; p++) {
			if (*p != '0' && frac_digits >= exp)
				return tb_error_set(TB_EINVAL, "price",
					"price has more than %d decimal places", exp);
			if (frac_digits < exp) {
				frac = frac * 10 + (*p - '0');
				frac_digits++;
			}
		}
	}
	if (*p != '\0')
		return tb_error_set(TB_EINVAL, "price", "price must be a positive decimal number");
	for (; frac_digits < exp; frac_digits++)
		frac *= 10;
	int64_t scale = 1;
	for (int i = 0; i < exp; i++)
		scale *= 10;
	if (whole > TB_PRICE_MAX_MINOR / scale)
		return tb_error_set(TB_EINVAL, "price", "price is too large");
	int64_t minor = whole * scale + frac;
	if (minor > TB_PRICE_MAX_MINOR)
		return tb_error_set(TB_EINVAL, "price", "price is too large");
	*out = minor;
	return TB_OK;
}

tb_status tb_money_format(char **out, int64_t minor, const char *currency)
{
	if (!out)
		return tb_error_set(TB_EINVAL, "out", "out must not be NULL");
	*out = NULL;
	int exp = tb_currency_exponent(currency);
	if (exp < 0)
		return tb_error_set(TB_EINVAL, "currency", "currency must be a three-letter ISO 4217 code");
	char buf[48];
	const char *sign = minor < 0 ? "-" : "";
	uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	uint64_t scale = 1;
	for (int i = 0; i < exp; i++)
		scale *= 10;
	int n = snprintf(buf, sizeof(buf), "%s%llu", sign, (unsigned long long)(mag / scale));
	if (exp > 0 && n > 0) {
		/* The fraction, zero-padded to the currency's places. */
		char *p = buf + n;
		*p++ = '.';
		uint64_t frac = mag % scale;
		for (int i = exp - 1; i >= 0; i--) {
			p[i] = (char)('0' + frac % 10);
			frac /= 10;
		}
		p[exp] = '\0';
	}
	*out = strdup(buf);
	return *out ? TB_OK : tb_error__oom();
}
