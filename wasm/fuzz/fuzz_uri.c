/*
 * libFuzzer target for the URI core (uri*.c), built natively with ASan and
 * UBSan. The first input byte picks the mode and the URI type:
 *   even: the rest is URI text. Parse it; p11w_uri_normalize must agree with
 *         parse + format. When it parses, format it, check that formatting is a fixed point (format(parse(format(x))) equals
 *         format(x)) and that the field records round-trip through
 *         p11w_uri_from_records to the same formatted string.
 *   odd:  the rest is a record stream: build a URI from it, format it, and
 *         match it against the same bytes read as each kind of structure.
 * Any disagreement traps, so libFuzzer reports it as a crash.
 */
#include "uri.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t TYPES[8] = {
	P11W_URI_FOR_ANY, P11W_URI_FOR_OBJECT, P11W_URI_FOR_TOKEN, P11W_URI_FOR_MODULE,
	P11W_URI_FOR_MODULE_WITH_VERSION, P11W_URI_FOR_SLOT, P11W_URI_FOR_OBJECT | P11W_URI_FOR_TOKEN, 0,
};

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void same_string(const char *a, uint32_t a_len, const char *b, uint32_t b_len)
{
	check(a && b && a_len == b_len && memcmp(a, b, a_len) == 0);
}

/* A failed parse says why: an 'E' record carrying its code, then a 'P' record. */
static int has_error_record(const uint8_t *out, uint32_t len, int code)
{
	p11w_uri_reader reader = { out, len, 0 };
	p11w_uri_record rec;
	int found = 0;
	while (p11w_uri_next_record(&reader, &rec) > 0) {
		if (found)
			return rec.tag == 'P';
		found = rec.tag == 'E' && rec.num == (uint32_t)-code;
	}
	return 0;
}

static void fuzz_text(const uint8_t *data, size_t size, uint32_t type, uint32_t flags)
{
	p11w_uri *uri = p11w_uri_parse((const char *)data, (uint32_t)size, type);
	check(uri != NULL);
	uint32_t out_len;
	const uint8_t *out = p11w_uri_output(uri, &out_len);
	uint32_t norm_len;
	const char *norm = p11w_uri_normalize((const char *)data, (uint32_t)size, type, flags, &norm_len);
	if (p11w_uri_result(uri) != P11W_URI_OK) {
		check(has_error_record(out, out_len, p11w_uri_result(uri)));
		check(!norm && p11w_uri_result(p11w_uri_normalized()) == p11w_uri_result(uri));
		p11w_uri_free(uri);
		return;
	}
	uint32_t len0, len1, len2, len3;
	same_string(norm, norm_len, p11w_uri_format(uri, type, flags, &len0), len0);
	const char *first = p11w_uri_format(uri, P11W_URI_FOR_ANY, flags, &len1);
	check(first && memcmp(first, "pkcs11:", 7) == 0 && strlen(first) == len1);

	p11w_uri *again = p11w_uri_parse(first, len1, P11W_URI_FOR_ANY);
	check(p11w_uri_result(again) == P11W_URI_OK);
	same_string(first, len1, p11w_uri_format(again, P11W_URI_FOR_ANY, flags, &len2), len2);

	p11w_uri *rebuilt = p11w_uri_from_records(out, out_len);
	check(p11w_uri_result(rebuilt) == P11W_URI_OK);
	same_string(first, len1, p11w_uri_format(rebuilt, P11W_URI_FOR_ANY, flags, &len3), len3);
	check(p11w_uri_match_token(rebuilt, NULL, 0) == p11w_uri_match_token(uri, NULL, 0));

	p11w_uri_free(rebuilt);
	p11w_uri_free(again);
	p11w_uri_free(uri);
}

static void fuzz_records(const uint8_t *data, size_t size, uint32_t type, uint32_t flags)
{
	p11w_uri *uri = p11w_uri_from_records(data, (uint32_t)size);
	check(uri != NULL);
	uint32_t len;
	if (p11w_uri_result(uri) == P11W_URI_OK) {
		const char *text = p11w_uri_format(uri, type, flags, &len);
		check(text != NULL && strlen(text) == len);
	}
	int m = p11w_uri_match_module(uri, data, (uint32_t)size);
	int s = p11w_uri_match_slot(uri, data, (uint32_t)size);
	int t = p11w_uri_match_token(uri, data, (uint32_t)size);
	int a = p11w_uri_match_attributes(uri, data, (uint32_t)size);
	check(m >= -1 && m <= 1 && s >= -1 && s <= 1 && t >= -1 && t <= 1 && a >= -1 && a <= 1);
	p11w_uri_free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint32_t type = TYPES[(data[0] >> 1) & 7];
	uint32_t flags = data[0] & 0x10 ? P11W_URI_LOWERCASE : 0;
	/* A private copy, so reading past the input is caught even for the last byte. */
	uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_records(copy, size - 1, type, flags);
	else
		fuzz_text(copy, size - 1, type, flags);
	free(copy);
	return 0;
}
