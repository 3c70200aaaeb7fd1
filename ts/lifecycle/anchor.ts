// The process-wide anchor: one shared memory region per process, found from every
// isolate — the main thread, our workers, and workers created by code that never heard of
// us — and locked with robust mutexes, so that a thread that dies holding a lock hands it on
// instead of deadlocking. The region itself (private to the process, never in a shared
// directory) is region.ts's concern.
//
// Limits (documented in the README): Linux/glibc only; at most MAX_ISOLATES isolates
// using modules at once, MAX_MODULES modules, MAX_SESSIONS tracked sessions; the kernel
// frees the region with the process.
import * as libc from './libc.js';
import { processRegion, RegionError } from './region.js';
import { initialState, type ModuleState, type Phase } from './machine.js';

const MAGIC = 0x70313177; // "p11w"
/**
 * The region's name as /proc/self/fd shows it; not a path, nothing outside the process sees it.
 * With the pid: a child forked without exec inherits the descriptor, and must not take it for its own.
 */
const regionName = (): string => `p11kit-wasm-anchor-${process.pid}`;
const VERSION = 1;
export const MAX_ISOLATES = 256;
export const MAX_MODULES = 64;
export const MAX_SESSIONS = 4096;
const KEY_BYTES = 168;

// Byte layout of the region.
const H_MAGIC = 0, H_VERSION = 4, H_READY = 8, H_REGISTRY_LOCK = 64;
const ISO_BASE = 128, ISO_SIZE = 64;
const ISO_LOCK = 0, ISO_STATE = 48, ISO_TID = 52; // ISO_STATE: 0 free, 1 live, 2 dead
const MOD_BASE = ISO_BASE + MAX_ISOLATES * ISO_SIZE, MOD_SIZE = 256;
const M_LOCK = 0, M_IN_USE = 48, M_PHASE = 52, M_OWNED = 56, M_GEN = 60, M_HOLDERS = 64, M_BUSY = 68,
  M_INITS = 72, M_FINALS = 76, M_KEY_LEN = 80, M_KEY = 84;
const HOLD_BASE = MOD_BASE + MAX_MODULES * MOD_SIZE;
const SES_BASE = HOLD_BASE + MAX_MODULES * MAX_ISOLATES * 4, SES_SIZE = 16;
const S_MODULE = 0, S_ISOLATE = 4, S_LO = 8, S_HI = 12;
// Calls in flight per module per isolate (each word written only by its isolate, without a lock).
const INFLIGHT_BASE = SES_BASE + MAX_SESSIONS * SES_SIZE;
const REGION_BYTES = INFLIGHT_BASE + MAX_MODULES * MAX_ISOLATES * 4;

const PHASES: Phase[] = ['uninitialized', 'ready', 'stale'];
/** What a module lock holder was doing, so that a successor can tell if it died mid-way. */
export const enum Busy { No = 0, Initializing = 1, Finalizing = 2 }

let shared: Anchor | undefined;

export class Anchor {
  readonly isolate: number;
  private words: Int32Array | undefined;

  /** This isolate's handle on the process-wide region. */
  static get(): Anchor {
    shared ??= new Anchor();
    return shared;
  }

  private constructor(readonly base: bigint = 0n) {
    let created = false;
    const at = processRegion(regionName(), REGION_BYTES, (fresh) => {
      this.attach(fresh);
      this.setup(); // under the process lock: no other isolate sees the region half set up
      created = true;
    });
    if (!created) {
      this.attach(at);
      this.checkHeader();
    }
    this.isolate = this.registerIsolate();
    this.forgetCallsOf(this.isolate);
  }

  private attach(at: bigint): void {
    (this as { base: bigint }).base = at;
    try {
      this.words = new Int32Array(libc.view(at, REGION_BYTES));
    } catch {
      // Electron forbids external buffers: fall back to koffi.decode/encode
    }
  }

  get(offset: number): number {
    return this.words ? this.words[offset >> 2] : libc.decodeI32(this.base, offset);
  }

