/*
 * The native side of bench/uri.mjs: parse + format with the real libp11-kit.
 * Reads URIs (one per line) from stdin, then for each of `rounds` rounds runs
 * `count` iterations, cycling through the URIs, of
 *   p11_kit_uri_new → p11_kit_uri_parse(FOR_ANY) → p11_kit_uri_format(FOR_ANY) → free
 * and prints one JSON line: {"ns_per_uri":[round…],"formatted_bytes":n,"failed":n}.
 * formatted_bytes and failed let the caller check both sides did the same work.
 *
 * Usage: uri-bench <count> <rounds>
 */
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_URIS 100000

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	static char *uris[MAX_URIS];
	size_t n = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while (n < MAX_URIS && (len = getline(&line, &cap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		uris[n++] = strdup(line);
	}
	free(line);
	if (n == 0 || count <= 0 || rounds <= 0) {
		fprintf(stderr, "uri-bench: no URIs on stdin, or a bad count\n");
		return 2;
	}

	unsigned long long bytes = 0, failed = 0;
	printf("{\"ns_per_uri\":[");
	for (int r = 0; r < rounds; r++) {
		bytes = failed = 0;
		double t0 = now_ns();
		for (long i = 0; i < count; i++) {
			P11KitUri *uri = p11_kit_uri_new();
			char *text = NULL;
			if (p11_kit_uri_parse(uris[i % n], P11_KIT_URI_FOR_ANY, uri) == P11_KIT_URI_OK &&
			    p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &text) == P11_KIT_URI_OK) {
				bytes += strlen(text);
				free(text);
			} else {
				failed++;
			}
			p11_kit_uri_free(uri);
		}
		printf("%s%.1f", r ? "," : "", (now_ns() - t0) / (double)count);
	}
	printf("],\"formatted_bytes\":%llu,\"failed\":%llu}\n", bytes, failed);
	for (size_t i = 0; i < n; i++)
		free(uris[i]);
	return 0;
}
