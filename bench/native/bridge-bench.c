/*
 * The native side of bench/bridge.mjs: the same PKCS#11 operations on SoftHSM2, straight from C
 * through the module's function list, timed the same way (warm-up, then batches of 256 for at
 * least the measuring time). Prints one JSON object: operation name -> nanoseconds per op.
 *
 * usage: bridge-bench <module.so> <user-pin> <warm-ms> <measure-ms>
 * (SOFTHSM2_CONF must point at a store with one initialized token.)
 */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE session;
static CK_OBJECT_HANDLE private_key;
static volatile unsigned long sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void check(CK_RV rv, const char *what)
{
	if (rv != CKR_OK) {
		fprintf(stderr, "bridge-bench: %s failed: 0x%lx\n", what, rv);
		exit(1);
	}
}

static void op_get_info(void)
{
	CK_INFO info;
	check(f->C_GetInfo(&info), "C_GetInfo");
	sink += info.manufacturerID[0];
}

static void op_get_slot_list(void)
{
	CK_SLOT_ID slots[64];
	CK_ULONG count = 0;
	check(f->C_GetSlotList(CK_TRUE, NULL, &count), "C_GetSlotList");
	if (count > 64)
		exit(1);
	check(f->C_GetSlotList(CK_TRUE, slots, &count), "C_GetSlotList");
	sink += slots[0];
}

static void op_get_token_info(void)
{
	CK_TOKEN_INFO info;
	check(f->C_GetTokenInfo(slot, &info), "C_GetTokenInfo");
	sink += info.label[0];
}

static void op_random(void)
{
	CK_BYTE buf[32];
	check(f->C_GenerateRandom(session, buf, sizeof(buf)), "C_GenerateRandom");
	sink += buf[0];
}

static void op_digest(void)
{
	static CK_BYTE data[64];
	CK_BYTE out[32];
	CK_ULONG len = sizeof(out);
	CK_MECHANISM mech = { CKM_SHA256, NULL, 0 };
	check(f->C_DigestInit(session, &mech), "C_DigestInit");
	check(f->C_Digest(session, data, sizeof(data), out, &len), "C_Digest");
	sink += out[0];
}

static void op_sign(void)
{
	static CK_BYTE hash[32] = { 1, 2, 3 };
	CK_BYTE sig[64];
	CK_ULONG len = sizeof(sig);
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	check(f->C_SignInit(session, &mech, private_key), "C_SignInit");
	check(f->C_Sign(session, hash, sizeof(hash), sig, &len), "C_Sign");
	sink += sig[0];
}

static double measure(void (*op)(void), double warm_ms, double measure_ms)
{
	double end = now_ns() + warm_ms * 1e6;
	while (now_ns() < end)
		for (int i = 0; i < 256; i++)
			op();
	unsigned long n = 0;
	double start = now_ns();
	double t;
	do {
		for (int i = 0; i < 256; i++)
			op();
		n += 256;
		t = now_ns();
	} while (t - start < measure_ms * 1e6);
	return (t - start) / n;
}

static void setup(const char *pin)
{
	CK_C_INITIALIZE_ARGS args = { NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL };
	check(f->C_Initialize(&args), "C_Initialize");
	CK_SLOT_ID slots[64];
	CK_ULONG count = 64;
	check(f->C_GetSlotList(CK_TRUE, slots, &count), "C_GetSlotList");
	for (CK_ULONG i = 0; i < count; i++) {
		CK_TOKEN_INFO info;
		check(f->C_GetTokenInfo(slots[i], &info), "C_GetTokenInfo");
		if (info.flags & CKF_TOKEN_INITIALIZED) {
			slot = slots[i];
			break;
		}
	}
	check(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session), "C_OpenSession");
	check(f->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login");
	static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pub[] = { { CKA_EC_PARAMS, p256, sizeof(p256) }, { CKA_TOKEN, &no, sizeof(no) } };
	CK_ATTRIBUTE priv[] = { { CKA_SIGN, &yes, sizeof(yes) }, { CKA_TOKEN, &no, sizeof(no) } };
	CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_HANDLE public_key;
	check(f->C_GenerateKeyPair(session, &gen, pub, 2, priv, 2, &public_key, &private_key), "C_GenerateKeyPair");
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bridge-bench <module.so> <user-pin> <warm-ms> <measure-ms>\n");
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "bridge-bench: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList get;
	*(void **)&get = dlsym(lib, "C_GetFunctionList");
	if (!get) {
		fprintf(stderr, "bridge-bench: no C_GetFunctionList\n");
		return 1;
	}
	check(get(&f), "C_GetFunctionList");
	setup(argv[2]);
	double warm = atof(argv[3]), ms = atof(argv[4]);
	struct {
		const char *name;
		void (*op)(void);
	} ops[] = {
		{ "C_GetInfo", op_get_info },
		{ "C_GetSlotList", op_get_slot_list },
		{ "C_GetTokenInfo", op_get_token_info },
		{ "GenerateRandom 32 B", op_random },
		{ "Digest SHA-256 64 B", op_digest },
		{ "Sign ECDSA P-256", op_sign },
	};
	printf("{");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		printf("%s\"%s\": %.1f", i ? ", " : "", ops[i].name, measure(ops[i].op, warm, ms));
	printf("}\n");
	f->C_Logout(session);
	f->C_CloseSession(session);
	f->C_Finalize(NULL);
	return (int)(sink & 0);
}