  set(offset: number, value: number): void {
    if (this.words) this.words[offset >> 2] = value;
    else libc.encodeI32(this.base, offset, value);
  }

  private at(offset: number): bigint {
    return this.base + BigInt(offset);
  }

  private setup(): void {
    libc.initRobustMutex(this.at(H_REGISTRY_LOCK));
    for (let i = 0; i < MAX_ISOLATES; i++) libc.initRobustMutex(this.at(ISO_BASE + i * ISO_SIZE + ISO_LOCK));
    for (let m = 0; m < MAX_MODULES; m++) libc.initRobustMutex(this.at(MOD_BASE + m * MOD_SIZE + M_LOCK));
    this.set(H_MAGIC, MAGIC);
    this.set(H_VERSION, VERSION);
    if (this.words) Atomics.store(this.words, H_READY >> 2, 1);
    else this.set(H_READY, 1);
  }

  /** Created under the process lock, so set up before anyone else could find it: just check. */
  private checkHeader(): void {
    if (this.get(H_MAGIC) !== MAGIC || this.get(H_READY) !== 1) throw new RegionError('its header is not ours');
    if (this.get(H_VERSION) !== VERSION) throw new RegionError(`it belongs to another version of p11kit-wasm (layout ${this.get(H_VERSION)}, ours ${VERSION})`);
  }

  /** Locks a robust mutex; true if its previous holder died (the caller must repair what it guarded). */
  private lock(offset: number): boolean {
    const rc = libc.mutex_lock(this.at(offset));
    if (rc === libc.EOWNERDEAD) {
      libc.mutex_consistent(this.at(offset));
      return true;
    }
    if (rc !== 0) throw new Error(`p11kit-wasm: pthread_mutex_lock failed (${rc})`);
    return false;
  }

  private unlock(offset: number): void {
    libc.mutex_unlock(this.at(offset));
  }

  withRegistry<T>(fn: () => T): T {
    this.lock(H_REGISTRY_LOCK);
    try {
      return fn();
    } finally {
      this.unlock(H_REGISTRY_LOCK);
    }
  }

  // ---- isolates ---------------------------------------------------------------------

  private registerIsolate(): number {
    return this.withRegistry(() => {
      for (let i = 0; i < MAX_ISOLATES; i++) {
        const state = this.get(ISO_BASE + i * ISO_SIZE + ISO_STATE);
        const reusable = state === 0 || (state !== 1 || !this.isolateAlive(i)) && !this.holdsAnything(i);
        if (!reusable) continue;
        this.lock(ISO_BASE + i * ISO_SIZE + ISO_LOCK); // held until this thread ends
        this.set(ISO_BASE + i * ISO_SIZE + ISO_STATE, 1);
        this.set(ISO_BASE + i * ISO_SIZE + ISO_TID, libc.gettid());
        return i;
      }
      throw new Error(`p11kit-wasm: more than ${MAX_ISOLATES} isolates use PKCS#11 modules at once`);
    });
  }

  /** False once the isolate's thread has ended (its liveness mutex was orphaned). */
  isolateAlive(i: number): boolean {
    if (i === this.isolate) return true;
    const off = ISO_BASE + i * ISO_SIZE;
    if (this.get(off + ISO_STATE) !== 1) return false;
    const rc = libc.mutex_trylock(this.at(off + ISO_LOCK));
    if (rc === libc.EBUSY) return true;
    if (rc === libc.EOWNERDEAD) libc.mutex_consistent(this.at(off + ISO_LOCK));
    this.unlock(off + ISO_LOCK);
    this.set(off + ISO_STATE, 2);
    return false;
  }

  private holdsAnything(i: number): boolean {
    for (let m = 0; m < MAX_MODULES; m++) if (this.holding(m, i)) return true;
    return false;
  }

  // ---- modules ----------------------------------------------------------------------

