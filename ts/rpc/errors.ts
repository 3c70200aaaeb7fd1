// The typed errors of the RPC client. Every failure a caller can see is the bridge's
// Pkcs11Error or one of the subclasses here, each carrying the CK_RV a C caller of p11-kit's RPC
// client would have seen in its place, the function, and the module's name — so a remote
// module fails exactly like a local one to whoever catches Pkcs11Error.
import { Pkcs11Error } from '../bridge/errors.js';
import { CKR } from './constants.js';

export { Pkcs11Error };

/** The module name used when a caller gave none. */
export const REMOTE = 'remote module';

/** The bridge fixes `name` to 'Pkcs11Error'; each subclass here names itself instead. */
function rename(err: Error, name: string): void {
  Object.defineProperty(err, 'name', { value: name, enumerable: false, configurable: true, writable: true });
}

/** The peer broke the wire protocol: bad handshake, bad frame, bad payload, wrong call id. */
export class RpcProtocolError extends Pkcs11Error {
  constructor(fn: string, readonly reason: string, module = REMOTE) {
    super(CKR.CKR_DEVICE_ERROR, fn, module, `protocol error: ${reason}`);
    rename(this, 'RpcProtocolError');
  }
}

/**
 * The host went away (child exited, socket dropped, call timed out): a generation change.
 * `pending` is true for calls that were in flight (their outcome is unknown), false for calls
 * made afterwards that the explicit policy refuses until initialize() starts a new host.
 */
export class HostLostError extends Pkcs11Error {
  constructor(
    fn: string,
    readonly generation: number,
    readonly reason: string,
    readonly pending: boolean,
    module = REMOTE,
  ) {
    super(
      pending ? CKR.CKR_DEVICE_ERROR : CKR.CKR_CRYPTOKI_NOT_INITIALIZED,
      fn,
      module,
      pending
        ? `host of generation ${generation} lost: ${reason}`
        : `host of generation ${generation} lost (${reason}); call initialize() to start a new host`,
    );
    rename(this, 'HostLostError');
  }
}

/** A session or object handle from an earlier generation: it names nothing on the current host. */
export class StaleHandleError extends Pkcs11Error {
  constructor(
    fn: string,
    readonly kind: 'session' | 'object',
    readonly handle: number,
    readonly generation: number,
    /** What the module would say about a handle it never issued (e.g. CKR_KEY_HANDLE_INVALID for keys). */
    rv: number = kind === 'session' ? CKR.CKR_SESSION_HANDLE_INVALID : CKR.CKR_OBJECT_HANDLE_INVALID,
    module = REMOTE,
  ) {
    super(rv, fn, module, `${kind} handle ${handle} belongs to an earlier host generation (now ${generation})`);
    rename(this, 'StaleHandleError');
  }
}

/** What the caller asked for cannot be carried by protocol version 0 (p11-kit 0.24.1). */
export class RpcUnsupportedError extends Pkcs11Error {
  constructor(rv: number, fn: string, readonly what: string, module = REMOTE) {
    super(rv, fn, module, `not transportable by p11-kit RPC protocol 0: ${what}`);
    rename(this, 'RpcUnsupportedError');
  }
}

/** The caller passed a value of the wrong shape; nothing was sent. */
export class RpcUsageError extends Pkcs11Error {
  constructor(fn: string, what: string, module = REMOTE) {
    super(CKR.CKR_ARGUMENTS_BAD, fn, module, what);
    rename(this, 'RpcUsageError');
  }
}

/** No host could be reached: the command would not run, the socket would not connect, or the handshake failed. */
export class HostConnectError extends Pkcs11Error {
  constructor(
    fn: string,
    readonly address: string,
    readonly reason: string,
    module = REMOTE,
    /** Starts tried in a row, this one included (the auto policy's restarts count up). */
    readonly attempts = 1,
    options?: ErrorOptions,
  ) {
    super(CKR.CKR_DEVICE_ERROR, fn, module, `cannot reach host ${address}: ${reason}`);
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, configurable: true, writable: true });
    rename(this, 'HostConnectError');
  }
}

/**
 * A reply larger than the client accepts (RemoteOptions.limits): that call fails, the reply's
 * bytes are read and dropped, and the host serves its other calls and sessions on.
 */
export class RpcReplyTooLargeError extends Pkcs11Error {
  constructor(fn: string, readonly size: number, readonly limit: number, module = REMOTE) {
    super(CKR.CKR_HOST_MEMORY, fn, module, `reply of ${size} bytes exceeds the limit of ${limit} (raise limits.maxPayload or x-rpc-max-reply-bytes)`);
    rename(this, 'RpcReplyTooLargeError');
  }
}
