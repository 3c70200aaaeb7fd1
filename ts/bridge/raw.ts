// The raw layer: every function of a module's function list as a koffi function that takes
// numbers (CK_ULONGs and addresses) and returns the CK_RV. No objects are built, nothing is
// checked: this is the fast path, and the typed layer sits on top of it.
import koffi, { type TypeObject } from 'koffi';
import { CKR } from './ckr.js';
import { BridgeError } from './errors.js';
import { SIGNATURES, type FunctionName } from './functions.js';

/** A raw PKCS#11 function: CK_ULONG/handle arguments as number|bigint, pointers as addresses (number), null, or typed arrays. */
export type RawFunction = ((...args: RawArg[]) => number) & {
  async?: (...args: [...RawArg[], (err: unknown, rv: number) => void]) => void;
};
export type RawArg = number | bigint | null | ArrayBufferView;

export type RawFunctions = { readonly [K in FunctionName]: RawFunction };

const ARG_TYPES: Record<string, string> = { U: 'unsigned long', P: 'void *', B: 'uint8_t' };
const protos = new Map<string, TypeObject>();

/** The koffi prototype of a signature string; built once per isolate. */
export function protoFor(sig: string): TypeObject {
  let proto = protos.get(sig);
  if (!proto) {
    proto = koffi.proto('unsigned long', [...sig].map((c) => ARG_TYPES[c]));
    protos.set(sig, proto);
  }
  return proto;
}

/** Stands in for a NULL entry in the function list: the module does not provide the function. */
function missing(): number {
  return CKR.CKR_FUNCTION_NOT_SUPPORTED;
}

function unloaded(): never {
  throw new BridgeError('UNLOADED', 'the module was unloaded');
}

export interface RawTable {
  readonly fns: RawFunctions;
  /** The function pointers as read from the list (null where the module has none). */
  readonly pointers: Readonly<Record<string, bigint | null>>;
  /** Whether the module provides a function (a non-NULL pointer). */
  has(name: FunctionName): boolean;
  /** Makes every function throw; used when the library is unloaded. */
  poison(): void;
}

export function buildRawTable(pointers: Record<string, bigint | null>): RawTable {
  const fns: Record<string, RawFunction> = {};
  for (const [name, ptr] of Object.entries(pointers)) {
    fns[name] = ptr ? (koffi.decode(ptr, protoFor(SIGNATURES[name as FunctionName])) as RawFunction) : missing;
  }
  for (const name of Object.keys(SIGNATURES)) fns[name] ??= missing;
  return {
    fns: fns as RawFunctions,
    pointers,
    has: (name) => !!pointers[name],
    poison() {
      for (const name of Object.keys(fns)) fns[name] = unloaded;
    },
  };
}

/** Whether f stands in for a NULL function pointer. */
export function isMissing(f: RawFunction): boolean {
  return f === missing;
}
