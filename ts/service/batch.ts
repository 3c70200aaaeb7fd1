// The hot path: calls made in the same tick travel as one message and come back as one.
// A comlink call costs ~15 µs of CPU per call even with 32 in flight (perf-baseline.md),
// more than a SoftHSM operation, so short operations are coalesced here instead: the client
// queues calls and flushes them at the end of the current microtask turn (or when a batch
// is full, so several batches pipeline); the host runs them in order and answers once.
// Byte results (signatures, random, digests) travel packed in one transferred ArrayBuffer per
// batch rather than as one cloned buffer each. The messages share the endpoint with comlink,
// which ignores them (no `id`, no `type`).
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

function encodeCalls(batch: readonly { method: string; args: readonly unknown[] }[]): Pick<BatchRequest, 'methods' | 'calls'> {
  const methods: string[] = [];
  const calls: unknown[] = [];
  for (const { method, args } of batch) {
    let m = methods.indexOf(method);
    if (m < 0) m = methods.push(method) - 1;
    calls.push(m, args.length, ...args);
  }
  return { methods, calls };
}

/** The calls of a request as [method, args] (a malformed entry becomes an error for that call). */
function decodeCalls(req: BatchRequest): ([string, unknown[]] | TypeError)[] {
  const out: ([string, unknown[]] | TypeError)[] = [];
  const { methods, calls } = req;
  if (!Array.isArray(methods) || !Array.isArray(calls)) return out;
  for (let i = 0; i < calls.length; ) {
    const m = calls[i];
    const n = calls[i + 1];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || i + 2 + n > calls.length) {
      out.push(new TypeError('malformed batched call'));
      break;
    }
    out.push(typeof m === 'number' && typeof methods[m] === 'string' ? [methods[m], calls.slice(i + 2, i + 2 + n)] : new TypeError('malformed batched call'));
    i += 2 + n;
  }
  return out;
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
  for (const r of results) {
    if (r instanceof Uint8Array) {
      total += r.byteLength;
      count++;
    }
  }
  if (count < 2) {
    results.forEach((r, i) => (results[i] = compact(r)));
    return {};
  }
  const packed = new ArrayBuffer(total);
  const bytes = new Uint8Array(packed);
  const spans: number[] = [];
  let at = 0;
  results.forEach((r, i) => {
    if (r instanceof Uint8Array) {
      bytes.set(r, at);
      at += r.byteLength;
      spans.push(i, r.byteLength);
      results[i] = undefined;
    } else results[i] = compact(r);
  });
  return { packed, spans };
}

const isRequest = (d: unknown): d is BatchRequest => typeof d === 'object' && d !== null && 'p11wBatch' in d;
const isReply = (d: unknown): d is BatchReply => typeof d === 'object' && d !== null && 'p11wBatchDone' in d;

export type BatchHandlers = Readonly<Record<string, (...args: never[]) => unknown>>;

/**
 * Answers batches on `ep` with `handlers`. Calls run in their order; a handler that returns
 * a promise is awaited before the reply (batched handlers should be short, synchronous calls).
 */
export function serveBatches(ep: Endpoint, handlers: BatchHandlers): () => void {
  const listener = (ev: MessageEvent) => {
    const req = ev.data;
    if (!isRequest(req)) return;
    const calls = decodeCalls(req);
    const results: unknown[] = new Array(calls.length);
    const failed: [number, WireThrown][] = [];
    const waits: Promise<void>[] = [];
    calls.forEach((call, i) => {
      try {
        if (call instanceof TypeError) throw call;
        const [method, args] = call;
        const fn = Object.prototype.hasOwnProperty.call(handlers, method) ? handlers[method] : undefined;
        if (!fn) throw new TypeError(`no batched method '${method}' in this service`);
        const r = (fn as (...a: readonly unknown[]) => unknown)(...args);
        if (r instanceof Promise) {
          waits.push(r.then((v) => void (results[i] = v), (e) => void failed.push([i, encodeError(e)])));
        } else results[i] = r;
      } catch (e) {
        failed.push([i, encodeError(e)]);
      }
    });
    const reply = () => {
      const { packed, spans } = pack(results);
      try {
        ep.postMessage({ p11wBatchDone: req.p11wBatch, results, failed, packed, spans } satisfies BatchReply, packed ? [packed] : []);
      } catch {
        // A result that cannot be cloned fails alone; the others still answer.
        results.forEach((r, i) => {
          try {
            structuredClone(r);
          } catch {
            results[i] = undefined;
            failed.push([i, encodeError(new TypeError('unserializable result'))]);
          }
        });
        ep.postMessage({ p11wBatchDone: req.p11wBatch, results, failed, packed, spans } satisfies BatchReply, packed ? [packed] : []);
      }
    };
    if (waits.length) void Promise.all(waits).then(reply);
    else reply();
  };
  ep.addEventListener('message', listener as never);
  ep.start?.();
  return () => ep.removeEventListener('message', listener as never);
}

