/*
 * The service's shared-memory ring, as a pattern in C: is "≥ 0.75× in-thread at 32 in flight"
 * within reach of two threads on this machine at all, with nothing of JavaScript in the way?
 *
 * A client thread (the caller) keeps `flight` calls of C_GenerateRandom(len) submitted; a host
 * thread runs whatever is submitted, in order, publishes how far it got after each drain, and
 * wakes the client only if it sleeps. Waiting is what the service's two sides do: the host polls
 * for `host_spin_ns` before it sleeps (the service polls 50 µs), the client sleeps at once
 * (it stands for an application's thread, which must not spin) or, as a control, polls
 * `client_spin_ns` first. Sleeps are futex waits, the
 * cheapest a thread can be woken with: Atomics.waitAsync costs at least as much, plus an event
 * loop turn. Returns the nanoseconds n calls took, from the first submit to the last outcome read.
 */
#include <p11-kit/pkcs11.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 64, MAX_LEN = 256 };

struct ring {
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE s;
	unsigned long len;
	long host_spin_ns;
	_Atomic long submitted, done;
	_Atomic int host_asleep, client_asleep, stop, failed;
	CK_BYTE out[SLOTS][MAX_LEN];
};

static volatile unsigned long sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void futex_wait(_Atomic int *word, int value)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sleeps on `flag` until `counter` moves past `seen` (the flag raised first, so no wake is lost). */
static void sleep_until_moved(_Atomic int *flag, _Atomic long *counter, long seen)
{
	atomic_store(flag, 1);
	while (atomic_load(counter) == seen && atomic_load(flag) == 1)
		futex_wait(flag, 1);
	atomic_store(flag, 0);
}

/* Spins on `counter` for up to `ns` while it is `seen`; its last value. */
static long spin_while(_Atomic long *counter, long seen, long ns)
{
	long v = atomic_load(counter);
	if (ns <= 0 || v != seen)
		return v;
	double until = now_ns() + (double)ns;
	while ((v = atomic_load(counter)) == seen && now_ns() < until)
		;
	return v;
}

static void *host(void *arg)
{
	struct ring *r = arg;
	long next = 0;
	for (;;) {
		long submitted = spin_while(&r->submitted, next, r->host_spin_ns);
		if (atomic_load(&r->stop))
			return NULL;
		if (submitted == next) {
			sleep_until_moved(&r->host_asleep, &r->submitted, next);
			continue;
		}
		for (; next < submitted; next++)
			if (r->f->C_GenerateRandom(r->s, r->out[next % SLOTS], r->len) != CKR_OK)
				atomic_store(&r->failed, 1);
		atomic_store(&r->done, next);
		if (atomic_exchange(&r->client_asleep, 0))
			futex_wake(&r->client_asleep);
	}
}

double loop_ring_random(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, unsigned long len, long n, int flight, long host_spin_ns, long client_spin_ns)
{
	if (len > MAX_LEN || flight < 1 || flight > SLOTS)
		return -1;
	static struct ring r;
	r = (struct ring){ .f = f, .s = s, .len = len, .host_spin_ns = host_spin_ns };
	pthread_t tid;
	if (pthread_create(&tid, NULL, host, &r) != 0)
		return -1;
	double t0 = now_ns();
	long submitted = 0, read = 0;
	while (read < n) {
		while (submitted - read < flight && submitted < n)
			submitted++;
		atomic_store(&r.submitted, submitted);
		if (atomic_exchange(&r.host_asleep, 0))
			futex_wake(&r.host_asleep);
		long done = spin_while(&r.done, read, client_spin_ns);
		if (done == read) {
			sleep_until_moved(&r.client_asleep, &r.done, read);
			done = atomic_load(&r.done);
		}
		for (; read < done; read++)
			sink += r.out[read % SLOTS][0];
	}
	double t = now_ns() - t0;
	atomic_store(&r.stop, 1);
	if (atomic_exchange(&r.host_asleep, 0))
		futex_wake(&r.host_asleep);
	pthread_join(tid, NULL);
	return atomic_load(&r.failed) ? -1 : t;
}
