// The hand-written loader of the wasm core: compile once per isolate, instantiate,
// call _initialize, and marshal bytes in and out. The ABI is documented in wasm/abi.h.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  _initialize(): void;
  p11w_alloc(size: number): number;
  p11w_free(ptr: number): void;
  readonly [name: string]: unknown;
}

/** A record of the core's output stream (see wasm/abi.h). */
export interface CoreRecord {
  tag: string;
  num: number;
  a: string;
  b: string;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8');

let compiled: WebAssembly.Module | undefined;
let shared: Core | undefined;

/** Where the built core may be: next to the compiled library, or under dist/ when running from ts/. */
function wasmPath(): string {
  const candidates = [
    process.env.P11KIT_WASM,
    fileURLToPath(new URL('../../p11kit.wasm', import.meta.url)),
    fileURLToPath(new URL('../../dist/p11kit.wasm', import.meta.url)),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`p11kit-wasm: the wasm core is not built (looked in ${candidates.join(', ')}); run 'make wasm'`);
  return found;
}

/** The compiled module, e.g. to hand to a worker with postMessage. */
export function coreModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(wasmPath()));
  return compiled;
}

/** This isolate's shared instance. */
export function core(): Core {
  shared ??= new Core(coreModule());
  return shared;
}

export class Core {
  readonly exports: CoreExports;
  private u8 = new Uint8Array(0);
  private words = new Uint32Array(0);

  constructor(module: WebAssembly.Module) {
    // No imports except the growth notice, after which views must simply be re-made.
    const instance = new WebAssembly.Instance(module, { env: { emscripten_notify_memory_growth() {} } });
    this.exports = instance.exports as unknown as CoreExports;
    this.exports._initialize();
  }

  fn<F extends (...args: never[]) => unknown>(name: string): F {
    const f = this.exports[name];
    if (typeof f !== 'function') throw new Error(`p11kit-wasm: the wasm core has no export ${name}`);
    return f as F;
  }

  /**
   * The core's memory as bytes. Growth (inside any call into the core) detaches the old buffer,
   * which empties every view of it: so a length check is all it takes to know the view must be
   * re-made, and reading `memory.buffer` (an API getter) on every access is not free.
   */
  get heap(): Uint8Array {
    if (this.u8.length === 0) this.views();
    return this.u8;
  }

  /** The same memory as 32-bit words (the core is little-endian, like every host Node runs on). */
  get heap32(): Uint32Array {
    if (this.u8.length === 0) this.views();
    return this.words;
  }

  private views(): void {
    const buffer = this.exports.memory.buffer;
    this.u8 = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
  }

  /** The u32 at an aligned address (what the core's malloc returns). */
  u32(ptr: number): number {
    return this.heap32[ptr >>> 2];
  }

  /** A copy of len bytes at ptr. */
  bytes(ptr: number, len: number): Uint8Array {
    return this.heap.slice(ptr, ptr + len);
  }

  /** Runs fn with an arena; everything allocated from it is freed afterwards. */
  scoped<T>(fn: (arena: Arena) => T): T {
    const arena = new Arena(this);
    try {
      return fn(arena);
    } finally {
      arena.release();
    }
  }
}

export class Arena {
  private readonly ptrs: number[] = [];
  constructor(private readonly core: Core) {}

  alloc(size: number): number {
    const ptr = this.core.exports.p11w_alloc(size);
    if (!ptr) throw new RangeError(`p11kit-wasm: the wasm core is out of memory (${size} bytes)`);
    this.ptrs.push(ptr);
    return ptr;
  }

  /** Bytes (or a string as UTF-8) copied in, followed by a NUL that len does not count. */
  put(data: Uint8Array | string): { ptr: number; len: number } {
    const bytes = typeof data === 'string' ? utf8.encode(data) : data;
    const ptr = this.alloc(bytes.length + 1);
    const heap = this.core.heap;
    heap.set(bytes, ptr);
    heap[ptr + bytes.length] = 0;
    return { ptr, len: bytes.length };
  }

  cstr(s: string): number {
    return this.put(s).ptr;
  }

  release(): void {
    for (const p of this.ptrs) this.core.exports.p11w_free(p);
    this.ptrs.length = 0;
  }
}

/** Decodes a record stream; throws if it is cut short (the core never writes one that is). */
export function readRecords(bytes: Uint8Array): CoreRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CoreRecord[] = [];
  let at = 0;
  const take = (n: number) => {
    if (at + n > bytes.length) throw new Error('p11kit-wasm: truncated record stream from the wasm core');
    const start = at;
    at += n;
    return start;
  };
  while (at < bytes.length) {
    const tag = String.fromCharCode(bytes[take(1)]);
    const num = view.getUint32(take(4), true);
    const aLen = view.getUint32(take(4), true);
    const a = fromUtf8.decode(bytes.subarray(take(aLen), at));
    const bLen = view.getUint32(take(4), true);
    const b = fromUtf8.decode(bytes.subarray(take(bLen), at));
    out.push({ tag, num, a, b });
  }
  return out;
}
