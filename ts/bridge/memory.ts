// Native-addressable scratch memory for PKCS#11 calls. Arguments and out-parameters live in
// ArrayBuffers whose backing stores never move, so we can hand their addresses to the module
// (as plain numbers, which koffi accepts for `void *`) and build structures that point into
// each other (templates, mechanism parameters). The same addresses work from any thread, which
// is what lets a dedicated worker thread run a call on memory this isolate owns.
import koffi from 'koffi';
import { L } from './layout.js';
import { BridgeError } from './errors.js';
import { echo } from '../wasm/echo.js';

const TWO32 = 2 ** 32;
/** CK_UNAVAILABLE_INFORMATION as a 64-bit CK_ULONG, the usual reason for a value past 2^53: one bigint for every read of it. */
const ALL_ONES_64 = (1n << 64n) - 1n;
/** Largest single allocation we make on behalf of a module's length claim. */
export const MAX_BUFFER = 256 * 1024 * 1024;

class Chunk {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  constructor(readonly size: number) {
    const ab = new ArrayBuffer(size);
    this.u8 = new Uint8Array(ab);
    this.dv = new DataView(ab);
    this.base = Number(koffi.address(ab));
  }
}

/**
 * A bump allocator over one primary chunk plus overflow chunks for large requests. `reset()`
 * makes the memory reusable (the sync path reuses one arena per module); addresses stay valid
 * until then. Allocations are zero-filled.
 */
export class Arena {
  private primary: Chunk;
  private extra: Chunk[] = [];
  private used = 0;

  constructor(size = 4096) {
    this.primary = new Chunk(size);
  }

  reset(): void {
    if (this.used) this.primary.u8.fill(0, 0, this.used);
    this.used = 0;
    if (this.extra.length) this.extra = [];
  }

  /** n bytes, 8-aligned, zeroed; returns the native address. */
  alloc(n: number): number {
    if (!(n >= 0) || n > MAX_BUFFER) throw new BridgeError('UNTRUSTED_LENGTH', `refusing to allocate ${n} bytes`);
    const size = Math.max(8, (n + 7) & ~7);
    if (this.used + size <= this.primary.size) {
      const addr = this.primary.base + this.used;
      this.used += size;
      return addr;
    }
    const chunk = new Chunk(size);
    this.extra.push(chunk);
    return chunk.base;
  }

  /** Copies bytes in; returns their address. */
  put(data: Uint8Array): number {
    const addr = this.alloc(data.length);
    const c = this.chunk(addr, data.length);
    c.u8.set(data, addr - c.base);
    return addr;
  }

  /** A UTF-8 string with a NUL after it; returns its address. */
  putCString(s: string): number {
    const bytes = Buffer.from(s, 'utf8');
    const addr = this.alloc(bytes.length + 1);
    const c = this.chunk(addr, bytes.length);
    c.u8.set(bytes, addr - c.base);
    return addr;
  }

  private chunk(addr: number, len: number): Chunk {
    const p = this.primary;
    if (addr >= p.base && addr + len <= p.base + p.size) return p;
    for (const c of this.extra) if (addr >= c.base && addr + len <= c.base + c.size) return c;
    throw new RangeError(`p11kit bridge: address ${addr.toString(16)}+${len} is not in this arena`);
  }

  /** A copy of len bytes at addr. */
  read(addr: number, len: number): Uint8Array {
    const c = this.chunk(addr, len);
    return c.u8.slice(addr - c.base, addr - c.base + len);
  }

  /** A view (no copy) of len bytes at addr, valid until reset(). */
  view(addr: number, len: number): Uint8Array {
    const c = this.chunk(addr, len);
    return c.u8.subarray(addr - c.base, addr - c.base + len);
  }

  wipe(addr: number, len: number): void {
    this.view(addr, len).fill(0);
  }

  u8(addr: number): number {
    const c = this.chunk(addr, 1);
    return c.u8[addr - c.base];
  }

  setU8(addr: number, v: number): void {
    const c = this.chunk(addr, 1);
    c.u8[addr - c.base] = v;
  }

  /** A CK_ULONG: a number when it fits in 2^53, a bigint otherwise. */
  ulong(addr: number): number | bigint {
    const c = this.chunk(addr, L.ulong);
    return readUlong(c.dv, addr - c.base);
  }

  setUlong(addr: number, v: number | bigint): void {
    const c = this.chunk(addr, L.ulong);
    writeUlong(c.dv, addr - c.base, v);
  }

  setPtr(addr: number, target: number): void {
    const c = this.chunk(addr, L.ptr);
    writeUlong(c.dv, addr - c.base, target, L.ptr);
  }
}

export function readUlong(dv: DataView, off: number, width = L.ulong): number | bigint {
  const lo = dv.getUint32(off, true);
  if (width === 4) return lo;
  const hi = dv.getUint32(off + 4, true);
  if (hi < 0x200000) return hi * TWO32 + lo;
  if (hi === 0xffffffff && lo === 0xffffffff) return ALL_ONES_64;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Unused bytes after a slab's last region: a module writing a little past its structure hits these, not the heap. */
const SLAB_GUARD = 64;

/**
 * Where the fast info calls have the module write its structure: each result gets a fresh
 * region of the current slab (so it is already zeroed, and never handed out twice), and its view
 * reads it in place — no copy, no typed array per call. A slab lives while any view of it does.
 * A region a failed call wrote to is simply not used again.
 */
export class ResultSlab {
  u8 = new Uint8Array(0);
  dv = new DataView(this.u8.buffer);
  /** The native address of u8[0]. */
  base = 0;
  private used = 0;
  constructor(private readonly slabSize = 8192) {}

  /** The offset in u8 (after this call) of n fresh zero bytes, 8-aligned; n ≤ the slab size. */
  take(n: number): number {
    const size = (n + 7) & ~7;
    if (this.used + size > this.u8.length - SLAB_GUARD) {
      if (size > this.slabSize) throw new RangeError(`p11kit bridge: ${n} bytes do not fit a ${this.slabSize}-byte result slab`);
      const ab = new ArrayBuffer(this.slabSize + SLAB_GUARD);
      this.u8 = new Uint8Array(ab);
      this.dv = new DataView(ab);
      this.base = Number(koffi.address(ab));
      this.used = 0;
    }
    const at = this.used;
    this.used += size;
    return at;
  }
}

export function writeUlong(dv: DataView, off: number, v: number | bigint, width = L.ulong): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
      throw new BridgeError('BAD_ARGUMENT', `not a CK_ULONG: ${echo(v)}`);
    }
    dv.setUint32(off, v >>> 0, true);
    if (width === 8) dv.setUint32(off + 4, Math.floor(v / TWO32), true);
    else if (v >= TWO32) throw new BridgeError('BAD_ARGUMENT', `${v} does not fit a 32-bit CK_ULONG`);
    return;
  }
  if (v < 0n || v >= 1n << BigInt(width * 8)) throw new BridgeError('BAD_ARGUMENT', `not a CK_ULONG: ${echo(v)}`);
  dv.setUint32(off, Number(v & 0xffffffffn), true);
  if (width === 8) dv.setUint32(off + 4, Number(v >> 32n), true);
}
