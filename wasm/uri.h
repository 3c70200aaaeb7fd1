/*
 * PKCS#11 URIs (RFC 7512) with p11-kit 0.24.1's observable behaviour:
 * parsing, formatting and matching against module, slot, token and object
 * information.
 *
 * A p11w_uri is made by p11w_uri_parse (from text) or p11w_uri_from_records
 * (from fields TypeScript sends), and released by p11w_uri_free. Its
 * p11w_uri_result says whether it is usable; a failed one still carries the
 * error records.
 *
 * Record stream (abi.h), both directions; fields absent are unset:
 *   'F' num=field (P11W_URI_F_*)    a=value bytes. Text fields (the fixed-width
 *                                   CK_* ones) come out with trailing spaces
 *                                   removed; going in they are space-padded to
 *                                   their width and must fit.
 *   'V' num=major << 8 | minor      library-version (each < 255)
 *   'I' a=decimal                   slot-id (< 2^64 - 1, which means unset)
 *   'C' num=CKO_* value             type (object class)
 *   'Q' a=name b=value              vendor query attribute, in name order
 *   'X' num=1                       unrecognized: nothing will match
 *   'U' a=name b=reason             out only: a path attribute that was ignored
 *   'E' num=-code a=detail b=name   out only: why parsing failed, and in which attribute
 *   'P' num=offset                  out only: where (byte offset in the input given)
 *
 * Structures to match against go in as records too (never as native CK_*
 * layouts: wasm32's CK_ULONG is 4 bytes):
 *   module: 'F' LIBRARY_DESCRIPTION / LIBRARY_MANUFACTURER, 'V' version
 *   slot:   'F' SLOT_DESCRIPTION / SLOT_MANUFACTURER, optional 'I' slot id
 *   token:  'F' TOKEN / MANUFACTURER / MODEL / SERIAL
 *   attributes: 'A' num=CKA_* type, a=value (CKA_CLASS: 8-byte little-endian)
 * Missing structure text fields count as blank (all spaces).
 */
#ifndef P11W_URI_H
#define P11W_URI_H

#include "abi.h"
#include "buf.h"

/* p11-kit's result codes. */
enum {
	P11W_URI_OK = 0,
	P11W_URI_UNEXPECTED = -1,
	P11W_URI_BAD_SCHEME = -2,
	P11W_URI_BAD_ENCODING = -3,
	P11W_URI_BAD_SYNTAX = -4,
	P11W_URI_BAD_VERSION = -5,
	P11W_URI_NOT_FOUND = -6,
};

/* p11-kit's URI types: which attributes parsing accepts and formatting writes. */
enum {
	P11W_URI_FOR_OBJECT = 1 << 1,
	P11W_URI_FOR_TOKEN = 1 << 2,
	P11W_URI_FOR_MODULE = 1 << 3,
	P11W_URI_FOR_MODULE_WITH_VERSION = 1 << 4 | P11W_URI_FOR_MODULE,
	P11W_URI_FOR_SLOT = 1 << 5,
	P11W_URI_FOR_ANY = 0xFFFF,
};

/* Formatting flags. */
enum { P11W_URI_LOWERCASE = 1 };

/* Field numbers of 'F' records. */
enum {
	/* fixed-width text, space padded; first byte 0 means unset */
	P11W_URI_F_LIBRARY_DESCRIPTION = 0,
	P11W_URI_F_LIBRARY_MANUFACTURER,
	P11W_URI_F_SLOT_DESCRIPTION,
	P11W_URI_F_SLOT_MANUFACTURER,
	P11W_URI_F_TOKEN,
	P11W_URI_F_MANUFACTURER,
	P11W_URI_F_MODEL,
	P11W_URI_F_SERIAL,
	/* object attributes: any bytes, any length */
	P11W_URI_F_ID,
	P11W_URI_F_OBJECT,
	/* query strings: no NUL (a decoded %00 ends them, as in C) */
	P11W_URI_F_PIN_SOURCE,
	P11W_URI_F_PIN_VALUE,
	P11W_URI_F_MODULE_NAME,
	P11W_URI_F_MODULE_PATH,
	P11W_URI_N_FIELDS
};
#define P11W_URI_N_TEXT (P11W_URI_F_SERIAL + 1)
#define P11W_URI_TEXT_MAX 64
#define P11W_URI_N_BYTES 2
#define P11W_URI_N_STRINGS 4

/* PKCS#11 numbers the URI layer knows. */
enum { P11W_CKA_CLASS = 0x0, P11W_CKA_LABEL = 0x3, P11W_CKA_ID = 0x102 };
enum {
	P11W_CKO_DATA = 0,
	P11W_CKO_CERTIFICATE = 1,
	P11W_CKO_PUBLIC_KEY = 2,
	P11W_CKO_PRIVATE_KEY = 3,
	P11W_CKO_SECRET_KEY = 4,
};

#define P11W_URI_NO_SLOT_ID UINT64_MAX
#define P11W_URI_NO_VERSION 0xFF

typedef struct {
	uint8_t *data; /* NULL: unset; else owned, len bytes (+ a NUL not counted) */
	size_t len;
} p11w_uri_bytes;

