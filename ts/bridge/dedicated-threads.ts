// Dedicated threads for calls that may block for long (C_Login on a PIN pad, key generation on
// hardware, a blocking C_WaitForSlotEvent). They must not run on libuv's threadpool: that pool
// is shared with fs, dns and crypto, has 4 threads by default, and a few parked PKCS#11 calls
// would stall the whole process's I/O. Each thread is a small worker_threads Worker that runs
// one raw call at a time, synchronously, through its own koffi; arguments are plain numbers
// (CK_ULONGs and addresses into memory the calling isolate keeps alive until the answer comes).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BridgeError } from './errors.js';

/** One raw call for a dedicated thread. */
export interface ThreadCall {
  /** The shared object to pin in the thread (dlopen again, so the mapping outlives any unload). */
  path: string;
  ptr: bigint;
  sig: string;
  args: (number | bigint | null)[];
}

/** A library and the functions a thread must have ready before it is given calls into it. */
export interface Preparation {
  path: string;
  fns: [ptr: bigint, sig: string][];
}

interface Pending {
  call: ThreadCall;
  resolve(rv: number): void;
  reject(err: Error): void;
}

/**
 * The code each thread runs (plain JavaScript, evaluated in the worker: a string rather than a
 * serialized function so that no compiler helper can sneak into it). It pins the library,
 * decodes each function pointer once, and answers { id, rv } or { id, error }.
 *
 * Everything koffi builds (the library, prototypes, functions) is built while the parent waits
 * synchronously (`prepare`, flag raised when done), never while a call is pending: koffi aborts
 * the whole process when a thread is terminated while it builds JS objects, and a worker that
 * is terminated right after its first blocking call must find nothing left to build.
 */
const THREAD_SOURCE = `
// process.getBuiltinModule, not require: an eval'd worker inherits --input-type=module, where
// there is no require.
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
let koffi;
const TYPES = { U: 'unsigned long', P: 'uintptr_t', B: 'uint8_t' };
const libs = new Map(), protos = new Map(), fns = new Map();
function fn(ptr, sig) {
  let f = fns.get(ptr);
  if (!f) {
    let proto = protos.get(sig);
    if (!proto) protos.set(sig, (proto = koffi.proto('unsigned long', [...sig].map((c) => TYPES[c]))));
    fns.set(ptr, (f = koffi.decode(ptr, proto)));
  }
  return f;
}
function prepare(p) {
  if (!libs.has(p.path)) libs.set(p.path, koffi.load(p.path));
  for (const [ptr, sig] of p.fns) fn(ptr, sig);
}
function raise(flag) {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
try {
  koffi = process.getBuiltinModule('node:module').createRequire(workerData.koffi)(workerData.koffi);
  for (const p of workerData.prepare) prepare(p);
} catch {
  // A library that cannot be prepared here fails its calls with the reason, one by one.
} finally {
  raise(workerData.flag);
}
parentPort.on('message', (m) => {
  if (m.prepare) {
    try { prepare(m.prepare); } catch {} finally { raise(m.flag); }
    return;
  }
  let rv, error;
  try {
    if (!libs.has(m.path)) libs.set(m.path, koffi.load(m.path));
    rv = Number(fn(m.ptr, m.sig)(...m.args));
  } catch (err) {
    error = err && err.message ? err.message : String(err);
  }
  parentPort.postMessage({ id: m.id, rv, error });
});
`;

const koffiEntry = createRequire(import.meta.url).resolve('koffi');

/** How long a caller waits for a thread to get ready (a loaded machine may need a while to start one). */
const PREPARE_WAIT_MS = 30_000;

function waitFlag(flag: Int32Array): void {
  Atomics.wait(flag, 0, 0, PREPARE_WAIT_MS);
}

