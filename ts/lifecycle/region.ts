// The memory behind the process-wide anchor: an anonymous, sealed memfd that only this
// process holds. It has no name in any shared directory, so another user can neither plant,
// predict, read, resize nor delete it; a process in another PID namespace cannot collide with
// it; and the kernel frees it with the process, so there is nothing stale to clean up.
//
// Isolates of this process (our workers and workers created by code that never heard of us)
// find it in the one table they all share and nobody else can read: the process's file
// descriptors, listed in /proc/self/fd. Finding-or-creating runs under a lock on
// /proc/self/environ — a file only this process (or its own user, with ptrace rights) can
// open — taken through separate open file descriptions, so isolates of one process exclude
// each other.
import { closeSync, fstatSync, openSync, readdirSync, readlinkSync, ftruncateSync, fchmodSync } from 'node:fs';
import * as libc from './libc.js';

/** How long an isolate waits for another isolate of this process to finish creating the region. */
const LOCK_WAIT_MS = 5000;
const REQUIRED_SEALS = libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | libc.F_SEAL_SEAL;

export class RegionError extends Error {
  constructor(problem: string) {
    super(`p11kit-wasm: the process-wide lifecycle region: ${problem}`);
    this.name = 'RegionError';
  }
}

/**
 * Maps this process's region called `name` (created, sized, sealed and passed to `init`
 * on first use). Every isolate of the process gets the same memory.
 */
export function processRegion(name: string, bytes: number, init: (at: bigint) => void): bigint {
  return underProcessLock(() => {
    const found = findRegion(name, bytes);
    if (found !== undefined) return map(found, bytes);
    const fd = createRegion(name, bytes);
    try {
      const at = map(fd, bytes);
      init(at);
      return at;
    } catch (e) {
      closeSync(fd); // half set up: no other isolate may find it
      throw e;
    }
  });
}

function underProcessLock<T>(fn: () => T): T {
  let fd: number;
  try {
    fd = openSync('/proc/self/environ', 'r');
  } catch (e) {
    throw new RegionError(`cannot open /proc/self/environ to serialize its creation (is /proc mounted?): ${(e as Error).message}`);
  }
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB) !== 0) {
      const errno = libc.errno();
      if (errno !== libc.EWOULDBLOCK && errno !== libc.EINTR) throw new RegionError(`flock failed, errno ${errno}`);
      if (Date.now() > deadline) throw new RegionError(`another isolate of this process held its creation lock for more than ${LOCK_WAIT_MS / 1000} s`);
      try {
        Atomics.wait(pause, 0, 0, 1);
      } catch {
        // a thread that may not block (a browser main thread): retry at once, the deadline still holds
      }
    }
    return fn();
  } finally {
    closeSync(fd); // also releases the lock
  }
}

/** The descriptor of a region of ours already in this process, if any. */
function findRegion(name: string, bytes: number): number | undefined {
  const target = `/memfd:${name} (deleted)`;
  for (const entry of readdirSync('/proc/self/fd')) {
    const fd = Number(entry);
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${entry}`);
    } catch {
      continue; // closed meanwhile by someone else in the process
    }
    // Anything failing a check was not made by us (or not by this version): never trust it.
    if (link === target && isOurs(fd, bytes)) return fd;
  }
  return undefined;
}

function isOurs(fd: number, bytes: number): boolean {
  const st = fstatSync(fd);
  return st.isFile() && st.uid === process.geteuid!() && (st.mode & 0o777) === 0o600 && st.nlink === 0 &&
    st.size === bytes && (libc.getSeals(fd) & REQUIRED_SEALS) === REQUIRED_SEALS;
}

function createRegion(name: string, bytes: number): number {
  // Close-on-exec: a program this process execs starts without the region (and makes its own).
  const fd = libc.memfd_create(name, libc.MFD_CLOEXEC | libc.MFD_ALLOW_SEALING);
  if (fd < 0) throw new RegionError(`memfd_create failed, errno ${libc.errno()}`);
  try {
    fchmodSync(fd, 0o600);
    ftruncateSync(fd, bytes);
    // Fixed size for good: no one, not even code in this process, can shrink it under a mapping (SIGBUS).
    if (libc.addSeals(fd, REQUIRED_SEALS) !== 0) throw new RegionError(`sealing failed, errno ${libc.errno()}`);
  } catch (e) {
    closeSync(fd);
    throw e instanceof RegionError ? e : new RegionError(`cannot size it: ${(e as Error).message}`);
  }
  return fd; // kept open for the life of the process: it is how the other isolates find the region
}

function map(fd: number, bytes: number): bigint {
  const at = libc.mmap(null, bytes, libc.PROT_READ_WRITE, libc.MAP_SHARED, fd, 0);
  if (at === -1n || at === 0xffffffffffffffffn || !at) throw new RegionError(`mmap failed, errno ${libc.errno()}`);
  return at;
}
