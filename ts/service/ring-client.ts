// The client's end of the shared-memory ring (ring-layout.ts), for a service worker in this
// process: the single-part byte operations of a session (random, digest, sign, verify, encrypt,
// decrypt with a plain mechanism number) are written straight into a slot of a
// SharedArrayBuffer instead of being cloned into a message. A call that does not fit (a
// mechanism with parameters, inputs larger than a slot, the ring full, the ring not set up yet)
// returns undefined and goes the message path; so does one whose output did not fit, again.
// Per call: the call's promise and its result's copy, nothing else — the settling functions and
// arguments are kept in per-slot arrays. Waits are Atomics.waitAsync (see SAFETY_POLL_MS).
import type { Endpoint } from 'comlink';
import { decodeError, type WireThrown } from './errors.js';
import { newPromise, settlers } from './settlers.js';
import {
  BYTES, CLIENT_ASLEEP, CLOSED, DATA_BYTE, DATA_BYTES, DONE, FAILED, FALSE, HOST_ASLEEP, KEY_BYTE, LEN1, LEN2, MAGIC, MECHANISM, OP,
  OUT_LEN, RING_BYTES, RING_MAGIC, SESSION, SLOTS, STATUS, SUBMITTED, TOO_BIG, TRUE, opCode, slotByte, waitAsync, type RingAnswer, type RingOffer,
} from './ring-layout.js';

/**
 * Waits carry no timeout: Node 20 keeps a timer per timed wait until it expires, even once woken,
 * and at a hundred thousand waits a second those timers cost more than the calls (a ping-pong
 * over waitAsync: 5× slower, half-second stalls, with a 300 ms timeout). One interval per ring
 * bounds a wait instead: it reads the outcomes itself if none has arrived for this long.
 */
const SAFETY_POLL_MS = 1000;
const utf8 = new TextDecoder();
const MASK = SLOTS - 1;
const OP_RANDOM = opCode('generateRandom');
const OP_DIGEST = opCode('digest');
const OP_SIGN = opCode('sign');
const OP_VERIFY = opCode('verify');
const OP_ENCRYPT = opCode('encrypt');
const OP_DECRYPT = opCode('decrypt');

const isU32 = (v: unknown): v is number => typeof v === 'number' && v >>> 0 === v;
const isHandle = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The OP code for `method` with `args`, when they fit a slot; 0 when the call goes the message path. */
function ringCode(method: string, args: readonly unknown[]): number {
  const sid = args[0];
  if (!isU32(sid)) return 0;
  switch (method) {
    case 'generateRandom':
      return isU32(args[1]) && args[1] <= DATA_BYTES ? OP_RANDOM : 0;
    case 'digest':
      return isU32(args[1]) && args[2] instanceof Uint8Array && args[2].byteLength <= DATA_BYTES ? OP_DIGEST : 0;
    case 'sign':
    case 'encrypt':
    case 'decrypt':
      if (!isU32(args[1]) || !isHandle(args[2]) || !(args[3] instanceof Uint8Array) || args[3].byteLength > DATA_BYTES) return 0;
      return method === 'sign' ? OP_SIGN : method === 'encrypt' ? OP_ENCRYPT : OP_DECRYPT;
    case 'verify': {
      const [, mech, key, data, sig] = args;
      return isU32(mech) && isHandle(key) && data instanceof Uint8Array && sig instanceof Uint8Array && data.byteLength + sig.byteLength <= DATA_BYTES ? OP_VERIFY : 0;
    }
    default:
      return 0;
  }
}

export interface RingClientOptions {
  /** Where a call goes that the ring took but whose output did not fit a slot (the message path). */
  readonly fallback: (method: string, args: readonly unknown[]) => Promise<unknown>;
  /** Told when the first call is made with none pending (true) and when the last one settles (false). */
  readonly onBusy?: (busy: boolean) => void;
}

