#include "buf.h"
#include "abi.h"

#include <stdlib.h>
#include <string.h>

void *p11w_alloc(size_t size) { return malloc(size ? size : 1); }
void p11w_free(void *ptr) { free(ptr); }

void p11w_buf_init(p11w_buf *buf)
{
	buf->data = NULL;
	buf->len = buf->cap = 0;
	buf->failed = 0;
}

void p11w_buf_clear(p11w_buf *buf)
{
	free(buf->data);
	p11w_buf_init(buf);
}

static int reserve(p11w_buf *buf, size_t extra)
{
	if (buf->failed)
		return 0;
	if (extra > SIZE_MAX - buf->len - 1) {
		buf->failed = 1;
		return 0;
	}
	size_t need = buf->len + extra + 1; /* room for a terminator */
	if (need <= buf->cap)
		return 1;
	size_t cap = buf->cap ? buf->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *data = realloc(buf->data, cap);
	if (!data) {
		buf->failed = 1;
		return 0;
	}
	buf->data = data;
	buf->cap = cap;
	return 1;
}

void p11w_buf_append(p11w_buf *buf, const void *data, size_t len)
{
	if (!reserve(buf, len))
		return;
	if (len)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
}

void p11w_buf_append_byte(p11w_buf *buf, uint8_t byte) { p11w_buf_append(buf, &byte, 1); }
void p11w_buf_append_str(p11w_buf *buf, const char *str) { p11w_buf_append(buf, str, strlen(str)); }

char *p11w_buf_cstr(p11w_buf *buf)
{
	if (!reserve(buf, 0))
		return NULL;
	buf->data[buf->len] = 0;
	return (char *)buf->data;
}

static void append_u32(p11w_buf *buf, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	p11w_buf_append(buf, le, 4);
}

void p11w_record(p11w_buf *out, char tag, uint32_t num,
                 const char *a, size_t a_len, const char *b, size_t b_len)
{
	p11w_buf_append_byte(out, (uint8_t)tag);
	append_u32(out, num);
	append_u32(out, (uint32_t)a_len);
	p11w_buf_append(out, a, a_len);
	append_u32(out, (uint32_t)b_len);
	p11w_buf_append(out, b, b_len);
}

void p11w_record_str(p11w_buf *out, char tag, uint32_t num, const char *a, const char *b)
{
	a = a ? a : "";
	b = b ? b : "";
	p11w_record(out, tag, num, a, strlen(a), b, strlen(b));
}
