// The hot path: calls made in the same tick travel as one message and come back as one.
// A comlink call costs ~15 µs of CPU per call even with 32 in flight (perf-baseline.md),
// more than a SoftHSM operation, so short operations are coalesced here instead: the client
// queues calls and flushes them at the end of the current microtask turn (or earlier, see
// `flushAt`, so that several batches pipeline); the host runs them in order and answers once.
// Byte results (signatures, random, digests) travel packed in one transferred ArrayBuffer per
// batch rather than as one cloned buffer each. The messages share the endpoint with comlink,
// which ignores them (no `id`, no `type`).
//
// Per call, neither side builds anything but the call's own promise and its arguments: calls are
// appended to the open batch's flat arrays as they are made (no object, closure or array per
// call), the host dispatches from the flat array with the call's own argument count, and
// resolves the batch's promises by index.
import type { Endpoint } from 'comlink';
import { compact } from './compact.js';
import { decodeError, encodeError, type WireThrown } from './errors.js';

/**
 * One flat array rather than an array per call: structured clone pays per object, and for
 * short calls that was most of the client's cost. `calls` is [method index, argument count,
 * ...arguments] per call; `methods` names each method once.
 */
interface BatchRequest {
  readonly p11wBatch: number;
  readonly methods: readonly string[];
  readonly calls: readonly unknown[];
}

interface BatchReply {
  readonly p11wBatchDone: number;
  readonly results: unknown[];
  /** Sparse: [call index, what it threw]. */
  readonly failed: [number, WireThrown][];
  /** The Uint8Array results, back to back; `spans` holds [call index, length] pairs in order. */
  readonly packed?: ArrayBuffer;
  readonly spans?: number[];
}

/**
 * Moves the Uint8Array results into one buffer (copies of exactly their bytes: nothing else of
 * the service's memory goes along); every other result is compacted (see compact.ts).
 */
function pack(results: unknown[]): { packed?: ArrayBuffer; spans?: number[] } {
  let total = 0;
  let count = 0;
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r instanceof Uint8Array) {
      total += r.byteLength;
      count++;
    }
  }
  if (count < 2) {
    for (let i = 0; i < results.length; i++) results[i] = compact(results[i]);
    return {};
  }
  const packed = new ArrayBuffer(total);
  const bytes = new Uint8Array(packed);
  const spans: number[] = [];
  let at = 0;
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r instanceof Uint8Array) {
      bytes.set(r, at);
      at += r.byteLength;
      spans.push(i, r.byteLength);
      results[i] = undefined;
    } else results[i] = compact(r);
  }
  return { packed, spans };
}

const isRequest = (d: unknown): d is BatchRequest => typeof d === 'object' && d !== null && 'p11wBatch' in d;
const isReply = (d: unknown): d is BatchReply => typeof d === 'object' && d !== null && 'p11wBatchDone' in d;

type Handler = (...args: readonly unknown[]) => unknown;
export type BatchHandlers = Readonly<Record<string, (...args: never[]) => unknown>>;

/** Calls `fn` with the `n` arguments at calls[at…]: no array for the common counts. */
function dispatch(fn: Handler, calls: readonly unknown[], at: number, n: number): unknown {
  switch (n) {
    case 0: return fn();
    case 1: return fn(calls[at]);
    case 2: return fn(calls[at], calls[at + 1]);
    case 3: return fn(calls[at], calls[at + 1], calls[at + 2]);
    case 4: return fn(calls[at], calls[at + 1], calls[at + 2], calls[at + 3]);
    case 5: return fn(calls[at], calls[at + 1], calls[at + 2], calls[at + 3], calls[at + 4]);
    default: return fn(...calls.slice(at, at + n));
  }
}

const malformed = () => new TypeError('malformed batched call');

/**
 * Answers batches on `ep` with `handlers`. Calls run in their order; a handler that returns
 * a promise is awaited before the reply (batched handlers should be short, synchronous calls).
 */
