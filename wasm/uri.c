/* The URI object: lifecycle, setters, and the record streams in and out (see uri.h). */
#include "uri.h"

#include <stdlib.h>
#include <string.h>

#ifdef __EMSCRIPTEN__
#include <malloc.h>
#endif

static const struct {
	const char *name;
	size_t width; /* text fields only */
} FIELDS[P11W_URI_N_FIELDS] = {
	[P11W_URI_F_LIBRARY_DESCRIPTION] = { "library-description", 32 },
	[P11W_URI_F_LIBRARY_MANUFACTURER] = { "library-manufacturer", 32 },
	[P11W_URI_F_SLOT_DESCRIPTION] = { "slot-description", 64 },
	[P11W_URI_F_SLOT_MANUFACTURER] = { "slot-manufacturer", 32 },
	[P11W_URI_F_TOKEN] = { "token", 32 },
	[P11W_URI_F_MANUFACTURER] = { "manufacturer", 32 },
	[P11W_URI_F_MODEL] = { "model", 16 },
	[P11W_URI_F_SERIAL] = { "serial", 16 },
	[P11W_URI_F_ID] = { "id", 0 },
	[P11W_URI_F_OBJECT] = { "object", 0 },
	[P11W_URI_F_PIN_SOURCE] = { "pin-source", 0 },
	[P11W_URI_F_PIN_VALUE] = { "pin-value", 0 },
	[P11W_URI_F_MODULE_NAME] = { "module-name", 0 },
	[P11W_URI_F_MODULE_PATH] = { "module-path", 0 },
};

size_t p11w_uri_text_width(int field) { return field >= 0 && field < P11W_URI_N_TEXT ? FIELDS[field].width : 0; }

const char *p11w_uri_field_name(int field)
{
	return field >= 0 && field < P11W_URI_N_FIELDS ? FIELDS[field].name : "";
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void clear_fields(p11w_uri *uri)
{
	for (int i = 0; i < P11W_URI_N_BYTES; i++) {
		free(uri->bytes[i].data);
		uri->bytes[i].data = NULL;
		uri->bytes[i].len = 0;
	}
	for (int i = 0; i < P11W_URI_N_STRINGS; i++) {
		free(uri->strings[i]);
		uri->strings[i] = NULL;
	}
	for (size_t i = 0; i < uri->n_queries; i++) {
		free(uri->queries[i].name);
		free(uri->queries[i].value);
	}
	free(uri->queries);
	uri->queries = NULL;
	uri->n_queries = uri->queries_cap = 0;
	/* Only the fields written since the last clear: a parse sets one or two of the eight. */
	for (uint32_t bits = uri->text_written; bits; bits &= bits - 1)
		memset(uri->text[__builtin_ctz(bits)], 0, P11W_URI_TEXT_MAX);
	uri->text_written = 0;
	uri->version_major = uri->version_minor = P11W_URI_NO_VERSION;
	uri->slot_id = P11W_URI_NO_SLOT_ID;
	uri->has_class = 0;
	uri->object_class = 0;
	uri->unrecognized = 0;
}

p11w_uri *p11w_uri_alloc(void)
{
	p11w_uri *uri = calloc(1, sizeof(*uri));
	if (!uri)
		return NULL;
	p11w_buf_init(&uri->out);
	p11w_buf_init(&uri->format);
	clear_fields(uri);
	return uri;
}

void p11w_uri_free(p11w_uri *uri)
{
	if (!uri)
		return;
	clear_fields(uri);
	p11w_buf_clear(&uri->out);
	p11w_buf_clear(&uri->format);
	free(uri);
}

/* ---- setters -------------------------------------------------------------------------- */

void p11w_uri_set_text(p11w_uri *uri, int field, const uint8_t *value, size_t len)
{
	uri->text_written |= 1u << field;
	memset(uri->text[field], ' ', FIELDS[field].width);
	if (len)
		memcpy(uri->text[field], value, len);
	while (len > 0 && value[len - 1] == ' ') /* spaces at the end read as padding, as in p11-kit */
		len--;
	uri->text_len[field] = (uint8_t)len;
}

static uint8_t *copy_bytes(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len + 1);
	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, data, len);
	copy[len] = 0;
	return copy;
}

