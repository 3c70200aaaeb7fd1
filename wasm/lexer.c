#include "lexer.h"

#include <string.h>

static const char PEM_BEGIN[] = "-----BEGIN ";
static const char PEM_END[] = "\n-----END ";

/* The C locale's isspace(), spelled out so the result never depends on a locale. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle, size_t n)
{
	if (n > hay_len)
		return NULL;
	for (size_t i = 0; i + n <= hay_len; i++) {
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	}
	return NULL;
}

static uint32_t count_newlines(const char *s, size_t len)
{
	uint32_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

void p11w_lexer_init(p11w_lexer *lx, const char *data, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->data = data;
	lx->len = len;
	lx->next_line = 1;
}

static int fail(p11w_lexer *lx, const char *reason)
{
	lx->error = reason;
	lx->pos = lx->len; /* a lexer that failed stays at the end */
	return -1;
}

/* A raw line starting with the PEM marker swallows everything to the end of its END line. */
static int lex_pem(p11w_lexer *lx, const char *start, size_t rest)
{
	const char *end = find_bytes(start, rest, PEM_END, sizeof(PEM_END) - 1);
	if (!end)
		return fail(lx, "invalid pem block: no ending line");
	const char *after = end + 1;
	const char *nl = memchr(after, '\n', (size_t)(lx->data + lx->len - after));
	size_t block_len = nl ? (size_t)(nl - start) : (size_t)(lx->data + lx->len - start);

	lx->kind = P11W_TOKEN_PEM;
	lx->value = start;
	lx->value_len = block_len;
	lx->name = NULL;
	lx->name_len = 0;
	lx->next_line += count_newlines(start, block_len) + (nl ? 1 : 0);
	lx->pos = (size_t)(start - lx->data) + block_len + (nl ? 1 : 0);
	return 1;
}

int p11w_lexer_next(p11w_lexer *lx)
{
	lx->error = NULL;
	while (lx->pos < lx->len) {
		const char *start = lx->data + lx->pos;
		size_t rest = lx->len - lx->pos;
		lx->line = lx->next_line;

		if (rest >= sizeof(PEM_BEGIN) - 1 && memcmp(start, PEM_BEGIN, sizeof(PEM_BEGIN) - 1) == 0)
			return lex_pem(lx, start, rest);

		const char *nl = memchr(start, '\n', rest);
		size_t line_len = nl ? (size_t)(nl - start) : rest;
		lx->pos += line_len + (nl ? 1 : 0);
		lx->next_line++;

		const char *s = start, *e = start + line_len;
		while (s < e && is_space(*s))
			s++;
		while (e > s && is_space(e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;

		if (*s == '[') {
			if (e[-1] != ']' || e - s < 2)
				return fail(lx, "invalid section header: missing braces");
			lx->kind = P11W_TOKEN_SECTION;
			lx->name = s + 1;
			lx->name_len = (size_t)(e - s) - 2;
			lx->value = NULL;
			lx->value_len = 0;
			return 1;
		}

		const char *colon = memchr(s, ':', (size_t)(e - s));
		if (!colon)
			return fail(lx, "invalid field line: no colon");
		const char *name_end = colon, *value = colon + 1;
		while (name_end > s && is_space(name_end[-1]))
			name_end--;
		while (value < e && is_space(*value))
			value++;
		lx->kind = P11W_TOKEN_FIELD;
		lx->name = s;
		lx->name_len = (size_t)(name_end - s);
		lx->value = value;
		lx->value_len = (size_t)(e - value);
		return 1;
	}
	return 0;
}