export function serveBatches(ep: Endpoint, handlers: BatchHandlers): () => void {
  const handlerOf = (name: unknown): Handler | undefined =>
    typeof name === 'string' && Object.prototype.hasOwnProperty.call(handlers, name) ? (handlers[name] as Handler) : undefined;
  const send = (id: unknown, results: unknown[], failed: [number, WireThrown][]) => {
    const { packed, spans } = pack(results);
    try {
      ep.postMessage({ p11wBatchDone: id, results, failed, packed, spans } as BatchReply, packed ? [packed] : []);
    } catch {
      // A result that cannot be cloned fails alone; the others still answer.
      for (let i = 0; i < results.length; i++) {
        try {
          structuredClone(results[i]);
        } catch {
          results[i] = undefined;
          failed.push([i, encodeError(new TypeError('unserializable result'))]);
        }
      }
      ep.postMessage({ p11wBatchDone: id, results, failed, packed, spans } as BatchReply, packed ? [packed] : []);
    }
  };
  const listener = (ev: MessageEvent) => {
    const req = ev.data;
    if (!isRequest(req)) return;
    const { methods, calls } = req;
    const results: unknown[] = [];
    const failed: [number, WireThrown][] = [];
    let waits: Promise<void>[] | undefined;
    if (Array.isArray(methods) && Array.isArray(calls)) {
      // Each method is looked up once per batch, not once per call.
      const fns = methods.map(handlerOf);
      for (let i = 0, k = 0; i < calls.length; k++) {
        const m = calls[i];
        const n = calls[i + 1];
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || i + 2 + n > calls.length) {
          results.push(undefined);
          failed.push([k, encodeError(malformed())]);
          break;
        }
        results.push(undefined);
        try {
          if (typeof m !== 'number' || typeof methods[m] !== 'string') throw malformed();
          const fn = fns[m];
          if (!fn) throw new TypeError(`no batched method '${methods[m]}' in this service`);
          const r = dispatch(fn, calls, i + 2, n);
          if (r instanceof Promise) {
            const at = k;
            (waits ??= []).push(r.then((v) => void (results[at] = v), (e) => void failed.push([at, encodeError(e)])));
          } else results[k] = r;
        } catch (e) {
          failed.push([k, encodeError(e)]);
        }
        i += 2 + n;
      }
    }
    if (waits) void Promise.all(waits).then(() => send(req.p11wBatch, results, failed));
    else send(req.p11wBatch, results, failed);
  };
  ep.addEventListener('message', listener as never);
  ep.start?.();
  return () => ep.removeEventListener('message', listener as never);
}

/** The calls of one message, as flat arrays appended to while the batch is open. */
class OpenBatch {
  readonly methods: string[] = [];
  readonly calls: unknown[] = [];
  /** Per call: its method's name (for errors), and its promise's settling functions. */
  readonly names: string[] = [];
  readonly resolves: ((v: unknown) => void)[] = [];
  readonly rejects: ((e: unknown) => void)[] = [];
  /** The method added last and its index: runs of one method skip the search. */
  private last = '';
  private lastIndex = -1;

  get size(): number {
    return this.names.length;
  }

  add(method: string, args: readonly unknown[], resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
    let m = this.lastIndex;
    if (method !== this.last) {
      m = this.methods.indexOf(method);
      if (m < 0) m = this.methods.push(method) - 1;
      this.last = method;
      this.lastIndex = m;
    }
    const calls = this.calls;
    calls.push(m, args.length);
    for (let i = 0; i < args.length; i++) calls.push(args[i]);
    this.names.push(method);
    this.resolves.push(resolve);
    this.rejects.push(reject);
  }

  /** The batch's calls one by one, as batches of one (to find the one whose arguments cannot be cloned). */
  split(): OpenBatch[] {
    const out: OpenBatch[] = [];
    for (let i = 0, k = 0; k < this.names.length; k++) {
      const n = this.calls[i + 1] as number;
      const one = new OpenBatch();
      one.add(this.names[k], this.calls.slice(i + 2, i + 2 + n), this.resolves[k], this.rejects[k]);
      out.push(one);
      i += 2 + n;
    }
    return out;
  }
}

// The promise executor is shared: it hands its settling functions over through these two, so a
// call creates no closure of its own.
let settle: ((v: unknown) => void) | undefined;
let fail: ((e: unknown) => void) | undefined;
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  settle = resolve;
  fail = reject;
}

export interface BatchClientOptions {
  /** Flush as soon as this many calls are queued, so long runs pipeline (default 32). */
  readonly maxBatch?: number;
  /** Told when the first call is made with none pending (true) and when the last one settles (false). */
  readonly onBusy?: (busy: boolean) => void;
}

/** The calling side of serveBatches. */
export class BatchClient {
  private open = new OpenBatch();
  private readonly inFlight = new Map<number, OpenBatch>();
  private count = 0;
  private nextId = 1;
  private flushScheduled = false;
  private failure: ((method: string) => unknown) | undefined;
  private readonly maxBatch: number;
  private readonly onBusy: ((busy: boolean) => void) | undefined;
  private readonly detach: () => void;
  private readonly flushNow = () => this.flush();

