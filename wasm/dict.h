/* An insertion-ordered string dictionary: the option set of one config file or module. */
#ifndef P11W_DICT_H
#define P11W_DICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	char *key;
	char *value;
	uint32_t line; /* where it was set, for diagnostics; 0 if unknown */
} p11w_pair;

typedef struct {
	p11w_pair *items;
	size_t len;
	size_t cap;
} p11w_dict;

void p11w_dict_init(p11w_dict *dict);
void p11w_dict_clear(p11w_dict *dict);
/* Copies key and value (each cut at its first NUL, like strndup); the last set wins. 0 on OOM. */
int p11w_dict_set(p11w_dict *dict, const char *key, size_t key_len, const char *value, size_t value_len,
                  uint32_t line);
const p11w_pair *p11w_dict_find(const p11w_dict *dict, const char *key);
const char *p11w_dict_get(const p11w_dict *dict, const char *key);
/* Copies in the keys of `from` that `into` lacks ("defaults" merge). 0 on OOM. */
int p11w_dict_merge_defaults(p11w_dict *into, const p11w_dict *from);
/* Moves all of `from` into an empty `into`; `from` is left empty. */
void p11w_dict_move(p11w_dict *into, p11w_dict *from);

#endif
