// Large inputs cross to the service in bounded pieces, a few at a time. The client copies the
// source's bytes into a small pool of buffers (window + 1 of chunkSize), transfers each to the
// service and gets it back, transferred, with the answer: nothing is allocated per piece on
// either side, so memory stays bounded whatever the input's size (garbage would be, too: it is
// collected only when the engine gets round to it). The pool also bounds what is in flight:
// when every buffer is out, reading the source waits — a slow service slows the reader down.

/** What a stream call reads: bytes, or an (async) iterable or WHATWG ReadableStream of them. */
export type ByteSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | ReadableStreamLike;

export interface ReadableStreamLike {
  getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; releaseLock(): void; cancel(reason?: unknown): Promise<void> };
}

export interface StreamOptions {
  /** Size of a piece (default 1 MiB, at most 16 MiB); small source chunks are gathered into one. */
  readonly chunkSize?: number;
  /** Pieces in flight at once (default 3, at most 64). */
  readonly window?: number;
}

/** Sends `len` bytes of `buf` (transferring it); resolves with the buffer back and the update's output. */
export type SendPiece<R> = (buf: ArrayBuffer, len: number) => Promise<{ buf: ArrayBuffer; out: R }>;

const DEFAULT_CHUNK = 1 << 20;
const MAX_CHUNK = 16 << 20;

function isReadable(s: unknown): s is ReadableStreamLike {
  return typeof s === 'object' && s !== null && typeof (s as ReadableStreamLike).getReader === 'function';
}

async function* readerOf(s: ReadableStreamLike): AsyncGenerator<Uint8Array> {
  const reader = s.getReader();
  let done = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      if (r.value) yield r.value;
    }
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

function sizes(opts: StreamOptions): { size: number; window: number } {
  const size = opts.chunkSize ?? DEFAULT_CHUNK;
  const window = opts.window ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > MAX_CHUNK) throw new RangeError(`chunkSize must be an integer in 1..${MAX_CHUNK}, got ${size}`);
  if (!Number.isInteger(window) || window < 1 || window > 64) throw new RangeError(`window must be an integer in 1..64, got ${window}`);
  return { size, window };
}

/** A fixed number of equal buffers; take() waits while all are out. */
class Pool {
  private readonly free: ArrayBuffer[] = [];
  private made = 0;
  private readonly waiting: ((b: ArrayBuffer) => void)[] = [];
  constructor(
    readonly size: number,
    private readonly count: number,
  ) {}

  take(): Promise<ArrayBuffer> {
    const b = this.free.pop();
    if (b) return Promise.resolve(b);
    if (this.made < this.count) {
      this.made++;
      return Promise.resolve(new ArrayBuffer(this.size));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands a buffer back (a detached or foreign one is replaced by a fresh one). */
  give(b: ArrayBuffer | undefined): void {
    const usable = b instanceof ArrayBuffer && b.byteLength === this.size ? b : new ArrayBuffer(this.size);
    const w = this.waiting.shift();
    if (w) w(usable);
    else this.free.push(usable);
  }
}

/** The source's bytes copied into pool buffers: [buffer, length] per full buffer, and the rest last. */
async function* fill(data: ByteSource, pool: Pool): AsyncGenerator<[ArrayBuffer, number]> {
  const source: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = data instanceof Uint8Array ? [data] : isReadable(data) ? readerOf(data) : data;
  let cur = await pool.take();
  let at = 0;
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) {
      pool.give(cur);
      throw new TypeError(`a byte stream yields Uint8Arrays, got ${Object.prototype.toString.call(chunk)}`);
    }
    for (let from = 0; from < chunk.byteLength; ) {
      const n = Math.min(chunk.byteLength - from, pool.size - at);
      new Uint8Array(cur, at, n).set(chunk.subarray(from, from + n));
      from += n;
      at += n;
      if (at === pool.size) {
        yield [cur, at];
        cur = await pool.take();
        at = 0;
      }
    }
  }
  if (at > 0) yield [cur, at];
  else pool.give(cur);
}

/**
 * Sends every piece of `data`, at most `window` unanswered at once. If the source or a piece
 * fails, `abort` ends the operation in the module (its own failure is ignored) and the first
 * error is thrown.
 */
export async function feed(data: ByteSource, send: SendPiece<unknown>, abort: () => Promise<unknown>, opts: StreamOptions = {}): Promise<void> {
  const { size, window } = sizes(opts);
  const pool = new Pool(size, window);
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  try {
    for await (const [buf, len] of fill(data, pool)) {
      if (failure) {
        pool.give(buf);
        break;
      }
      const p: Promise<void> = send(buf, len).then(
        (r) => pool.give(r.buf),
        (error: unknown) => {
          failure ??= { error };
          pool.give(undefined);
        },
      );
      inFlight.add(p);
      void p.then(() => inFlight.delete(p));
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(inFlight);
  if (failure) {
    await abort().catch(() => undefined);
    throw failure.error;
  }
}

/** Like feed, one piece at a time, yielding each answer (encrypt/decrypt output) in order. */
export async function* transform<R>(data: ByteSource, send: SendPiece<R>, opts: StreamOptions = {}): AsyncGenerator<R> {
  const { size } = sizes(opts);
  const pool = new Pool(size, 2);
  for await (const [buf, len] of fill(data, pool)) {
    const r = await send(buf, len);
    pool.give(r.buf);
    yield r.out;
  }
}