  constructor(
    private readonly ep: Endpoint,
    opts: BatchClientOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
    this.onBusy = opts.onBusy;
    const listener = (ev: MessageEvent) => this.onReply(ev.data);
    ep.addEventListener('message', listener as never);
    ep.start?.();
    this.detach = () => ep.removeEventListener('message', listener as never);
  }

  /** Calls in flight or queued. */
  get pending(): number {
    return this.count;
  }

  call(method: string, args: readonly unknown[]): Promise<unknown> {
    const p = new Promise(capture);
    const resolve = settle!;
    const reject = fail!;
    settle = fail = undefined;
    if (this.failure) {
      reject(this.failure(method));
      return p;
    }
    if (this.count++ === 0) this.onBusy?.(true);
    const open = this.open;
    open.add(method, args, resolve, reject);
    if (open.size >= this.flushAt()) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushNow);
    }
    return p;
  }

  /**
   * A batch goes when it is full, or at the end of the tick. While fewer than two batches are
   * in flight it goes at half size: the host starts on it while this thread is still making
   * (or settling) the rest, and the next batch waits in the host's queue instead of the host
   * waiting for it — with many calls in flight, both threads stay busy.
   */
  private flushAt(): number {
    return this.inFlight.size < 2 ? Math.max(1, this.maxBatch >> 1) : this.maxBatch;
  }

  /**
   * Rejects every queued and in-flight call with `error(method, inFlight)`, and every later call
   * with `error(method, false)`. Used when the other side is gone.
   */
  fail(error: (method: string, inFlight: boolean) => unknown): void {
    this.failure = (method) => error(method, false);
    const open = this.open;
    this.open = new OpenBatch();
    const batches = [...this.inFlight.values()];
    this.inFlight.clear();
    this.detach();
    for (let k = 0; k < open.size; k++) open.rejects[k](error(open.names[k], false));
    for (const b of batches) for (let k = 0; k < b.size; k++) b.rejects[k](error(b.names[k], true));
    this.settled(open.size + batches.reduce((n, b) => n + b.size, 0));
  }

  private settled(n: number): void {
    if (n === 0 || this.count === 0) return;
    this.count = Math.max(0, this.count - n);
    if (this.count === 0) this.onBusy?.(false);
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.open;
    if (!batch.size) return;
    this.open = new OpenBatch();
    if (!this.post(batch)) for (const one of batch.split()) this.sendAlone(one);
  }

  private post(batch: OpenBatch): boolean {
    const id = this.nextId++;
    try {
      this.ep.postMessage({ p11wBatch: id, methods: batch.methods, calls: batch.calls } satisfies BatchRequest);
    } catch {
      return false;
    }
    this.inFlight.set(id, batch);
    return true;
  }

  /** An argument that cannot be cloned: the calls go one by one, so only that one fails. */
  private sendAlone(one: OpenBatch): void {
    try {
      this.ep.postMessage({ p11wBatch: this.nextId, methods: one.methods, calls: one.calls } satisfies BatchRequest);
      this.inFlight.set(this.nextId++, one);
    } catch (e) {
      one.rejects[0](e);
      this.settled(1);
    }
  }

  private onReply(data: unknown): void {
    if (!isReply(data)) return;
    const batch = this.inFlight.get(data.p11wBatchDone);
    if (!batch) return;
    this.inFlight.delete(data.p11wBatchDone);
    const { resolves, rejects } = batch;
    const size = batch.size;
    const { results, failed, packed, spans } = data;
    if (!Array.isArray(results) || !Array.isArray(failed)) {
      for (let k = 0; k < size; k++) rejects[k](new TypeError('malformed batch reply from the service'));
      return this.settled(size);
    }
    if (packed instanceof ArrayBuffer && Array.isArray(spans)) {
      // Each gets its own exact-size copy, as if it had come alone.
      const bytes = new Uint8Array(packed);
      for (let k = 0, at = 0; k + 1 < spans.length; k += 2) {
        const len = spans[k + 1];
        results[spans[k]] = bytes.slice(at, at + len);
        at += len;
      }
    }
    // A call that failed is marked in `settledBy` so that it is not also resolved.
    let settledBy: Map<number, WireThrown> | undefined;
    for (let j = 0; j < failed.length; j++) {
      const f = failed[j];
      if (Array.isArray(f)) (settledBy ??= new Map()).set(f[0] as number, f[1] as WireThrown);
    }
    for (let k = 0; k < size; k++) {
      const f = settledBy?.get(k);
      if (f !== undefined) rejects[k](decodeError(f));
      else if (k >= results.length) rejects[k](new TypeError('the service did not answer this call of the batch'));
      else resolves[k](results[k]);
    }
    this.settled(size);
  }
}
