// Event streams from the service: the host pumps an async iterable and pushes each value as
// a message; the client buffers them behind an async iterator. Closing the iterator (break
// out of for-await) cancels the source; the service's death ends every open stream with the
// error the supervisor gives. Like batches, these messages share the endpoint with comlink.
import type { Endpoint } from 'comlink';
import { compact } from './compact.js';
import { decodeError, encodeError, type WireThrown } from './errors.js';

type StreamMessage =
  | { readonly p11wStreamOpen: number; readonly name: string; readonly args: readonly unknown[] }
  | { readonly p11wStreamCancel: number };
type StreamReply =
  | { readonly p11wStream: number; readonly value: unknown }
  | { readonly p11wStreamEnd: number; readonly error?: WireThrown };

const has = <K extends string>(d: unknown, k: K): d is Record<K, number> => typeof d === 'object' && d !== null && k in d;

/**
 * A source gets an AbortSignal first (aborted when the client cancels or the host stops), so
 * that a source waiting between values can stop without producing one more.
 */
export type StreamSources = Readonly<Record<string, (signal: AbortSignal, ...args: never[]) => AsyncIterable<unknown>>>;

interface OpenStream {
  readonly it: AsyncIterator<unknown>;
  readonly abort: AbortController;
}

/** Serves the named sources; each open runs one iteration of the source, until it ends or is cancelled. */
export function serveStreams(ep: Endpoint, sources: StreamSources): () => void {
  const open = new Map<number, OpenStream>();
  const stop = (s: OpenStream | undefined) => {
    if (!s) return;
    s.abort.abort();
    void s.it.return?.()?.catch(() => undefined);
  };
  const listener = (ev: MessageEvent) => {
    const m = ev.data as StreamMessage;
    if (has(m, 'p11wStreamCancel')) {
      const s = open.get(m.p11wStreamCancel);
      open.delete(m.p11wStreamCancel);
      stop(s);
    } else if (has(m, 'p11wStreamOpen')) {
      void pump(m as Extract<StreamMessage, { p11wStreamOpen: number }>);
    }
  };
  const pump = async ({ p11wStreamOpen: id, name, args }: Extract<StreamMessage, { p11wStreamOpen: number }>) => {
    let error: WireThrown | undefined;
    try {
      const src = Object.prototype.hasOwnProperty.call(sources, name) ? sources[name] : undefined;
      if (!src) throw new TypeError(`no stream '${name}' in this service`);
      const abort = new AbortController();
      const it = (src as (signal: AbortSignal, ...a: readonly unknown[]) => AsyncIterable<unknown>)(abort.signal, ...args)[
        Symbol.asyncIterator
      ]();
      open.set(id, { it, abort });
      for (;;) {
        const r = await it.next();
        if (r.done || !open.has(id)) break;
        ep.postMessage({ p11wStream: id, value: compact(r.value) } satisfies StreamReply);
      }
    } catch (e) {
      error = encodeError(e);
    }
    open.delete(id);
    ep.postMessage({ p11wStreamEnd: id, error } satisfies StreamReply);
  };
  ep.addEventListener('message', listener as never);
  ep.start?.();
  return () => {
    ep.removeEventListener('message', listener as never);
    for (const s of open.values()) stop(s);
    open.clear();
  };
}

/** Values a consumer has not read yet; past this the stream ends with an error rather than grow. */
const MAX_BUFFERED = 10_000;

interface ClientStream {
  readonly buffer: unknown[];
  waiter?: { resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void };
  ended?: { error?: unknown };
}

export class StreamClient {
  private readonly streams = new Map<number, ClientStream>();
  private nextId = 1;
  private failure: (() => unknown) | undefined;
  private readonly detach: () => void;

  constructor(private readonly ep: Endpoint) {
    const listener = (ev: MessageEvent) => this.onReply(ev.data);
    ep.addEventListener('message', listener as never);
    ep.start?.();
    this.detach = () => ep.removeEventListener('message', listener as never);
  }

  get openCount(): number {
    return this.streams.size;
  }

  /** Opens the host's stream `name`; iterate it with for-await, break to cancel. */
  open<T>(name: string, args: readonly unknown[]): AsyncIterableIterator<T> {
    const id = this.nextId++;
    const s: ClientStream = { buffer: [] };
    if (this.failure) s.ended = { error: this.failure() };
    else {
      this.streams.set(id, s);
      this.ep.postMessage({ p11wStreamOpen: id, name, args } satisfies StreamMessage);
    }
    const finish = (): IteratorResult<T> => {
      if (this.streams.delete(id) && !s.ended) this.ep.postMessage({ p11wStreamCancel: id } satisfies StreamMessage);
      s.ended ??= {};
      s.buffer.length = 0;
      const w = s.waiter;
      s.waiter = undefined;
      w?.resolve({ done: true, value: undefined });
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        if (s.buffer.length) return Promise.resolve({ done: false, value: s.buffer.shift() as T });
        if (s.ended) {
          const { error } = s.ended;
          s.ended = {};
          this.streams.delete(id);
          return error !== undefined ? Promise.reject(error) : Promise.resolve({ done: true, value: undefined });
        }
        return new Promise((resolve, reject) => (s.waiter = { resolve: resolve as never, reject }));
      },
      return: () => Promise.resolve(finish()),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Ends every open stream with `error()` (and every later one at once). */
  fail(error: () => unknown): void {
    this.failure = error;
    for (const s of this.streams.values()) this.end(s, error());
    this.streams.clear();
    this.detach();
  }

  private end(s: ClientStream, error?: unknown): void {
    s.ended = { error };
    const w = s.waiter;
    s.waiter = undefined;
    if (!w) return;
    s.ended = {};
    if (error !== undefined) w.reject(error);
    else w.resolve({ done: true, value: undefined });
  }

  private onReply(d: unknown): void {
    const r = d as StreamReply;
    if (has(r, 'p11wStream')) {
      const s = this.streams.get(r.p11wStream);
      if (!s || s.ended) return;
      const w = s.waiter;
      if (w) {
        s.waiter = undefined;
        w.resolve({ done: false, value: (r as { value: unknown }).value });
      } else if (s.buffer.length < MAX_BUFFERED) s.buffer.push((r as { value: unknown }).value);
      else {
        this.streams.delete(r.p11wStream);
        this.ep.postMessage({ p11wStreamCancel: r.p11wStream } satisfies StreamMessage);
        this.end(s, new RangeError(`stream overflow: more than ${MAX_BUFFERED} events not read`));
      }
    } else if (has(r, 'p11wStreamEnd')) {
      const s = this.streams.get(r.p11wStreamEnd);
      if (!s) return;
      this.streams.delete(r.p11wStreamEnd);
      const e = (r as { error?: WireThrown }).error;
      this.end(s, e === undefined ? undefined : decodeError(e));
    }
  }
}
