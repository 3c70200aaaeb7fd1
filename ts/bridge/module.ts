// The module object: one per shared object per isolate (see modules.ts). It holds the library
// handle and the decoded function list, exposes every function raw (module.raw, call,
// callAsync) and typed (module.getInfo(), module.async.getInfo(), ...), and never decides by
// itself to call C_Initialize or C_Finalize: initialize()/finalize() are plain calls for the
// lifecycle layer above.
import { CKF_INIT } from './ckf.js';
import { CKR } from './ckr.js';
import { BridgeError, Pkcs11Error } from './errors.js';
import { BLOCKING, SIGNATURES, type FunctionName } from './functions.js';
import type { Preparation } from './dedicated-threads.js';
import { ModuleInfoView, SlotInfoView, TokenInfoView, type ModuleInfo, type SlotInfo, type TokenInfo } from './info.js';
import { L } from './layout.js';
import { dispatch, type LanePolicy } from './lanes.js';
import type { InterfaceInfo, LoadedLibrary, Version } from './loader.js';
import { Arena, ResultSlab } from './memory.js';
import { runSync, type Op, type OpContext, type RawCall } from './op.js';
import { OPS, type AsyncCalls, type SyncCalls } from './ops.js';
import { asAddress, isMissing, type RawArg, type RawFunctions } from './raw.js';
import type { SessionHandle, SlotId } from './handles.js';

export interface InitializeOptions {
  /** CK_C_INITIALIZE_ARGS.flags; default CKF_OS_LOCKING_OK. Mutex callbacks are never passed. */
  flags?: number;
  /** pReserved: p11-kit's `x-init-reserved` string (NSS softokn needs its configuration here). */
  reserved?: string | null;
  /** Pass NULL instead of a CK_C_INITIALIZE_ARGS (some tests of module behaviour need it). */
  nullArgs?: boolean;
}

export interface ModuleOptions {
  name?: string;
  /** Where async calls run; see lanes.ts. */
  lanes?: LanePolicy;
}

export interface Pkcs11Module extends SyncCalls {}

export class Pkcs11Module {
  /** The name used in errors and listings (the registry name, or the file name). */
  readonly name: string;
  readonly path: string;
  readonly realPath: string;
  /** device:inode of the shared object; the same in every isolate of the process. */
  readonly identity: string;
  /** The version of the function list in use (3.x when the module offered the "PKCS 11" interface). */
  readonly listVersion: Version;
  /** The interface from C_GetInterface, when the module has one. */
  readonly iface?: InterfaceInfo;
  /** The function list's address. */
  readonly functionList: bigint;
  /**
   * Every function, raw and fast: CK_ULONGs and addresses (numbers or bigints, e.g. from an
   * Arena; 0 for NULL) in, CK_RV out. See rawBuffers for Buffers and typed arrays.
   */
  readonly raw: RawFunctions;
  /** Every typed call, returning promises. */
  readonly async: AsyncCalls & { initialize(opts?: InitializeOptions): Promise<void>; finalize(): Promise<void> };
  lanes: LanePolicy;

  private readonly lib: LoadedLibrary;
  private readonly scratch = new Arena(4096);
  private readonly hints = new Map<string, number>();
  private readonly ctx: OpContext;
  /** Keeps the CK_C_INITIALIZE_ARGS (and its pReserved string) alive while the module may use them. */
  protected initArgs?: Arena;
  private unloaded = false;
  /** Reused memory of the fast calls (addresses for the module, views for us). */
  private readonly fast = fastMemory();

