// How typed calls are written: each is a generator that encodes its arguments into an arena,
// yields the raw calls it needs (one, or several for length queries and retries), checks the
// results and decodes them. The same generator runs synchronously (runSync) or asynchronously
// (the async runner in async.ts), so every typed call has both forms from one definition.
import { Pkcs11Error, BridgeError } from './errors.js';
import type { FunctionName } from './functions.js';
import type { Arena } from './memory.js';
import type { RawArg } from './raw.js';

export interface RawCall {
  readonly fn: FunctionName;
  readonly args: RawArg[];
}

export type Op<R> = Generator<RawCall, R, number>;

export interface OpContext {
  readonly mem: Arena;
  /** The module's name, for errors. */
  readonly module: string;
  /** Output lengths last seen per function (see outputBytes); shared by a module's sync and async calls. */
  readonly hints?: Map<string, number>;
  /**
   * Synchronous calls only: large byte inputs go to the module in place (by address) instead of
   * being copied into the arena. Async calls always copy: their memory must stay valid, and
   * untouched by the caller, on another thread.
   */
  readonly direct?: boolean;
}

export const req = (fn: FunctionName, ...args: RawArg[]): RawCall => ({ fn, args });

export function check(c: OpContext, fn: FunctionName, rv: number): void {
  if (rv !== 0) throw new Pkcs11Error(rv, fn, c.module);
}

/**
 * A session handle the module wrote at addr: a number, or a bigint when it does not fit in one
 * (libtpm2_pkcs11 puts its token ID in the top byte). Session handles only ever go back to the
 * module that made them, so the managed layer keeps them as they came.
 */
export function readSessionHandle(c: OpContext, addr: number): number | bigint {
  return c.mem.ulong(addr);
}

/** A handle the module wrote at addr; handles beyond 2^53 cannot be numbers and are refused. */
export function readHandle(c: OpContext, fn: FunctionName, addr: number): number {
  const v = c.mem.ulong(addr);
  if (typeof v !== 'number') throw new BridgeError('UNTRUSTED_VALUE', `handle ${v} does not fit in a JavaScript number`, fn, c.module);
  return v;
}

/** A length or count the module wrote at addr, which must not exceed what we gave it. */
export function readBounded(c: OpContext, fn: FunctionName, addr: number, limit: number, what: 'length' | 'count'): number {
  const v = c.mem.ulong(addr);
  if (typeof v !== 'number' || v > limit) {
    throw new BridgeError(
      what === 'length' ? 'UNTRUSTED_LENGTH' : 'UNTRUSTED_COUNT',
      `returned ${what} ${v} exceeds the ${limit} we provided`,
      fn,
      c.module,
    );
  }
  return v;
}

/** How often a call is retried when CKR_BUFFER_TOO_SMALL keeps coming back. */
export const MAX_RETRIES = 4;
/** The largest output or array a module may ask us to allocate. */
export const MAX_OUTPUT = 64 * 1024 * 1024;
export const MAX_COUNT = 1 << 20;
/** The most objects one search may return: an endless C_FindObjects stops here with an error. */
export const MAX_FOUND_OBJECTS = 100_000;

export function tooManyFound(module: string): BridgeError {
  return new BridgeError('UNTRUSTED_COUNT', `found ${MAX_FOUND_OBJECTS} objects and it keeps finding more; stopped (an endless search?)`, 'C_FindObjects', module);
}

/** A size claimed by a module in a length query, before we allocate it. */
export function plausible(c: OpContext, fn: FunctionName, v: number | bigint, max: number, what: 'length' | 'count'): number {
  if (typeof v !== 'number' || v > max) {
    throw new BridgeError(what === 'length' ? 'UNTRUSTED_LENGTH' : 'UNTRUSTED_COUNT', `claims a ${what} of ${v}`, fn, c.module);
  }
  return v;
}

/** Drives an op to completion with synchronous raw calls. */
export function runSync<R>(op: Op<R>, call: (c: RawCall) => number): R {
  let step = op.next();
  while (!step.done) step = op.next(call(step.value));
  return step.value;
}
