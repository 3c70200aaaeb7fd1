/*
 * The native side of bench/uri.mjs, as a shared library the bench calls through koffi in its
 * own process (so rounds interleave with ours and both sides are warm): libp11-kit's parse +
 * format, p11_kit_uri_new → p11_kit_uri_parse(FOR_ANY) → p11_kit_uri_format(FOR_ANY) → free,
 * cycling through the URIs given to uri_loops_load.
 */
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

static char **uris;
static size_t count;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Takes a copy of the URIs (one per line); returns how many, or -1. */
long uri_loops_load(const char *block)
{
	size_t cap = 0;
	for (const char *p = block; *p; p++)
		cap += *p == '\n';
	uris = calloc(cap + 1, sizeof(*uris));
	if (!uris)
		return -1;
	count = 0;
	for (const char *p = block; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		uris[count] = strndup(p, len);
		if (!uris[count++])
			return -1;
		p += len + (nl != NULL);
	}
	return (long)count;
}

/* n parse + format round trips from URI number `start` on; out[0] = formatted bytes, out[1] = failures. Returns ns. */
double uri_loops_run(long start, long n, double *out)
{
	unsigned long long bytes = 0, failed = 0;
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		P11KitUri *uri = p11_kit_uri_new();
		char *text = NULL;
		if (p11_kit_uri_parse(uris[(size_t)(start + i) % count], P11_KIT_URI_FOR_ANY, uri) == P11_KIT_URI_OK &&
		    p11_kit_uri_format(uri, P11_KIT_URI_FOR_ANY, &text) == P11_KIT_URI_OK) {
			bytes += strlen(text);
			free(text);
		} else {
			failed++;
		}
		p11_kit_uri_free(uri);
	}
	double t = now_ns() - t0;
	out[0] = (double)bytes;
	out[1] = (double)failed;
	return t;
}
