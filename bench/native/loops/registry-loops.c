/*
 * The control of bench/registry.mjs's loading workload: the part of p11-kit's load that is
 * dynamic loading, in C. Each library is dlopened (RTLD_NOW, as p11-kit does), its
 * C_GetFunctionList found and called, all stay open, then each is dlclosed. The bench runs this
 * same C in its own (Node) process through koffi and in a C process (registry-dl), so the cost
 * the process adds to dlopen/dlclose is measured apart from anything JavaScript does.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

typedef unsigned long (*get_function_list_fn)(void **list);

static double dl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One round over n libraries: the nanoseconds it took, or -1 if one did not load as a module. */
double registry_dl_round(int n, const char **paths)
{
	void **handles = calloc((size_t)n, sizeof(*handles));
	if (!handles)
		return -1;
	double t0 = dl_now_ns();
	int ok = 1;
	for (int i = 0; i < n; i++) {
		handles[i] = dlopen(paths[i], RTLD_NOW);
		get_function_list_fn get = handles[i] ? (get_function_list_fn)dlsym(handles[i], "C_GetFunctionList") : NULL;
		void *list = NULL;
		if (!get || get(&list) != 0 || !list)
			ok = 0;
	}
	for (int i = 0; i < n; i++)
		if (handles[i])
			dlclose(handles[i]);
	double ns = dl_now_ns() - t0;
	free(handles);
	return ok ? ns : -1;
}
