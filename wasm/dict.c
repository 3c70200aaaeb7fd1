#include "dict.h"

#include <stdlib.h>
#include <string.h>

void p11w_dict_init(p11w_dict *dict)
{
	dict->items = NULL;
	dict->len = dict->cap = 0;
}

void p11w_dict_clear(p11w_dict *dict)
{
	for (size_t i = 0; i < dict->len; i++) {
		free(dict->items[i].key);
		free(dict->items[i].value);
	}
	free(dict->items);
	p11w_dict_init(dict);
}

static char *copy_cut(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && s[n])
		n++;
	char *out = malloc(n + 1);
	if (out) {
		memcpy(out, s, n);
		out[n] = 0;
	}
	return out;
}

static p11w_pair *find(const p11w_dict *dict, const char *key, size_t key_len)
{
	for (size_t i = 0; i < dict->len; i++) {
		const char *k = dict->items[i].key;
		if (strncmp(k, key, key_len) == 0 && k[key_len] == 0)
			return &dict->items[i];
	}
	return NULL;
}

int p11w_dict_set(p11w_dict *dict, const char *key, size_t key_len, const char *value, size_t value_len,
                  uint32_t line)
{
	key_len = strnlen(key, key_len);
	char *v = copy_cut(value, value_len);
	if (!v)
		return 0;
	p11w_pair *pair = find(dict, key, key_len);
	if (pair) {
		free(pair->value);
		pair->value = v;
		pair->line = line;
		return 1;
	}
	if (dict->len == dict->cap) {
		size_t cap = dict->cap ? dict->cap * 2 : 8;
		p11w_pair *items = realloc(dict->items, cap * sizeof(*items));
		if (!items) {
			free(v);
			return 0;
		}
		dict->items = items;
		dict->cap = cap;
	}
	char *k = copy_cut(key, key_len);
	if (!k) {
		free(v);
		return 0;
	}
	dict->items[dict->len].key = k;
	dict->items[dict->len].value = v;
	dict->items[dict->len].line = line;
	dict->len++;
	return 1;
}

const p11w_pair *p11w_dict_find(const p11w_dict *dict, const char *key)
{
	return find(dict, key, strlen(key));
}

const char *p11w_dict_get(const p11w_dict *dict, const char *key)
{
	p11w_pair *pair = find(dict, key, strlen(key));
	return pair ? pair->value : NULL;
}

int p11w_dict_merge_defaults(p11w_dict *into, const p11w_dict *from)
{
	for (size_t i = 0; i < from->len; i++) {
		const p11w_pair *p = &from->items[i];
		if (find(into, p->key, strlen(p->key)))
			continue;
		if (!p11w_dict_set(into, p->key, strlen(p->key), p->value, strlen(p->value), p->line))
			return 0;
	}
	return 1;
}

void p11w_dict_move(p11w_dict *into, p11w_dict *from)
{
	p11w_dict_clear(into);
	*into = *from;
	p11w_dict_init(from);
}
