#include "registry.h"
#include "buf.h"
#include "conf.h"
#include "dict.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *name;
	p11w_dict options;
} module_conf;

struct p11w_registry {
	uint32_t env_flags;
	int mode;
	int failed;
	int finished;
	p11w_dict system_globals;
	p11w_dict globals;

	module_conf *modules;
	size_t n_modules, cap_modules;
	uint32_t *index; /* open addressing over modules: slot holds module number + 1, 0 = empty */
	size_t index_cap;

	p11w_buf out;
};

/* ---- diagnostics ---------------------------------------------------------------------- */

/* fmt is always a literal: names and values from files only ever arrive as arguments. */
__attribute__((format(printf, 5, 6)))
static void diag(p11w_registry *reg, char level, const char *file, uint32_t line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p11w_record_str(&reg->out, level, line, file, msg);
}

__attribute__((format(printf, 4, 5)))
static int fatal(p11w_registry *reg, const char *file, uint32_t line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p11w_record_str(&reg->out, 'E', line, file, msg);
	reg->failed = 1;
	return -1;
}

/* The OS error text TypeScript passed along with a failed read, bounded and terminated. */
static void io_text(char *dst, size_t size, const char *data, uint32_t len)
{
	size_t n = data ? strnlen(data, len) : 0;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, data, n);
	dst[n] = 0;
}

/* ---- module name index --------------------------------------------------------------- */

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static int index_grow(p11w_registry *reg)
{
	size_t cap = reg->index_cap ? reg->index_cap * 2 : 64;
	uint32_t *index = calloc(cap, sizeof(*index));
	if (!index)
		return 0;
	for (size_t m = 0; m < reg->n_modules; m++) {
		size_t i = hash_name(reg->modules[m].name) & (cap - 1);
		while (index[i])
			i = (i + 1) & (cap - 1);
		index[i] = (uint32_t)m + 1;
	}
	free(reg->index);
	reg->index = index;
	reg->index_cap = cap;
	return 1;
}

