/*
 * Formatting a PKCS#11 URI as p11-kit 0.24.1 does (reference section 5.3):
 * a fixed attribute order, path attributes filtered by the URI type, the
 * query always; every byte outside A-Z a-z 0-9 _ - . percent-encoded with
 * upper-case hex (lower-case on request), and `id` encoded entirely.
 */
#include "uri.h"

#include <string.h>

typedef struct {
	p11w_buf *out;
	const char *hex;
	int n_path, n_query;
} writer;

static int is_verbatim(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

/* Room for n more bytes and the terminator without growing (never true once failed). */
static int has_room(const p11w_buf *out, size_t n) { return !out->failed && n < out->cap - out->len; }

/* Short appends (names, separators): written in place when they fit, as most do. */
static void put(p11w_buf *out, const char *s, size_t n)
{
	if (!has_room(out, n)) {
		p11w_buf_append(out, s, n);
		return;
	}
	uint8_t *to = out->data + out->len;
	for (size_t i = 0; i < n; i++)
		to[i] = (uint8_t)s[i];
	out->len += n;
}

static void put_byte(p11w_buf *out, char c)
{
	if (!has_room(out, 1)) {
		p11w_buf_append_byte(out, (uint8_t)c);
		return;
	}
	out->data[out->len++] = (uint8_t)c;
}

static void put_str(p11w_buf *out, const char *s) { put(out, s, strlen(s)); }

/*
 * Written in place when the worst case (every byte escaped) fits; otherwise through a small
 * stack buffer, one append per chunk.
 */
static void encode(writer *w, const uint8_t *data, size_t len, int encode_all)
{
	p11w_buf *out = w->out;
	if (has_room(out, 0) && len <= (out->cap - out->len - 1) / 3) {
		uint8_t *to = out->data + out->len;
		for (size_t i = 0; i < len; i++) {
			uint8_t c = data[i];
			if (!encode_all && is_verbatim(c)) {
				*to++ = c;
			} else {
				to[0] = '%';
				to[1] = (uint8_t)w->hex[c >> 4];
				to[2] = (uint8_t)w->hex[c & 15];
				to += 3;
			}
		}
		out->len = (size_t)(to - out->data);
		return;
	}
	char chunk[192];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];
		if (n > sizeof(chunk) - 3) {
			p11w_buf_append(w->out, chunk, n);
			n = 0;
		}
		if (!encode_all && is_verbatim(c)) {
			chunk[n++] = (char)c;
		} else {
			chunk[n++] = '%';
			chunk[n++] = w->hex[c >> 4];
			chunk[n++] = w->hex[c & 15];
		}
	}
	p11w_buf_append(w->out, chunk, n);
}

static void path_name(writer *w, const char *name)
{
	if (w->n_path++)
		put_byte(w->out, ';');
	put_str(w->out, name);
	put_byte(w->out, '=');
}

static void query_name(writer *w, const char *name)
{
	put_byte(w->out, w->n_query++ ? '&' : '?');
	put_str(w->out, name);
	put_byte(w->out, '=');
}

/* A text field is unset when its first byte is 0; trailing spaces are padding. */
static void text(writer *w, const p11w_uri *uri, int field)
{
	const uint8_t *value = uri->text[field];
	if (!value[0])
		return;
	size_t len = uri->text_len[field];
	path_name(w, p11w_uri_field_name(field));
	encode(w, value, len, 0);
}

static void number(writer *w, uint64_t v)
{
	char digits[24];
	size_t n = sizeof(digits);
	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w->out, digits + n, sizeof(digits) - n);
}

static const char *class_name(uint32_t object_class)
{
	switch (object_class) {
	case P11W_CKO_DATA: return "data";
	case P11W_CKO_SECRET_KEY: return "secret-key";
	case P11W_CKO_CERTIFICATE: return "cert";
	case P11W_CKO_PUBLIC_KEY: return "public";
	case P11W_CKO_PRIVATE_KEY: return "private";
	default: return NULL; /* p11-kit writes nothing for other classes */
	}
}

static int wants(uint32_t type, uint32_t bits) { return (type & bits) == bits; }

int p11w_uri_format_to(const p11w_uri *uri, uint32_t type, uint32_t flags, p11w_buf *out)
{
	writer w = { out, flags & P11W_URI_LOWERCASE ? "0123456789abcdef" : "0123456789ABCDEF", 0, 0 };
	put(out, "pkcs11:", 7);

	if (wants(type, P11W_URI_FOR_MODULE)) {
		text(&w, uri, P11W_URI_F_LIBRARY_DESCRIPTION);
		text(&w, uri, P11W_URI_F_LIBRARY_MANUFACTURER);
	}
	if (wants(type, P11W_URI_FOR_MODULE_WITH_VERSION) &&
	    (uri->version_major != P11W_URI_NO_VERSION || uri->version_minor != P11W_URI_NO_VERSION)) {
		path_name(&w, "library-version");
		number(&w, uri->version_major);
		put_byte(out, '.');
		number(&w, uri->version_minor);
	}
	if (wants(type, P11W_URI_FOR_SLOT)) {
		text(&w, uri, P11W_URI_F_SLOT_DESCRIPTION);
		text(&w, uri, P11W_URI_F_SLOT_MANUFACTURER);
		if (uri->slot_id != P11W_URI_NO_SLOT_ID) {
			path_name(&w, "slot-id");
			number(&w, uri->slot_id);
		}
	}
	if (wants(type, P11W_URI_FOR_TOKEN)) {
		text(&w, uri, P11W_URI_F_MODEL);
		text(&w, uri, P11W_URI_F_MANUFACTURER);
		text(&w, uri, P11W_URI_F_SERIAL);
		text(&w, uri, P11W_URI_F_TOKEN);
	}
	if (wants(type, P11W_URI_FOR_OBJECT)) {
		const p11w_uri_bytes *id = &uri->bytes[P11W_URI_F_ID - P11W_URI_F_ID];
		const p11w_uri_bytes *label = &uri->bytes[P11W_URI_F_OBJECT - P11W_URI_F_ID];
		if (id->data) {
			path_name(&w, "id");
			encode(&w, id->data, id->len, 1);
		}
		if (label->data) {
			path_name(&w, "object");
			encode(&w, label->data, label->len, 0);
		}
		const char *name = uri->has_class ? class_name(uri->object_class) : NULL;
		if (name) {
			path_name(&w, "type");
			put_str(out, name);
		}
	}
	for (int i = 0; i < P11W_URI_N_STRINGS; i++) {
		const char *value = uri->strings[i];
		if (value) {
			query_name(&w, p11w_uri_field_name(P11W_URI_F_PIN_SOURCE + i));
			encode(&w, (const uint8_t *)value, strlen(value), 0);
		}
	}
	for (size_t i = 0; i < uri->n_queries; i++) {
		query_name(&w, uri->queries[i].name);
		encode(&w, (const uint8_t *)uri->queries[i].value, strlen(uri->queries[i].value), 0);
	}
	return out->failed ? P11W_URI_UNEXPECTED : P11W_URI_OK;
}