  constructor(lib: LoadedLibrary, opts: ModuleOptions = {}) {
    this.lib = lib;
    this.name = opts.name ?? lib.path.split('/').pop()!;
    this.path = lib.path;
    this.realPath = lib.realPath;
    this.identity = lib.identity;
    this.listVersion = lib.listVersion;
    this.iface = lib.iface;
    this.functionList = lib.functionList;
    this.raw = lib.raw.fns;
    this.lanes = opts.lanes ?? 'auto';
    this.ctx = { mem: this.scratch, module: this.name, hints: this.hints, direct: true };
    const asyncCalls: Record<string, unknown> = {
      initialize: (o?: InitializeOptions) => this.initializeAsync(o),
      finalize: async () => {
        await this.runAsync((c) => finalizeOp(c), []);
        this.initArgs = undefined;
      },
    };
    for (const [name, op] of Object.entries(OPS)) {
      asyncCalls[name] = (...args: unknown[]) => this.runAsync(op as (c: OpContext, ...a: unknown[]) => Op<unknown>, args);
    }
    this.async = asyncCalls as unknown as Pkcs11Module['async'];
  }

  /** Every function, raw, with pointer arguments as Buffers, typed arrays, null or addresses (a little slower than raw). */
  get rawBuffers(): RawFunctions {
    return this.lib.raw.bufferFns;
  }

  /** Whether the module's function list has a (non-NULL) entry for fn. */
  has(fn: FunctionName): boolean {
    return this.lib.raw.has(fn);
  }

  /** Calls fn raw (synchronously, pointers as in rawBuffers) and returns its CK_RV. */
  call(fn: FunctionName, ...args: RawArg[]): number {
    return this.rawBuffers[fn](...args);
  }

  /**
   * Calls fn raw on its async lane. Buffers and typed arrays are passed by address: they (and
   * anything they point to) must stay alive and untouched until the promise settles.
   */
  callAsync(fn: FunctionName, ...args: RawArg[]): Promise<number> {
    return dispatch({ fn, args: args.map(asAddress) }, this.raw[fn], this.lib.raw.pointers[fn] ?? null, this.path, this.lanes);
  }

  /** C_Initialize with CKF_OS_LOCKING_OK (unless flags say otherwise), no mutex callbacks, and pReserved. */
  initialize(opts: InitializeOptions = {}): void {
    const args = this.prepareInit(opts);
    this.runSync((c) => initializeOp(c, args.addr), []);
    this.initArgs = args.mem;
  }

  finalize(): void {
    this.runSync((c) => finalizeOp(c), []);
    this.initArgs = undefined;
  }

  /** initialize() that returns the CK_RV instead of throwing (for the lifecycle layer's state machine). */
  initializeRv(opts: InitializeOptions = {}): number {
    const args = this.prepareInit(opts);
    const rv = this.raw.C_Initialize(args.addr);
    if (rv === 0) this.initArgs = args.mem;
    return rv;
  }

  /** C_Finalize(NULL), returning the CK_RV. */
  finalizeRv(): number {
    const rv = this.raw.C_Finalize(0);
    if (rv === 0) this.initArgs = undefined;
    return rv;
  }

  /**
   * @internal What the dedicated threads must have built before they are given this module's
   * calls (see DedicatedThreads.prepare): the functions that may go there under its lane policy.
   */
  dedicatedPreparation(): Preparation {
    const pointers = this.lib.raw.pointers;
    const names = Object.keys(pointers).filter((n) => pointers[n] && (this.lanes === 'dedicated' || BLOCKING.has(n as FunctionName)));
    return { path: this.path, fns: names.map((n) => [pointers[n]!, SIGNATURES[n as FunctionName]]) };
  }

  /** Lets go of the library. Only safe when nothing will call into it again (after C_Finalize). */
  unload(): void {
    if (this.unloaded) return;
    this.unloaded = true;
    this.lib.raw.poison();
    this.lib.handle.unload();
    forget(this);
  }

  // --- fast typed calls: the module writes straight into the result's own bytes (a fresh region
  // of a slab, read in place by the result's view), or into reused typed arrays; fields are
  // decoded on first read ---

  getInfo(): ModuleInfo {
    const r = this.fast.results;
    const at = r.take(L.info.size);
    const rv = this.raw.C_GetInfo(r.base + at);
    if (rv !== 0) throw this.error(rv, 'C_GetInfo');
    return new ModuleInfoView(r.u8, at, r.dv);
  }

