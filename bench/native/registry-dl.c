/*
 * The C-process side of the loading workload's control (bench/registry.mjs): the same C as
 * bench/native/loops/registry-loops.c, run ROUNDS times in a process of its own.
 *
 * Usage: registry-dl ROUNDS LIBRARY...
 * Prints {"ns_per_round":[...],"cpu_ns_per_round":[...]} (wall, and process CPU time: user +
 * system); the bench drops the first round (a warm-up).
 */
#include "loops/registry-loops.c"

#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: registry-dl ROUNDS LIBRARY...\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	if (rounds < 1 || rounds > 1000)
		return 2;
	double ns[1000], cpu[1000];
	for (int r = 0; r < rounds; r++) {
		struct timespec c0, c1;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		ns[r] = registry_dl_round(argc - 2, (const char **)argv + 2);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		if (ns[r] < 0) {
			fprintf(stderr, "registry-dl: a library did not load as a PKCS#11 module\n");
			return 1;
		}
		cpu[r] = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
	}
	printf("{\"ns_per_round\":[");
	for (int r = 0; r < rounds; r++)
		printf("%s%.0f", r ? "," : "", ns[r]);
	printf("],\"cpu_ns_per_round\":[");
	for (int r = 0; r < rounds; r++)
		printf("%s%.0f", r ? "," : "", cpu[r]);
	printf("]}\n");
	return 0;
}
