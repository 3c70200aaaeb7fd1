/*
 * Parsing a PKCS#11 URI the way p11-kit 0.24.1 does (see the reference
 * specification, section 5.2): whitespace deleted anywhere, a path of
 * ';'-separated attributes that ends at the first empty segment or '?',
 * then a query of '&'-separated attributes. Unknown path attributes are
 * dropped and make the URI match nothing; errors stop at the first problem.
 */
#include "uri.h"

#include <stdlib.h>
#include <string.h>

enum kind { K_TEXT, K_BYTES, K_CLASS, K_SLOT_ID, K_VERSION, K_STRING };

/* A name with its length, so lookups compare lengths before bytes. */
#define NAME(s) s, sizeof(s) - 1

typedef struct {
	const char *name;
	size_t name_len;
	uint32_t type; /* all of these URI type bits must be asked for */
	enum kind kind;
	int field;
} path_attr;

static const path_attr PATH_ATTRS[] = {
	{ NAME("id"), P11W_URI_FOR_OBJECT, K_BYTES, P11W_URI_F_ID },
	{ NAME("object"), P11W_URI_FOR_OBJECT, K_BYTES, P11W_URI_F_OBJECT },
	{ NAME("type"), P11W_URI_FOR_OBJECT, K_CLASS, 0 },
	{ NAME("object-type"), P11W_URI_FOR_OBJECT, K_CLASS, 0 },
	{ NAME("objecttype"), P11W_URI_FOR_OBJECT, K_CLASS, 0 },
	{ NAME("token"), P11W_URI_FOR_TOKEN, K_TEXT, P11W_URI_F_TOKEN },
	{ NAME("manufacturer"), P11W_URI_FOR_TOKEN, K_TEXT, P11W_URI_F_MANUFACTURER },
	{ NAME("serial"), P11W_URI_FOR_TOKEN, K_TEXT, P11W_URI_F_SERIAL },
	{ NAME("model"), P11W_URI_FOR_TOKEN, K_TEXT, P11W_URI_F_MODEL },
	{ NAME("slot-description"), P11W_URI_FOR_SLOT, K_TEXT, P11W_URI_F_SLOT_DESCRIPTION },
	{ NAME("slot-manufacturer"), P11W_URI_FOR_SLOT, K_TEXT, P11W_URI_F_SLOT_MANUFACTURER },
	{ NAME("slot-id"), P11W_URI_FOR_SLOT, K_SLOT_ID, 0 },
	{ NAME("library-description"), P11W_URI_FOR_MODULE, K_TEXT, P11W_URI_F_LIBRARY_DESCRIPTION },
	{ NAME("library-manufacturer"), P11W_URI_FOR_MODULE, K_TEXT, P11W_URI_F_LIBRARY_MANUFACTURER },
	{ NAME("library-version"), P11W_URI_FOR_MODULE_WITH_VERSION, K_VERSION, 0 },
	/* accepted in the path for backwards compatibility, whatever the type */
	{ NAME("pin-source"), 0, K_STRING, P11W_URI_F_PIN_SOURCE },
	{ NAME("pinfile"), 0, K_STRING, P11W_URI_F_PIN_SOURCE },
	{ NAME("pin-value"), 0, K_STRING, P11W_URI_F_PIN_VALUE },
};

static const struct {
	const char *name;
	size_t name_len;
	int field;
} QUERY_ATTRS[] = {
	{ NAME("pin-source"), P11W_URI_F_PIN_SOURCE },
	{ NAME("pinfile"), P11W_URI_F_PIN_SOURCE },
	{ NAME("pin-value"), P11W_URI_F_PIN_VALUE },
	{ NAME("module-name"), P11W_URI_F_MODULE_NAME },
	{ NAME("module-path"), P11W_URI_F_MODULE_PATH },
};

