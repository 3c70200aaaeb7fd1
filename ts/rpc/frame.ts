// Framing (spec §7.2): after a one-byte handshake each way, every message is a 12-byte header
// (u32 code, u32 options length, u32 payload length), the options, then the payload. The code
// is the client's sequence number, echoed by the server; 0 is never valid.
import { copyBytes } from './wire.js';

export const HEADER_BYTES = 12;
/** Empty options and payloads share this (a zero-length array has nothing to change). */
const NO_BYTES = new Uint8Array(0);
/** The only protocol version p11-kit 0.24.1 speaks, and so the one we offer. */
export const PROTOCOL_VERSION = 0;

export interface Frame {
  code: number;
  options: Uint8Array;
  payload: Uint8Array;
  /** Set, with empty options and payload, for a frame over maxPayload whose bytes are being dropped. */
  oversized?: number;
}

/** What a decoder does with a payload over maxPayload: refuse the stream, or drop that frame's bytes. */
export type OversizedFrames = 'refuse' | 'skip';

export interface FrameLimits {
  /** Largest options field accepted from the peer (p11-kit servers send none). */
  maxOptions: number;
  /** Largest payload accepted from the peer; a guard against a hostile length field. */
  maxPayload: number;
}

export const DEFAULT_LIMITS: FrameLimits = { maxOptions: 64 * 1024, maxPayload: 64 * 1024 * 1024 };

export function encodeFrame(code: number, options: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + options.length + payload.length);
  out.set(payload, HEADER_BYTES + options.length);
  return writeFrameHead(out, code, options);
}

/**
 * Fills in the header and options of a frame whose payload was written after
 * HEADER_BYTES + options.length reserved bytes (RequestBuilder's headroom), so a request
 * is sent from the buffer it was built in, with no second buffer and no copy.
 */
export function writeFrameHead(frame: Uint8Array, code: number, options: Uint8Array): Uint8Array {
  putU32(frame, 0, code);
  putU32(frame, 4, options.length);
  putU32(frame, 8, frame.length - HEADER_BYTES - options.length);
  frame.set(options, HEADER_BYTES);
  return frame;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** The big-endian u32 at `at` of `b` (which the caller checked holds 4 bytes there). */
function getU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Why the byte stream cannot be framed; the connection is unusable after one of these. */
export class FramingError extends Error {
  override name = 'FramingError';
}

/**
 * Turns a byte stream into frames. Feed it chunks; it returns whole frames and keeps the rest.
 * The first byte of the stream is the handshake reply, handed out separately. push() keeps no
 * reference to the chunk it was given (what it keeps of it is copied): a transport may read
 * every chunk into the same buffer.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private handshake: number | undefined;
  /** Bytes of an oversized frame still to drop as they arrive (never buffered). */
  private skipping = 0;

  constructor(
    private readonly limits: FrameLimits = DEFAULT_LIMITS,
    private readonly oversized: OversizedFrames = 'refuse',
  ) {}

  get maxPayload(): number {
    return this.limits.maxPayload;
  }

  /** The server's handshake byte, once it has arrived. */
  get version(): number | undefined {
    return this.handshake;
  }

  /** True while a partial frame (or the handshake) is waiting for more bytes. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.skipping > 0;
  }

  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    // Nothing buffered (a reply read whole, the usual case): its frames are copied straight
    // out of the chunk, with no queue, header copy or views of what is left. Anything else —
    // a frame cut short, a bad or oversized header — is left to the general path below.
    if (this.buffered === 0 && this.skipping === 0 && this.handshake !== undefined) {
      let at = 0;
      while (chunk.length - at >= HEADER_BYTES) {
        const olen = getU32(chunk, at + 4);
        const plen = getU32(chunk, at + 8);
        const end = at + HEADER_BYTES + olen + plen;
        const code = getU32(chunk, at);
        if (end > chunk.length || code === 0 || olen > this.limits.maxOptions || plen > this.limits.maxPayload) break;
        const options = olen === 0 ? NO_BYTES : copyBytes(chunk, at + HEADER_BYTES, olen);
        frames.push({ code, options, payload: copyBytes(chunk, at + HEADER_BYTES + olen, plen) });
        at = end;
      }
      if (at === chunk.length) return frames;
      chunk = chunk.subarray(at);
    }
    if (this.skipping > 0 && this.buffered === 0) {
      const dropped = Math.min(this.skipping, chunk.length);
      this.skipping -= dropped;
      chunk = chunk.subarray(dropped);
    }
    if (chunk.length === 0) return this.decode(frames);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.decode(frames);
    // Chunks are consumed from the front, so a part of this one still kept is the last.
    const n = this.chunks.length;
    if (n > 0) this.chunks[n - 1] = copyBytes(this.chunks[n - 1]!, 0, this.chunks[n - 1]!.length);
    return frames;
  }

  private decode(frames: Frame[]): Frame[] {
    if (this.handshake === undefined) {
      if (this.buffered === 0) return frames;
      this.handshake = this.take(1)[0]!;
    }
    for (;;) {
      if (this.buffered < HEADER_BYTES) return frames;
      // The header is read in place when the first chunk holds it (it nearly always does).
      const first = this.chunks[0]!;
      const header = first.length >= HEADER_BYTES ? first : this.peek(HEADER_BYTES);
      const code = getU32(header, 0);
      const olen = getU32(header, 4);
      const plen = getU32(header, 8);
      if (code === 0) throw new FramingError('frame with code 0 (not p11-kit RPC?)');
      if (olen > this.limits.maxOptions) throw new FramingError(`frame options of ${olen} bytes exceed the limit of ${this.limits.maxOptions}`);
      if (plen > this.limits.maxPayload) {
        if (this.oversized === 'refuse') throw new FramingError(`frame payload of ${plen} bytes exceeds the limit of ${this.limits.maxPayload}`);
        this.drop(HEADER_BYTES);
        frames.push({ code, options: NO_BYTES, payload: NO_BYTES, oversized: plen });
        this.skip(olen + plen);
        if (this.skipping > 0) return frames;
        continue;
      }
      if (this.buffered < HEADER_BYTES + olen + plen) return frames;
      this.drop(HEADER_BYTES);
      const options = this.take(olen);
      const payload = this.take(plen);
      frames.push({ code, options, payload });
    }
  }

  /** Drops `n` bytes: what is buffered now, the rest as it arrives. */
  private skip(n: number): void {
    this.skipping = this.drop(n);
  }

  /** Drops up to `n` buffered bytes, uncopied; returns how many more there were to drop. */
  private drop(n: number): number {
    while (n > 0 && this.chunks.length) {
      const first = this.chunks[0]!;
      const part = Math.min(first.length, n);
      if (part === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(part);
      this.buffered -= part;
      n -= part;
    }
    return n;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.gather(n, false);
  }

  private take(n: number): Uint8Array {
    if (n === 0) return NO_BYTES;
    return this.gather(n, true);
  }

  private gather(n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0]!;
    if (consume && first.length >= n) {
      const out = copyBytes(first, 0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const c = this.chunks[i]!;
      const part = Math.min(c.length, n - filled);
      out.set(c.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(part);
      } else i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