int p11w_uri_set_bytes(p11w_uri *uri, int field, const uint8_t *data, size_t len)
{
	p11w_uri_bytes *slot = &uri->bytes[field - P11W_URI_F_ID];
	uint8_t *copy = copy_bytes(data, len);
	if (!copy)
		return P11W_URI_UNEXPECTED;
	free(slot->data);
	slot->data = copy;
	slot->len = len;
	return P11W_URI_OK;
}

/* Query strings are C strings in p11-kit: a NUL byte ends them. */
int p11w_uri_set_string(p11w_uri *uri, int field, const uint8_t *data, size_t len)
{
	const uint8_t *nul = len ? memchr(data, 0, len) : NULL;
	if (nul)
		len = (size_t)(nul - data);
	char *copy = (char *)copy_bytes(data, len);
	if (!copy)
		return P11W_URI_UNEXPECTED;
	char **slot = &uri->strings[field - P11W_URI_F_PIN_SOURCE];
	free(*slot);
	*slot = copy;
	return P11W_URI_OK;
}

int p11w_uri_is_vendor_name(const uint8_t *name, size_t len)
{
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Inserted after every entry whose name sorts before or equal to it: sorted and stable. */
int p11w_uri_add_query(p11w_uri *uri, const uint8_t *name, size_t name_len,
                       const uint8_t *value, size_t value_len)
{
	const uint8_t *nul = value_len ? memchr(value, 0, value_len) : NULL;
	if (nul)
		value_len = (size_t)(nul - value);
	if (uri->n_queries == uri->queries_cap) {
		size_t cap = uri->queries_cap ? uri->queries_cap * 2 : 4;
		p11w_uri_query *grown = realloc(uri->queries, cap * sizeof(*grown));
		if (!grown)
			return P11W_URI_UNEXPECTED;
		uri->queries = grown;
		uri->queries_cap = cap;
	}
	char *n = (char *)copy_bytes(name, name_len);
	char *v = (char *)copy_bytes(value, value_len);
	if (!n || !v) {
		free(n);
		free(v);
		return P11W_URI_UNEXPECTED;
	}
	size_t at = uri->n_queries;
	while (at > 0 && strcmp(uri->queries[at - 1].name, n) > 0)
		at--;
	memmove(uri->queries + at + 1, uri->queries + at, (uri->n_queries - at) * sizeof(*uri->queries));
	uri->queries[at].name = n;
	uri->queries[at].value = v;
	uri->n_queries++;
	return P11W_URI_OK;
}

/* ---- record streams ------------------------------------------------------------------- */

static uint32_t read_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int p11w_uri_next_record(p11w_uri_reader *r, p11w_uri_record *rec)
{
	if (r->pos >= r->len)
		return 0;
	size_t left = r->len - r->pos;
	const uint8_t *p = r->data + r->pos;
	if (left < 9)
		return -1;
	rec->tag = (char)p[0];
	rec->num = read_u32(p + 1);
	rec->a_len = read_u32(p + 5);
	if (rec->a_len > left - 9 || left - 9 - rec->a_len < 4)
		return -1;
	rec->a = p + 9;
	rec->b_len = read_u32(p + 9 + rec->a_len);
	if (rec->b_len > left - 13 - rec->a_len)
		return -1;
	rec->b = p + 13 + rec->a_len;
	r->pos += 13 + rec->a_len + rec->b_len;
	return 1;
}

static void fail(p11w_uri *uri, int code, const char *detail, const char *name)
{
	uri->result = code;
	p11w_record_str(&uri->out, 'E', (uint32_t)-code, detail, name);
}

/* Strict decimal below 2^64 - 1 (which would mean unset). */
static int parse_slot_id(const uint8_t *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		uint64_t digit = (uint64_t)(s[i] - '0');
		if (v > (P11W_URI_NO_SLOT_ID - 1 - digit) / 10)
			return 0;
		v = v * 10 + digit;
	}
	*out = v;
	return 1;
}

static int is_query_name(const uint8_t *name, size_t len)
{
	static const char *const RESERVED[] = { "pin-source", "pinfile", "pin-value", "module-name", "module-path" };
	for (size_t i = 0; i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++) {
		if (strlen(RESERVED[i]) == len && memcmp(RESERVED[i], name, len) == 0)
			return 1;
	}
	return 0;
}