static const struct {
	const char *name;
	size_t name_len;
	uint32_t object_class;
} CLASSES[] = {
	{ NAME("cert"), P11W_CKO_CERTIFICATE },
	{ NAME("public"), P11W_CKO_PUBLIC_KEY },
	{ NAME("private"), P11W_CKO_PRIVATE_KEY },
	{ NAME("secret-key"), P11W_CKO_SECRET_KEY },
	{ NAME("secretkey"), P11W_CKO_SECRET_KEY },
	{ NAME("data"), P11W_CKO_DATA },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
	p11w_uri *uri;
	uint32_t type;
	const uint8_t *s; /* the text with whitespace deleted */
	size_t len;
	const uint8_t *orig; /* the text as given, for error offsets */
	size_t orig_len;
	uint8_t *decoded; /* the last percent-decoded value: `small`, or owned when larger */
	size_t decoded_len, decoded_cap;
	uint8_t small[256]; /* most values fit: no allocation per parse */
} parser;

/* p11-kit deletes these everywhere before parsing; tab and form feed are kept. */
static int is_deleted_space(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\v'; }

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int equals(const uint8_t *s, size_t len, const char *word, size_t word_len)
{
	return word_len == len && memcmp(s, word, len) == 0;
}

/* Offset in the text as given of the character at offset `at` of the stripped text. */
static size_t original_offset(const parser *p, size_t at)
{
	if (p->s == p->orig)
		return at;
	size_t i = 0;
	for (size_t kept = 0; i < p->orig_len; i++) {
		if (is_deleted_space(p->orig[i]))
			continue;
		if (kept++ == at)
			break;
	}
	return i;
}

static int fail(parser *p, int code, size_t at, const char *detail, const uint8_t *name, size_t name_len)
{
	p11w_uri *uri = p->uri;
	uri->result = code;
	p11w_record(&uri->out, 'E', (uint32_t)-code, detail, strlen(detail), (const char *)name, name_len);
	p11w_record(&uri->out, 'P', (uint32_t)original_offset(p, at), "", 0, "", 0);
	return 0;
}

static void ignore(parser *p, const uint8_t *name, size_t name_len, const char *reason)
{
	p->uri->unrecognized = 1;
	p11w_record(&p->uri->out, 'U', 0, (const char *)name, name_len, reason, strlen(reason));
}

/* Percent-decodes s[start, end) into p->decoded; 0 (and the error set) on a bad escape. */
static int decode(parser *p, size_t start, size_t end, const uint8_t *name, size_t name_len)
{
	size_t need = end - start + 1; /* decoding never grows a value; +1 keeps it non-empty */
	if (need > p->decoded_cap) {
		uint8_t *grown = p->decoded == p->small ? malloc(need) : realloc(p->decoded, need);
		if (!grown)
			return fail(p, P11W_URI_UNEXPECTED, start, "out of memory", name, name_len);
		p->decoded = grown;
		p->decoded_cap = need;
	}
	uint8_t *out = p->decoded;
	for (size_t i = start; i < end; i++) {
		uint8_t c = p->s[i];
		if (c == '%') {
			int hi = i + 1 < end ? hex_digit(p->s[i + 1]) : -1;
			int lo = i + 2 < end ? hex_digit(p->s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return fail(p, P11W_URI_BAD_ENCODING, i, "'%' must be followed by two hex digits",
				            name, name_len);
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		*out++ = c;
	}
	p->decoded_len = (size_t)(out - p->decoded);
	return 1;
}

static const uint8_t *decoded(parser *p) { return p->decoded; }

static int set_result(parser *p, int rc, size_t at, const uint8_t *name, size_t name_len)
{
	return rc == P11W_URI_OK ? 1 : fail(p, rc, at, "out of memory", name, name_len);
}

/* Decimal digits with p11-kit 0.24.1's wrap-around (no overflow check); empty is 0. */
static int parse_slot_id(parser *p, size_t start, size_t end, const uint8_t *name, size_t name_len)
{
	uint64_t v = 0;
	for (size_t i = start; i < end; i++) {
		uint8_t c = p->s[i];
		if (c < '0' || c > '9')
			return fail(p, P11W_URI_BAD_SYNTAX, i, "slot-id must be decimal digits", name, name_len);
		v = v * 10 + (uint64_t)(c - '0');
	}
	p->uri->slot_id = v;
	return 1;
}

/* One version number: digits, accumulated modulo 2^32 as p11-kit does, then below 255. */
static int version_part(const uint8_t *s, size_t len, uint8_t *out)
{
	uint32_t v = 0;
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v >= 255)
		return 0;
	*out = (uint8_t)v;
	return 1;
}

static int parse_version(parser *p, size_t start, size_t end, const uint8_t *name, size_t name_len)
{
	const uint8_t *s = p->s + start;
	size_t len = end - start;
	const uint8_t *dot = memchr(s, '.', len);
	size_t major_len = dot ? (size_t)(dot - s) : len;
	uint8_t major, minor = 0;
	if (!version_part(s, major_len, &major) ||
	    (dot && !version_part(dot + 1, len - major_len - 1, &minor)))
		return fail(p, P11W_URI_BAD_VERSION, start,
		            "library-version must be M or M.m, decimal, each below 255", name, name_len);
	p->uri->version_major = major;
	p->uri->version_minor = minor;
	return 1;
}

static int parse_class(parser *p, size_t start, size_t end, const uint8_t *name, size_t name_len)
{
	for (size_t i = 0; i < COUNT(CLASSES); i++) {
		if (equals(p->s + start, end - start, CLASSES[i].name, CLASSES[i].name_len)) {
			p->uri->has_class = 1;
			p->uri->object_class = CLASSES[i].object_class;
			return 1;
		}
	}
	ignore(p, name, name_len, "unknown object type");
	return 1;
}

static int parse_text(parser *p, int field, size_t start, size_t end, const uint8_t *name, size_t name_len)
{
	if (!decode(p, start, end, name, name_len))
		return 0;
	size_t width = p11w_uri_text_width(field);
	if (p->decoded_len > width) {
		ignore(p, name, name_len, width == 16 ? "value is longer than the 16-byte field"
		                          : width == 32 ? "value is longer than the 32-byte field"
		                                        : "value is longer than the 64-byte field");
		return 1;
	}
	p11w_uri_set_text(p->uri, field, p->decoded, p->decoded_len);
	return 1;
}

static int path_attribute(parser *p, size_t start, size_t end)
{
	const uint8_t *name = p->s + start;
	const uint8_t *eq = memchr(name, '=', end - start);
	if (!eq || eq == name)
		return fail(p, P11W_URI_BAD_SYNTAX, start, "an attribute must be name=value", name,
		            eq ? 0 : end - start);
	size_t name_len = (size_t)(eq - name);
	size_t value = start + name_len + 1;

	const path_attr *attr = NULL;
	for (size_t i = 0; i < COUNT(PATH_ATTRS) && !attr; i++) {
		if (equals(name, name_len, PATH_ATTRS[i].name, PATH_ATTRS[i].name_len))
			attr = &PATH_ATTRS[i];
	}
	if (!attr) {
		ignore(p, name, name_len, "unknown path attribute");
		return 1;
	}
	if ((p->type & attr->type) != attr->type) {
		ignore(p, name, name_len, "not accepted for this URI type");
		return 1;
	}
	switch (attr->kind) {
	case K_TEXT:
		return parse_text(p, attr->field, value, end, name, name_len);
	case K_BYTES:
		if (!decode(p, value, end, name, name_len))
			return 0;
		return set_result(p, p11w_uri_set_bytes(p->uri, attr->field, decoded(p), p->decoded_len),
		                  value, name, name_len);
	case K_STRING:
		if (!decode(p, value, end, name, name_len))
			return 0;
		return set_result(p, p11w_uri_set_string(p->uri, attr->field, decoded(p), p->decoded_len),
		                  value, name, name_len);
	case K_CLASS:
		return parse_class(p, value, end, name, name_len);
	case K_SLOT_ID:
		return parse_slot_id(p, value, end, name, name_len);
	case K_VERSION:
		return parse_version(p, value, end, name, name_len);
	}
	return 1;
}

static int query_attribute(parser *p, size_t start, size_t end)
{
	const uint8_t *name = p->s + start;
	const uint8_t *eq = memchr(name, '=', end - start);
	if (!eq || eq == name)
		return fail(p, P11W_URI_BAD_SYNTAX, start, "a query attribute must be name=value", name,
		            eq ? 0 : end - start);
	size_t name_len = (size_t)(eq - name);
	size_t value = start + name_len + 1;

	for (size_t i = 0; i < COUNT(QUERY_ATTRS); i++) {
		if (equals(name, name_len, QUERY_ATTRS[i].name, QUERY_ATTRS[i].name_len)) {
			if (!decode(p, value, end, name, name_len))
				return 0;
			return set_result(p, p11w_uri_set_string(p->uri, QUERY_ATTRS[i].field, decoded(p), p->decoded_len),
			                  value, name, name_len);
		}
	}
	if (!p11w_uri_is_vendor_name(name, name_len))
		return fail(p, P11W_URI_UNEXPECTED, start,
		            "a vendor query attribute name must be made of a-z 0-9 - _ only", name, name_len);
	if (!decode(p, value, end, name, name_len))
		return 0;
	return set_result(p, p11w_uri_add_query(p->uri, name, name_len, decoded(p), p->decoded_len), value,
	                  name, name_len);
}

static int parse_scheme(parser *p, size_t *pos)
{
	static const char SCHEME[] = "pkcs11";
	const uint8_t *colon = memchr(p->s, ':', p->len);
	if (!colon)
		return fail(p, P11W_URI_BAD_SCHEME, 0, "no ':' after a scheme", NULL, 0);
	size_t n = (size_t)(colon - p->s);
	int ok = n == sizeof(SCHEME) - 1;
	for (size_t i = 0; ok && i < n; i++) {
		uint8_t c = p->s[i];
		ok = (c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c) == (uint8_t)SCHEME[i];
	}
	if (!ok)
		return fail(p, P11W_URI_BAD_SCHEME, 0, "the scheme must be 'pkcs11'", NULL, 0);
	*pos = n + 1;
	return 1;
}

static void parse_all(parser *p)
{
	size_t pos;
	if (!parse_scheme(p, &pos))
		return;
	for (;;) {
		size_t end = pos;
		while (end < p->len && p->s[end] != ';' && p->s[end] != '?')
			end++;
		if (end == pos)
			break; /* an empty segment ends the path, even before another ';' */
		if (!path_attribute(p, pos, end))
			return;
		if (end < p->len && p->s[end] == ';') {
			pos = end + 1;
		} else {
			pos = end;
			break;
		}
	}
	if (pos >= p->len)
		return;
	/* Whatever ended the path (';' or '?') starts the query. */
	for (pos++; pos < p->len;) {
		size_t end = pos;
		while (end < p->len && p->s[end] != '&')
			end++;
		if (!query_attribute(p, pos, end))
			return;
		pos = end + 1;
	}
}

void p11w_uri_parse_into(p11w_uri *uri, const uint8_t *text, size_t len, uint32_t type)
{
	parser p; /* field by field: an initializer would zero `small` on every parse */
	p.uri = uri;
	p.type = type;
	p.s = p.orig = text;
	p.len = p.orig_len = len;
	p.decoded = p.small;
	p.decoded_len = 0;
	p.decoded_cap = sizeof(p.small);

	size_t kept = 0;
	for (size_t i = 0; i < len; i++) {
		if (!text[i]) {
			fail(&p, P11W_URI_BAD_ENCODING, i, "the URI contains a NUL byte", NULL, 0);
			return;
		}
		kept += !is_deleted_space(text[i]);
	}
	uint8_t *stripped = NULL;
	if (kept != len) {
		stripped = malloc(kept ? kept : 1);
		if (!stripped) {
			fail(&p, P11W_URI_UNEXPECTED, 0, "out of memory", NULL, 0);
			return;
		}
		for (size_t i = 0, j = 0; i < len; i++) {
			if (!is_deleted_space(text[i]))
				stripped[j++] = text[i];
		}
		p.s = stripped;
		p.len = kept;
	}
	parse_all(&p);
	free(stripped);
	if (p.decoded != p.small)
		free(p.decoded);
}
