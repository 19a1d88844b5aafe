/*
 * Record ids (UUIDv7), session tokens, and small text helpers.
 */
#include "internal.h"

#include <sodium.h>
#include <string.h>

/*
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then 12 bits used as a
 * counter within one millisecond ("method 1"), then 62 random bits.  The
 * counter keeps ids strictly increasing within the process, which the
 * keyset pagination relies on to never skip a row inserted before a page
 * was read.
 */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t id_last_ms = 0;
static unsigned id_counter = 0;

void tb_id__new(char out[TB_ID_SIZE])
{
	unsigned char b[16];
	randombytes_buf(b, sizeof(b));

	int64_t ms = tb_clock_real_now_ms();
	pthread_mutex_lock(&id_lock);
	if (ms <= id_last_ms) {
		ms = id_last_ms;
		if (++id_counter > 0xfff) {
			ms++;
			id_counter = b[6] & 0x7f;
		}
	} else {
		id_counter = ((unsigned)(b[6] & 0x07) << 8) | b[7]; /* start low: room to count */
	}
	id_last_ms = ms;
	unsigned counter = id_counter;
	pthread_mutex_unlock(&id_lock);

	uint64_t t = (uint64_t)ms;
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(t >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((counter >> 8) & 0x0f));
	b[7] = (unsigned char)(counter & 0xff);
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

bool tb_id__valid(const char *s)
{
	if (!s || strlen(s) != TB_ID_LEN)
		return false;
	for (size_t i = 0; i < TB_ID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43

void tb_token__new(char out[64])
{
	unsigned char raw[TOKEN_BYTES];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, 64, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

bool tb_token__valid(const char *s)
{
	if (!s || strnlen(s, TOKEN_CHARS + 1) != TOKEN_CHARS)
		return false;
	for (size_t i = 0; i < TOKEN_CHARS; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

void tb_token__hash(const char *token, unsigned char out[TB_TOKEN_HASH_SIZE])
{
	crypto_generichash(out, TB_TOKEN_HASH_SIZE, (const unsigned char *)token, strlen(token), NULL, 0);
}

bool tb_utf8__valid(const char *str, size_t len, size_t *chars_out)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, chars = 0;
	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			n = 1;
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
		chars++;
	}
	if (chars_out)
		*chars_out = chars;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char *tb_str__trim(char *buf)
{
	while (is_space(*buf))
		buf++;
	size_t n = strlen(buf);
	while (n > 0 && is_space(buf[n - 1]))
		buf[--n] = '\0';
	return buf;
}
