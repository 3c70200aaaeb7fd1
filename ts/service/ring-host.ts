// The service's end of the shared-memory ring (ring-layout.ts): a client in the same process
// writes single-part byte operations into slots instead of posting messages, and the service
// runs them through the same guarded handlers as a batch (grant check, the client's own
// sessions only) with the slot's bytes as the input — no structured clone, one wake-up per
// drain rather than per call. Everything read from the buffer is untrusted: every count and
// length is read once and bounds-checked; a bad slot fails that call with an error naming it,
// and a bad counter closes the ring (the client falls back to messages). The endpoint keeps
// being served: the ring is drained before every message, so calls made before a message run
// before it, and the wait is Atomics.waitAsync, never a blocking wait.
import { availableParallelism } from 'node:os';
import type { Endpoint } from 'comlink';
import { encodeError } from './errors.js';
import {
  BYTES, CLIENT_ASLEEP, CLOSED, CORRUPT_COUNTER, DATA_BYTE, DATA_BYTES, DONE, FAILED, FALSE, HOST_ASLEEP, KEY_BYTE, LEN1, LEN2, MAGIC,
  MECHANISM, OP, OUT_LEN, RING_BYTES, RING_MAGIC, RING_OPS, SESSION, SLOTS, STATUS, SUBMITTED, TOO_BIG, TRUE, slotByte, waitAsync,
  type RingAnswer, type RingOp,
} from './ring-layout.js';

type Handler = (...args: unknown[]) => unknown;
export type RingHandlers = Readonly<Record<RingOp, Handler>>;

/** Waits carry no timeout (see ring-client.ts); an interval drains what a lost wake-up would leave. */
const SAFETY_POLL_MS = 1000;
const MASK = SLOTS - 1;
/**
 * How long the host keeps looking for the next call before it sleeps. On an idle VM a wake-up
 * across idle CPUs costs 23–58 µs (bench/RESULTS-NOTES.md), about what 32 short calls take, so a
 * host that slept after every pass paid one per pass: 0.24–0.33× in-thread at 32 in flight on a
 * quiet machine, 0.45–0.49× with this.
 */
const SPIN_MS = availableParallelism() > 1 ? 0.05 : 0;
// With one CPU (a small container, a pinned process) a poll only takes it from the thread that
// would submit the next call: then the host sleeps at once.
/**
 * The poll runs in slices of this long with a turn of the event loop between them: one
 * synchronous 50 µs spin held up any message that arrived meanwhile (a comlink call made right
 * after a ring call waited the spin out: 83–86 µs against 36–39 µs, bench/RESULTS-NOTES.md).
 */
const SLICE_MS = 0.005;

const badSlot = (k: number, why: string) => new RangeError(`shared-memory ring slot ${k}: ${why}`);

class RingHost {
  private readonly ctl: Int32Array;
  private readonly words: Uint32Array;
  private readonly keys: Float64Array;
  private readonly bytes: Uint8Array;
  /** The next call to run, and the first not finished (DONE as published). */
  private next = 0;
  private finished = 0;
  /** Per slot: its outcome is written (calls that returned a promise finish out of order). */
  private readonly complete = new Uint8Array(SLOTS);
  private closed = false;
  private readonly poll: ReturnType<typeof setInterval>;
  /** Until when (performance.now()) the host polls for the next call rather than sleeps. */
  private pollUntil = 0;
  private readonly wake = () => {
    const first = this.next;
    for (;;) {
      const before = this.next;
      // A client that keeps the ring full gets a turn of the event loop after every SLOTS calls:
      // the thread's messages (its own, other clients') are served in between.
      if (this.drain() || ((this.next - first) | 0) >= SLOTS) return void setImmediate(this.wake);
      if (this.next !== before) this.pollUntil = performance.now() + SPIN_MS;
      const left = this.pollUntil - performance.now();
      if (left <= 0 || this.closed) return this.sleep();
      if (!this.spin(left < SLICE_MS ? left : SLICE_MS)) return void setImmediate(this.wake);
    }
  };

