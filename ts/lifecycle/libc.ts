// The few libc calls the process-wide anchor (and the reaping of a worker's waiter children) needs, through koffi.
import { constants } from 'node:os';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EINTR = 4;
export const EWOULDBLOCK = 11;
export const PROT_READ_WRITE = 0x3;
export const MAP_SHARED = 0x1;
export const EBUSY = 16;
export const EEXIST = 17;
export const EOWNERDEAD = 130;
export const PTHREAD_MUTEX_ROBUST = 1;
/** glibc x86-64/aarch64: pthread_mutex_t is 40 bytes, pthread_mutexattr_t 4 (we leave room). */
export const MUTEX_BYTES = 48;

export const memfd_create = libc.func('int memfd_create(const char *name, unsigned int flags)') as (n: string, f: number) => number;
export const flock = libc.func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)');
export const addSeals = (fd: number, seals: number): number => fcntl(fd, F_ADD_SEALS, 'int', seals) as number;
export const getSeals = (fd: number): number => fcntl(fd, F_GET_SEALS) as number;
export const mmap = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)') as (
  a: null,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
) => bigint;
export const gettid = libc.func('int gettid(void)') as () => number;
export const WNOHANG = 1;
/** waitpid without the status (our children only: the pid is ours until it is waited for). */
export const waitpid = libc.func('int waitpid(int pid, int *status, int options)') as (pid: number, status: null, options: number) => number;
export const errno = (): number => koffi.errno();
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
/** An errno by its name (ELOOP, not 40): what people search for. */
export const errnoName = (n: number): string => ERRNO_NAMES.get(n) ?? `errno ${n}`;

const mutexattr_init = libc.func('int pthread_mutexattr_init(void *attr)');
const mutexattr_setrobust = libc.func('int pthread_mutexattr_setrobust(void *attr, int robustness)');
const mutex_init = libc.func('int pthread_mutex_init(void *mutex, void *attr)');
export const mutex_lock = libc.func('int pthread_mutex_lock(void *mutex)') as (m: bigint) => number;
export const mutex_trylock = libc.func('int pthread_mutex_trylock(void *mutex)') as (m: bigint) => number;
export const mutex_unlock = libc.func('int pthread_mutex_unlock(void *mutex)') as (m: bigint) => number;
export const mutex_consistent = libc.func('int pthread_mutex_consistent(void *mutex)') as (m: bigint) => number;

/** A robust mutex at `at`: if its holder's thread dies, the next locker gets EOWNERDEAD instead of hanging. */
export function initRobustMutex(at: bigint): void {
  const attr = koffi.alloc('uint8_t', 64);
  try {
    if (mutexattr_init(attr) !== 0 || mutexattr_setrobust(attr, PTHREAD_MUTEX_ROBUST) !== 0 || mutex_init(at, attr) !== 0) {
      throw new Error('p11kit-wasm: could not create a robust mutex');
    }
  } finally {
    koffi.free(attr);
  }
}

export const view = (ptr: bigint, len: number): ArrayBuffer => koffi.view(ptr, len);
export const decodeI32 = (ptr: bigint, offset: number): number => koffi.decode(ptr, offset, 'int32_t') as number;
export const encodeI32 = (ptr: bigint, offset: number, v: number): void => koffi.encode(ptr, offset, 'int32_t', v);