export class RingClient {
  readonly sab = new SharedArrayBuffer(RING_BYTES);
  private readonly ctl = new Int32Array(this.sab, 0, 16);
  private readonly words = new Uint32Array(this.sab);
  private readonly keys = new Float64Array(this.sab);
  private readonly bytes = new Uint8Array(this.sab);
  private ready = false;
  private failure: ((method: string) => unknown) | undefined;
  /** Calls written, and calls whose outcome was read (slots in between are the service's). */
  private submitted = 0;
  private consumed = 0;
  private waiting = false;
  /** Calls the ring answered (diagnostics, tests). */
  answered = 0;
  private readonly methods: (string | undefined)[] = new Array(SLOTS).fill(undefined);
  private readonly args: (readonly unknown[] | undefined)[] = new Array(SLOTS).fill(undefined);
  private readonly resolves: (((v: unknown) => void) | undefined)[] = new Array(SLOTS).fill(undefined);
  private readonly rejects: (((e: unknown) => void) | undefined)[] = new Array(SLOTS).fill(undefined);
  private readonly detach: () => void;
  private readonly poll: ReturnType<typeof setInterval>;
  private polled = 0;
  private readonly woken = () => {
    this.waiting = false;
    this.harvest();
    this.wait();
  };

  constructor(
    ep: Endpoint,
    private readonly opts: RingClientOptions,
  ) {
    Atomics.store(this.ctl, MAGIC, RING_MAGIC);
    const listener = (ev: MessageEvent) => {
      const d = ev.data as RingAnswer | undefined;
      if (typeof d !== 'object' || d === null || !('p11wRingReady' in d)) return;
      this.ready = d.p11wRingReady === true && !this.failure;
    };
    ep.addEventListener('message', listener as never);
    ep.start?.();
    this.detach = () => ep.removeEventListener('message', listener as never);
    ep.postMessage({ p11wRing: this.sab } satisfies RingOffer);
    this.poll = setInterval(() => {
      if (this.pending > 0 && this.consumed === this.polled) this.harvest();
      this.polled = this.consumed;
    }, SAFETY_POLL_MS);
    (this.poll as { unref?: () => void }).unref?.();
  }

  /** Calls written and not yet answered. */
  get pending(): number {
    return (this.submitted - this.consumed) | 0;
  }

  /** The call's promise if the ring takes it; undefined if it goes the message path. */
  call(method: string, args: readonly unknown[]): Promise<unknown> | undefined {
    if (!this.ready || this.pending >= SLOTS) return undefined;
    const op = ringCode(method, args);
    if (op === 0) return undefined;
    const k = this.submitted & MASK;
    const at = slotByte(k);
    const w = at >> 2;
    const words = this.words;
    words[w + OP] = op;
    words[w + SESSION] = args[0] as number;
    words[w + LEN2] = 0;
    if (op === OP_RANDOM) words[w + LEN1] = args[1] as number;
    else {
      words[w + MECHANISM] = args[1] as number;
      const data = args[op === OP_DIGEST ? 2 : 3] as Uint8Array;
      words[w + LEN1] = data.byteLength;
      this.bytes.set(data, at + DATA_BYTE);
      if (op !== OP_DIGEST) this.keys[(at + KEY_BYTE) >> 3] = args[2] as number;
      if (op === OP_VERIFY) {
        const sig = args[4] as Uint8Array;
        words[w + LEN2] = sig.byteLength;
        this.bytes.set(sig, at + DATA_BYTE + data.byteLength);
      }
    }
    const p = newPromise();
    this.resolves[k] = settlers.resolve;
    this.rejects[k] = settlers.reject;
    settlers.resolve = settlers.reject = undefined;
    this.methods[k] = method;
    this.args[k] = args;
    if (this.pending === 0) this.opts.onBusy?.(true);
    this.submitted = (this.submitted + 1) | 0;
    const ctl = this.ctl;
    Atomics.store(ctl, SUBMITTED, this.submitted);
    // The service is woken only when it waits: while it drains, it sees this call anyway.
    if (Atomics.load(ctl, HOST_ASLEEP) === 1 && Atomics.compareExchange(ctl, HOST_ASLEEP, 1, 0) === 1) Atomics.notify(ctl, HOST_ASLEEP);
    this.wait();
    return p;
  }

