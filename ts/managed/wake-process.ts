// An isolated slot-event watch: a child process (wake-child.ts) parks the blocking
// C_WaitForSlotEvent in its own instance of the module and tells us when a wait returned. We
// never take its slot IDs: each wake-up only says "ask your own instance now" (CKF_DONT_BLOCK),
// so slot IDs, token state and event counts are those of this process's module, as with
// polling. The point is the end: PKCS#11 ends a blocking wait only with C_Finalize, and some
// modules (OpenSC) crash when their finalize races their own waiting thread. Here nothing of
// ours waits inside the module we finalize; the child is killed (SIGKILL) instead, and a
// killed process cannot crash us.
//
// What we read from the child is bounded and checked: short known lines only, a burst of
// wake-ups coalesced into one, anything else ends the child and reports why. The child gets
// the module's file and reserved string on its stdin (not its argv: process listings), the
// same environment as this process, and nothing secret.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { EINTR, errno, waitpid, WNOHANG } from '../lifecycle/libc.js';
import type { ManagedModule } from './module.js';

/** Why a watch ended by itself; the caller falls back to polling. */
export interface WakeFailure {
  /** 'unsupported': the module cannot block; 'error': the child's module call failed; 'exit': the child died; 'protocol': it wrote what it must not. */
  kind: 'unsupported' | 'error' | 'exit' | 'protocol' | 'spawn';
  message: string;
  /** The module's CK_RV, for 'error' when it gave one. */
  rv?: number;
}

/** A watch that ended by itself, as the proxy reports it. */
export class WakeError extends Error {
  override readonly name = 'WakeError';
  readonly kind: WakeFailure['kind'];
  readonly rv?: number;

  constructor(module: string, failure: WakeFailure) {
    super(`p11kit-wasm: slot events of '${module}': ${failure.message}; polling it instead`);
    this.kind = failure.kind;
    this.rv = failure.rv;
  }
}

export interface WakeListener {
  /** The child's module is initialized and its wait parked: changes from now on wake us. */
  ready(): void;
  /** One or more waits returned (coalesced): the parent drains its own events. */
  wake(): void;
  /** The watch ended by itself (never called after stop()). */
  failed(failure: WakeFailure): void;
}

export interface WakeProcessOptions {
  /** Replaces `node wake-child.js` (tests: a child that misbehaves). */
  argv?: readonly string[];
}

/** How often a watched module is drained without a wake-up: a lost wake-up delays an event by at most this. */
export const SAFETY_POLL_MS = 2000;
/** The longest line the child may write. */
const MAX_LINE = 256;
/** More wake-ups than this in one second is not a card reader: the child is stopped. */
const MAX_WAKES_PER_SECOND = 1000;

