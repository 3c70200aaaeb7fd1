/*
 * The native side of bench/proxy.mjs: the real p11-kit-proxy (libp11-kit 0.24.1) on a
 * relocated config tree, against the module behind it called directly, in one process.
 *
 * Usage: proxy-bench SYSTEM_CONF SYSTEM_MODULES PACKAGE_MODULES MODULE_PATH COUNT
 * MODULE_PATH is the module (already in the tree) whose first token the calls go to.
 * Warms every cell up, then for every line read on stdin measures one round (cells in a
 * rotated order) and prints {"proxy":{...},"direct":{...}}: nanoseconds per call of
 * C_GetSlotInfo, C_GenerateRandom(16) on an open session, and (proxy only) C_GetSlotList(FALSE)
 * as one call into a buffer of 256: every proxy C_GetSlotList re-queries every module (size, then
 * fill, each), so a size query and a fill would re-query twice where our proxy's getSlotList()
 * re-queries once. The bench keeps this process for the whole run, so its rounds interleave with
 * the JavaScript side's.
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROXY_PATH "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static CK_FUNCTION_LIST *function_list(const char *path)
{
	void *lib = dlopen(path, RTLD_NOW);
	CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST *list = NULL;
	if (!get || get(&list) != CKR_OK) {
		fprintf(stderr, "proxy-bench: cannot load %s\n", path);
		exit(2);
	}
	return list;
}

static CK_SLOT_ID first_token(CK_FUNCTION_LIST *f)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = 64;
	if (f->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK || n == 0) {
		fprintf(stderr, "proxy-bench: no token\n");
		exit(2);
	}
	return ids[0];
}

struct side {
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
};

/* ns per call of op on one side, over count calls. */
static double measure(const struct side *x, int op, long count)
{
	CK_SLOT_INFO info;
	CK_BYTE buf[16];
	CK_SLOT_ID ids[256];
	double t0 = now_ns();
	for (long i = 0; i < count; i++) {
		CK_ULONG n = 0;
		if (op == 0 && x->f->C_GetSlotInfo(x->slot, &info) != CKR_OK)
			exit(3);
		if (op == 1 && x->f->C_GenerateRandom(x->session, buf, sizeof(buf)) != CKR_OK)
			exit(3);
		n = 256;
		if (op == 2 && (x->f->C_GetSlotList(CK_FALSE, ids, &n) != CKR_OK || n == 0))
			exit(3);
	}
	return (now_ns() - t0) / count;
}

static struct side open_side(CK_FUNCTION_LIST *f)
{
	struct side x = { f, first_token(f), 0 };
	if (f->C_OpenSession(x.slot, CKF_SERIAL_SESSION, NULL, NULL, &x.session) != CKR_OK) {
		fprintf(stderr, "proxy-bench: C_OpenSession failed\n");
		exit(2);
	}
	return x;
}

/* One round: every (side, op) once, in an order rotated by the round number. */
static void round_of(const struct side *proxy, const struct side *direct, long count, int r)
{
	static const char *ops[] = { "slot_info", "random", "slot_list" };
	double v[2][3] = { { 0 } };
	for (int k = 0; k < 5; k++) {
		int cell = (k + r) % 5; /* 0-2: proxy ops, 3-4: direct slot_info, random */
		if (cell < 3)
			v[0][cell] = measure(proxy, cell, count);
		else
			v[1][cell - 3] = measure(direct, cell - 3, count);
	}
	printf("{\"proxy\":{");
	for (int i = 0; i < 3; i++)
		printf("%s\"%s\":%.1f", i ? "," : "", ops[i], v[0][i]);
	printf("},\"direct\":{\"slot_info\":%.1f,\"random\":%.1f}}\n", v[1][0], v[1][1]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: proxy-bench SYSTEM_CONF SYSTEM_MODULES PACKAGE_MODULES MODULE_PATH COUNT\n");
		return 2;
	}
	long count = atol(argv[5]);
	p11_kit_override_system_files(argv[1], "/nonexistent/user.conf", argv[3], argv[2], "/nonexistent/user-modules");
	p11_kit_set_progname("proxy-bench");
	CK_FUNCTION_LIST *proxy_list = function_list(PROXY_PATH);
	if (proxy_list->C_Initialize(NULL) != CKR_OK) {
		fprintf(stderr, "proxy-bench: proxy C_Initialize failed\n");
		return 2;
	}
	/* The same shared object the proxy loaded: initialized by it, so callable directly. */
	struct side proxy = open_side(proxy_list);
	struct side direct = open_side(function_list(argv[4]));
	/* Warm-up: every cell once, unreported. */
	for (int op = 0; op < 3; op++)
		measure(&proxy, op, count);
	for (int op = 0; op < 2; op++)
		measure(&direct, op, count);
	/* One round per line read on stdin; EOF ends. */
	char line[64];
	for (int r = 0; fgets(line, sizeof(line), stdin); r++)
		round_of(&proxy, &direct, count, r);
	proxy_list->C_CloseSession(proxy.session);
	direct.f->C_CloseSession(direct.session);
	proxy_list->C_Finalize(NULL);
	return 0;
}
