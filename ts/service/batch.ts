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
import { newPromise, settlers } from './settlers.js';
import { decodeError, encodeError, type WireThrown } from './errors.js';
import { MAX_CALL_ARGS as MAX_BATCH_ARGS } from './guarded-expose.js';

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
  /** The index in the batch of results[0] (a batch may be answered in parts, in order); 0 when absent. */
  readonly from?: number;
  /** Whether parts follow this one. */
  readonly more?: boolean;
  readonly results: unknown[];
  /** Sparse: [index in results, what it threw]; absent when none did. */
  readonly failed?: [number, WireThrown][];
  /** The whole batch was refused, none of it ran: what each call rejects with. */
  readonly refused?: WireThrown;
  /** The Uint8Array results, back to back; `spans` holds [call index, length] pairs in order. */
  readonly packed?: ArrayBuffer;
  readonly spans?: number[];
}

/**
 * Moves the Uint8Array results into one buffer (copies of exactly their bytes: nothing else of
 * the service's memory goes along), transferred rather than cloned, even for one result; every
 * other result is compacted (see compact.ts).
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
  if (count === 0) {
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

const malformed = (why: string) => new TypeError(`malformed batched call: ${why}`);

/**
 * What one batch may hold. A client of ours sends at most `maxBatch` calls (clamped to
 * MAX_BATCH_CALLS); these bound what a hostile client can make the host hold or build for one
 * message. A call takes at most as many arguments as a single call may (guarded-expose.ts).
 */
export const MAX_BATCH_CALLS = 1024;
const MAX_BATCH_METHODS = 64;
/**
 * Byte results are answered in parts of about this size: a batch of short calls can ask for far
 * more output than its own size (1,024 × C_GenerateRandom(64 MiB)), and the host builds a reply
 * part at a time, not the whole.
 */
const REPLY_PART_BYTES = 16 << 20;

/** Why a whole batch is refused before any of its calls runs, if it is. */
function refusal(methods: unknown, calls: unknown): Error | undefined {
  if (!Array.isArray(methods) || !Array.isArray(calls)) return new TypeError('malformed batch: its methods and calls are arrays');
  if (methods.length > MAX_BATCH_METHODS) return new RangeError(`a batch names at most ${MAX_BATCH_METHODS} methods, not ${methods.length}`);
  if (calls.length > MAX_BATCH_CALLS * (2 + MAX_BATCH_ARGS) || (calls.length > 2 * MAX_BATCH_CALLS && callCount(calls) > MAX_BATCH_CALLS)) {
    return new RangeError(`a batch holds at most ${MAX_BATCH_CALLS} calls`);
  }
  return undefined;
}

/** How many calls `calls` holds (up to a malformed one): counted only when it might be too many. */
function callCount(calls: readonly unknown[]): number {
  let k = 0;
  for (let i = 0; i < calls.length; k++) {
    const n = calls[i + 1];
    if (typeof n !== 'number' || !(n >= 0)) break;
    i += 2 + n;
  }
  return k;
}

/** The replies of one batch, in parts: `from` is the index of results[0] in the batch. */
class ReplyPart {
  readonly results: unknown[] = [];
  /** [index in this part, what it threw]. */
  readonly failed: [number, WireThrown][] = [];
  waits: Promise<void>[] | undefined;
  bytes = 0;
  constructor(readonly from: number) {}

  fail(k: number, e: unknown): void {
    this.failed.push([k - this.from, encodeError(e)]);
  }

  /** Call k's result, now or when its promise settles. */
  set(k: number, r: unknown): void {
    const j = k - this.from;
    if (r instanceof Promise) {
      (this.waits ??= []).push(r.then((v) => void (this.results[j] = v), (e) => this.fail(k, e)));
    } else {
      this.results[j] = r;
      if (r instanceof Uint8Array) this.bytes += r.byteLength;
    }
  }
}

/**
 * Answers batches on `ep` with `handlers`. Calls run in their order; a handler that returns
 * a promise is awaited before the reply part holding it goes (batched handlers should be short,
 * synchronous calls). Parts go in order.
 */
