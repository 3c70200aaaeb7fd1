#include "conf.h"
#include "lexer.h"

#include <string.h>

int p11w_conf_parse(const char *data, size_t len, p11w_dict *out, const char **reason, uint32_t *line)
{
	p11w_lexer lx;
	p11w_lexer_init(&lx, data, len);
	int rc;
	while ((rc = p11w_lexer_next(&lx)) == 1) {
		if (lx.kind == P11W_TOKEN_SECTION) {
			*reason = "unexpected section header";
			*line = lx.line;
			return 0;
		}
		if (lx.kind == P11W_TOKEN_PEM) {
			*reason = "unexpected pem block";
			*line = lx.line;
			return 0;
		}
		if (!p11w_dict_set(out, lx.name, lx.name_len, lx.value, lx.value_len, lx.line)) {
			*reason = "out of memory";
			*line = 0;
			return 0;
		}
	}
	if (rc < 0) {
		*reason = lx.error;
		*line = lx.line;
		return 0;
	}
	return 1;
}

int p11w_conf_bool(const char *value, int def, int *invalid)
{
	if (!value)
		return def;
	if (strcmp(value, "yes") == 0)
		return 1;
	if (strcmp(value, "no") == 0)
		return 0;
	*invalid = 1;
	return def;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int32_t p11w_conf_atoi(const char *s)
{
	/* glibc's atoi is (int)strtol(s, NULL, 10) with a 64-bit long: saturate there, then truncate. */
	int neg = 0;
	uint64_t acc = 0;
	int saturated = 0;
	while (is_space(*s))
		s++;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	const uint64_t limit = (uint64_t)INT64_MAX + (uint64_t)neg;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (saturated || acc > (limit - d) / 10) {
			saturated = 1;
			continue;
		}
		acc = acc * 10 + d;
	}
	if (saturated)
		acc = limit;
	uint64_t bits = neg ? (uint64_t)0 - acc : acc;
	return (int32_t)(uint32_t)bits;
}

static int is_delim(char c) { return c == ',' || is_space(c); }

int p11w_conf_in_list(const char *list, const char *word)
{
	size_t n = strlen(word);
	if (!list || n == 0)
		return 0;
	for (const char *p = list; (p = strstr(p, word)) != NULL; p++) {
		int starts = p == list || is_delim(p[-1]);
		int ends = p[n] == 0 || is_delim(p[n]);
		if (starts && ends)
			return 1;
	}
	return 0;
}