typedef struct {
	char *name;
	char *value;
} p11w_uri_query;

typedef struct p11w_uri {
	uint8_t text[P11W_URI_N_TEXT][P11W_URI_TEXT_MAX];
	uint32_t text_written; /* bit f: text[f] may hold bytes (clearing wipes only those) */
	uint8_t text_len[P11W_URI_N_TEXT]; /* text[f] without its padding; valid when text[f][0] */
	uint8_t version_major, version_minor; /* both 0xFF: unset */
	uint64_t slot_id;                     /* P11W_URI_NO_SLOT_ID: unset */
	p11w_uri_bytes bytes[P11W_URI_N_BYTES];
	int has_class;
	uint32_t object_class;
	char *strings[P11W_URI_N_STRINGS];
	p11w_uri_query *queries; /* sorted by name, stable */
	size_t n_queries, queries_cap;
	int unrecognized;

	int result;      /* P11W_URI_OK or the parse error */
	int described;   /* the field records are in out */
	p11w_buf out;    /* records (see above) */
	p11w_buf format; /* the last formatted string */
} p11w_uri;

/* The width of a text field (32, 64 or 16). */
size_t p11w_uri_text_width(int field);
/* The attribute name a field has in a URI ("token", "pin-source", ...). */
const char *p11w_uri_field_name(int field);

/* Object lifecycle and field setters (uri.c). Setters return 0 or a P11W_URI_* code. */
p11w_uri *p11w_uri_alloc(void);
/* Sets a text field to value (len <= its width), space padded. */
void p11w_uri_set_text(p11w_uri *uri, int field, const uint8_t *value, size_t len);
int p11w_uri_set_bytes(p11w_uri *uri, int field, const uint8_t *data, size_t len);
int p11w_uri_set_string(p11w_uri *uri, int field, const uint8_t *data, size_t len);
int p11w_uri_add_query(p11w_uri *uri, const uint8_t *name, size_t name_len,
                       const uint8_t *value, size_t value_len);
/* 1 if name is a vendor query name the parser accepts: [a-z0-9_-]+. */
int p11w_uri_is_vendor_name(const uint8_t *name, size_t len);

/* Reading a record stream that came in (uri.c). */
typedef struct {
	const uint8_t *data;
	size_t len, pos;
} p11w_uri_reader;

typedef struct {
	char tag;
	uint32_t num;
	const uint8_t *a, *b;
	size_t a_len, b_len;
} p11w_uri_record;

/* 1 with the next record in rec; 0 at the end; -1 if the stream is cut short. */
int p11w_uri_next_record(p11w_uri_reader *reader, p11w_uri_record *rec);

/* Parsing (uri_parse.c): fills a fresh uri; sets uri->result and the records. */
void p11w_uri_parse_into(p11w_uri *uri, const uint8_t *text, size_t len, uint32_t type);

/* Formatting (uri_format.c): appends the URI to out; 0 or P11W_URI_UNEXPECTED (no memory). */
int p11w_uri_format_to(const p11w_uri *uri, uint32_t type, uint32_t flags, p11w_buf *out);

/* Exports for TypeScript. */
P11W_EXPORT p11w_uri *p11w_uri_parse(const char *text, uint32_t len, uint32_t type);
P11W_EXPORT p11w_uri *p11w_uri_from_records(const uint8_t *data, uint32_t len);
P11W_EXPORT int p11w_uri_result(const p11w_uri *uri);
/* The records (above), owned by uri; NULL only when out of memory. */
P11W_EXPORT const uint8_t *p11w_uri_output(p11w_uri *uri, uint32_t *len);
/* The formatted string, owned by uri until the next format or free; NULL when out of memory. */
P11W_EXPORT const char *p11w_uri_format(p11w_uri *uri, uint32_t type, uint32_t flags, uint32_t *len);
P11W_EXPORT void p11w_uri_free(p11w_uri *uri);
/*
 * Parse then format with one type, in one call: the formatted string (length in *out_len),
 * or NULL when parsing failed or memory ran out. Both live in a URI object the core owns
 * and reuses on the next call; p11w_uri_normalized() returns it (result and records say
 * why it failed; do not free it).
 */
P11W_EXPORT const char *p11w_uri_normalize(const char *text, uint32_t len, uint32_t type, uint32_t flags,
                                           uint32_t *out_len);
P11W_EXPORT p11w_uri *p11w_uri_normalized(void);

/* Matching (uri_match.c): 1 match, 0 no match, -1 malformed structure records. */
P11W_EXPORT int p11w_uri_match_module(const p11w_uri *uri, const uint8_t *data, uint32_t len);
P11W_EXPORT int p11w_uri_match_slot(const p11w_uri *uri, const uint8_t *data, uint32_t len);
P11W_EXPORT int p11w_uri_match_token(const p11w_uri *uri, const uint8_t *data, uint32_t len);
P11W_EXPORT int p11w_uri_match_attributes(const p11w_uri *uri, const uint8_t *data, uint32_t len);

/* Bytes the allocator has handed out and not taken back (wasm only; 0 natively): leak checks. */
P11W_EXPORT uint32_t p11w_uri_heap_in_use(void);

#endif