export function serveBatches(ep: Endpoint, handlers: BatchHandlers): () => void {
  const handlerOf = (name: unknown): Handler | undefined =>
    typeof name === 'string' && Object.prototype.hasOwnProperty.call(handlers, name) ? (handlers[name] as Handler) : undefined;
  const post = (reply: BatchReply, packed: ArrayBuffer | undefined) => ep.postMessage(reply, packed ? [packed] : []);
  /** A reply with only the fields it needs: each object cloned costs, in both threads. */
  const reply = (id: number, part: ReplyPart, more: boolean, packed: ArrayBuffer | undefined, spans: number[] | undefined): BatchReply => {
    const r: { -readonly [K in keyof BatchReply]: BatchReply[K] } = { p11wBatchDone: id, results: part.results };
    if (part.from) r.from = part.from;
    if (more) r.more = true;
    if (part.failed.length) r.failed = part.failed;
    if (packed) {
      r.packed = packed;
      r.spans = spans;
    }
    return r;
  };
  const send = (id: number, part: ReplyPart, more: boolean) => {
    const { results, failed } = part;
    const { packed, spans } = pack(results);
    try {
      post(reply(id, part, more, packed, spans), packed);
    } catch {
      // A result that cannot be cloned fails alone; the others still answer.
      for (let j = 0; j < results.length; j++) {
        try {
          structuredClone(results[j]);
        } catch {
          results[j] = undefined;
          failed.push([j, encodeError(new TypeError('unserializable result'))]);
        }
      }
      post(reply(id, part, more, packed, spans), packed);
    }
  };
  const listener = (ev: MessageEvent) => {
    const req = ev.data;
    if (!isRequest(req)) return;
    const id = req.p11wBatch;
    if (typeof id !== 'number') return; // not an id of ours: nobody to answer
    const { methods, calls } = req;
    const refused = refusal(methods, calls);
    if (refused) return void post({ p11wBatchDone: id, results: [], refused: encodeError(refused) }, undefined);
    // Each method is looked up once per batch, not once per call.
    const fns = (methods as unknown[]).map(handlerOf);
    let part = new ReplyPart(0);
    // Parts go in order: one waiting for a promise holds back the ones after it.
    let before: Promise<void> | undefined;
    const done = (p: ReplyPart, more: boolean) => {
      if (p.waits || before) before = Promise.all([before, ...(p.waits ?? [])]).then(() => send(id, p, more));
      else send(id, p, more);
    };
    for (let i = 0, k = 0; i < calls.length; k++) {
      const m = calls[i];
      const n = calls[i + 1];
      part.results.push(undefined);
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || i + 2 + n > calls.length) {
        part.fail(k, malformed('no argument count, or more arguments than the batch holds'));
        break; // where the next call starts is unknown
      }
      try {
        if (n > MAX_BATCH_ARGS) throw malformed(`more than ${MAX_BATCH_ARGS} arguments`);
        if (typeof m !== 'number' || typeof methods[m] !== 'string') throw malformed('no method');
        const fn = fns[m];
        if (!fn) throw new TypeError(`no batched method '${methods[m].slice(0, 64)}' in this service`);
        part.set(k, dispatch(fn, calls, i + 2, n));
      } catch (e) {
        part.fail(k, e);
      }
      i += 2 + n;
      if (part.bytes >= REPLY_PART_BYTES && i < calls.length) {
        done(part, true);
        part = new ReplyPart(k + 1);
      }
    }
    done(part, false);
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
  /** Once sent: how many of its calls have been answered (replies come in parts, in order). */
  answered = 0;
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
    this.maxBatch = Math.min(MAX_BATCH_CALLS, Math.max(1, opts.maxBatch ?? 32));
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
    const p = newPromise();
    const resolve = settlers.resolve!;
    const reject = settlers.reject!;
    settlers.resolve = settlers.reject = undefined;
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
    let n = open.size;
    for (const b of batches) {
      for (let k = b.answered; k < b.size; k++) b.rejects[k](error(b.names[k], true));
      n += b.size - b.answered;
    }
    this.settled(n);
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
    const id = data.p11wBatchDone;
    const batch = this.inFlight.get(id);
    if (!batch) return;
    const { resolves, rejects, size, answered } = batch;
    const { results, failed, packed, spans, refused } = data;
    const from = data.from ?? 0;
    const more = data.more === true;
    if (refused !== undefined || !Array.isArray(results) || (failed !== undefined && !Array.isArray(failed)) || from !== answered) {
      // One error each: a caller's stack is appended to the error it gets (pkcs11-client.ts).
      for (let k = answered; k < size; k++) rejects[k](refused !== undefined ? decodeError(refused) : new TypeError('malformed batch reply from the service'));
      this.inFlight.delete(id);
      return this.settled(size - answered);
    }
    if (packed instanceof ArrayBuffer && Array.isArray(spans)) {
      // Each gets its own exact-size copy, as if it had come alone; a lone result is that already.
      const bytes = new Uint8Array(packed);
      if (spans.length === 2 && spans[1] === packed.byteLength) results[spans[0]] = bytes;
      else for (let j = 0, at = 0; j + 1 < spans.length; j += 2) {
        const len = spans[j + 1];
        results[spans[j]] = bytes.slice(at, at + len);
        at += len;
      }
    }
    // A call that failed is marked in `failedAt` so that it is not also resolved.
    let failedAt: Map<number, WireThrown> | undefined;
    if (failed) for (let j = 0; j < failed.length; j++) {
      const f = failed[j];
      if (Array.isArray(f)) (failedAt ??= new Map()).set(f[0] as number, f[1] as WireThrown);
    }
    // The last part answers every call left; one that it does not hold was never run.
    const end = more ? Math.min(size, from + results.length) : size;
    for (let k = from; k < end; k++) {
      const j = k - from;
      const f = failedAt?.get(j);
      if (f !== undefined) rejects[k](decodeError(f));
      else if (j >= results.length) rejects[k](new TypeError('the service did not answer this call of the batch'));
      else resolves[k](results[j]);
    }
    batch.answered = end;
    if (end >= size) this.inFlight.delete(id);
    this.settled(end - from);
  }
}
