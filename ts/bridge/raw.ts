// The raw layer: every function of a module's function list as a koffi function returning the
// CK_RV. No objects are built, nothing is checked. Two flavours over the same pointers:
//  - fns: pointers are declared as integers (uintptr_t), so arguments are plain numbers or
//    bigints (CK_ULONGs and addresses, e.g. from an Arena). koffi converts integers faster than
//    it inspects `void *` arguments: this is the fast path, and what the typed layer uses.
//  - bufferFns (built on first use): pointers are `void *`, so Buffers, typed arrays and null
//    work too, at a few tens of nanoseconds more per pointer argument.
import koffi, { type TypeObject } from 'koffi';
import { CKR } from './ckr.js';
import { BridgeError } from './errors.js';
import { SIGNATURES, type FunctionName } from './functions.js';

/** A raw PKCS#11 function. What its pointer arguments accept depends on the table (see above). */
export type RawFunction = ((...args: RawArg[]) => number) & {
  async?: (...args: [...RawArg[], (err: unknown, rv: number) => void]) => void;
};
/** Addresses and CK_ULONGs; `null` and arrays only for the buffer-friendly table. */
export type RawArg = number | bigint | null | ArrayBufferView;

export type RawFunctions = { readonly [K in FunctionName]: RawFunction };

const FAST_TYPES: Record<string, string> = { U: 'unsigned long', P: 'uintptr_t', B: 'uint8_t' };
const BUFFER_TYPES: Record<string, string> = { U: 'unsigned long', P: 'void *', B: 'uint8_t' };
const protos = new Map<string, TypeObject>();

/** The koffi prototype of a signature string (integer pointers unless `buffers`); built once per isolate. */
export function protoFor(sig: string, buffers = false): TypeObject {
  const key = buffers ? `*${sig}` : sig;
  let proto = protos.get(key);
  if (!proto) {
    const types = buffers ? BUFFER_TYPES : FAST_TYPES;
    proto = koffi.proto('unsigned long', [...sig].map((c) => types[c]));
    protos.set(key, proto);
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
  /** Integer pointers: the fast path. */
  readonly fns: RawFunctions;
  /** `void *` pointers: Buffers, typed arrays and null accepted. */
  readonly bufferFns: RawFunctions;
  /** The function pointers as read from the list (null where the module has none). */
  readonly pointers: Readonly<Record<string, bigint | null>>;
  /** Whether the module provides a function (a non-NULL pointer). */
  has(name: FunctionName): boolean;
  /** Makes every function throw; used when the library is unloaded. */
  poison(): void;
}

function decodeAll(pointers: Record<string, bigint | null>, buffers: boolean): Record<string, RawFunction> {
  const fns: Record<string, RawFunction> = {};
  for (const name of Object.keys(SIGNATURES)) {
    const ptr = pointers[name];
    fns[name] = ptr ? (koffi.decode(ptr, protoFor(SIGNATURES[name as FunctionName], buffers)) as RawFunction) : missing;
  }
  return fns;
}

export function buildRawTable(pointers: Record<string, bigint | null>): RawTable {
  const fns = decodeAll(pointers, false);
  let bufferFns: Record<string, RawFunction> | undefined;
  let poisoned = false;
  return {
    fns: fns as RawFunctions,
    get bufferFns() {
      if (!bufferFns) {
        bufferFns = decodeAll(pointers, true);
        if (poisoned) for (const name of Object.keys(bufferFns)) bufferFns[name] = unloaded;
      }
      return bufferFns as RawFunctions;
    },
    pointers,
    has: (name) => !!pointers[name],
    poison() {
      poisoned = true;
      for (const table of [fns, bufferFns]) if (table) for (const name of Object.keys(table)) table[name] = unloaded;
    },
  };
}

/** Whether f stands in for a NULL function pointer. */
export function isMissing(f: RawFunction): boolean {
  return f === missing;
}

/** An argument as an address: typed arrays become the address of their bytes (the caller keeps them alive). */
export function asAddress(arg: RawArg): number | bigint {
  if (arg === null) return 0;
  if (typeof arg === 'object') return koffi.address(arg);
  return arg;
}
