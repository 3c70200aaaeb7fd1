/*
 * The differential oracle for the module registry: the real libp11-kit
 * 0.24.1, pointed at a test tree with p11_kit_override_system_files(), lists
 * what it would load. One JSON object per scenario on stdout.
 *
 * Usage:
 *   registry-oracle [scenario options]        one scenario from argv
 *   registry-oracle --batch                   one scenario per stdin line, each in a
 *                                             forked child; the line's arguments are
 *                                             separated by TABs, and \t \n \\ escapes
 *                                             are decoded in each
 * Scenario options:
 *   --system-conf FILE --user-conf FILE --package-modules DIR --system-modules DIR
 *   --user-modules DIR      locations (absent: left as they are)
 *   --progname NAME         p11_kit_set_progname (empty: automatic)
 *   --flags N               flags for p11_kit_modules_load (e.g. 4 = TRUSTED)
 *   --key K                 module option to print (repeatable)
 *   --global-key K          global option to print (repeatable)
 *   --env NAME=VALUE        setenv for this scenario (restored afterwards)
 *   --unset NAME            unsetenv for this scenario (restored afterwards)
 *
 * Output: {"ok":bool,"message":str|null,"messages":[str],"globals":{k:str|null},
 *          "modules":[{"name":str|null,"filename":str|null,"flags":n,"logs_calls":0|1,
 *                      "options":{k:str|null}}]}
 * where "messages" are the lines libp11-kit wrote to stderr during the load, and
 * "logs_calls" says whether a C_GetInfo through the module was logged (log-calls).
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <p11-kit/p11-kit.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_KEYS 256
#define MAX_ENV 16
#define MAX_ARGS 1024

typedef struct {
	const char *system_conf, *user_conf, *package_modules, *system_modules, *user_modules;
	const char *progname;
	int flags;
	const char *keys[MAX_KEYS];
	int n_keys;
	const char *global_keys[MAX_KEYS];
	int n_global_keys;
	const char *env_names[MAX_ENV];
	const char *env_values[MAX_ENV]; /* NULL: unset */
	int n_env;
} scenario;

/* ---- JSON output ------------------------------------------------------------------------ */

static void json_str(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_options(FILE *out, CK_FUNCTION_LIST *module, const char *const *keys, int n)
{
	fputc('{', out);
	for (int i = 0; i < n; i++) {
		char *value = p11_kit_config_option(module, keys[i]);
		if (i)
			fputc(',', out);
		json_str(out, keys[i]);
		fputc(':', out);
		json_str(out, value);
		free(value);
	}
	fputc('}', out);
}

/* ---- argument parsing ------------------------------------------------------------------- */

static int usage(const char *why, const char *arg)
{
	fprintf(stderr, "registry-oracle: %s%s%s\n", why, arg ? ": " : "", arg ? arg : "");
	return -1;
}

static int parse_args(int argc, char **argv, scenario *sc)
{
	memset(sc, 0, sizeof(*sc));
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i];
		if (i + 1 >= argc)
			return usage("missing value for", opt);
		const char *val = argv[++i];
		if (strcmp(opt, "--system-conf") == 0)
			sc->system_conf = val;
		else if (strcmp(opt, "--user-conf") == 0)
			sc->user_conf = val;
		else if (strcmp(opt, "--package-modules") == 0)
			sc->package_modules = val;
		else if (strcmp(opt, "--system-modules") == 0)
			sc->system_modules = val;
		else if (strcmp(opt, "--user-modules") == 0)
			sc->user_modules = val;
		else if (strcmp(opt, "--progname") == 0)
			sc->progname = val;
		else if (strcmp(opt, "--flags") == 0)
			sc->flags = atoi(val);
		else if (strcmp(opt, "--key") == 0) {
			if (sc->n_keys == MAX_KEYS)
				return usage("too many keys", NULL);
			sc->keys[sc->n_keys++] = val;
		} else if (strcmp(opt, "--global-key") == 0) {
			if (sc->n_global_keys == MAX_KEYS)
				return usage("too many global keys", NULL);
			sc->global_keys[sc->n_global_keys++] = val;
		} else if (strcmp(opt, "--env") == 0 || strcmp(opt, "--unset") == 0) {
			if (sc->n_env == MAX_ENV)
				return usage("too many environment changes", NULL);
			sc->env_names[sc->n_env] = val;
			sc->env_values[sc->n_env] = NULL;
			if (opt[2] == 'e') {
				char *eq = strchr(val, '=');
				if (!eq)
					return usage("--env needs NAME=VALUE", val);
				*eq = 0;
				sc->env_values[sc->n_env] = eq + 1;
			}
			sc->n_env++;
		} else {
			return usage("unknown option", opt);
		}
	}
	return 0;
}

/* ---- stderr capture: what libp11-kit reports while loading -------------------------------- */

typedef struct {
	int saved;
	FILE *tmp;
} capture;

static int capture_start(capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	c->saved = dup(STDERR_FILENO);
	if (!c->tmp || c->saved < 0 || dup2(fileno(c->tmp), STDERR_FILENO) < 0)
		return -1;
	return 0;
}

/* Restores stderr and writes the captured lines as a JSON array. */
static void capture_end(capture *c, FILE *out)
{
	char line[4096];
	int first = 1;
	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->tmp);
	fputc('[', out);
	while (fgets(line, sizeof(line), c->tmp)) {
		line[strcspn(line, "\n")] = 0;
		if (!first)
			fputc(',', out);
		json_str(out, line);
		first = 0;
	}
	fputc(']', out);
	fclose(c->tmp);
}

