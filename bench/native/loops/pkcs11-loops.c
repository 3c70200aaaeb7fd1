/*
 * Native reference loops for the benchmarks, as a shared library that a bench loads with koffi
 * and calls once per sample: each function runs `n` iterations of one operation straight from C
 * through a module's function list and returns the nanoseconds they took (timed here, so the
 * one koffi call that starts a sample is not counted). Driving C from the same process as the
 * JavaScript sides lets the samples interleave with theirs and share the module's
 * initialization, the process's page tables and the machine's mood.
 *
 * Every call's CK_RV is checked (a failure returns a negative time) and one output byte is
 * consumed, like the JavaScript sides.
 */
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define LOOP(...)                                         \
	do {                                                  \
		double t0 = now_ns();                             \
		for (long i = 0; i < n; i++) {                    \
			__VA_ARGS__                                   \
		}                                                 \
		return now_ns() - t0;                             \
	} while (0)
#define CHECK(call)             \
	if ((call) != CKR_OK)       \
		return -1;

/* libc getpid(): the syscall control (glibc does not cache it). */
double loop_getpid(long n)
{
	LOOP(sink += (unsigned long)getpid(););
}

/* C_GetInfo; three fields read (the JavaScript raw side reads the same three). */
double loop_get_info(CK_FUNCTION_LIST *f, long n)
{
	LOOP(CK_INFO info; CHECK(f->C_GetInfo(&info)); sink += info.manufacturerID[0] + info.flags + info.cryptokiVersion.major;);
}

/* C_GetSlotList: count query, then fill. */
double loop_get_slot_list(CK_FUNCTION_LIST *f, unsigned char token_present, long n)
{
	LOOP(CK_SLOT_ID slots[64]; CK_ULONG count = 0; CHECK(f->C_GetSlotList(token_present, NULL, &count));
	     if (count > 64) return -1; CHECK(f->C_GetSlotList(token_present, slots, &count)); sink += slots[0];);
}

double loop_get_token_info(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, long n)
{
	LOOP(CK_TOKEN_INFO info; CHECK(f->C_GetTokenInfo(slot, &info)); sink += info.label[0] + info.flags;);
}

double loop_get_slot_info(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, long n)
{
	LOOP(CK_SLOT_INFO info; CHECK(f->C_GetSlotInfo(slot, &info)); sink += info.slotDescription[0] + info.flags;);
}

double loop_random(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, unsigned long len, long n)
{
	CK_BYTE buf[256];
	if (len > sizeof(buf))
		return -1;
	LOOP(CHECK(f->C_GenerateRandom(s, buf, len)); sink += buf[0];);
}

/*
 * C_GenerateRandom from `threads` threads at once on one session, n calls in all: through
 * p11-kit's client that is `threads` calls in flight on its one connection (each thread writes
 * its request and waits for the reply with its code), the C side of the RPC bench's
 * "16 in flight" row. Timed from the moment every thread is ready until the last one is done.
 */
struct start_gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int ready;
	int open;
};

struct random_job {
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE s;
	unsigned long len;
	long n;
	struct start_gate *gate;
	int failed;
};

static void *random_worker(void *arg)
{
	struct random_job *job = arg;
	struct start_gate *g = job->gate;
	CK_BYTE buf[256];
	pthread_mutex_lock(&g->lock);
	g->ready++;
	pthread_cond_broadcast(&g->changed);
	while (!g->open)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
	for (long i = 0; i < job->n; i++) {
		if (job->f->C_GenerateRandom(job->s, buf, job->len) != CKR_OK) {
			job->failed = 1;
			break;
		}
		sink += buf[0];
	}
	return NULL;
}

double loop_random_threads(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, unsigned long len, long n, int threads)
{
	enum { MAX_THREADS = 64 };
	if (len > 256 || threads < 1 || threads > MAX_THREADS)
		return -1;
	pthread_t tid[MAX_THREADS];
	struct random_job jobs[MAX_THREADS];
	struct start_gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	int started = 0;
	for (; started < threads; started++) {
		jobs[started] = (struct random_job){ f, s, len, n / threads + (started < n % threads ? 1 : 0), &gate, 0 };
		if (pthread_create(&tid[started], NULL, random_worker, &jobs[started]) != 0)
			break;
	}
	/* Every thread waits at the gate; the clock starts when it opens (a thread that could not be made fails the sample). */
	pthread_mutex_lock(&gate.lock);
	while (gate.ready < started)
		pthread_cond_wait(&gate.changed, &gate.lock);
	gate.open = 1;
	pthread_cond_broadcast(&gate.changed);
	pthread_mutex_unlock(&gate.lock);
	double t0 = now_ns();
	int failed = started < threads;
	for (int i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		failed |= jobs[i].failed;
	}
	double t = now_ns() - t0;
	return failed ? -1 : t;
}

/* C_DigestInit(CKM_SHA256) + C_Digest over 64 bytes. */
double loop_digest(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, long n)
{
	static CK_BYTE data[64];
	LOOP(CK_BYTE out[32]; CK_ULONG len = sizeof(out); CK_MECHANISM mech = { CKM_SHA256, NULL, 0 };
	     CHECK(f->C_DigestInit(s, &mech)); CHECK(f->C_Digest(s, data, sizeof(data), out, &len)); sink += out[0];);
}

/* C_SignInit(CKM_ECDSA) + C_Sign over a 32-byte hash. */
double loop_sign_ecdsa(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, long n)
{
	static CK_BYTE hash[32] = { 1, 2, 3 };
	LOOP(CK_BYTE sig[132]; CK_ULONG len = sizeof(sig); CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	     CHECK(f->C_SignInit(s, &mech, key)); CHECK(f->C_Sign(s, hash, sizeof(hash), sig, &len)); sink += sig[0];);
}

/*
 * The floor of a request/response round trip from C: 48 bytes written to a `cat` child and read
 * back (blocking), n times. The RPC bench sets it next to Node's own floor for the same echo.
 * `sockets`: cat's stdin and stdout are each one end of a Unix socketpair, as libuv makes a
 * child's 'pipe' stdio (and as both RPC clients talk to their server: a Unix stream socket);
 * otherwise two pipes. The two wake the peer differently on an idle VM (RESULTS-NOTES.md).
 */
double loop_cat_echo(long n, int sockets)
{
	int to[2], from[2];
	if (sockets ? socketpair(AF_UNIX, SOCK_STREAM, 0, to) || socketpair(AF_UNIX, SOCK_STREAM, 0, from) : pipe(to) || pipe(from))
		return -1;
	/* to[1] / from[0] are ours, to[0] / from[1] the child's (either end of a socketpair would do). */
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execlp("cat", "cat", (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	char buf[48] = { 0 };
	double t = -1, t0 = 0;
	/* Round trip 0 waits for cat to start: untimed. */
	long i = -1;
	for (; i < n; i++) {
		if (i == 0)
			t0 = now_ns();
		if (write(to[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
		size_t got = 0;
		while (got < sizeof(buf)) {
			ssize_t r = read(from[0], buf + got, sizeof(buf) - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got < sizeof(buf))
			break;
	}
	if (i == n)
		t = now_ns() - t0;
	close(to[1]);
	close(from[0]);
	waitpid(pid, NULL, 0);
	return t;
}