function childEntry(): string {
  const sibling = new URL('./wake-child.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return fileURLToPath(sibling);
  // Running from TypeScript sources (tests): the built library holds the child's JavaScript.
  const built = new URL('../../dist/lib/managed/wake-child.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return fileURLToPath(built);
  throw new Error('p11kit-wasm: the slot-event waiter (wake-child.js) is not built; run `make ts`');
}

// A child is reaped by the event loop that spawned it. A worker thread that ends with a child
// it has not reaped (never stopped: the proxy or service was not released; or stopped just
// before the end) leaves it a zombie of the whole process until the process exits: no other
// loop waits for it. So when a worker ends (its process 'exit': the script ran out, or
// process.exit()), the children not yet reaped are killed and reaped here, synchronously.
// worker.terminate() runs no JavaScript at all: a worker ended that way must be released first.
const unreaped = new Set<ChildProcess>();
let reapsAtExit = false;

/** The most a worker's end waits for a killed child to be gone (one stuck in the kernel is left). */
const REAP_MS = 2000;

function reapAtWorkerExit(): void {
  const until = Date.now() + REAP_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (const child of unreaped) {
    // Reaped already (its exit seen) or never started: the pid is no longer ours to wait for.
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already dead: a zombie, which waitpid takes below
    }
    for (;;) {
      const r = waitpid(child.pid, null, WNOHANG);
      if (r !== 0 && !(r < 0 && errno() === EINTR)) break; // reaped, or not ours any more (ECHILD)
      if (Date.now() > until) break;
      Atomics.wait(nap, 0, 0, 1);
    }
  }
  unreaped.clear();
}

function trackUntilReaped(child: ChildProcess): void {
  if (isMainThread) return; // the process's own end takes its children (they die on stdin's end)
  unreaped.add(child);
  const done = () => unreaped.delete(child);
  child.once('exit', done);
  child.once('error', done);
  if (!reapsAtExit) {
    reapsAtExit = true;
    process.once('exit', reapAtWorkerExit);
  }
}

export class WakeProcess {
  private readonly child: ChildProcess;
  private readonly out: Readable;
  private line = '';
  private stopped = false;
  private ended = false;
  private killed = false;
  private waiting = false;
  private readonly exited: Promise<void>;
  private wakeQueued = false;
  private wakeWindow = { start: 0, count: 0 };

  constructor(
    module: ManagedModule,
    private readonly listener: WakeListener,
    opts: WakeProcessOptions = {},
  ) {
    const [cmd, ...args] = opts.argv ?? [process.execPath, childEntry()];
    // An Electron app's execPath is the app: run it as plain node.
    const env = process.versions.electron ? { ...process.env, ELECTRON_RUN_AS_NODE: '1' } : process.env;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'inherit', 'pipe'], env });
    trackUntilReaped(this.child);
    this.exited = new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.once('error', () => resolve());
    });
    this.child.once('error', (err) => this.end({ kind: 'spawn', message: `the waiter process could not start: ${err.message}` }));
    this.child.once('exit', (code, signal) =>
      this.end({ kind: 'exit', message: `the waiter process ended (${signal ? `signal ${signal}` : `exit code ${code}`})` }),
    );
    this.out = this.child.stdio[3] as Readable;
    this.out.setEncoding('latin1');
    this.out.on('data', (chunk: string) => this.read(chunk));
    this.out.on('error', () => undefined); // the exit says what happened
    const order = JSON.stringify({ path: module.module.realPath, initReserved: module.lifecycle.target.initReserved ?? null });
    this.child.stdin!.on('error', () => undefined);
    this.child.stdin!.write(order + '\n'); // stdin stays open: its end tells the child we are gone
  }

  /** The child's process ID (undefined when it could not start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the child's module is initialized and its wait parked. */
  get ready(): boolean {
    return this.waiting && !this.killed;
  }

  /** Whether the watch keeps this process alive (while someone waits for an event). */
  ref(on: boolean): void {
    const handles = [this.child, this.out, this.child.stdin] as unknown as Array<{ ref?(): void; unref?(): void } | null>;
    for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
  }

  /** Kills the child; settles once it is reaped. No listener call follows. */
  stop(): Promise<void> {
    this.stopped = true;
    this.kill();
    return this.exited;
  }

  private kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.out.removeAllListeners('data');
    this.out.destroy();
    this.child.stdin?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private read(chunk: string): void {
    if (this.stopped || this.ended) return;
    let wakes = 0;
    let rest = this.line + chunk;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.length > MAX_LINE) return this.misbehaved(`a line of ${line.length} bytes`);
      if (line === 'event') wakes++;
      else if (line === 'ready') {
        this.waiting = true;
        this.listener.ready();
      }
      else if (line === 'unsupported') return this.end({ kind: 'unsupported', message: 'the module cannot block in C_WaitForSlotEvent' });
      else if (line.startsWith('error ')) return this.failedCall(line.slice(6));
      else return this.misbehaved(`an unknown line '${line.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}'`);
      if (this.stopped || this.ended) return;
    }
    if (rest.length > MAX_LINE) return this.misbehaved(`more than ${MAX_LINE} bytes without a line end`);
    this.line = rest;
    if (wakes) this.wakeSoon(wakes);
  }

  /** Wake-ups in one read, or in a burst of reads, become one. */
  private wakeSoon(lines: number): void {
    const now = Date.now();
    if (now - this.wakeWindow.start >= 1000) this.wakeWindow = { start: now, count: 0 };
    if ((this.wakeWindow.count += lines) > MAX_WAKES_PER_SECOND) return this.misbehaved(`more than ${MAX_WAKES_PER_SECOND} wake-ups in a second`);
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      if (!this.stopped && !this.ended) this.listener.wake();
    });
  }

  private failedCall(text: string): void {
    const rv = /^\d{1,20}$/.test(text) ? Number(text) : undefined;
    this.end({ kind: 'error', message: `the waiter process failed: ${rv === undefined ? text : `CK_RV 0x${rv.toString(16)}`}`, rv });
  }

  private misbehaved(what: string): void {
    this.end({ kind: 'protocol', message: `the waiter process wrote ${what}; stopped` });
  }

  /** The first reason the watch ended is the one reported; the child is killed either way. */
  private end(failure: WakeFailure): void {
    if (this.stopped || this.ended) return;
    this.ended = true;
    this.kill();
    this.listener.failed(failure);
  }
}
