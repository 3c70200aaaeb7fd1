/* One config file into a dictionary, and p11-kit's readings of option values. */
#ifndef P11W_CONF_H
#define P11W_CONF_H

#include "dict.h"

#include <stddef.h>
#include <stdint.h>

/* 1 on success; 0 on a syntax error (*reason static, *line 1-based) or OOM (*line 0). */
int p11w_conf_parse(const char *data, size_t len, p11w_dict *out, const char **reason, uint32_t *line);

/* "yes" → 1, "no" → 0, absent → def; anything else → def and *invalid = 1. */
int p11w_conf_bool(const char *value, int def, int *invalid);

/* C atoi() as glibc does it (strtol clamped to long, then cut to int). */
int32_t p11w_conf_atoi(const char *value);

/* Whether `word` stands in a list separated by commas and whitespace. */
int p11w_conf_in_list(const char *list, const char *word);

#endif