  getTokenInfo(slot: SlotId): TokenInfo {
    const r = this.fast.results;
    const at = r.take(L.tokenInfo.size);
    const rv = this.raw.C_GetTokenInfo(slot, r.base + at);
    if (rv !== 0) throw this.error(rv, 'C_GetTokenInfo');
    return new TokenInfoView(r.u8, at, r.dv);
  }

  getSlotInfo(slot: SlotId): SlotInfo {
    const r = this.fast.results;
    const at = r.take(L.slotInfo.size);
    const rv = this.raw.C_GetSlotInfo(slot, r.base + at);
    if (rv !== 0) throw this.error(rv, 'C_GetSlotInfo');
    return new SlotInfoView(r.u8, at, r.dv);
  }

  generateRandom(session: SessionHandle, length: number): Uint8Array {
    // Small requests (the common case: nonces, IDs, keys) go through reused memory; the general
    // path checks and serves the rest.
    if (!(length > 0 && length <= RANDOM_FAST_MAX && Number.isInteger(length))) return this.runSync(OPS.generateRandom, [session, length]);
    const f = this.fast;
    const rv = this.raw.C_GenerateRandom(session, f.random, length);
    if (rv !== 0) throw this.error(rv, 'C_GenerateRandom');
    const out = f.randomView.slice(0, length);
    // Wiped word by word (the region is 8-aligned, RANDOM_FAST_MAX long): fill() is a call into
    // V8's runtime that cost more than the loop.
    const words = f.randomWords;
    for (let i = 0, n = (length + 3) >> 2; i < n; i++) words[i] = 0;
    return out;
  }

  getSlotList(tokenPresent = false): SlotId[] {
    // Count, then fill (what PKCS#11 asks of callers), into reused memory; the general path
    // (with its retries) when the list does not fit it or grew between the calls.
    const f = this.fast;
    const { countU32, listU32 } = f;
    const stride = L.ulong / 4;
    const cap = listU32.length / stride;
    const present = tokenPresent ? 1 : 0;
    let rv = this.raw.C_GetSlotList(present, 0, f.count);
    if (rv !== 0) throw this.error(rv, 'C_GetSlotList');
    const claimed = stride === 2 ? countU32[0] + countU32[1] * 2 ** 32 : countU32[0];
    if (claimed >= cap) return this.runSync(OPS.getSlotList, [tokenPresent]);
    // One spare entry: a list that grew by one between the calls still fits.
    countU32[0] = claimed + 1;
    if (stride === 2) countU32[1] = 0;
    rv = this.raw.C_GetSlotList(present, f.list, f.count);
    if (rv === CKR.CKR_BUFFER_TOO_SMALL) return this.runSync(OPS.getSlotList, [tokenPresent]);
    if (rv !== 0) throw this.error(rv, 'C_GetSlotList');
    const n = stride === 2 ? countU32[0] + countU32[1] * 2 ** 32 : countU32[0];
    if (n > claimed + 1) throw new BridgeError('UNTRUSTED_COUNT', `returned count ${n} exceeds the ${claimed + 1} we provided`, 'C_GetSlotList', this.name);
    const out = new Array<SlotId>(n);
    for (let i = 0; i < n; i++) {
      const hi = stride === 2 ? listU32[2 * i + 1] : 0;
      if (hi >= 0x200000) throw new BridgeError('UNTRUSTED_VALUE', 'slot ID beyond 2^53', 'C_GetSlotList', this.name);
      out[i] = (listU32[stride * i] + hi * 2 ** 32) as SlotId;
    }
    return out;
  }

  // --- running ops ---

  private error(rv: number, fn: FunctionName): Error {
    return new Pkcs11Error(rv, fn, this.name, isMissing(this.raw[fn]) ? 'the module has no such function (NULL in its function list)' : undefined);
  }

  private readonly invoke = (c: RawCall): number => {
    const f = this.raw[c.fn];
    if (isMissing(f)) throw this.error(CKR.CKR_FUNCTION_NOT_SUPPORTED, c.fn);
    return f(...c.args);
  };