static int apply_field(p11w_uri *uri, const p11w_uri_record *rec)
{
	int field = (int)rec->num;
	if (rec->num >= P11W_URI_N_FIELDS) {
		fail(uri, P11W_URI_BAD_SYNTAX, "unknown field number", "");
		return 0;
	}
	const char *name = FIELDS[field].name;
	if (field < P11W_URI_N_TEXT) {
		if (rec->a_len > FIELDS[field].width) {
			fail(uri, P11W_URI_BAD_SYNTAX, "value is longer than the PKCS#11 field holds", name);
			return 0;
		}
		p11w_uri_set_text(uri, field, rec->a, rec->a_len);
		return 1;
	}
	int rc;
	if (field < P11W_URI_F_PIN_SOURCE) {
		rc = p11w_uri_set_bytes(uri, field, rec->a, rec->a_len);
	} else {
		if (rec->a_len && memchr(rec->a, 0, rec->a_len)) {
			fail(uri, P11W_URI_BAD_ENCODING, "value contains a NUL character", name);
			return 0;
		}
		rc = p11w_uri_set_string(uri, field, rec->a, rec->a_len);
	}
	if (rc != P11W_URI_OK) {
		fail(uri, rc, "out of memory", name);
		return 0;
	}
	return 1;
}

static int apply_record(p11w_uri *uri, const p11w_uri_record *rec)
{
	switch (rec->tag) {
	case 'F':
		return apply_field(uri, rec);
	case 'V':
		if ((rec->num >> 8) >= 255 || (rec->num & 0xFF) >= 255 || rec->num > 0xFFFF) {
			fail(uri, P11W_URI_BAD_VERSION, "major and minor must each be below 255", "library-version");
			return 0;
		}
		uri->version_major = (uint8_t)(rec->num >> 8);
		uri->version_minor = (uint8_t)rec->num;
		return 1;
	case 'I':
		if (!parse_slot_id(rec->a, rec->a_len, &uri->slot_id)) {
			fail(uri, P11W_URI_BAD_SYNTAX, "must be a decimal number below 2^64 - 1", "slot-id");
			return 0;
		}
		return 1;
	case 'C':
		uri->has_class = 1;
		uri->object_class = rec->num;
		return 1;
	case 'Q':
		if (!p11w_uri_is_vendor_name(rec->a, rec->a_len)) {
			fail(uri, P11W_URI_UNEXPECTED, "a vendor query name must be made of a-z 0-9 - _", "");
			return 0;
		}
		if (is_query_name(rec->a, rec->a_len)) {
			fail(uri, P11W_URI_BAD_SYNTAX, "a standard query attribute cannot be a vendor attribute", "");
			return 0;
		}
		if (rec->b_len && memchr(rec->b, 0, rec->b_len)) {
			fail(uri, P11W_URI_BAD_ENCODING, "vendor query value contains a NUL character", "");
			return 0;
		}
		if (p11w_uri_add_query(uri, rec->a, rec->a_len, rec->b, rec->b_len) != P11W_URI_OK) {
			fail(uri, P11W_URI_UNEXPECTED, "out of memory", "");
			return 0;
		}
		return 1;
	case 'X':
		uri->unrecognized = rec->num != 0;
		return 1;
	case 'U': /* what a parse ignored: information only */
		return 1;
	default:
		fail(uri, P11W_URI_UNEXPECTED, "unknown record tag", "");
		return 0;
	}
}

p11w_uri *p11w_uri_from_records(const uint8_t *data, uint32_t len)
{
	p11w_uri *uri = p11w_uri_alloc();
	if (!uri)
		return NULL;
	p11w_uri_reader reader = { data, data ? len : 0, 0 };
	p11w_uri_record rec;
	int more;
	while ((more = p11w_uri_next_record(&reader, &rec)) > 0) {
		if (!apply_record(uri, &rec))
			return uri;
	}
	if (more < 0)
		fail(uri, P11W_URI_UNEXPECTED, "truncated record stream", "");
	return uri;
}

