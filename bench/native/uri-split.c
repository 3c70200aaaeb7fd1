/*
 * Splits the URI bench's gap (bench/uri.mjs): the same C core that runs as wasm, compiled
 * natively (-O2, as the fuzzers compile it but without sanitizers), against libp11-kit 0.24.1,
 * in one process, on the same URI mix (`node bench/lib/uri-mix.mjs | uri-split ...`).
 * If the native core is as fast as libp11-kit, the gap of the wasm build is wasm and the
 * JS <-> wasm crossing, not the algorithm.
 *
 *   uri-split time [ROUNDS]      interleaved rounds of both sides, after a warm-up of both;
 *                                prints ns per URI, median [p10-p90], and the per-round ratio
 *   uri-split count SIDE N       20,000 warm-up URIs then N more on one side (p11kit | core),
 *                                for instruction counts under callgrind: run at two N, divide
 *                                the difference (startup and warm-up cancel out)
 *
 * Both sides must format the same bytes and fail on the same URIs, or it exits 1.
 */
#include "uri.h"

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_URIS 100000

static char *uris[MAX_URIS];
static uint32_t lens[MAX_URIS];
static size_t count;

typedef struct {
	unsigned long long bytes, failed;
} work;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void read_uris(void)
{
	static char line[1 << 16];
	while (count < MAX_URIS && fgets(line, sizeof(line), stdin)) {
		size_t len = strcspn(line, "\n");
		line[len] = 0;
		uris[count] = strdup(line);
		lens[count] = (uint32_t)len;
		if (!uris[count++]) {
			fprintf(stderr, "uri-split: out of memory\n");
			exit(1);
		}
	}
	if (!count) {
		fprintf(stderr, "uri-split: no URIs on stdin (node bench/lib/uri-mix.mjs | uri-split ...)\n");
		exit(2);
	}
}

/* What bench/native/loops/uri-loops.c does: new, parse, format, free. */
static work run_p11kit(size_t start, size_t n)
{
	work w = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		P11KitUri *uri = p11_kit_uri_new();
		char *text = NULL;
		if (p11_kit_uri_parse(uris[(start + i) % count], P11_KIT_URI_FOR_ANY, uri) == P11_KIT_URI_OK &&
		    p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &text) == P11_KIT_URI_OK) {
			w.bytes += strlen(text);
			free(text);
		} else {
			w.failed++;
		}
		p11_kit_uri_free(uri);
	}
	return w;
}

/* What normalizeUri asks of the wasm core: one p11w_uri_normalize per URI. */
static work run_core(size_t start, size_t n)
{
	work w = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		size_t at = (start + i) % count;
		uint32_t len;
		if (p11w_uri_normalize(uris[at], lens[at], P11W_URI_FOR_ANY, 0, &len))
			w.bytes += len;
		else
			w.failed++;
	}
	return w;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double quantile(const double *xs, int n, double p)
{
	double s[256];
	memcpy(s, xs, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	double at = (n - 1) * p;
	int lo = (int)at;
	int hi = lo + 1 < n ? lo + 1 : lo;
	return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

static int time_both(int rounds)
{
	typedef work (*side_fn)(size_t, size_t);
	side_fn sides[2] = { run_p11kit, run_core };
	const char *names[2] = { "libp11-kit 0.24.1", "our core, native -O2" };
	double ns[2][256];
	size_t next[2] = { 0, 0 };
	work check[2];
	for (int s = 0; s < 2; s++)
		check[s] = sides[s](0, count);
	if (check[0].bytes != check[1].bytes || check[0].failed != check[1].failed) {
		fprintf(stderr, "uri-split: different work: p11-kit %llu bytes %llu failed, core %llu bytes %llu failed\n",
		        check[0].bytes, check[0].failed, check[1].bytes, check[1].failed);
		return 1;
	}
	/* ~25 ms a sample, sized after a 200 ms warm-up of each side (as bench/lib/sampling.mjs). */
	size_t n[2];
	for (int s = 0; s < 2; s++) {
		double t0 = now_ns();
		size_t done = 0;
		while (now_ns() - t0 < 200e6) {
			sides[s](done % count, count);
			done += count;
		}
		n[s] = (size_t)(25e6 / ((now_ns() - t0) / (double)done)) + 1;
	}
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 2; i++) {
			int s = (i + r) % 2;
			double t0 = now_ns();
			sides[s](next[s], n[s]);
			ns[s][r] = (now_ns() - t0) / (double)n[s];
			next[s] = (next[s] + n[s]) % count;
		}
	}
	double ratio[256];
	for (int r = 0; r < rounds; r++)
		ratio[r] = ns[0][r] / ns[1][r];
	printf("URI parse + format, %zu URIs (%llu failing), ns per URI, median [p10-p90] of %d interleaved rounds\n",
	       count, check[0].failed, rounds);
	for (int s = 0; s < 2; s++)
		printf("  %-22s %7.0f [%.0f-%.0f]\n", names[s], quantile(ns[s], rounds, 0.5), quantile(ns[s], rounds, 0.1),
		       quantile(ns[s], rounds, 0.9));
	printf("  our core / libp11-kit speed: %.2fx (median of per-round ratios)\n", quantile(ratio, rounds, 0.5));
	return 0;
}

int main(int argc, char **argv)
{
	read_uris();
	if (argc >= 2 && strcmp(argv[1], "time") == 0) {
		int rounds = argc >= 3 ? atoi(argv[2]) : 15;
		return time_both(rounds < 1 ? 1 : rounds > 256 ? 256 : rounds);
	}
	if (argc == 4 && strcmp(argv[1], "count") == 0) {
		work (*side)(size_t, size_t) = strcmp(argv[2], "core") == 0 ? run_core
		                             : strcmp(argv[2], "p11kit") == 0 ? run_p11kit
		                                                              : NULL;
		long n = atol(argv[3]);
		if (side && n >= 0) {
			work w = side(0, 20000);
			w = side(20000, (size_t)n);
			printf("%llu bytes, %llu failed\n", w.bytes, w.failed);
			return 0;
		}
	}
	fprintf(stderr, "usage: node bench/lib/uri-mix.mjs | uri-split time [ROUNDS] | count p11kit|core N\n");
	return 2;
}