class Thread {
  readonly worker: Worker;
  current?: Pending & { id: number };
  /** Libraries and function pointers this thread has built. */
  private readonly ready = new Set<string | bigint>();
  constructor(preps: Preparation[], onIdle: (t: Thread) => void, onDead: (t: Thread, err: Error) => void) {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { koffi: koffiEntry, prepare: preps, flag } });

    this.worker.on('message', (m: { id: number; rv?: number; error?: string }) => {
      const p = this.current;
      if (!p || p.id !== m.id) return;
      this.current = undefined;
      this.worker.unref();
      if (m.error !== undefined) p.reject(new BridgeError('BAD_ARGUMENT', `dedicated thread: ${m.error}`));
      else p.resolve(m.rv as number);
      onIdle(this);
    });
    const die = (err: Error) => {
      const p = this.current;
      this.current = undefined;
      p?.reject(err);
      onDead(this, err);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`p11kit bridge: dedicated thread exited (code ${code})`)));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    // The thread starts at once; it raises the flag when koffi and every prepared library are in.
    waitFlag(flag);
    for (const p of preps) this.mark(p);
  }

  /** Makes an idle thread ready for one more library, synchronously. */
  prepare(p: Preparation): void {
    const fns = p.fns.filter(([ptr]) => !this.ready.has(ptr));
    if (this.ready.has(p.path) && !fns.length) return;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    this.worker.postMessage({ prepare: { path: p.path, fns }, flag });
    waitFlag(flag);
    this.mark(p);
  }

  private mark(p: Preparation): void {
    this.ready.add(p.path);
    for (const [ptr] of p.fns) this.ready.add(ptr);
  }

  run(p: Pending, id: number): void {
    this.current = { ...p, id };
    this.worker.ref();
    this.worker.postMessage({ id, ...p.call });
  }
}

/**
 * A bounded set of dedicated threads (created on demand, at most `max`), each running one call
 * at a time; further calls wait in order. Idle threads do not keep the process alive.
 */
export class DedicatedThreads {
  private readonly idle: Thread[] = [];
  private readonly all = new Set<Thread>();
  private readonly queue: Pending[] = [];
  private readonly preps = new Map<string, Preparation>();
  private nextId = 1;

  constructor(public max = 4) {}

  /** Calls running now, and waiting. */
  get stats(): { threads: number; busy: number; queued: number } {
    return { threads: this.all.size, busy: this.all.size - this.idle.length, queued: this.queue.length };
  }

  /**
   * Makes sure a thread exists that has koffi, the library and these functions ready, before
   * any call that a terminate() could cancel: run() then builds nothing while a call is
   * pending. Synchronous (the caller waits for the thread to start, once per isolate).
   */
  prepare(p: Preparation): void {
    this.preps.set(p.path, p);
    if (this.all.size === 0) this.spawn();
    for (const t of this.idle) t.prepare(p);
  }

  run(call: ThreadCall): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      this.pump();
    });
  }

  /** What a call needs built: its library's preparation, plus its own function if that lacks it. */
  private preparation(call: ThreadCall): Preparation {
    let p = this.preps.get(call.path);
    if (!p) this.preps.set(call.path, (p = { path: call.path, fns: [] }));
    if (!p.fns.some(([ptr]) => ptr === call.ptr)) p.fns.push([call.ptr, call.sig]);
    return p;
  }

  private spawn(): Thread {
    const t = new Thread(
      [...this.preps.values()],
      (done) => {
        this.idle.push(done);
        this.pump();
      },
      (dead) => {
        this.all.delete(dead);
        const i = this.idle.indexOf(dead);
        if (i >= 0) this.idle.splice(i, 1);
        this.pump();
      },
    );
    this.all.add(t);
    this.idle.push(t);
    return t;
  }

  private pump(): void {
    while (this.queue.length) {
      if (!this.idle.length && this.all.size < this.max) this.spawn();
      const t = this.idle.pop();
      if (!t) return;
      const next = this.queue.shift()!;
      t.prepare(this.preparation(next.call));
      t.run(next, this.nextId++);
    }
  }

  /** Stops idle threads (busy ones finish their call first; a call blocked in a module cannot be interrupted). */
  async close(): Promise<void> {
    await Promise.all(this.idle.splice(0).map((t) => (this.all.delete(t), t.worker.terminate())));
  }
}
