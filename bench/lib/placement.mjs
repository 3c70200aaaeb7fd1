// CPU placement for benches whose sides are several processes (bench/rpc.mjs): pins every
// thread of a set of processes, and of their descendants, to a CPU set, and undoes it. A round
// trip between two processes costs ~2 µs on this VM when both run on one CPU and 23–58 µs when
// each hop wakes another, idle vCPU (RESULTS-NOTES.md, the RPC section); unpinned, the scheduler
// decides per pair, so a floor measured with one pair says nothing about another. Pinned, every
// pair sees the same placement. Children forked after pinning inherit it.
import koffi from 'koffi';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const libc = koffi.load('libc.so.6');
/** cpu_set_t is 1024 bits in glibc; the kernel takes any size that covers its CPUs. */
const MASK_BYTES = 128;
const setAffinity = libc.func('int sched_setaffinity(int pid, size_t size, const uint8_t *mask)');
const getAffinity = libc.func('int sched_getaffinity(int pid, size_t size, _Out_ uint8_t *mask)');

/** The CPUs a mask holds, ascending. */
const cpusOf = (mask) => [...mask].flatMap((byte, i) => Array.from({ length: 8 }, (_, b) => (byte >> b) & 1 ? i * 8 + b : -1)).filter((c) => c >= 0);

function maskOf(cpus) {
  const mask = new Uint8Array(MASK_BYTES);
  for (const c of cpus) mask[c >> 3] |= 1 << (c & 7);
  return mask;
}

/** The CPUs the calling thread may run on now. */
function currentCpus() {
  const mask = new Uint8Array(MASK_BYTES);
  if (getAffinity(0, MASK_BYTES, mask) !== 0) throw new Error('sched_getaffinity failed');
  return cpusOf(mask);
}

/** The CPUs this process was allowed when this module was loaded, before anything was pinned: place() them to undo a pinning. */
export const ALLOWED_CPUS = currentCpus();

/** Thread ids of pid, then of every descendant (a thread's `children` file lists the processes it forked). */
function threadsOfTree(pid) {
  const tids = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift();
    const dir = `/proc/${p}/task`;
    if (!existsSync(dir)) continue; // exited meanwhile
    for (const tid of readdirSync(dir)) {
      tids.push(Number(tid));
      let children;
      try {
        children = readFileSync(`${dir}/${tid}/children`, 'utf8');
      } catch (err) {
        if (!existsSync(`${dir}/${tid}`)) continue; // the thread exited between the listing and the read
        // Without the list (a kernel without CONFIG_PROC_CHILDREN) a child would stay unpinned, silently.
        throw new Error(`cannot list the children of thread ${tid}: ${err.message}`);
      }
      queue.push(...children.split(' ').filter(Boolean).map(Number));
    }
  }
  return tids;
}

/**
 * Every thread of the processes `pids` and of their descendants on `cpus`. Returns how many
 * threads were placed; a thread that exited meanwhile is skipped, any other refusal throws.
 */
export function place(pids, cpus) {
  const mask = maskOf(cpus);
  let placed = 0;
  for (const pid of pids) {
    for (const tid of threadsOfTree(pid)) {
      if (setAffinity(tid, MASK_BYTES, mask) === 0) placed++;
      else if (existsSync(`/proc/${tid}`)) throw new Error(`cannot place thread ${tid} of ${pid} on CPUs ${cpus.join(',')}`);
    }
  }
  return placed;
}