interface Queued {
  readonly method: string;
  readonly args: readonly unknown[];
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

export interface BatchClientOptions {
  /** Flush as soon as this many calls are queued, so long runs pipeline (default 32). */
  readonly maxBatch?: number;
}

/** The calling side of serveBatches. */
export class BatchClient {
  private queue: Queued[] = [];
  private readonly inFlight = new Map<number, Queued[]>();
  private nextId = 1;
  private flushScheduled = false;
  private failure: ((q: Queued) => unknown) | undefined;
  private readonly maxBatch: number;
  private readonly detach: () => void;

  constructor(
    private readonly ep: Endpoint,
    opts: BatchClientOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
    const listener = (ev: MessageEvent) => this.onReply(ev.data);
    ep.addEventListener('message', listener as never);
    ep.start?.();
    this.detach = () => ep.removeEventListener('message', listener as never);
  }

  /** Calls in flight or queued. */
  get pending(): number {
    let n = this.queue.length;
    for (const b of this.inFlight.values()) n += b.length;
    return n;
  }

  call(method: string, args: readonly unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const q: Queued = { method, args, resolve, reject };
      if (this.failure) return void reject(this.failure(q));
      this.queue.push(q);
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /**
   * Rejects every queued and in-flight call with `error(call, inFlight)`, and every later call
   * with `error(call, false)`. Used when the other side is gone.
   */
  fail(error: (method: string, inFlight: boolean) => unknown): void {
    this.failure = (q) => error(q.method, false);
    for (const q of this.queue.splice(0)) q.reject(error(q.method, false));
    for (const batch of this.inFlight.values()) for (const q of batch) q.reject(error(q.method, true));
    this.inFlight.clear();
    this.detach();
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const id = this.nextId++;
      this.inFlight.set(id, batch);
      try {
        this.ep.postMessage({ p11wBatch: id, ...encodeCalls(batch) } satisfies BatchRequest);
      } catch {
        // An argument that cannot be cloned: send the calls one by one, so only that one fails.
        this.inFlight.delete(id);
        for (const q of batch) this.sendAlone(q);
      }
    }
  }

  private sendAlone(q: Queued): void {
    const id = this.nextId++;
    try {
      this.ep.postMessage({ p11wBatch: id, ...encodeCalls([q]) } satisfies BatchRequest);
      this.inFlight.set(id, [q]);
    } catch (e) {
      q.reject(e);
    }
  }

  private onReply(data: unknown): void {
    if (!isReply(data)) return;
    const batch = this.inFlight.get(data.p11wBatchDone);
    if (!batch) return;
    this.inFlight.delete(data.p11wBatchDone);
    if (!Array.isArray(data.results) || !Array.isArray(data.failed)) {
      for (const q of batch) q.reject(new TypeError('malformed batch reply from the service'));
      return;
    }
    const results = data.results;
    if (data.packed instanceof ArrayBuffer && Array.isArray(data.spans)) {
      // Each gets its own exact-size copy, as if it had come alone.
      const bytes = new Uint8Array(data.packed);
      for (let k = 0, at = 0; k + 1 < data.spans.length; k += 2) {
        const len = data.spans[k + 1];
        results[data.spans[k]] = bytes.slice(at, at + len);
        at += len;
      }
    }
    const failedAt = data.failed.length ? new Map(data.failed.filter((f) => Array.isArray(f))) : undefined;
    for (let i = 0; i < batch.length; i++) {
      const f = failedAt?.get(i);
      if (f !== undefined) batch[i].reject(decodeError(f));
      else if (i >= results.length) batch[i].reject(new TypeError('the service did not answer this call of the batch'));
      else batch[i].resolve(results[i]);
    }
  }
}