  /** The slot of the module with this identity, created on first use. */
  moduleSlot(identity: string): number {
    const key = new TextEncoder().encode(identity);
    if (key.length > KEY_BYTES) throw new Error(`p11kit-wasm: module identity too long: ${identity}`);
    return this.withRegistry(() => {
      let free = -1;
      for (let m = 0; m < MAX_MODULES; m++) {
        const off = MOD_BASE + m * MOD_SIZE;
        if (!this.get(off + M_IN_USE)) {
          if (free < 0) free = m;
          continue;
        }
        if (this.get(off + M_KEY_LEN) === key.length && this.keyEquals(off, key)) return m;
      }
      if (free < 0) throw new Error(`p11kit-wasm: more than ${MAX_MODULES} modules in one process`);
      const off = MOD_BASE + free * MOD_SIZE;
      this.writeState(free, initialState());
      this.set(off + M_KEY_LEN, key.length);
      for (let i = 0; i < key.length; i++) this.setByte(off + M_KEY + i, key[i]);
      this.set(off + M_IN_USE, 1);
      return free;
    });
  }

  private keyEquals(off: number, key: Uint8Array): boolean {
    for (let i = 0; i < key.length; i++) if (this.getByte(off + M_KEY + i) !== key[i]) return false;
    return true;
  }

  private getByte(offset: number): number {
    return (this.get(offset & ~3) >>> ((offset & 3) * 8)) & 0xff;
  }

  private setByte(offset: number, v: number): void {
    const shift = (offset & 3) * 8;
    this.set(offset & ~3, (this.get(offset & ~3) & ~(0xff << shift)) | (v << shift));
  }

  /** Locks the module; returns what the previous holder was doing if it died holding the lock. */
  lockModule(m: number): Busy | undefined {
    const off = MOD_BASE + m * MOD_SIZE;
    const orphaned = this.lock(off + M_LOCK);
    return orphaned ? (this.get(off + M_BUSY) as Busy) : undefined;
  }

  unlockModule(m: number): void {
    this.unlock(MOD_BASE + m * MOD_SIZE + M_LOCK);
  }

  setBusy(m: number, busy: Busy): void {
    this.set(MOD_BASE + m * MOD_SIZE + M_BUSY, busy);
  }

  readState(m: number): ModuleState {
    const off = MOD_BASE + m * MOD_SIZE;
    return {
      phase: PHASES[this.get(off + M_PHASE)] ?? 'uninitialized',
      ownedInit: this.get(off + M_OWNED) === 1,
      generation: this.get(off + M_GEN),
      holders: this.get(off + M_HOLDERS),
    };
  }

  writeState(m: number, s: ModuleState): void {
    const off = MOD_BASE + m * MOD_SIZE;
    this.set(off + M_PHASE, PHASES.indexOf(s.phase));
    this.set(off + M_OWNED, s.ownedInit ? 1 : 0);
    this.set(off + M_GEN, s.generation);
    this.set(off + M_HOLDERS, s.holders);
  }

  /** For the hot path: the word array and the indexes of a module's generation and phase words. */
  hotWords(m: number): { words: Int32Array; gen: number; phase: number } | undefined {
    if (!this.words) return undefined;
    const off = MOD_BASE + m * MOD_SIZE;
    return { words: this.words, gen: (off + M_GEN) >> 2, phase: (off + M_PHASE) >> 2 };
  }

  /** The hot-path read: no lock, one word. */
  generation(m: number): number {
    return this.get(MOD_BASE + m * MOD_SIZE + M_GEN);
  }

  phase(m: number): Phase {
    return PHASES[this.get(MOD_BASE + m * MOD_SIZE + M_PHASE)] ?? 'uninitialized';
  }

  countCall(m: number, which: 'initialize' | 'finalize'): void {
    const off = MOD_BASE + m * MOD_SIZE + (which === 'initialize' ? M_INITS : M_FINALS);
    this.set(off, this.get(off) + 1);
  }

  /** How many real C_Initialize / C_Finalize calls we made on the module in this process. */
  callCounts(m: number): { initialize: number; finalize: number } {
    const off = MOD_BASE + m * MOD_SIZE;
    return { initialize: this.get(off + M_INITS), finalize: this.get(off + M_FINALS) };
  }

