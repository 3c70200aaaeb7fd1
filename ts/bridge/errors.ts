// The bridge's errors. Every failure names the function and the module, and carries the raw
// CK_RV when the module produced one, so the lifecycle layer above can act on it.
import { rvName, type RvCode } from './ckr.js';
import { clip } from '../wasm/echo.js';

/** How much of a caller's module path (and the loader's text, which repeats it) a message shows: any real path fits. */
const PATH_CHARS = 4096;

/** A PKCS#11 function returned something other than CKR_OK. */
export class Pkcs11Error extends Error {
  override readonly name = 'Pkcs11Error';
  /** The CKR name, e.g. 'CKR_PIN_INCORRECT'. */
  readonly code: RvCode;
  constructor(
    readonly rv: number,
    readonly fn: string,
    readonly module: string,
    detail?: string,
  ) {
    const code = rvName(rv);
    super(`${fn} failed in ${module}: ${code}${detail ? ` (${detail})` : ''}`);
    this.code = code;
  }
}

export type LoadFailure =
  | 'not-found' // no such file
  | 'load-failed' // dlopen refused it
  | 'no-entry-point' // neither C_GetInterface nor C_GetFunctionList
  | 'get-function-list-failed' // the entry point returned an error or no list
  | 'proxy-refused' // p11-kit-proxy as a registered module, which p11-kit refuses too
  | 'bad-function-list'; // a list we cannot use (e.g. major version 0 or absurd)

/** A module could not be loaded; `path` and `reason` say which and why. */
export class ModuleLoadError extends Error {
  override readonly name = 'ModuleLoadError';
  constructor(
    readonly path: string,
    readonly reason: LoadFailure,
    detail: string,
    readonly rv?: number,
  ) {
    super(`couldn't load module ${clip(path, PATH_CHARS)}: ${clip(detail, PATH_CHARS)}`);
  }
}

export type BridgeFailure =
  | 'UNTRUSTED_LENGTH' // a module claimed more bytes than the buffer we gave it, or an absurd size
  | 'UNTRUSTED_COUNT' // a count beyond the array we gave it, or an absurd count
  | 'UNTRUSTED_VALUE' // a handle or value we cannot represent
  | 'RETRY_EXHAUSTED' // CKR_BUFFER_TOO_SMALL kept coming back
  | 'BAD_ARGUMENT' // the caller passed something we cannot encode
  | 'UNLOADED'; // the module object was released

/** The bridge refused to go on: a module lied, or a caller's argument cannot be encoded. */
export class BridgeError extends Error {
  override readonly name = 'BridgeError';
  constructor(
    readonly code: BridgeFailure,
    message: string,
    readonly fn?: string,
    readonly module?: string,
  ) {
    super(fn ? `${fn} in ${module ?? 'module'}: ${message}` : message);
  }
}