  constructor(
    private readonly sab: SharedArrayBuffer,
    private readonly handlers: RingHandlers,
  ) {
    this.ctl = new Int32Array(sab, 0, 16);
    this.words = new Uint32Array(sab);
    this.keys = new Float64Array(sab);
    this.bytes = new Uint8Array(sab);
    // The client may have written calls already: start where its counter and ours agree.
    this.next = this.finished = Atomics.load(this.ctl, DONE);
    this.poll = setInterval(() => this.drain(), SAFETY_POLL_MS);
    this.poll.unref();
  }

  start(): void {
    this.wake();
  }

  stop(): void {
    this.closed = true;
    clearInterval(this.poll);
  }

  /** Whether the client submits within `ms` (polled: no wake-up needed then). */
  private spin(ms: number): boolean {
    const ctl = this.ctl;
    const end = performance.now() + ms;
    while (!this.closed && performance.now() < end) if (Atomics.load(ctl, SUBMITTED) !== this.next) return true;
    return false;
  }

  /** Waits for the client to submit; a client that submits while this is being set up is not missed. */
  private sleep(): void {
    if (this.closed) return;
    const ctl = this.ctl;
    Atomics.store(ctl, HOST_ASLEEP, 1);
    if (Atomics.load(ctl, SUBMITTED) !== this.next) {
      Atomics.store(ctl, HOST_ASLEEP, 0);
      return void setImmediate(this.wake);
    }
    const w = waitAsync(ctl, HOST_ASLEEP, 1);
    // Not asleep any more before it began (a client, or a hostile one clearing the word): a
    // turn of the event loop first, so that no client can keep this thread from its messages.
    if (w.async) void w.value.then(this.wake);
    else setImmediate(this.wake);
  }

  /**
   * Runs the calls submitted so far, in order, at most SLOTS of them, and publishes their
   * outcomes; true if more are waiting. SLOTS is all an honest client can have outstanding, so a
   * message never overtakes a ring call made before it.
   */
  drain(): boolean {
    const ctl = this.ctl;
    let budget = SLOTS;
    while (!this.closed) {
      const submitted = Atomics.load(ctl, SUBMITTED);
      const ahead = (submitted - this.next) | 0;
      if (ahead === 0) return false;
      if (ahead < 0 || ((submitted - this.finished) | 0) > SLOTS) {
        this.close(CORRUPT_COUNTER);
        return false;
      }
      if (budget === 0) return true;
      const n = ahead < budget ? ahead : budget;
      budget -= n;
      for (let i = 0; i < n; i++, this.next = (this.next + 1) | 0) this.run(this.next & MASK);
      this.publish();
    }
    return false;
  }

  private close(code: number): void {
    this.stop();
    Atomics.store(this.ctl, CLOSED, code);
    Atomics.store(this.ctl, CLIENT_ASLEEP, 0);
    Atomics.notify(this.ctl, CLIENT_ASLEEP);
  }

  /** Runs the call in slot k: every word read once, every length checked before any byte is. */
  private run(k: number): void {
    const w = slotByte(k) >> 2;
    const words = this.words;
    const op = words[w + OP];
    const sid = words[w + SESSION];
    const mech = words[w + MECHANISM];
    const n1 = words[w + LEN1];
    const n2 = words[w + LEN2];
    const h = this.handlers;
    let r: unknown;
    try {
      const name = RING_OPS[op - 1];
      if (name === undefined) throw badSlot(k, `no operation ${op}`);
      if (name === 'generateRandom') {
        if (n1 > DATA_BYTES) throw badSlot(k, `asks for ${n1} bytes, more than the ${DATA_BYTES} a slot holds`);
        r = h.generateRandom(sid, n1);
      } else {
        if (n1 > DATA_BYTES || n2 > DATA_BYTES - n1) throw badSlot(k, `inputs of ${n1} + ${n2} bytes do not fit its ${DATA_BYTES}`);
        const data = new Uint8Array(this.sab, slotByte(k) + DATA_BYTE, n1);
        if (name === 'digest') r = h.digest(sid, mech, data);
        else {
          const key = this.keys[(slotByte(k) + KEY_BYTE) >> 3];
          if (!Number.isSafeInteger(key) || key < 0) throw badSlot(k, 'the key handle is not a non-negative integer');
          r = name === 'verify' ? h.verify(sid, mech, key, data, new Uint8Array(this.sab, slotByte(k) + DATA_BYTE + n1, n2)) : h[name](sid, mech, key, data);
        }
      }
    } catch (e) {
      return this.fail(k, e);
    }
    if (r instanceof Promise) {
      // The session is busy with a slow operation: this call waits behind it (pkcs11-host.ts), later ones need not.
      r.then(
        (v) => this.finish(k, v),
        (e) => this.fail(k, e),
      ).then(() => this.publish());
    } else this.finish(k, r);
  }