  /** @internal */
  runSync<A extends unknown[], R>(op: (c: OpContext, ...a: A) => Op<R>, args: A | unknown[]): R {
    this.scratch.reset();
    return runSync(op(this.ctx, ...(args as A)), this.invoke);
  }

  private async runAsync<R>(op: (c: OpContext, ...a: unknown[]) => Op<R>, args: unknown[]): Promise<R> {
    // A fresh arena per call: it stays reachable from this frame until the last raw call settles.
    const ctx: OpContext = { mem: new Arena(1024), module: this.name, hints: this.hints };
    const gen = op(ctx, ...args);
    let step = gen.next();
    while (!step.done) {
      const c = step.value;
      const f = this.raw[c.fn];
      if (isMissing(f)) step = gen.throw(this.error(CKR.CKR_FUNCTION_NOT_SUPPORTED, c.fn));
      else step = gen.next(await dispatch(c, f, this.lib.raw.pointers[c.fn] ?? null, this.path, this.lanes));
    }
    return step.value;
  }

  private prepareInit(opts: InitializeOptions): { addr: number; mem: Arena } {
    const mem = new Arena(256);
    if (opts.nullArgs) return { addr: 0, mem };
    const o = L.initArgs;
    const addr = mem.alloc(o.size);
    mem.setUlong(addr + o.flags, opts.flags ?? CKF_INIT.CKF_OS_LOCKING_OK);
    if (opts.reserved !== undefined && opts.reserved !== null) mem.setPtr(addr + o.pReserved, mem.putCString(opts.reserved));
    return { addr, mem };
  }

  private async initializeAsync(opts: InitializeOptions = {}): Promise<void> {
    const args = this.prepareInit(opts);
    await this.runAsync((c) => initializeOp(c, args.addr), []);
    this.initArgs = args.mem;
  }
}

/** The largest C_GenerateRandom served from the fast calls' reused memory. */
const RANDOM_FAST_MAX = 256;

function fastMemory() {
  const mem = new Arena(8 + 512 + RANDOM_FAST_MAX + 64);
  const [count, list, random] = [8, 512, RANDOM_FAST_MAX].map((n) => mem.alloc(n));
  const u32 = (addr: number, n: number) => {
    const v = mem.view(addr, n);
    return new Uint32Array(v.buffer, v.byteOffset, n / 4);
  };
  return {
    mem,
    count,
    list,
    random,
    randomView: mem.view(random, RANDOM_FAST_MAX),
    randomWords: u32(random, RANDOM_FAST_MAX),
    countU32: u32(count, 8),
    listU32: u32(list, 512),
    /** Where info results live: the module writes each into its own fresh region. */
    results: new ResultSlab(),
  };
}

function* initializeOp(c: OpContext, addr: number): Op<void> {
  const rv: number = yield { fn: 'C_Initialize', args: [addr] };
  if (rv !== 0) throw new Pkcs11Error(rv, 'C_Initialize', c.module);
}

function* finalizeOp(c: OpContext): Op<void> {
  const rv: number = yield { fn: 'C_Finalize', args: [0] };
  if (rv !== 0) throw new Pkcs11Error(rv, 'C_Finalize', c.module);
}

// Every typed op becomes a method, except the hot ones the class defines itself (fast versions).
const proto = Pkcs11Module.prototype as unknown as Record<string, unknown>;
for (const [name, op] of Object.entries(OPS)) {
  if (Object.prototype.hasOwnProperty.call(proto, name)) continue;
  proto[name] = function (this: Pkcs11Module, ...args: unknown[]) {
    return this.runSync(op as (c: OpContext, ...a: unknown[]) => Op<unknown>, args);
  };
}

let forget: (m: Pkcs11Module) => void = () => {};
/** @internal modules.ts registers how an unloaded module leaves the cache. */
export function onUnload(fn: (m: Pkcs11Module) => void): void {
  forget = fn;
}
