/*
 * The native side of bench/registry.mjs: libp11-kit 0.24.1 reads a generated
 * registry (p11_kit_override_system_files) and loads it, then releases every
 * module so that the next load reads the files again.
 *
 * Usage: registry-bench SYSTEM_CONF USER_CONF PACKAGE_DIR SYSTEM_DIR USER_DIR PROGNAME LOADS [HOLD_LIBRARY...]
 * Each HOLD_LIBRARY is dlopened first and kept open for the whole run.
 * Prints {"ns_per_load":[...],"cpu_ns_per_load":[...],"modules":N}: wall and
 * process CPU time (user + system) per load, and the number of modules the last
 * load returned (the JS side checks it loads the same).
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <p11-kit/p11-kit.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr, "usage: registry-bench SYSTEM_CONF USER_CONF PACKAGE_DIR SYSTEM_DIR USER_DIR PROGNAME LOADS [HOLD_LIBRARY...]\n");
		return 2;
	}
	for (int i = 8; i < argc; i++)
		if (!dlopen(argv[i], RTLD_NOW)) {
			fprintf(stderr, "registry-bench: %s\n", dlerror());
			return 1;
		}
	int loads = atoi(argv[7]);
	if (loads < 1)
		loads = 1;
	p11_kit_override_system_files(argv[1], argv[2], argv[3], argv[4], argv[5]);
	p11_kit_set_progname(argv[6]);

	int64_t *ns = calloc((size_t)loads, sizeof(*ns));
	int64_t *cpu = calloc((size_t)loads, sizeof(*cpu));
	if (!ns || !cpu)
		return 1;
	int count = -1;
	for (int i = 0; i < loads; i++) {
		int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		CK_FUNCTION_LIST **modules = p11_kit_modules_load(NULL, 0);
		if (!modules) {
			fprintf(stderr, "registry-bench: load failed: %s\n", p11_kit_message());
			return 1;
		}
		for (count = 0; modules[count]; count++)
			;
		p11_kit_modules_release(modules);
		ns[i] = clock_ns(CLOCK_MONOTONIC) - t0;
		cpu[i] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
	}

	printf("{\"ns_per_load\":[");
	for (int i = 0; i < loads; i++)
		printf("%s%lld", i ? "," : "", (long long)ns[i]);
	printf("],\"cpu_ns_per_load\":[");
	for (int i = 0; i < loads; i++)
		printf("%s%lld", i ? "," : "", (long long)cpu[i]);
	printf("],\"modules\":%d}\n", count);
	free(ns);
	free(cpu);
	return 0;
}
