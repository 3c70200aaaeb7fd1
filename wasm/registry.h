/*
 * The module registry: p11-kit 0.24's reading of pkcs11.conf and the
 * module directories, driven by TypeScript one file at a time.
 *
 * Call order: new → global_file(SYSTEM) → [wants(USER_CONF) → global_file(USER)]
 * → [wants(USER_MODULES) → dir(USER) → module_file(USER)…]
 * → [wants(SYSTEM_MODULES) → dir(SYSTEM) → module_file…, dir(PACKAGE) → module_file…]
 * → finish → output. After a fatal error every call returns -1 and finish
 * reports the failure; the diagnostics say why.
 *
 * Output records (abi.h), in this order:
 *   'E' error / 'W' warning / 'I' info   num=line (0: none), a=file (may be empty), b=message
 *   'G' global option                    a=key, b=value
 *   'M' module that would load           num=P11W_MOD_* flags, a=name
 *   'P' its priority                     num=int32 bits
 *   'O' its option                       num=line, a=key, b=value
 *   'S' end                              num=0 ok, 1 failed
 */
#ifndef P11W_REGISTRY_H
#define P11W_REGISTRY_H

#include "abi.h"

typedef struct p11w_registry p11w_registry;

enum { P11W_SCOPE_SYSTEM = 0, P11W_SCOPE_USER = 1, P11W_SCOPE_PACKAGE = 2 };

/* Why user config must be ignored (any one is enough). */
enum {
	P11W_ENV_ROOT = 1,           /* real uid 0 */
	P11W_ENV_SETID = 2,          /* setuid/setgid process */
	P11W_ENV_NO_USER_CONFIG = 4, /* P11_KIT_NO_USER_CONFIG is set */
};

enum { P11W_WANT_USER_CONF = 1, P11W_WANT_USER_MODULES = 2, P11W_WANT_SYSTEM_MODULES = 3 };

enum {
	P11W_MOD_CRITICAL = 1,
	P11W_MOD_TRUST_POLICY = 2,
	P11W_MOD_MANAGED = 4,
	P11W_MOD_LOG_CALLS = 8,
	P11W_MOD_REMOTE = 16,
	/* log-calls asked of an unmanaged module: p11-kit warns, but only once the module has loaded */
	P11W_MOD_LOG_UNMANAGED = 32,
};

enum { P11W_MODE_NONE = 0, P11W_MODE_MERGE = 1, P11W_MODE_ONLY = 2 };

P11W_EXPORT p11w_registry *p11w_registry_new(uint32_t env_flags);
P11W_EXPORT void p11w_registry_free(p11w_registry *reg);
P11W_EXPORT int p11w_registry_global_file(p11w_registry *reg, uint32_t scope, const char *path,
                                          uint32_t io_status, const char *data, uint32_t len);
P11W_EXPORT int p11w_registry_wants(p11w_registry *reg, uint32_t what);
P11W_EXPORT int p11w_registry_mode(p11w_registry *reg);
P11W_EXPORT int p11w_registry_dir(p11w_registry *reg, uint32_t scope, const char *path,
                                  uint32_t io_status, const char *data, uint32_t len);
P11W_EXPORT int p11w_registry_module_file(p11w_registry *reg, uint32_t scope, const char *path,
                                          const char *filename, uint32_t io_status,
                                          const char *data, uint32_t len);
P11W_EXPORT int p11w_registry_finish(p11w_registry *reg, const char *progname, uint32_t from_proxy);
P11W_EXPORT const uint8_t *p11w_registry_output(p11w_registry *reg, uint32_t *len);
/* 1 when every string of the output is ASCII (its text is then the same read as latin1 or UTF-8). */
P11W_EXPORT int p11w_registry_output_ascii(p11w_registry *reg);

/* Exposed for unit tests of the name rule: 1 if the file name yields a clean module name. */
P11W_EXPORT int p11w_module_name_from_file(const char *filename, char *out, uint32_t out_size);

#endif
