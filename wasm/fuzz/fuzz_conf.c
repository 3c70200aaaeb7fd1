/*
 * libFuzzer target for the registry core (registry.c, conf.c, lexer.c, dict.c),
 * built natively with ASan and UBSan. Every buffer handed to the core is an
 * exact-size heap copy, so reading one byte past a file's length is caught.
 *
 * Input layout:
 *   byte 0        bits 0-2 env flags, bit 3 from_proxy, bit 4 "free order",
 *                 bits 5-7 which program name (0: none)
 *   then steps    [op] [len lo] [len hi] [payload...]
 *                 op bits 0-2: 0 system global, 1 user global, 2 user module,
 *                 3 system module, 4 package module, 5 dir, 6 wants/mode, 7 name rule
 *                 op bits 3-5: I/O status (6, 7: out of range on purpose)
 *                 op bits 6-7: scope for dir (3: out of range on purpose)
 *                 module payload: [name len] [name] [contents]
 *
 * "In order" runs take the steps as p11-kit reads: the system file, then the user
 * file and dirs only when the core asks for them. "Free order" calls whatever
 * comes, in any order, to prove a confused caller cannot corrupt the core.
 *
 * Checked on the result (a violation traps): the stream is well formed and ends with
 * one 'S'; a failure has an 'E' and lists nothing; a success has no 'E', unique
 * module names, each 'M' followed by its 'P', in p11-kit's load order; a second
 * finish changes nothing; a clean module name is its file name minus ".module".
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* An exact-size copy (at least one byte, so malloc never returns a shared NULL). */
static char *copy(const uint8_t *data, size_t len)
{
	char *out = malloc(len ? len : 1);
	check(out != NULL);
	if (len)
		memcpy(out, data, len);
	return out;
}

/* A NUL-terminated copy: paths and names are C strings in the ABI. */
static char *cstr(const uint8_t *data, size_t len)
{
	char *out = malloc(len + 1);
	check(out != NULL);
	if (len)
		memcpy(out, data, len);
	out[len] = 0;
	return out;
}

typedef struct {
	const uint8_t *at;
	size_t left;
} input;

static size_t take(input *in, const uint8_t **out, size_t want)
{
	size_t n = want < in->left ? want : in->left;
	*out = in->at;
	in->at += n;
	in->left -= n;
	return n;
}

static const char *const PROGRAMS[8] = {
	NULL, "firefox", "p11-kit-proxy", "", "test-enable", "a,b", "chromium", "x y",
};

static const char *const DIR_PATHS[4] = {
	"/etc/pkcs11/modules", "/home/u/.config/pkcs11/modules", "/usr/share/p11-kit/modules", "/dev/null/x",
};

/* ---- the result stream ------------------------------------------------------------------ */

typedef struct {
	const uint8_t *p;
	size_t left;
	char tag;
	uint32_t num;
	const uint8_t *a, *b;
	uint32_t a_len, b_len;
} reader;

static uint32_t u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1: a record; 0: clean end; traps on a truncated stream. */
static int next_record(reader *r)
{
	if (r->left == 0)
		return 0;
	check(r->left >= 9);
	r->tag = (char)r->p[0];
	r->num = u32le(r->p + 1);
	r->a_len = u32le(r->p + 5);
	check(r->left - 9 >= r->a_len);
	r->a = r->p + 9;
	size_t used = 9 + r->a_len;
	check(r->left - used >= 4);
	r->b_len = u32le(r->p + used);
	used += 4;
	check(r->left - used >= r->b_len);
	r->b = r->p + used;
	used += r->b_len;
	r->p += used;
	r->left -= used;
	return 1;
}

typedef struct {
	const uint8_t *name;
	uint32_t len;
	int32_t priority;
} listed;

static int name_cmp(const listed *x, const listed *y)
{
	uint32_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void check_output(p11w_registry *reg, int finish_rc)
{
	uint32_t len = 0;
	const uint8_t *out = p11w_registry_output(reg, &len);
	if (!out)
		return; /* out of memory while writing: the core says so instead */
	reader r = { out, len, 0, 0, NULL, NULL, 0, 0 };
	size_t errors = 0, ends = 0, n = 0, cap = 0;
	int status = -1;
	listed *mods = NULL;
	char prev = 0;
	while (next_record(&r)) {
		check(ends == 0); /* 'S' is last */
		switch (r.tag) {
		case 'E':
			errors++;
			break;
		case 'W':
		case 'I':
		case 'G':
		case 'O':
			break;
		case 'M':
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				mods = realloc(mods, cap * sizeof(*mods));
				check(mods != NULL);
			}
			mods[n].name = r.a;
			mods[n].len = r.a_len;
			mods[n].priority = 0;
			n++;
			break;
		case 'P':
			check(prev == 'M');
			mods[n - 1].priority = (int32_t)r.num;
			break;
		case 'S':
			ends++;
			status = (int)r.num;
			break;
		default:
			check(0);
		}
		if (r.tag == 'M')
			check(r.b_len == 0);
		if (prev == 'M')
			check(r.tag == 'P');
		prev = r.tag;
	}
	check(ends == 1 && (status == 0 || status == 1));
	check((status == 1) == (finish_rc < 0));
	if (status == 1) {
		check(errors >= 1 && n == 0);
	} else {
		check(errors == 0);
		for (size_t i = 1; i < n; i++) {
			const listed *x = &mods[i - 1], *y = &mods[i];
			check(x->priority > y->priority || (x->priority == y->priority && name_cmp(x, y) < 0));
		}
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				check(name_cmp(&mods[i], &mods[j]) != 0);
	}
	free(mods);
}

/* ---- steps -------------------------------------------------------------------------------- */