/*
 * Whether libp11-kit wrapped the module in its call logger (effective log-calls):
 * one C_GetInfo, uninitialized, which any module answers harmlessly, and a look
 * at what the logger wrote to stderr.
 */
static int call_is_logged(CK_FUNCTION_LIST *module)
{
	capture cap;
	char line[4096];
	int logged = 0;
	CK_INFO info;
	if (capture_start(&cap) < 0)
		return -1;
	module->C_GetInfo(&info);
	fflush(stderr);
	dup2(cap.saved, STDERR_FILENO);
	close(cap.saved);
	rewind(cap.tmp);
	while (fgets(line, sizeof(line), cap.tmp))
		logged |= strncmp(line, "C_GetInfo", 9) == 0;
	fclose(cap.tmp);
	return logged;
}

/* ---- one scenario ----------------------------------------------------------------------- */

typedef struct {
	char *name;
	char *value; /* NULL: was unset */
} saved_env;

static void run(scenario *sc, FILE *out)
{
	saved_env saved[MAX_ENV];
	for (int i = 0; i < sc->n_env; i++) {
		const char *old = getenv(sc->env_names[i]);
		saved[i].name = strdup(sc->env_names[i]);
		saved[i].value = old ? strdup(old) : NULL;
		if (sc->env_values[i])
			setenv(sc->env_names[i], sc->env_values[i], 1);
		else
			unsetenv(sc->env_names[i]);
	}

	p11_kit_override_system_files(sc->system_conf, sc->user_conf, sc->package_modules,
	                              sc->system_modules, sc->user_modules);
	p11_kit_set_progname(sc->progname && *sc->progname ? sc->progname : NULL);

	capture cap;
	int capturing = capture_start(&cap) == 0;
	CK_FUNCTION_LIST **modules = p11_kit_modules_load(NULL, sc->flags);
	const char *message = modules ? NULL : p11_kit_message();

	fputs("{\"ok\":", out);
	fputs(modules ? "true" : "false", out);
	fputs(",\"message\":", out);
	json_str(out, message);
	fputs(",\"messages\":", out);
	if (capturing)
		capture_end(&cap, out);
	else
		fputs("[]", out);
	fputs(",\"globals\":", out);
	json_options(out, NULL, sc->global_keys, sc->n_global_keys);
	fputs(",\"modules\":[", out);
	for (int m = 0; modules && modules[m]; m++) {
		char *name = p11_kit_module_get_name(modules[m]);
		char *filename = p11_kit_module_get_filename(modules[m]);
		if (m)
			fputc(',', out);
		fputs("{\"name\":", out);
		json_str(out, name);
		fputs(",\"filename\":", out);
		json_str(out, filename);
		fprintf(out, ",\"flags\":%d,\"logs_calls\":%d,\"options\":", p11_kit_module_get_flags(modules[m]),
		        call_is_logged(modules[m]));
		json_options(out, modules[m], sc->keys, sc->n_keys);
		fputc('}', out);
		free(name);
		free(filename);
	}
	fputs("]}\n", out);
	fflush(out);

	/* Dropping every reference lets the next load re-read the (overridden) files. */
	if (modules)
		p11_kit_modules_release(modules);

	for (int i = sc->n_env - 1; i >= 0; i--) {
		if (saved[i].value)
			setenv(saved[i].name, saved[i].value, 1);
		else
			unsetenv(saved[i].name);
		free(saved[i].name);
		free(saved[i].value);
	}
}

/* ---- batch mode ------------------------------------------------------------------------- */

/* Splits a line on TABs in place and decodes \t \n \\ in each field. */
static int split_line(char *line, char **argv, int max)
{
	int argc = 0;
	char *field = line, *w = line;
	for (char *r = line;; r++) {
		if (*r == '\t' || *r == 0) {
			int end = *r == 0;
			*w++ = 0;
			if (argc == max)
				return -1;
			argv[argc++] = field;
			if (end)
				break;
			field = w;
		} else if (*r == '\\' && (r[1] == 't' || r[1] == 'n' || r[1] == '\\')) {
			r++;
			*w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : '\\';
		} else {
			*w++ = *r;
		}
	}
	return argc;
}

static int batch(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	char *argv[MAX_ARGS];
	scenario sc;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;
		if (!*line)
			continue;
		int argc = split_line(line, argv, MAX_ARGS);
		if (argc < 0 || parse_args(argc, argv, &sc) < 0) {
			free(line);
			return 2;
		}
		/* Each scenario in its own child: libp11-kit keeps its config cached while any
		 * reference survives, and some failed loads leave one behind (a critical
		 * p11-kit-proxy.so), which would leak one scenario's answer into the next. */
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("registry-oracle: fork");
			free(line);
			return 2;
		}
		if (pid == 0) {
			run(&sc, stdout);
			_exit(0);
		}
		int status = 0;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "registry-oracle: scenario child failed (status %d)\n", status);
			free(line);
			return 2;
		}
	}
	free(line);
	return 0;
}

int main(int argc, char **argv)
{
	/* Warnings (stray file names, both enable-in and disable-in, …) go to stderr, captured per scenario. */
	p11_kit_be_loud();
	if (argc == 2 && strcmp(argv[1], "--batch") == 0)
		return batch();
	scenario sc;
	if (parse_args(argc - 1, argv + 1, &sc) < 0)
		return 2;
	run(&sc, stdout);
	return 0;
}
