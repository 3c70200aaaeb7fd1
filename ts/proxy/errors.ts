// The proxy's own errors. Where PKCS#11 has an answer (unknown slot or session, not
// initialized) the proxy throws the bridge's Pkcs11Error with that CK_RV, as a single module
// would; ProxyError is for what only a proxy can go through.
import { Pkcs11Error } from '../bridge/errors.js';

/** The name the proxy goes by in errors and failures. */
export const PROXY_NAME = 'p11kit-wasm proxy';

export type ProxyErrorCode =
  | 'CRITICAL_MODULE_FAILED' // a module marked `critical` could not be opened or listed
  | 'NO_MATCHING_TOKEN' // openSession(uri): no token matches
  | 'ASYNC_ONLY'; // a sync call reached a remote module, which only the async API serves

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    /** The module concerned, when one is. */
    readonly module?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A PKCS#11 answer of the proxy itself (not of a module behind it). */
export function proxyRv(rv: number, fn: string): Pkcs11Error {
  return new Pkcs11Error(rv, fn, PROXY_NAME);
}

/** A sync call on a remote module's slot or session: the message names the async form to use. */
export function asyncOnly(module: string, form: string): ProxyError {
  return new ProxyError('ASYNC_ONLY', `module '${module}' is remote and served by the async API only: use ${form}`, module);
}
