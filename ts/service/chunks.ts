// Large inputs cross to the service in bounded pieces, a few at a time: the client never holds
// more than `window` pieces in flight, and each piece is an exact-size copy (a view posted as it
// is would clone its whole backing buffer). So memory stays bounded whatever the input's size,
// and a slow service slows the reader down rather than letting data pile up.

/** What a stream call reads: bytes, or an (async) iterable or WHATWG ReadableStream of them. */
export type ByteSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | ReadableStreamLike;

export interface ReadableStreamLike {
  getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; releaseLock(): void; cancel(reason?: unknown): Promise<void> };
}

export interface StreamOptions {
  /** Largest piece sent at once (default 256 KiB, at most 16 MiB). */
  readonly chunkSize?: number;
  /** Pieces in flight at once (default 4). */
  readonly window?: number;
}

const DEFAULT_CHUNK = 256 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;

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

/** The source's bytes as exact-size pieces of at most `chunkSize`. */
export async function* feedEach(data: ByteSource, opts: StreamOptions = {}): AsyncGenerator<Uint8Array> {
  const size = opts.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(size) || size < 1 || size > MAX_CHUNK) throw new RangeError(`chunkSize must be an integer in 1..${MAX_CHUNK}, got ${size}`);
  const source: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = data instanceof Uint8Array ? [data] : isReadable(data) ? readerOf(data) : data;
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError(`a byte stream yields Uint8Arrays, got ${Object.prototype.toString.call(chunk)}`);
    for (let at = 0; at < chunk.byteLength; at += size) {
      const end = Math.min(at + size, chunk.byteLength);
      const whole = at === 0 && end === chunk.byteLength && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
      yield whole ? chunk : chunk.slice(at, end);
    }
  }
}

/**
 * Sends every piece of `data` through `update`, at most `window` unanswered at once. If the
 * source or an update fails, `abort` ends the operation in the module (its own failure is
 * ignored) and the first error is thrown.
 */
export async function feed(
  data: ByteSource,
  update: (part: Uint8Array) => Promise<unknown>,
  abort: () => Promise<unknown>,
  opts: StreamOptions = {},
): Promise<void> {
  const window = opts.window ?? 4;
  if (!Number.isInteger(window) || window < 1 || window > 64) throw new RangeError(`window must be an integer in 1..64, got ${window}`);
  const inFlight: Promise<unknown>[] = [];
  let failure: { error: unknown } | undefined;
  const track = (p: Promise<unknown>) => {
    // Noted at once, so a failing update never becomes an unhandled rejection while we wait on another.
    const settled = p.catch((error: unknown) => void (failure ??= { error }));
    inFlight.push(settled);
  };
  try {
    for await (const part of feedEach(data, opts)) {
      if (failure) break;
      track(update(part));
      if (inFlight.length >= window) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } catch (error) {
    failure ??= { error };
    await Promise.all(inFlight);
  }
  if (failure) {
    await abort().catch(() => undefined);
    throw failure.error;
  }
}
