/*
 * The line lexer shared by pkcs11.conf and *.module files: fields
 * ("name: value"), section headers and PEM blocks, with p11-kit's rules for
 * whitespace, comments and errors.
 */
#ifndef P11W_LEXER_H
#define P11W_LEXER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	P11W_TOKEN_FIELD,
	P11W_TOKEN_SECTION,
	P11W_TOKEN_PEM,
} p11w_token_kind;

typedef struct {
	const char *data;
	size_t len;
	size_t pos;
	uint32_t next_line; /* 1-based number of the line at pos */

	/* The current token; pointers into data, valid while data is. */
	p11w_token_kind kind;
	uint32_t line;
	const char *name;  /* field name, or section name without the brackets */
	size_t name_len;
	const char *value; /* field value, or the whole PEM block */
	size_t value_len;
	const char *error; /* static reason, set when next() returns -1 */
} p11w_lexer;

void p11w_lexer_init(p11w_lexer *lx, const char *data, size_t len);
/* 1: a token is ready; 0: end of input; -1: error (lx->error, lx->line). */
int p11w_lexer_next(p11w_lexer *lx);

#endif