  holding(m: number, isolate: number): number {
    return this.get(HOLD_BASE + (m * MAX_ISOLATES + isolate) * 4);
  }

  setHolding(m: number, isolate: number, n: number): void {
    this.set(HOLD_BASE + (m * MAX_ISOLATES + isolate) * 4, n);
  }

  clearHoldings(m: number): void {
    for (let i = 0; i < MAX_ISOLATES; i++) this.setHolding(m, i, 0);
  }

  /** Isolates other than this one holding module m. */
  holdersOf(m: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < MAX_ISOLATES; i++) if (i !== this.isolate && this.holding(m, i)) out.push(i);
    return out;
  }

  // ---- sessions (module lock held) --------------------------------------------------

  addSession(m: number, handle: bigint): void {
    for (let s = 0; s < MAX_SESSIONS; s++) {
      const off = SES_BASE + s * SES_SIZE;
      if (this.get(off + S_MODULE) !== 0) continue;
      this.set(off + S_ISOLATE, this.isolate);
      this.set(off + S_LO, Number(handle & 0xffffffffn) | 0);
      this.set(off + S_HI, Number(handle >> 32n) | 0);
      this.set(off + S_MODULE, m + 1);
      return;
    }
    // Past the table's size a session is still usable and closed by its owner; only
    // reclaiming it after its isolate dies is lost.
  }

  removeSession(m: number, handle: bigint): void {
    this.eachSession(m, undefined, (off, h) => {
      if (h === handle) this.set(off + S_MODULE, 0);
    });
  }

  /** Removes and returns the sessions of module m that `isolate` opened (every isolate's if undefined). */
  takeSessions(m: number, isolate: number | undefined): bigint[] {
    const out: bigint[] = [];
    this.eachSession(m, isolate, (off, h) => {
      out.push(h);
      this.set(off + S_MODULE, 0);
    });
    return out;
  }

  private eachSession(m: number, isolate: number | undefined, fn: (off: number, handle: bigint) => void): void {
    for (let s = 0; s < MAX_SESSIONS; s++) {
      const off = SES_BASE + s * SES_SIZE;
      if (this.get(off + S_MODULE) !== m + 1) continue;
      if (isolate !== undefined && this.get(off + S_ISOLATE) !== isolate) continue;
      const h = (BigInt(this.get(off + S_HI) >>> 0) << 32n) | BigInt(this.get(off + S_LO) >>> 0);
      fn(off, h);
    }
  }

  // ---- calls in flight -------------------------------------------------------------
  // A thread that ends has no call left inside any module: Node joins a worker's thread only
  // after its threadpool work and its own worker threads (our dedicated threads) have returned.

  /** This isolate's count of calls inside module m (the async paths only: sync calls are covered by holds). */
  callsEntered(m: number, delta: 1 | -1): void {
    const off = INFLIGHT_BASE + (m * MAX_ISOLATES + this.isolate) * 4;
    if (this.words) Atomics.add(this.words, off >> 2, delta);
    else this.set(off, this.get(off) + delta);
  }

  /** Calls inside module m made by other isolates that are still alive. */
  callsElsewhere(m: number): number {
    let n = 0;
    for (let i = 0; i < MAX_ISOLATES; i++) {
      if (i === this.isolate) continue;
      const c = this.get(INFLIGHT_BASE + (m * MAX_ISOLATES + i) * 4);
      if (c > 0 && this.isolateAlive(i)) n += c;
    }
    return n;
  }

  /** Calls inside module m made by this isolate. */
  callsHere(m: number): number {
    return this.get(INFLIGHT_BASE + (m * MAX_ISOLATES + this.isolate) * 4);
  }

  private forgetCallsOf(isolate: number): void {
    for (let m = 0; m < MAX_MODULES; m++) this.set(INFLIGHT_BASE + (m * MAX_ISOLATES + isolate) * 4, 0);
  }
}
