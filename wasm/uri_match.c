/*
 * Matching a URI against module, slot, token and object information as
 * p11-kit 0.24.1 does (reference section 5.4): an unrecognized URI matches
 * nothing; every text field the URI sets must equal the structure's
 * space-padded field over its whole width; unset fields match anything.
 * Structures arrive as records (uri.h), never as native CK_* layouts.
 */
#include "uri.h"

#include <string.h>

typedef struct {
	uint8_t text[P11W_URI_N_TEXT][P11W_URI_TEXT_MAX]; /* space padded */
	int has_version;
	uint8_t version_major, version_minor;
	int has_slot_id;
	uint64_t slot_id;
} structure;

static int parse_u64(const uint8_t *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 1;
}

/* Reads the records of a module, slot or token structure; 0 if they are malformed. */
static int read_structure(const uint8_t *data, uint32_t len, structure *st)
{
	memset(st, 0, sizeof(*st));
	memset(st->text, ' ', sizeof(st->text));
	p11w_uri_reader reader = { data, data ? len : 0, 0 };
	p11w_uri_record rec;
	int more;
	while ((more = p11w_uri_next_record(&reader, &rec)) > 0) {
		switch (rec.tag) {
		case 'F':
			if (rec.num >= P11W_URI_N_TEXT || rec.a_len > p11w_uri_text_width((int)rec.num))
				return 0;
			if (rec.a_len)
				memcpy(st->text[rec.num], rec.a, rec.a_len);
			break;
		case 'V':
			if (rec.num > 0xFFFF)
				return 0;
			st->has_version = 1;
			st->version_major = (uint8_t)(rec.num >> 8);
			st->version_minor = (uint8_t)rec.num;
			break;
		case 'I':
			if (!parse_u64(rec.a, rec.a_len, &st->slot_id))
				return 0;
			st->has_slot_id = 1;
			break;
		default:
			return 0;
		}
	}
	return more == 0;
}

static int text_matches(const p11w_uri *uri, const structure *st, int field)
{
	return !uri->text[field][0] ||
	       memcmp(uri->text[field], st->text[field], p11w_uri_text_width(field)) == 0;
}

static int match_fields(const p11w_uri *uri, const uint8_t *data, uint32_t len, int first, int last)
{
	structure st;
	if (!uri || !read_structure(data, len, &st))
		return -1;
	if (uri->unrecognized)
		return 0;
	for (int f = first; f <= last; f++) {
		if (!text_matches(uri, &st, f))
			return 0;
	}
	if (first == P11W_URI_F_LIBRARY_DESCRIPTION &&
	    (uri->version_major != P11W_URI_NO_VERSION || uri->version_minor != P11W_URI_NO_VERSION) &&
	    (!st.has_version || st.version_major != uri->version_major || st.version_minor != uri->version_minor))
		return 0;
	/* p11-kit's match_slot_info ignores slot-id; its iterator compares it when it knows the slot. */
	if (first == P11W_URI_F_SLOT_DESCRIPTION && st.has_slot_id && uri->slot_id != P11W_URI_NO_SLOT_ID &&
	    st.slot_id != uri->slot_id)
		return 0;
	return 1;
}

int p11w_uri_match_module(const p11w_uri *uri, const uint8_t *data, uint32_t len)
{
	return match_fields(uri, data, len, P11W_URI_F_LIBRARY_DESCRIPTION, P11W_URI_F_LIBRARY_MANUFACTURER);
}

int p11w_uri_match_slot(const p11w_uri *uri, const uint8_t *data, uint32_t len)
{
	return match_fields(uri, data, len, P11W_URI_F_SLOT_DESCRIPTION, P11W_URI_F_SLOT_MANUFACTURER);
}

int p11w_uri_match_token(const p11w_uri *uri, const uint8_t *data, uint32_t len)
{
	return match_fields(uri, data, len, P11W_URI_F_TOKEN, P11W_URI_F_SERIAL);
}

static int same(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Each given CKA_CLASS / CKA_LABEL / CKA_ID that the URI also has must be equal. */
int p11w_uri_match_attributes(const p11w_uri *uri, const uint8_t *data, uint32_t len)
{
	if (!uri)
		return -1;
	uint8_t klass[8];
	for (int i = 0; i < 8; i++)
		klass[i] = (uint8_t)(i < 4 ? uri->object_class >> (8 * i) : 0);
	const p11w_uri_bytes *id = &uri->bytes[P11W_URI_F_ID - P11W_URI_F_ID];
	const p11w_uri_bytes *label = &uri->bytes[P11W_URI_F_OBJECT - P11W_URI_F_ID];

	int match = 1;
	p11w_uri_reader reader = { data, data ? len : 0, 0 };
	p11w_uri_record rec;
	int more;
	while ((more = p11w_uri_next_record(&reader, &rec)) > 0) {
		if (rec.tag != 'A')
			return -1;
		if (rec.num == P11W_CKA_CLASS && uri->has_class)
			match &= same(rec.a, rec.a_len, klass, sizeof(klass));
		else if (rec.num == P11W_CKA_ID && id->data)
			match &= same(rec.a, rec.a_len, id->data, id->len);
		else if (rec.num == P11W_CKA_LABEL && label->data)
			match &= same(rec.a, rec.a_len, label->data, label->len);
	}
	if (more < 0)
		return -1;
	return uri->unrecognized ? 0 : match;
}