static module_conf *find_module(p11w_registry *reg, const char *name)
{
	if (!reg->index_cap)
		return NULL;
	size_t i = hash_name(name) & (reg->index_cap - 1);
	for (; reg->index[i]; i = (i + 1) & (reg->index_cap - 1)) {
		module_conf *m = &reg->modules[reg->index[i] - 1];
		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

/* Takes ownership of *options (left empty). */
static int add_module(p11w_registry *reg, const char *name, p11w_dict *options)
{
	if ((reg->n_modules + 1) * 2 > reg->index_cap && !index_grow(reg))
		return 0;
	if (reg->n_modules == reg->cap_modules) {
		size_t cap = reg->cap_modules ? reg->cap_modules * 2 : 16;
		module_conf *modules = realloc(reg->modules, cap * sizeof(*modules));
		if (!modules)
			return 0;
		reg->modules = modules;
		reg->cap_modules = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return 0;
	module_conf *m = &reg->modules[reg->n_modules];
	m->name = copy;
	p11w_dict_init(&m->options);
	p11w_dict_move(&m->options, options);

	size_t i = hash_name(name) & (reg->index_cap - 1);
	while (reg->index[i])
		i = (i + 1) & (reg->index_cap - 1);
	reg->index[i] = (uint32_t)reg->n_modules + 1;
	reg->n_modules++;
	return 1;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

p11w_registry *p11w_registry_new(uint32_t env_flags)
{
	p11w_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->env_flags = env_flags;
	reg->mode = P11W_MODE_MERGE;
	p11w_dict_init(&reg->system_globals);
	p11w_dict_init(&reg->globals);
	p11w_buf_init(&reg->out);
	return reg;
}

void p11w_registry_free(p11w_registry *reg)
{
	if (!reg)
		return;
	for (size_t m = 0; m < reg->n_modules; m++) {
		free(reg->modules[m].name);
		p11w_dict_clear(&reg->modules[m].options);
	}
	free(reg->modules);
	free(reg->index);
	p11w_dict_clear(&reg->system_globals);
	p11w_dict_clear(&reg->globals);
	p11w_buf_clear(&reg->out);
	free(reg);
}

/* ---- global config -------------------------------------------------------------------- */

static int parse_file(p11w_registry *reg, const char *path, const char *data, uint32_t len,
                      p11w_dict *out)
{
	const char *reason = NULL;
	uint32_t line = 0;
	if (p11w_conf_parse(data, len, out, &reason, &line))
		return 0;
	return fatal(reg, path, line, "%s", reason);
}

/* -1 (after a fatal diagnostic) when the dictionary has an invalid user-config value. */
static int read_mode(p11w_registry *reg, const char *path, const p11w_dict *dict, int *mode)
{
	const p11w_pair *p = p11w_dict_find(dict, "user-config");
	if (!p)
		return 0;
	if (strcmp(p->value, "none") == 0)
		*mode = P11W_MODE_NONE;
	else if (strcmp(p->value, "merge") == 0)
		*mode = P11W_MODE_MERGE;
	else if (strcmp(p->value, "only") == 0 || strcmp(p->value, "override") == 0)
		*mode = P11W_MODE_ONLY;
	else
		return fatal(reg, path, p->line, "invalid mode for 'user-config': %s", p->value);
	return 0;
}

static int copy_dict(p11w_dict *into, const p11w_dict *from)
{
	p11w_dict_clear(into);
	return p11w_dict_merge_defaults(into, from);
}

static int system_globals(p11w_registry *reg, const char *path, uint32_t io, const char *data,
                          uint32_t len)
{
	char err[256];
	if (io == P11W_IO_OK) {
		if (parse_file(reg, path, data, len, &reg->system_globals) < 0)
			return -1;
	} else if (io != P11W_IO_MISSING) {
		io_text(err, sizeof(err), data, len);
		return fatal(reg, path, 0, "couldn't read config file: %s", err);
	}
	if (read_mode(reg, path, &reg->system_globals, &reg->mode) < 0)
		return -1;
	if (reg->mode != P11W_MODE_NONE && reg->env_flags) {
		const char *why = (reg->env_flags & P11W_ENV_ROOT) ? "running as root"
		                  : (reg->env_flags & P11W_ENV_SETID) ? "running setuid/setgid"
		                                                      : "P11_KIT_NO_USER_CONFIG is set";
		diag(reg, 'I', "", 0, "user configuration ignored: %s", why);
		reg->mode = P11W_MODE_NONE;
	}
	if (!copy_dict(&reg->globals, &reg->system_globals))
		return fatal(reg, path, 0, "out of memory");
	return 0;
}

static int user_globals(p11w_registry *reg, const char *path, uint32_t io, const char *data,
                        uint32_t len)
{
	char err[256];
	p11w_dict user;
	p11w_dict_init(&user);
	if (io == P11W_IO_OK) {
		if (parse_file(reg, path, data, len, &user) < 0)
			goto out;
	} else if (io != P11W_IO_MISSING && io != P11W_IO_DENIED) {
		io_text(err, sizeof(err), data, len);
		fatal(reg, path, 0, "couldn't read config file: %s", err);
		goto out;
	}
	if (read_mode(reg, path, &user, &reg->mode) < 0)
		goto out;
	if (reg->mode == P11W_MODE_MERGE) {
		if (!p11w_dict_merge_defaults(&user, &reg->system_globals)) {
			fatal(reg, path, 0, "out of memory");
			goto out;
		}
		p11w_dict_move(&reg->globals, &user);
	} else if (reg->mode == P11W_MODE_ONLY) {
		p11w_dict_move(&reg->globals, &user);
	}
	/* mode none, said by the user file itself: the system dictionary stands. */
out:
	p11w_dict_clear(&user);
	return reg->failed ? -1 : 0;
}

int p11w_registry_global_file(p11w_registry *reg, uint32_t scope, const char *path,
                              uint32_t io_status, const char *data, uint32_t len)
{
	if (reg->failed || reg->finished)
		return -1;
	if (scope == P11W_SCOPE_SYSTEM)
		return system_globals(reg, path, io_status, data, len);
	if (scope == P11W_SCOPE_USER) {
		if (reg->mode == P11W_MODE_NONE)
			return 0;
		return user_globals(reg, path, io_status, data, len);
	}
	return fatal(reg, path, 0, "no global config in that scope");
}

int p11w_registry_mode(p11w_registry *reg) { return reg->mode; }

int p11w_registry_wants(p11w_registry *reg, uint32_t what)
{
	if (reg->failed)
		return 0;
	switch (what) {
	case P11W_WANT_USER_CONF:
	case P11W_WANT_USER_MODULES:
		return reg->mode != P11W_MODE_NONE;
	case P11W_WANT_SYSTEM_MODULES:
		return reg->mode != P11W_MODE_ONLY;
	default:
		return 0;
	}
}

/* ---- module directories --------------------------------------------------------------- */

int p11w_registry_dir(p11w_registry *reg, uint32_t scope, const char *path, uint32_t io_status,
                      const char *data, uint32_t len)
{
	char err[256];
	if (reg->failed || reg->finished)
		return -1;
	if (io_status == P11W_IO_OK || io_status == P11W_IO_MISSING || scope == P11W_SCOPE_USER)
		return 0;
	io_text(err, sizeof(err), data, len);
	return fatal(reg, path, 0, "couldn't list directory: %s", err);
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int p11w_module_name_from_file(const char *filename, char *out, uint32_t out_size)
{
	static const char suffix[] = ".module";
	size_t n = strlen(filename), sn = sizeof(suffix) - 1;
	int clean = n > sn && is_name_char(filename[0]) && strcmp(filename + n - sn, suffix) == 0;
	for (size_t i = 0; clean && i < n; i++) {
		char c = filename[i];
		clean = is_name_char(c) || c == '_' || c == '-' || c == '.';
	}
	size_t keep = clean ? n - sn : n;
	if (out_size == 0)
		return clean;
	if (keep >= out_size)
		keep = out_size - 1;
	memcpy(out, filename, keep);
	out[keep] = 0;
	return clean;
}

int p11w_registry_module_file(p11w_registry *reg, uint32_t scope, const char *path,
                              const char *filename, uint32_t io_status, const char *data,
                              uint32_t len)
{
	char err[256];
	if (reg->failed || reg->finished)
		return -1;
	int user = scope == P11W_SCOPE_USER;
	switch (io_status) {
	case P11W_IO_OK:
		break;
	case P11W_IO_IS_DIR:
	case P11W_IO_MISSING:
		return 0;
	case P11W_IO_STAT_FAILED:
		io_text(err, sizeof(err), data, len);
		return fatal(reg, path, 0, "couldn't stat path: %s", err);
	case P11W_IO_DENIED:
		if (user)
			return 0;
		/* fall through */
	default:
		io_text(err, sizeof(err), data, len);
		return fatal(reg, path, 0, "couldn't read config file: %s", err);
	}

	size_t fn_len = strlen(filename);
	char *name = malloc(fn_len + 1);
	if (!name)
		return fatal(reg, path, 0, "out of memory");
	if (!p11w_module_name_from_file(filename, name, (uint32_t)fn_len + 1))
		diag(reg, 'W', path, 0, "invalid config filename, will be ignored in the future: %s", path);

	p11w_dict options;
	p11w_dict_init(&options);
	int rc = parse_file(reg, path, data, len, &options);
	if (rc == 0) {
		module_conf *existing = find_module(reg, name);
		int ok = existing ? p11w_dict_merge_defaults(&existing->options, &options)
		                  : add_module(reg, name, &options);
		if (!ok)
			rc = fatal(reg, path, 0, "out of memory");
	}
	p11w_dict_clear(&options);
	free(name);
	return rc;
}

/* ---- the list p11-kit would load ------------------------------------------------------ */

static int read_bool(p11w_registry *reg, const module_conf *m, const char *key, const char *value,
                     int def)
{
	int invalid = 0;
	int v = p11w_conf_bool(value, def, &invalid);
	if (invalid) {
		diag(reg, 'W', "", 0, "module '%s': invalid setting '%s' for '%s', defaulting to '%s'", m->name,
		     value, key, def ? "yes" : "no");
	}
	return v;
}

static int enabled_for(const p11w_dict *opts, const char *progname, int from_proxy)
{
	const char *enable = p11w_dict_get(opts, "enable-in");
	const char *disable = p11w_dict_get(opts, "disable-in");
	if (enable)
		return (progname && p11w_conf_in_list(enable, progname)) ||
		       (from_proxy && p11w_conf_in_list(enable, "p11-kit-proxy"));
	if (disable)
		return !(progname && p11w_conf_in_list(disable, progname)) &&
		       !(from_proxy && p11w_conf_in_list(disable, "p11-kit-proxy"));
	return 1;
}

typedef struct {
	const module_conf *conf;
	int32_t priority;
	uint32_t flags;
} chosen;

static int by_load_order(const void *pa, const void *pb)
{
	const chosen *a = pa, *b = pb;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return strcmp(a->conf->name, b->conf->name);
}

static void emit_dict(p11w_buf *out, char tag, const p11w_dict *dict)
{
	for (size_t i = 0; i < dict->len; i++)
		p11w_record_str(out, tag, dict->items[i].line, dict->items[i].key, dict->items[i].value);
}

int p11w_registry_finish(p11w_registry *reg, const char *progname, uint32_t from_proxy)
{
	if (reg->finished)
		return -1;
	reg->finished = 1;
	if (progname && !*progname)
		progname = NULL;

	chosen *list = reg->failed ? NULL : calloc(reg->n_modules + 1, sizeof(*list));
	if (!reg->failed && !list)
		fatal(reg, "", 0, "out of memory");
	size_t n = 0;
	const char *g_managed = p11w_dict_get(&reg->globals, "managed");
	const char *g_log = p11w_dict_get(&reg->globals, "log-calls");

	for (size_t i = 0; !reg->failed && i < reg->n_modules; i++) {
		const module_conf *m = &reg->modules[i];
		const p11w_dict *o = &m->options;
		uint32_t flags = 0;
		if (read_bool(reg, m, "critical", p11w_dict_get(o, "critical"), 0))
			flags |= P11W_MOD_CRITICAL;
		if (p11w_dict_get(o, "enable-in") && p11w_dict_get(o, "disable-in"))
			diag(reg, 'W', "", 0, "module '%s' has both enable-in and disable-in options", m->name);
		/* p11-kit decides once as a plain program, then again for the real caller (spec §1.7). */
		if (!enabled_for(o, progname, 0) || !enabled_for(o, progname, (int)from_proxy)) {
			diag(reg, 'I', "", 0, "module '%s' is not enabled for this program", m->name);
			continue;
		}
		if (p11w_dict_get(o, "remote"))
			flags |= P11W_MOD_REMOTE;
		else if (!p11w_dict_get(o, "module")) {
			diag(reg, 'I', "", 0, "module '%s' has no 'module' option, skipped", m->name);
			continue;
		}
		if (read_bool(reg, m, "trust-policy", p11w_dict_get(o, "trust-policy"), 0))
			flags |= P11W_MOD_TRUST_POLICY;
		int managed = read_bool(reg, m, "managed", g_managed ? g_managed : p11w_dict_get(o, "managed"), 1);
		int log_calls = read_bool(reg, m, "log-calls", g_log ? g_log : p11w_dict_get(o, "log-calls"), 0);
		if (log_calls && !managed) {
			flags |= P11W_MOD_LOG_UNMANAGED; /* the caller warns if the module loads */
			log_calls = 0;
		}
		flags |= (managed ? P11W_MOD_MANAGED : 0) | (log_calls ? P11W_MOD_LOG_CALLS : 0);
		const char *prio = p11w_dict_get(o, "priority");
		list[n].conf = m;
		list[n].priority = prio ? p11w_conf_atoi(prio) : 0;
		list[n].flags = flags;
		n++;
	}

	if (!reg->failed) {
		qsort(list, n, sizeof(*list), by_load_order);
		emit_dict(&reg->out, 'G', &reg->globals);
		for (size_t i = 0; i < n; i++) {
			p11w_record_str(&reg->out, 'M', list[i].flags, list[i].conf->name, "");
			p11w_record_str(&reg->out, 'P', (uint32_t)list[i].priority, "", "");
			emit_dict(&reg->out, 'O', &list[i].conf->options);
		}
	}
	free(list);
	p11w_record_str(&reg->out, 'S', reg->failed ? 1 : 0, "", "");
	return reg->failed ? -1 : 0;
}

const uint8_t *p11w_registry_output(p11w_registry *reg, uint32_t *len)
{
	if (reg->out.failed) {
		*len = 0;
		return NULL;
	}
	*len = (uint32_t)reg->out.len;
	return reg->out.data;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int ascii_field(const uint8_t **p, const uint8_t *end)
{
	if (end - *p < 4)
		return 0;
	uint32_t n = le32(*p);
	*p += 4;
	if ((size_t)(end - *p) < n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if ((*p)[i] & 0x80)
			return 0;
	*p += n;
	return 1;
}

int p11w_registry_output_ascii(p11w_registry *reg)
{
	if (reg->out.failed)
		return 0;
	const uint8_t *p = reg->out.data, *end = p + reg->out.len;
	while (p < end) {
		if (end - p < 5)
			return 0;
		p += 5; /* tag, num */
		if (!ascii_field(&p, end) || !ascii_field(&p, end))
			return 0;
	}
	return 1;
}
