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
   * Synchronous calls only: byte inputs and outputs go to the module as the caller's own arrays
   * (koffi passes their address), with no copy through the arena. Async calls cannot: their
   * memory must have addresses that stay valid on another thread, so they copy.
   */
  readonly direct?: boolean;
}

/** An output buffer for n bytes: zeroed (a module that claims more than it wrote leaks nothing). */
export function outputBuffer(n: number): Buffer {
  // allocUnsafe takes a slice of Node's off-heap pool (a fresh small typed array would live on
  // the V8 heap and cost far more when koffi pins it); the builtin fill is cheaper than Buffer's.
  const b = Buffer.allocUnsafe(n);
  Uint8Array.prototype.fill.call(b, 0);
  return b;
}

export const req = (fn: FunctionName, ...args: RawArg[]): RawCall => ({ fn, args });

export function check(c: OpContext, fn: FunctionName, rv: number): void {
  if (rv !== 0) throw new Pkcs11Error(rv, fn, c.module);
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