static void name_rule(const uint8_t *payload, size_t len)
{
	size_t out_size = len ? payload[0] : 0;
	char *name = cstr(len ? payload + 1 : payload, len ? len - 1 : 0);
	char *out = malloc(out_size ? out_size : 1);
	check(out != NULL);
	int clean = p11w_module_name_from_file(name, out, (uint32_t)out_size);
	size_t n = strlen(name);
	if (out_size) {
		size_t got = strnlen(out, out_size);
		check(got < out_size && memcmp(out, name, got) == 0);
		if (clean && n - 7 < out_size)
			check(got == n - 7);
		if (!clean && n < out_size)
			check(got == n);
	}
	if (clean)
		check(n > 7 && strcmp(name + n - 7, ".module") == 0);
	free(out);
	free(name);
}

static void module_step(p11w_registry *reg, uint32_t scope, uint32_t io, const uint8_t *payload, size_t len)
{
	size_t name_len = len ? payload[0] : 0;
	if (name_len > len - (len ? 1 : 0))
		name_len = len ? len - 1 : 0;
	const uint8_t *name_at = len ? payload + 1 : payload;
	char *name = cstr(name_at, name_len);
	char *path = malloc(strlen(DIR_PATHS[scope % 4]) + name_len + 2);
	check(path != NULL);
	strcpy(path, DIR_PATHS[scope % 4]);
	strcat(path, "/");
	strcat(path, name);
	size_t data_len = len ? len - 1 - name_len : 0;
	char *data = copy(name_at + name_len, data_len);
	p11w_registry_module_file(reg, scope, path, name, io, data, (uint32_t)data_len);
	free(data);
	free(path);
	free(name);
}

static void step(p11w_registry *reg, uint8_t op, const uint8_t *payload, size_t len)
{
	uint32_t io = (op >> 3) & 7;
	char *data = copy(payload, len);
	switch (op & 7) {
	case 0:
		p11w_registry_global_file(reg, P11W_SCOPE_SYSTEM, "/etc/pkcs11/pkcs11.conf", io, data, (uint32_t)len);
		break;
	case 1:
		p11w_registry_global_file(reg, P11W_SCOPE_USER, "/home/u/.config/pkcs11/pkcs11.conf", io, data, (uint32_t)len);
		break;
	case 2:
		module_step(reg, P11W_SCOPE_USER, io, payload, len);
		break;
	case 3:
		module_step(reg, P11W_SCOPE_SYSTEM, io, payload, len);
		break;
	case 4:
		module_step(reg, P11W_SCOPE_PACKAGE, io, payload, len);
		break;
	case 5:
		p11w_registry_dir(reg, (op >> 6) & 3, DIR_PATHS[(op >> 6) & 3], io, data, (uint32_t)len);
		break;
	case 6:
		p11w_registry_wants(reg, (op >> 3) & 7);
		check(p11w_registry_mode(reg) >= P11W_MODE_NONE && p11w_registry_mode(reg) <= P11W_MODE_ONLY);
		break;
	case 7:
		name_rule(payload, len);
		break;
	}
	free(data);
}

/* The order p11-kit reads in: steps of the wrong kind for the moment are skipped. */
static int in_order_allows(p11w_registry *reg, int *phase, uint8_t op)
{
	int kind = op & 7;
	if (kind == 6 || kind == 7)
		return 1;
	if (*phase == 0) {
		*phase = 1;
		if (kind == 0)
			return 1;
		/* p11-kit always starts with the system file: a missing one, then. */
		p11w_registry_global_file(reg, P11W_SCOPE_SYSTEM, "/etc/pkcs11/pkcs11.conf", P11W_IO_MISSING, "", 0);
	}
	if (kind == 0)
		return 0;
	if (kind == 1)
		return *phase == 1 && p11w_registry_wants(reg, P11W_WANT_USER_CONF) && (*phase = 2);
	if (kind == 2)
		return *phase <= 3 && p11w_registry_wants(reg, P11W_WANT_USER_MODULES) && (*phase = 3);
	if (kind == 3 || kind == 5)
		return *phase <= 4 && p11w_registry_wants(reg, P11W_WANT_SYSTEM_MODULES) && (*phase = 4);
	if (kind == 4)
		return p11w_registry_wants(reg, P11W_WANT_SYSTEM_MODULES) && (*phase = 5);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	input in = { data + 1, size - 1 };
	uint8_t head = data[0];
	int free_order = (head >> 4) & 1;
	const char *program = PROGRAMS[(head >> 5) & 7];

	p11w_registry *reg = p11w_registry_new(head & 7);
	check(reg != NULL);
	int phase = 0;
	while (in.left >= 3) {
		const uint8_t *hdr, *payload;
		take(&in, &hdr, 3);
		size_t len = take(&in, &payload, (size_t)hdr[1] | (size_t)hdr[2] << 8);
		if (free_order || in_order_allows(reg, &phase, hdr[0]))
			step(reg, hdr[0], payload, len);
	}

	int rc = p11w_registry_finish(reg, program, (head >> 3) & 1);
	check_output(reg, rc);

	/* Finished is final: nothing more is taken and the output stays as it was. */
	uint32_t len1 = 0, len2 = 0;
	const uint8_t *out1 = p11w_registry_output(reg, &len1);
	check(p11w_registry_finish(reg, program, 0) == -1);
	check(p11w_registry_global_file(reg, P11W_SCOPE_SYSTEM, "/x", P11W_IO_OK, "a: b", 4) == -1);
	check(p11w_registry_module_file(reg, P11W_SCOPE_SYSTEM, "/x/m", "m", P11W_IO_OK, "a: b", 4) == -1);
	const uint8_t *out2 = p11w_registry_output(reg, &len2);
	check(out1 == out2 && len1 == len2);

	p11w_registry_free(reg);
	return 0;
}