static void describe(p11w_uri *uri)
{
	p11w_buf *out = &uri->out;
	char num[24];
	for (int f = 0; f < P11W_URI_N_TEXT; f++) {
		if (uri->text[f][0])
			p11w_record(out, 'F', (uint32_t)f, (const char *)uri->text[f],
			            uri->text_len[f], "", 0);
	}
	for (int i = 0; i < P11W_URI_N_BYTES; i++) {
		if (uri->bytes[i].data)
			p11w_record(out, 'F', (uint32_t)(P11W_URI_F_ID + i), (const char *)uri->bytes[i].data,
			            uri->bytes[i].len, "", 0);
	}
	for (int i = 0; i < P11W_URI_N_STRINGS; i++) {
		if (uri->strings[i])
			p11w_record_str(out, 'F', (uint32_t)(P11W_URI_F_PIN_SOURCE + i), uri->strings[i], "");
	}
	if (uri->version_major != P11W_URI_NO_VERSION || uri->version_minor != P11W_URI_NO_VERSION)
		p11w_record_str(out, 'V', (uint32_t)uri->version_major << 8 | uri->version_minor, "", "");
	if (uri->slot_id != P11W_URI_NO_SLOT_ID) {
		size_t n = sizeof(num);
		uint64_t v = uri->slot_id;
		do {
			num[--n] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		p11w_record(out, 'I', 0, num + n, sizeof(num) - n, "", 0);
	}
	if (uri->has_class)
		p11w_record_str(out, 'C', uri->object_class, "", "");
	for (size_t i = 0; i < uri->n_queries; i++)
		p11w_record_str(out, 'Q', 0, uri->queries[i].name, uri->queries[i].value);
	if (uri->unrecognized)
		p11w_record_str(out, 'X', 1, "", "");
}

/* ---- exports -------------------------------------------------------------------------- */

p11w_uri *p11w_uri_parse(const char *text, uint32_t len, uint32_t type)
{
	p11w_uri *uri = p11w_uri_alloc();
	if (!uri)
		return NULL;
	p11w_uri_parse_into(uri, (const uint8_t *)(text ? text : ""), text ? len : 0, type);
	return uri;
}

int p11w_uri_result(const p11w_uri *uri) { return uri ? uri->result : P11W_URI_UNEXPECTED; }

const uint8_t *p11w_uri_output(p11w_uri *uri, uint32_t *len)
{
	if (!uri->described && uri->result == P11W_URI_OK) {
		describe(uri);
		uri->described = 1;
	}
	const uint8_t *data = (const uint8_t *)p11w_buf_cstr(&uri->out); /* non-NULL even when empty */
	*len = data ? (uint32_t)uri->out.len : 0;
	return data;
}

const char *p11w_uri_format(p11w_uri *uri, uint32_t type, uint32_t flags, uint32_t *len)
{
	/* The buffer is kept between calls; most URIs fit the first 256 bytes. */
	if (uri->format.failed)
		p11w_buf_clear(&uri->format);
	uri->format.len = 0;
	if (!uri->format.data) {
		uri->format.data = malloc(256);
		uri->format.cap = uri->format.data ? 256 : 0;
	}
	if (p11w_uri_format_to(uri, type, flags, &uri->format) != P11W_URI_OK) {
		*len = 0;
		return NULL;
	}
	*len = (uint32_t)uri->format.len;
	return p11w_buf_cstr(&uri->format);
}

/* One URI object reused by every normalize call: no allocation for the object or its buffers. */
static p11w_uri *normalizer;

const char *p11w_uri_normalize(const char *text, uint32_t len, uint32_t type, uint32_t flags, uint32_t *out_len)
{
	*out_len = 0;
	if (!normalizer && !(normalizer = p11w_uri_alloc()))
		return NULL;
	p11w_uri *uri = normalizer;
	clear_fields(uri);
	uri->result = P11W_URI_OK;
	uri->described = 0;
	if (uri->out.failed)
		p11w_buf_clear(&uri->out);
	uri->out.len = 0;
	p11w_uri_parse_into(uri, (const uint8_t *)(text ? text : ""), text ? len : 0, type);
	const char *formatted = uri->result == P11W_URI_OK ? p11w_uri_format(uri, type, flags, out_len) : NULL;
	if (!formatted && uri->result == P11W_URI_OK)
		uri->result = P11W_URI_UNEXPECTED;
	/* The fields are not needed any more: keep no copies (a pin-value among them) around. */
	clear_fields(uri);
	return formatted;
}

p11w_uri *p11w_uri_normalized(void) { return normalizer; }

uint32_t p11w_uri_heap_in_use(void)
{
#ifdef __EMSCRIPTEN__
	return (uint32_t)mallinfo().uordblks;
#else
	return 0;
#endif
}
