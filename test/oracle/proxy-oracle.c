/*
 * The differential oracle for the proxy: the real p11-kit-proxy of libp11-kit 0.24.1 (the
 * same library: p11-kit-proxy.so is a symlink to it), pointed at a test tree with
 * p11_kit_override_system_files(), then driven by a list of steps from argv. One JSON
 * object per step on stdout.
 *
 * Usage:
 *   proxy-oracle --system-conf FILE --package-modules DIR --system-modules DIR
 *                [--user-conf FILE] [--user-modules DIR] [--progname NAME] STEP...
 * Steps:
 *   initialize        C_Initialize(NULL)              {"step":"initialize","rv":n}
 *   info              C_GetInfo                       {"step":"info","rv":n,"manufacturer":s,
 *                                                      "description":s,"cryptoki":s,"version":s}
 *   slots             C_GetSlotList(FALSE), then each slot's C_GetSlotInfo and, when a
 *                     token is present, C_GetTokenInfo
 *                     {"step":"slots","rv":n,"slots":[{"id":n,"description":s,
 *                      "manufacturer":s,"present":bool,"token":{"label":s,"manufacturer":s,
 *                      "model":s,"serial":s}|null}]}
 *   present           C_GetSlotList(TRUE)             {"step":"present","rv":n,"ids":[n]}
 *   raise:LIB:SYM:N   int SYM(unsigned long N) from the already loaded LIB (a fixture's
 *                     test control)                   {"step":"raise","result":n}
 *   wait-nb           C_WaitForSlotEvent(CKF_DONT_BLOCK)  {"step":"wait-nb","rv":n,"slot":n}
 *                     (slot: what the proxy wrote; 0 when it wrote nothing)
 *   wait-block        C_WaitForSlotEvent(0)           {"step":"wait-block","rv":n,"slot":n}
 *   finalize          C_Finalize(NULL)                {"step":"finalize","rv":n}
 *   mechs             each slot's C_GetMechanismList and every mechanism's C_GetMechanismInfo
 *                     {"step":"mechs","rv":n,"slots":[{"id":n,"rv":n,
 *                      "mechs":[[type,minKeySize,maxKeySize,flags]]}]}
 * Texts are the blank-padded fields with the padding removed.
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXY_PATH "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"
#define MAX_SLOTS 256

static void json_text(const unsigned char *s, size_t width)
{
	while (width > 0 && (s[width - 1] == ' ' || s[width - 1] == '\0'))
		width--;
	putchar('"');
	for (size_t i = 0; i < width; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void step_slots(CK_FUNCTION_LIST *p)
{
	CK_SLOT_ID ids[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS;
	CK_RV rv = p->C_GetSlotList(CK_FALSE, ids, &n);
	printf("{\"step\":\"slots\",\"rv\":%lu,\"slots\":[", (unsigned long)rv);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		memset(&si, ' ', sizeof(si));
		CK_RV srv = p->C_GetSlotInfo(ids[i], &si);
		printf("%s{\"id\":%lu,\"rv\":%lu,\"description\":", i ? "," : "", (unsigned long)ids[i], (unsigned long)srv);
		json_text(si.slotDescription, srv == CKR_OK ? sizeof(si.slotDescription) : 0);
		fputs(",\"manufacturer\":", stdout);
		json_text(si.manufacturerID, srv == CKR_OK ? sizeof(si.manufacturerID) : 0);
		int present = srv == CKR_OK && (si.flags & CKF_TOKEN_PRESENT);
		printf(",\"present\":%s,\"token\":", present ? "true" : "false");
		if (present && p->C_GetTokenInfo(ids[i], &ti) == CKR_OK) {
			fputs("{\"label\":", stdout);
			json_text(ti.label, sizeof(ti.label));
			fputs(",\"manufacturer\":", stdout);
			json_text(ti.manufacturerID, sizeof(ti.manufacturerID));
			fputs(",\"model\":", stdout);
			json_text(ti.model, sizeof(ti.model));
			fputs(",\"serial\":", stdout);
			json_text(ti.serialNumber, sizeof(ti.serialNumber));
			putchar('}');
		} else {
			fputs("null", stdout);
		}
		putchar('}');
	}
	puts("]}");
}

static void step_present(CK_FUNCTION_LIST *p)
{
	CK_SLOT_ID ids[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS;
	CK_RV rv = p->C_GetSlotList(CK_TRUE, ids, &n);
	printf("{\"step\":\"present\",\"rv\":%lu,\"ids\":[", (unsigned long)rv);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
		printf("%s%lu", i ? "," : "", (unsigned long)ids[i]);
	puts("]}");
}

static void step_info(CK_FUNCTION_LIST *p)
{
	CK_INFO info;
	memset(&info, 0, sizeof(info));
	CK_RV rv = p->C_GetInfo(&info);
	printf("{\"step\":\"info\",\"rv\":%lu,\"manufacturer\":", (unsigned long)rv);
	json_text(info.manufacturerID, sizeof(info.manufacturerID));
	fputs(",\"description\":", stdout);
	json_text(info.libraryDescription, sizeof(info.libraryDescription));
	printf(",\"cryptoki\":\"%u.%u\",\"version\":\"%u.%u\"}\n", info.cryptokiVersion.major, info.cryptokiVersion.minor,
	       info.libraryVersion.major, info.libraryVersion.minor);
}

/* raise:LIB:SYM:N — the fixture is already loaded by the proxy; RTLD_NOLOAD finds that copy. */
static void step_raise(const char *spec)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", spec + strlen("raise:"));
	char *sym = strchr(buf, ':');
	char *arg = sym ? strchr(sym + 1, ':') : NULL;
	int result = -1000;
	if (sym && arg) {
		*sym++ = '\0';
		*arg++ = '\0';
		void *lib = dlopen(buf, RTLD_NOW | RTLD_NOLOAD);
		void *fn = lib ? dlsym(lib, sym) : NULL;
		if (fn) {
			int (*control)(unsigned long);
			*(void **)&control = fn;
			result = control(strtoul(arg, NULL, 10));
		}
	}
	printf("{\"step\":\"raise\",\"result\":%d}\n", result);
}

