/* A growable byte buffer, and the record stream written into it (see abi.h). */
#ifndef P11W_BUF_H
#define P11W_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
	int failed; /* an allocation failed; contents are incomplete */
} p11w_buf;

void p11w_buf_init(p11w_buf *buf);
void p11w_buf_clear(p11w_buf *buf);
void p11w_buf_append(p11w_buf *buf, const void *data, size_t len);
void p11w_buf_append_byte(p11w_buf *buf, uint8_t byte);
void p11w_buf_append_str(p11w_buf *buf, const char *str);
/* NUL-terminates without counting the terminator; returns the data or NULL on failure. */
char *p11w_buf_cstr(p11w_buf *buf);

void p11w_record(p11w_buf *out, char tag, uint32_t num,
                 const char *a, size_t a_len, const char *b, size_t b_len);
void p11w_record_str(p11w_buf *out, char tag, uint32_t num, const char *a, const char *b);

#endif
