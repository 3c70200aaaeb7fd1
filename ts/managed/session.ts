// A session of a managed module: usable only by the owner that opened it, only in the
// generation it was opened in; every call goes through the owner's lifecycle check.
import { asSessionHandle, type SessionHandle, type SlotId } from '../bridge/handles.js';
import type { Pkcs11Module } from '../bridge/module.js';
import type { Owner, SessionRef } from '../lifecycle/manager.js';
import { SESSION_CALLS, type AsyncSessionCalls, type SessionCalls } from './calls.js';

export interface ManagedSession extends SessionCalls {}

export class ManagedSession {
  /** The same calls, returning promises (run on the bridge's async lanes). */
  readonly async: AsyncSessionCalls;

  constructor(
    /** @internal */ readonly module: Pkcs11Module,
    /** @internal */ readonly owner: Owner,
    readonly ref: SessionRef,
    readonly slot: SlotId,
  ) {
    const asyncCalls: Record<string, unknown> = {};
    for (const name of SESSION_CALLS) {
      const fn = (this.module.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
      asyncCalls[name] = (...args: unknown[]) => this.owner.callAsync(() => fn(this.moduleHandle, ...args), { session: this.ref });
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
    const h = this.ref.handle;
    return asSessionHandle(h <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(h) : h);
  }

  /** Whether the session can still be used (not closed, same generation as its owner). */
  get open(): boolean {
    return this.ref.open && this.ref.generation === this.owner.generation;
  }

  close(): void {
    if (!this.ref.open) return;
    if (this.ref.generation === this.owner.generation) {
      this.owner.call(() => this.module.closeSession(this.moduleHandle), { session: this.ref });
    }
    this.owner.removeSession(this.ref);
  }
}

for (const name of SESSION_CALLS) {
  Object.defineProperty(ManagedSession.prototype, name, {
    value(this: ManagedSession, ...args: unknown[]) {
      const fn = (this.module as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
      return this.owner.call(() => fn.call(this.module, this.moduleHandle, ...args), { session: this.ref });
    },
  });
}
