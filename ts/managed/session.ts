// A session of a managed module: usable only by the owner that opened it, only in the
// generation it was opened in; every call goes through the owner's lifecycle check.
import { asSessionHandle, type SessionHandle, type SlotId } from '../bridge/handles.js';
import type { Pkcs11Module } from '../bridge/module.js';
import type { CallOptions, Owner, SessionRef } from '../lifecycle/manager.js';
import { SESSION_CALLS, callFirst, type UpToFour, type AsyncSessionCalls, type SessionCallName, type SessionCalls } from './calls.js';

export interface ManagedSession extends SessionCalls {}

export class ManagedSession {
  /** The same calls, returning promises (run on the bridge's async lanes). */
  readonly async: AsyncSessionCalls;
  /** The options of every call on this session, made once. */
  /** @internal */ readonly callOptions: Readonly<CallOptions>;
  /** The module's handle as calls pass it: a number, or a bigint beyond 2^53 (libtpm2_pkcs11). */
  /** @internal */ readonly handleArg: SessionHandle;

  constructor(
    /** @internal */ readonly module: Pkcs11Module,
    /** @internal */ readonly owner: Owner,
    readonly ref: SessionRef,
    readonly slot: SlotId,
  ) {
    this.callOptions = Object.freeze({ session: ref });
    this.handleArg = asSessionHandle(ref.handle <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ref.handle) : ref.handle);
    const asyncCalls: Record<string, unknown> = {};
    for (const name of SESSION_CALLS) {
      const fn = (this.module.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
      asyncCalls[name] = (...args: unknown[]) => this.owner.callAsync(() => fn(this.handleArg, ...args), this.callOptions);
    }
    this.async = asyncCalls as unknown as AsyncSessionCalls;
  }

  /** The module's handle, as a number (for display: a handle beyond 2^53 is rounded here). */
  get handle(): number {
    return Number(this.ref.handle);
  }

  /** The module's handle exactly, as calls pass it back: a bigint when it does not fit a number (libtpm2_pkcs11). */
  /** @internal */
  get moduleHandle(): SessionHandle {
    return this.handleArg;
  }

  /** Whether the session can still be used (not closed, same generation as its owner). */
  get open(): boolean {
    return this.ref.open && this.ref.generation === this.owner.generation;
  }

  close(): void {
    if (!this.ref.open) return;
    if (this.ref.generation === this.owner.generation) {
      this.owner.call(() => this.module.closeSession(this.handleArg), this.callOptions);
    }
    this.owner.removeSession(this.ref);
  }
}

// One method per session call, made once: the checks, then the bridge call inline with the
// session's handle and the caller's arguments (at most four), so a call builds no closure,
// options or argument array. A session call is never retried; failed() turns a
// CKR_CRYPTOKI_NOT_INITIALIZED into the owner's typed refusal, as call() would.
function sessionCall(name: SessionCallName) {
  const run = (module: Pkcs11Module, h: number | bigint, n: number, a: unknown, b: unknown, c: unknown, d: unknown): unknown =>
    // The caller's argument count, passed on, with the handle in front.
    callFirst((module as unknown as Record<string, UpToFour>)[name], module, n + 1, h, a, b, c, d);
  return function (this: ManagedSession, a?: unknown, b?: unknown, c?: unknown, d?: unknown): unknown {
    const { owner, module, ref } = this;
    owner.admits(ref);
    const h = this.handleArg;
    const n = arguments.length;
    try {
      return run(module, h, n, a, b, c, d);
    } catch (err) {
      return owner.failed(err, () => run(module, h, n, a, b, c, d), this.callOptions);
    }
  };
}

for (const name of SESSION_CALLS) Object.defineProperty(ManagedSession.prototype, name, { value: sessionCall(name) });
