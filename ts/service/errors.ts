// Errors that cross a worker or port boundary keep their class and their fields. comlink sends
// a thrown Error as { name, message, stack } and rebuilds a plain Error, so `rv`, `fn` and
// `module` would be lost; the codec here carries the class key and every own field, and the
// receiving side rebuilds an instance of the same registered class. Nothing here loads koffi,
// so an Electron renderer can use it.
import * as Comlink from 'comlink';
import { UnknownModuleError } from '../registry/errors.js';

export { UnknownModuleError };

/** Every call that was in flight when the service died, and every call made after it without a restart. */
export class ServiceDeadError extends Error {
  override readonly name = 'ServiceDeadError';
  constructor(
    /** The generation of the service (worker) that died; it counts restarts from 1. */
    readonly generation: number,
    /** How it died, e.g. 'worker exited with code 1' or 'terminated'. */
    readonly reason: string,
    /** True for a call that was in flight (its outcome on the module is unknown). */
    readonly pending: boolean,
    readonly method?: string,
  ) {
    super(
      `${method ? `${method}: ` : ''}PKCS#11 service generation ${generation} is gone (${reason})` +
        (pending ? '; the call was in flight and its outcome is unknown' : ''),
    );
  }
}

/**
 * The host refused a call: outside what it granted this client (a module, a path, a class of
 * operation), or not a call the service offers at all. Nothing reached a module.
 */
export class ServiceRefusedError extends Error {
  override readonly name = 'ServiceRefusedError';
  constructor(
    readonly method: string,
    /** Why, in words (never echoes secrets). */
    readonly reason: string,
    /** The class of operation the call needed, when that was what was missing. */
    readonly needs?: string,
  ) {
    super(`${method}: refused by the PKCS#11 service: ${reason}`);
  }
}

/** An error as it travels: plain data only, so structured clone keeps all of it. */
export interface WireError {
  readonly p11wError: 1;
  /** The registered class key, or undefined when no registered class is in its prototype chain. */
  readonly cls?: string;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly fields: Record<string, unknown>;
  readonly cause?: WireThrown;
}
/** Anything thrown: an Error, or some other value sent as it is. */
export type WireThrown = WireError | { readonly p11wValue: unknown };

type ErrorClass = abstract new (...args: never[]) => Error;
const byKey = new Map<string, ErrorClass>();
const keyOf = new Map<ErrorClass, string>();

/**
 * Makes instances of `cls` (and of its unregistered subclasses) arrive as `cls`. Both sides
 * must register it under the same key; the class name is the default key.
 */
export function registerErrorClass(cls: ErrorClass, key: string = cls.name): void {
  byKey.set(key, cls);
  keyOf.set(cls, key);
}

for (const cls of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) registerErrorClass(cls);
registerErrorClass(ServiceDeadError);
registerErrorClass(ServiceRefusedError);
registerErrorClass(UnknownModuleError);

const MAX_CAUSE_DEPTH = 4;
// Fields an Error carries natively; the codec sends them explicitly.
const NATIVE = new Set(['message', 'stack', 'cause']);

function classKey(err: Error): string | undefined {
  for (let p = Object.getPrototypeOf(err); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const key = keyOf.get(p.constructor as ErrorClass);
    if (key !== undefined) return key;
  }
  return undefined;
}

function cloneable(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'function' && typeof value !== 'symbol';
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

/** Encodes anything thrown. Fields that cannot be cloned (functions, handles) are left out. */
export function encodeError(thrown: unknown, depth = 0): WireThrown {
  if (!(thrown instanceof Error)) return { p11wValue: cloneable(thrown) ? thrown : String(thrown) };
  const fields: Record<string, unknown> = {};
  for (const k of Object.keys(thrown)) {
    if (NATIVE.has(k)) continue;
    const v = (thrown as unknown as Record<string, unknown>)[k];
    if (cloneable(v)) fields[k] = v;
  }
  const hasCause = Object.prototype.hasOwnProperty.call(thrown, 'cause') && depth < MAX_CAUSE_DEPTH;
  return {
    p11wError: 1,
    cls: classKey(thrown),
    name: thrown.name,
    message: thrown.message,
    stack: thrown.stack,
    fields,
    cause: hasCause ? encodeError(thrown.cause, depth + 1) : undefined,
  };
}

export function isWireThrown(v: unknown): v is WireThrown {
  return typeof v === 'object' && v !== null && ('p11wError' in v || 'p11wValue' in v);
}

/** Rebuilds what encodeError sent: an instance of the registered class, with every field. */
export function decodeError(wire: WireThrown): unknown {
  if (!isWireThrown(wire)) return wire; // not ours: passed on as it came
  if (!('p11wError' in wire)) return wire.p11wValue;
  const cls = (wire.cls !== undefined && byKey.get(wire.cls)) || Error;
  const err = Object.create(cls.prototype) as Error;
  const hidden = (key: string, value: unknown) =>
    Object.defineProperty(err, key, { value, writable: true, configurable: true, enumerable: false });
  hidden('message', String(wire.message));
  hidden('stack', wire.stack);
  if (wire.cause !== undefined) hidden('cause', decodeError(wire.cause));
  for (const [k, v] of Object.entries(wire.fields ?? {})) {
    Object.defineProperty(err, k, { value: v, writable: true, configurable: true, enumerable: true });
  }
  // A class that keeps its name on the prototype (or an unregistered one) still shows the sender's name.
  if (typeof wire.name === 'string' && err.name !== wire.name) hidden('name', wire.name);
  return err;
}

let installed = false;

/**
 * Replaces comlink's 'throw' transfer handler in this isolate with one that uses the codec
 * above. Call it on both sides (the service does so itself); it is idempotent. Values thrown
 * by a side that did not install it still arrive through comlink's own format.
 */
export function installErrorTransfer(): void {
  if (installed) return;
  installed = true;
  const original = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: original.canHandle,
    serialize: (thrown: unknown) => [{ p11w: encodeError((thrown as { value: unknown }).value) }, []],
    deserialize: (serialized: unknown) => {
      const s = serialized as { p11w?: WireThrown };
      if (s && s.p11w && isWireThrown(s.p11w)) throw decodeError(s.p11w);
      return original.deserialize(serialized);
    },
  });
}
