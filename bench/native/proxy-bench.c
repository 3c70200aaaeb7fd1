/*
 * The native side of bench/proxy.mjs: the real p11-kit-proxy (libp11-kit 0.24.1) on a
 * relocated config tree, against the module behind it called directly, in one process.
 *
 * Usage: proxy-bench SYSTEM_CONF SYSTEM_MODULES PACKAGE_MODULES MODULE_PATH COUNT
 * MODULE_PATH is the module (already in the tree) whose first token the calls go to.
 * Prints {"proxy":{...},"direct":{...}} with nanoseconds per call of C_GetTokenInfo,
 * C_GenerateRandom(16) on an open session, and (proxy only) C_GetSlotList(FALSE) size + fill.
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

/* ns per call of each measured function on one function list and slot. */
static void measure(const char *name, CK_FUNCTION_LIST *f, CK_SLOT_ID slot, long count, int slot_list)
{
	CK_TOKEN_INFO info;
	CK_SESSION_HANDLE s;
	CK_BYTE buf[16];
	if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		fprintf(stderr, "proxy-bench: C_OpenSession failed\n");
		exit(2);
	}
	double t0 = now_ns();
	for (long i = 0; i < count; i++)
		if (f->C_GetTokenInfo(slot, &info) != CKR_OK)
			exit(3);
	double t1 = now_ns();
	for (long i = 0; i < count; i++)
		if (f->C_GenerateRandom(s, buf, sizeof(buf)) != CKR_OK)
			exit(3);
	double t2 = now_ns();
	double list_ns = 0;
	if (slot_list) {
		CK_SLOT_ID ids[256];
		for (long i = 0; i < count; i++) {
			CK_ULONG n = 0;
			if (f->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n > 256 || f->C_GetSlotList(CK_FALSE, ids, &n) != CKR_OK)
				exit(3);
		}
		list_ns = (now_ns() - t2) / count;
	}
	f->C_CloseSession(s);
	printf("\"%s\":{\"token_info\":%.1f,\"random\":%.1f,\"slot_list\":%.1f}", name, (t1 - t0) / count, (t2 - t1) / count, list_ns);
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
	CK_FUNCTION_LIST *proxy = function_list(PROXY_PATH);
	if (proxy->C_Initialize(NULL) != CKR_OK) {
		fprintf(stderr, "proxy-bench: proxy C_Initialize failed\n");
		return 2;
	}
	/* The same shared object the proxy loaded: initialized by it, so callable directly. */
	CK_FUNCTION_LIST *direct = function_list(argv[4]);
	CK_SLOT_ID proxy_slot = first_token(proxy);
	CK_SLOT_ID direct_slot = first_token(direct);
	putchar('{');
	measure("proxy", proxy, proxy_slot, count, 1);
	putchar(',');
	measure("direct", direct, direct_slot, count, 0);
	puts("}");
	proxy->C_Finalize(NULL);
	return 0;
}