#define MAX_MECHS 1024

static void step_mechs(CK_FUNCTION_LIST *p)
{
	CK_SLOT_ID ids[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS;
	CK_RV rv = p->C_GetSlotList(CK_FALSE, ids, &n);
	printf("{\"step\":\"mechs\",\"rv\":%lu,\"slots\":[", (unsigned long)rv);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		static CK_MECHANISM_TYPE types[MAX_MECHS];
		CK_ULONG count = MAX_MECHS;
		CK_RV lrv = p->C_GetMechanismList(ids[i], types, &count);
		printf("%s{\"id\":%lu,\"rv\":%lu,\"mechs\":[", i ? "," : "", (unsigned long)ids[i], (unsigned long)lrv);
		for (CK_ULONG m = 0; lrv == CKR_OK && m < count; m++) {
			CK_MECHANISM_INFO mi = { 0, 0, 0 };
			CK_RV mrv = p->C_GetMechanismInfo(ids[i], types[m], &mi);
			if (mrv != CKR_OK)
				mi.flags = ~0UL; /* shown as an impossible flag set */
			printf("%s[%lu,%lu,%lu,%lu]", m ? "," : "", (unsigned long)types[m], (unsigned long)mi.ulMinKeySize,
			       (unsigned long)mi.ulMaxKeySize, (unsigned long)mi.flags);
		}
		fputs("]}", stdout);
	}
	puts("]}");
}

static void step_wait(CK_FUNCTION_LIST *p, CK_FLAGS flags, const char *name)
{
	CK_SLOT_ID slot = 0;
	CK_RV rv = p->C_WaitForSlotEvent(flags, &slot, NULL);
	printf("{\"step\":\"%s\",\"rv\":%lu,\"slot\":%lu}\n", name, (unsigned long)rv, (unsigned long)slot);
}

int main(int argc, char **argv)
{
	const char *system_conf = NULL, *user_conf = NULL, *package_modules = NULL, *system_modules = NULL, *user_modules = NULL;
	const char *progname = "proxy-oracle";
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *v = argv[i + 1];
		if (!strcmp(argv[i], "--system-conf")) system_conf = v;
		else if (!strcmp(argv[i], "--user-conf")) user_conf = v;
		else if (!strcmp(argv[i], "--package-modules")) package_modules = v;
		else if (!strcmp(argv[i], "--system-modules")) system_modules = v;
		else if (!strcmp(argv[i], "--user-modules")) user_modules = v;
		else if (!strcmp(argv[i], "--progname")) progname = v;
		else {
			fprintf(stderr, "proxy-oracle: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	p11_kit_override_system_files(system_conf, user_conf, package_modules, system_modules, user_modules);
	p11_kit_set_progname(progname);

	void *lib = dlopen(PROXY_PATH, RTLD_NOW);
	CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST *p = NULL;
	if (!get) {
		fprintf(stderr, "proxy-oracle: cannot load %s\n", PROXY_PATH);
		return 2;
	}
	CK_RV rv = get(&p);
	if (rv != CKR_OK) {
		printf("{\"step\":\"get-function-list\",\"rv\":%lu}\n", (unsigned long)rv);
		return 0;
	}
	for (; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "initialize"))
			printf("{\"step\":\"initialize\",\"rv\":%lu}\n", (unsigned long)p->C_Initialize(NULL));
		else if (!strcmp(s, "finalize"))
			printf("{\"step\":\"finalize\",\"rv\":%lu}\n", (unsigned long)p->C_Finalize(NULL));
		else if (!strcmp(s, "info"))
			step_info(p);
		else if (!strcmp(s, "slots"))
			step_slots(p);
		else if (!strcmp(s, "present"))
			step_present(p);
		else if (!strncmp(s, "raise:", 6))
			step_raise(s);
		else if (!strcmp(s, "wait-nb"))
			step_wait(p, CKF_DONT_BLOCK, "wait-nb");
		else if (!strcmp(s, "wait-block"))
			step_wait(p, 0, "wait-block");
		else if (!strcmp(s, "mechs"))
			step_mechs(p);
		else {
			fprintf(stderr, "proxy-oracle: unknown step %s\n", s);
			return 2;
		}
		fflush(stdout);
	}
	return 0;
}
