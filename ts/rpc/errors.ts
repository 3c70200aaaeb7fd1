// The typed errors of the RPC client. Every failure a caller can see is one of these; each
// carries the CK_RV a C caller of p11-kit's RPC client would have seen in its place.
// (Pkcs11Error is ours until ts/bridge/ commits its own; then this one folds into it.)
import { CKR, rvLabel } from './constants.js';

/** A PKCS#11 function returned an error CK_RV (on the host, or refused here as the host would). */
export class Pkcs11Error extends Error {
  override name = 'Pkcs11Error';
  constructor(
    readonly rv: number,
    /** The PKCS#11 function, e.g. 'C_Login'. */
    readonly fn: string,
    detail?: string,
  ) {
    super(`${fn}: ${rvLabel(rv)}${detail ? ` (${detail})` : ''}`);
  }
}

/** The peer broke the wire protocol: bad handshake, bad frame, bad payload, wrong call id. */
export class RpcProtocolError extends Pkcs11Error {
  override name = 'RpcProtocolError';
  constructor(fn: string, readonly reason: string) {
    super(CKR.CKR_DEVICE_ERROR, fn, `protocol error: ${reason}`);
  }
}

/**
 * The host went away (child exited, socket dropped, call timed out): a generation change.
 * `pending` is true for calls that were in flight (their outcome is unknown), false for calls
 * made afterwards that the explicit policy refuses until initialize() starts a new host.
 */
export class HostLostError extends Pkcs11Error {
  override name = 'HostLostError';
  constructor(
    fn: string,
    readonly generation: number,
    readonly reason: string,
    readonly pending: boolean,
  ) {
    super(
      pending ? CKR.CKR_DEVICE_ERROR : CKR.CKR_CRYPTOKI_NOT_INITIALIZED,
      fn,
      pending
        ? `host of generation ${generation} lost: ${reason}`
        : `host of generation ${generation} lost (${reason}); call initialize() to start a new host`,
    );
  }
}

/** A session or object handle from an earlier generation: it names nothing on the current host. */
export class StaleHandleError extends Pkcs11Error {
  override name = 'StaleHandleError';
  constructor(
    fn: string,
    readonly kind: 'session' | 'object',
    readonly handle: number,
    readonly generation: number,
    /** What the module would say about a handle it never issued (e.g. CKR_KEY_HANDLE_INVALID for keys). */
    rv: number = kind === 'session' ? CKR.CKR_SESSION_HANDLE_INVALID : CKR.CKR_OBJECT_HANDLE_INVALID,
  ) {
    super(
      rv,
      fn,
      `${kind} handle ${handle} belongs to an earlier host generation (now ${generation})`,
    );
  }
}

/** What the caller asked for cannot be carried by protocol version 0 (p11-kit 0.24.1). */
export class RpcUnsupportedError extends Pkcs11Error {
  override name = 'RpcUnsupportedError';
  constructor(rv: number, fn: string, readonly what: string) {
    super(rv, fn, `not transportable by p11-kit RPC protocol 0: ${what}`);
  }
}

/** The caller passed a value of the wrong shape; nothing was sent. */
export class RpcUsageError extends Pkcs11Error {
  override name = 'RpcUsageError';
  constructor(fn: string, what: string) {
    super(CKR.CKR_ARGUMENTS_BAD, fn, what);
  }
}

/** No host could be reached: the command would not run, the socket would not connect, or the handshake failed. */
export class HostConnectError extends Pkcs11Error {
  override name = 'HostConnectError';
  constructor(fn: string, readonly address: string, readonly reason: string) {
    super(CKR.CKR_DEVICE_ERROR, fn, `cannot reach host ${address}: ${reason}`);
  }
}