  /** Waits for DONE to move, unless it already has (then reads the outcomes after this turn). */
  private wait(): void {
    if (this.waiting || this.pending === 0 || this.failure) return;
    const ctl = this.ctl;
    this.waiting = true;
    Atomics.store(ctl, CLIENT_ASLEEP, 1);
    if (Atomics.load(ctl, DONE) !== this.consumed || Atomics.load(ctl, CLOSED) !== 0) {
      Atomics.store(ctl, CLIENT_ASLEEP, 0);
      return void queueMicrotask(this.woken);
    }
    const r = waitAsync(ctl, CLIENT_ASLEEP, 1);
    if (r.async) void r.value.then(this.woken);
    else queueMicrotask(this.woken);
  }

  /** Settles every call the service has finished, in order. */
  private harvest(): void {
    if (this.failure) return;
    const ctl = this.ctl;
    if (Atomics.load(ctl, CLOSED) !== 0) {
      return this.fail((method, inFlight) => new Error(`${method}: the service closed the shared-memory ring (a counter in it was corrupt)${inFlight ? '; the call may have run' : ''}`));
    }
    const done = Atomics.load(ctl, DONE);
    const n = (done - this.consumed) | 0;
    if (n <= 0 || n > this.pending) return;
    const words = this.words;
    for (let i = 0; i < n; i++) {
      const k = this.consumed & MASK;
      const at = slotByte(k);
      const w = at >> 2;
      const resolve = this.resolves[k]!;
      const reject = this.rejects[k]!;
      const method = this.methods[k]!;
      const args = this.args[k]!;
      this.resolves[k] = this.rejects[k] = this.methods[k] = this.args[k] = undefined;
      this.consumed = (this.consumed + 1) | 0;
      const status = words[w + STATUS];
      const len = Math.min(words[w + OUT_LEN], DATA_BYTES);
      if (status === BYTES) resolve(this.bytes.slice(at + DATA_BYTE, at + DATA_BYTE + len));
      else if (status === TRUE || status === FALSE) resolve(status === TRUE);
      else if (status === TOO_BIG) this.opts.fallback(method, args).then(resolve, reject);
      else if (status === FAILED) reject(this.decode(at + DATA_BYTE, len));
      else reject(new TypeError(`${method}: malformed answer in shared-memory ring slot ${k}`));
    }
    this.answered += n;
    if (this.pending === 0) this.opts.onBusy?.(false);
  }

  private decode(at: number, len: number): unknown {
    try {
      return decodeError(JSON.parse(utf8.decode(this.bytes.slice(at, at + len))) as WireThrown);
    } catch {
      return new TypeError('malformed error in the shared-memory ring');
    }
  }

  /**
   * Rejects every call in flight with `error(method, true)` and makes the ring take no more
   * calls (they go the message path, and fail there as the service is gone). Wakes this thread's
   * own wait so that nothing is left waiting.
   */
  fail(error: (method: string, inFlight: boolean) => unknown): void {
    if (this.failure) return;
    this.failure = (method) => error(method, false);
    this.ready = false;
    this.detach();
    clearInterval(this.poll);
    const had = this.pending;
    for (let i = 0; i < had; i++) {
      const k = this.consumed & MASK;
      const reject = this.rejects[k];
      const method = this.methods[k] ?? 'call';
      this.resolves[k] = this.rejects[k] = this.methods[k] = this.args[k] = undefined;
      this.consumed = (this.consumed + 1) | 0;
      reject?.(error(method, true));
    }
    Atomics.store(this.ctl, CLIENT_ASLEEP, 0);
    Atomics.notify(this.ctl, CLIENT_ASLEEP);
    if (had > 0) this.opts.onBusy?.(false);
  }
}
