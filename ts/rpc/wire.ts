// Big-endian primitives of p11-kit's RPC buffers (spec §7.2): u8, u32, u64 and byte arrays
// (u32 length + bytes, 0xFFFFFFFF = NULL). The reader never reads past its input: every
// shortfall is an RpcProtocolError naming what was being read.
import { REMOTE, RpcProtocolError, RpcUsageError } from './errors.js';

/** Byte arrays of this length or more are refused both ways, as p11-kit does. */
export const MAX_BYTE_ARRAY = 0x7fffffff;
export const NULL_ARRAY = 0xffffffff;
const U64_ALL_ONES = 0xffffffffffffffffn;

/** A CK_ULONG as the caller gives it: a safe non-negative integer, -1 for ~0, or a bigint. */
export type UlongInput = number | bigint;

export function ulongToBig(fn: string, v: UlongInput, what: string, module = REMOTE): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_ALL_ONES) throw new RpcUsageError(fn, `${what} is out of CK_ULONG range`, module);
    return v;
  }
  if (v === -1) return U64_ALL_ONES;
  if (!Number.isSafeInteger(v) || v < 0) throw new RpcUsageError(fn, `${what} must be a non-negative integer, got ${String(v)}`, module);
  return BigInt(v);
}

/** Bytes a writer starts with: a small request fits (GenerateRandom: 43 bytes with its frame head). */
const FIRST_ROOM = 128;
const TWO_32 = 0x1_0000_0000;

/**
 * Room for a message. Small ones are slices of Node's shared Buffer pool (one allocation per
 * pool, not per message: per-message off-heap buffers were most of a call's allocations, and
 * glibc kept the memory they had once held). A slice is never handed out twice, so a sent
 * message the socket still queues stays intact. The Buffer itself is kept (a Uint8Array view of
 * it would be one more typed array per message, and the socket would make a Buffer of it again
 * when it is written); nothing here slice()s it.
 */
function alloc(size: number): Uint8Array {
  return Buffer.allocUnsafe(size);
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** V8 keeps typed arrays of up to this many bytes on its heap (typed_array_max_size_in_heap). */
const ON_HEAP_BYTES = 64;

/**
 * A copy of `len` bytes of `src` from `at`. A small copy is made byte by byte: subarray() of a
 * small (on-heap) array makes V8 move it off the heap first — a malloc, per reply field.
 */
export function copyBytes(src: Uint8Array, at: number, len: number): Uint8Array {
  if (len > ON_HEAP_BYTES) return new Uint8Array(src.subarray(at, at + len));
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = src[at + i]!;
  return out;
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export class WireWriter {
  private buf: Uint8Array;
  private len: number;

  constructor(
    readonly fn: string,
    readonly module = REMOTE,
    /** Bytes reserved before the message (a frame's header and options, see frame()). */
    private readonly headroom = 0,
  ) {
    this.len = headroom;
    this.buf = alloc(Math.max(FIRST_ROOM, headroom * 2));
  }

  private room(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const next = alloc(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
    }
    this.len = at + n;
    return at;
  }

  byte(v: number): this {
    const at = this.room(1);
    this.buf[at] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RpcUsageError(this.fn, `value ${v} does not fit the protocol's 32 bits`, this.module);
    // room() may reallocate: take the offset before touching this.buf.
    const at = this.room(4);
    putU32(this.buf, at, v);
    return this;
  }

  u64(v: UlongInput, what = 'value'): this {
    let hi: number;
    let lo: number;
    // A safe non-negative number (nearly every handle and length) is split without a BigInt.
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      hi = Math.floor(v / TWO_32);
      lo = v >>> 0;
    } else {
      const big = ulongToBig(this.fn, v, what, this.module);
      hi = Number(big >> 32n);
      lo = Number(big & 0xffffffffn);
    }
    const at = this.room(8);
    putU32(this.buf, at, hi);
    putU32(this.buf, at + 4, lo);
    return this;
  }

  raw(data: Uint8Array): this {
    // room() may reallocate: take the offset before touching this.buf.
    const at = this.room(data.length);
    this.buf.set(data, at);
    return this;
  }

  /** u32 length + bytes; null → the NULL marker. */
  byteArray(data: Uint8Array | null): this {
    if (data === null) return this.u32(NULL_ARRAY);
    if (data.length >= MAX_BYTE_ARRAY) throw new RpcUsageError(this.fn, `byte array of ${data.length} bytes is too long for the protocol`, this.module);
    return this.u32(data.length).raw(data);
  }

  get length(): number {
    return this.len - this.headroom;
  }

  finish(): Uint8Array {
    return this.buf.subarray(this.headroom, this.len);
  }

  /** The message with its reserved headroom in front (for writeFrameHead()). */
  frame(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads with byte arithmetic: a DataView would move a small on-heap reply off the heap (a malloc per reply). */
export class WireReader {
  private at = 0;

  constructor(
    private readonly data: Uint8Array,
    readonly fn: string,
    readonly module = REMOTE,
  ) {}

  private need(n: number, what: string): number {
    if (this.data.length - this.at < n) throw new RpcProtocolError(this.fn, `truncated message reading ${what}`, this.module);
    const at = this.at;
    this.at += n;
    return at;
  }

  byte(what = 'a byte'): number {
    return this.data[this.need(1, what)]!;
  }

  u32(what = 'a u32'): number {
    return getU32(this.data, this.need(4, what));
  }

  u64(what = 'a u64'): bigint {
    const at = this.need(8, what);
    return (BigInt(getU32(this.data, at)) << 32n) | BigInt(getU32(this.data, at + 4));
  }

  /** A CK_ULONG: ~0 → -1; other values beyond 2^53 cannot be held exactly and are refused. */
  ulong(what = 'a CK_ULONG'): number {
    const at = this.need(8, what);
    const hi = getU32(this.data, at);
    const lo = getU32(this.data, at + 4);
    if (hi === 0xffffffff && lo === 0xffffffff) return -1;
    // hi < 2^21 is exactly v <= 2^53 - 1.
    if (hi >= 0x200000) throw new RpcProtocolError(this.fn, `${what} ${(BigInt(hi) << 32n) | BigInt(lo)} exceeds 2^53`, this.module);
    return hi * TWO_32 + lo;
  }

  /** null for the NULL marker; a copy, so results never alias the frame. */
  byteArray(what = 'a byte array'): Uint8Array | null {
    const len = this.u32(`${what} length`);
    if (len === NULL_ARRAY) return null;
    if (len >= MAX_BYTE_ARRAY) throw new RpcProtocolError(this.fn, `${what} length ${len} is out of range`, this.module);
    return copyBytes(this.data, this.need(len, what), len);
  }

  get remaining(): number {
    return this.data.length - this.at;
  }
}
