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

interface Pending {
  call: ThreadCall;
  resolve(rv: number): void;
  reject(err: Error): void;
}

/**
 * The code each thread runs (plain JavaScript, evaluated in the worker: a string rather than a
 * serialized function so that no compiler helper can sneak into it). It pins the library,
 * decodes each function pointer once, and answers { id, rv } or { id, error }.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffi);
const TYPES = { U: 'unsigned long', P: 'uintptr_t', B: 'uint8_t' };
const libs = new Map(), protos = new Map(), fns = new Map();
parentPort.on('message', (m) => {
  let rv, error;
  try {
    if (!libs.has(m.path)) libs.set(m.path, koffi.load(m.path));
    let f = fns.get(m.ptr);
    if (!f) {
      let proto = protos.get(m.sig);
      if (!proto) protos.set(m.sig, (proto = koffi.proto('unsigned long', [...m.sig].map((c) => TYPES[c]))));
      fns.set(m.ptr, (f = koffi.decode(m.ptr, proto)));
    }
    rv = Number(f(...m.args));
  } catch (err) {
    error = err && err.message ? err.message : String(err);
  }
  parentPort.postMessage({ id: m.id, rv, error });
});
`;

const koffiEntry = createRequire(import.meta.url).resolve('koffi');

class Thread {
  readonly worker: Worker;
  current?: Pending & { id: number };
  constructor(onIdle: (t: Thread) => void, onDead: (t: Thread, err: Error) => void) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { koffi: koffiEntry } });
    this.worker.unref();
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
  private nextId = 1;

  constructor(public max = 4) {}

  /** Calls running now, and waiting. */
  get stats(): { threads: number; busy: number; queued: number } {
    return { threads: this.all.size, busy: this.all.size - this.idle.length, queued: this.queue.length };
  }

  run(call: ThreadCall): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length) {
      let t = this.idle.pop();
      if (!t && this.all.size < this.max) {
        t = new Thread(
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
      }
      if (!t) return;
      t.run(this.queue.shift()!, this.nextId++);
    }
  }

  /** Stops idle threads (busy ones finish their call first; a call blocked in a module cannot be interrupted). */
  async close(): Promise<void> {
    await Promise.all(this.idle.splice(0).map((t) => (this.all.delete(t), t.worker.terminate())));
  }
}