  private finish(k: number, r: unknown): void {
    const w = slotByte(k) >> 2;
    if (r instanceof Uint8Array) {
      if (r.byteLength > DATA_BYTES) this.words[w + STATUS] = TOO_BIG;
      else {
        this.bytes.set(r, slotByte(k) + DATA_BYTE);
        this.words[w + OUT_LEN] = r.byteLength;
        this.words[w + STATUS] = BYTES;
      }
    } else if (typeof r === 'boolean') this.words[w + STATUS] = r ? TRUE : FALSE;
    else return this.fail(k, new TypeError(`shared-memory ring slot ${k}: the operation answered neither bytes nor a boolean`));
    this.complete[k] = 1;
  }

  /** The error as JSON in the slot (its stack cut short if that is what does not fit). */
  private fail(k: number, e: unknown): void {
    const w = slotByte(k) >> 2;
    let json: Buffer;
    try {
      json = Buffer.from(JSON.stringify(encodeError(e)));
      if (json.byteLength > DATA_BYTES) {
        const wire = encodeError(e) as { stack?: string; message?: string };
        json = Buffer.from(JSON.stringify({ ...wire, stack: undefined, message: String(wire.message ?? '').slice(0, 1024), cause: undefined }));
      }
    } catch {
      json = Buffer.from('[]');
    }
    if (json.byteLength > DATA_BYTES) json = Buffer.from(JSON.stringify(encodeError(new Error('the error is too large for a ring slot'))));
    this.bytes.set(json, slotByte(k) + DATA_BYTE);
    this.words[w + OUT_LEN] = json.byteLength;
    this.words[w + STATUS] = FAILED;
    this.complete[k] = 1;
  }

  /** Advances DONE over the calls finished in order; wakes the client only if it waits. */
  private publish(): void {
    if (this.closed) return;
    let f = this.finished;
    const complete = this.complete;
    while (f !== this.next && complete[f & MASK]) {
      complete[f & MASK] = 0;
      f = (f + 1) | 0;
    }
    if (f === this.finished) return;
    this.finished = f;
    const ctl = this.ctl;
    Atomics.store(ctl, DONE, f);
    if (Atomics.load(ctl, CLIENT_ASLEEP) === 1 && Atomics.compareExchange(ctl, CLIENT_ASLEEP, 1, 0) === 1) Atomics.notify(ctl, CLIENT_ASLEEP);
  }
}

const isOffer = (d: unknown): d is { p11wRing: unknown } => typeof d === 'object' && d !== null && 'p11wRing' in d;

/**
 * Serves a ring to the client on `ep` once it offers one (one ring per endpoint). Register this
 * before the endpoint's other listeners: it drains the ring before every message.
 */
export function serveRing(ep: Endpoint, handlers: RingHandlers): () => void {
  let host: RingHost | undefined;
  const answer = (a: RingAnswer) => ep.postMessage(a);
  const listener = (ev: MessageEvent) => {
    host?.drain();
    const d: unknown = ev.data;
    if (!isOffer(d)) return;
    const sab = d.p11wRing;
    if (host) return answer({ p11wRingReady: false, reason: 'this endpoint has a ring already' });
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== RING_BYTES) return answer({ p11wRingReady: false, reason: `a ring is a SharedArrayBuffer of ${RING_BYTES} bytes` });
    if (Atomics.load(new Int32Array(sab, 0, 1), MAGIC) !== RING_MAGIC) return answer({ p11wRingReady: false, reason: 'not a ring of this version' });
    host = new RingHost(sab, handlers);
    host.start();
    answer({ p11wRingReady: true });
  };
  ep.addEventListener('message', listener as never);
  ep.start?.();
  return () => {
    host?.stop();
    ep.removeEventListener('message', listener as never);
  };
}
