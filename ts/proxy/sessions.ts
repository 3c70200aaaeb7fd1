// Sessions opened through the proxy. Each has a proxy-wide handle (counting up from 0x11, as
// p11-kit-proxy's do, never reused within the proxy's life) and is routed to the session of the
// module that owns its slot: a managed session (sync and async calls), or a remote module's
// (async calls only). C_GetSessionInfo reports the proxy's slot ID.
import { CKR } from '../bridge/ckr.js';
import type { SessionInfo } from '../bridge/info.js';
import type { SlotId } from '../bridge/handles.js';
import { SESSION_CALLS, callFirst, type AsyncSessionCalls, type SessionCallName, type SessionCalls, type UpToFour } from '../managed/calls.js';
import type { ManagedSession } from '../managed/session.js';
import { asyncOnly, proxyRv } from './errors.js';
import { RemoteSession } from './remote-session.js';
import { V3_ONLY_CALLS } from './version.js';

/** A module's session behind a proxy session. */
export type InnerSession = ManagedSession | RemoteSession;

/** 'signInit' -> 'C_SignInit', for errors the proxy raises itself. */
const cName = (method: string) => `C_${method[0].toUpperCase()}${method.slice(1)}`;

export interface ProxySession extends SessionCalls {}

export class ProxySession {
  /** The same calls, returning promises (on the bridge's async lanes, or to a remote host); close() too. */
  readonly async: AsyncSessionCalls & { close(): Promise<void> };
  /** @internal */ closed = false;
  /** @internal the managed session behind it, when it is local (sync calls go straight to it). */
  readonly local: ManagedSession | undefined;

  constructor(
    /** The proxy's handle. */
    readonly handle: number,
    /** The proxy's slot ID. */
    readonly slot: SlotId,
    /** The module that owns it (registry name). */
    readonly module: string,
    /** @internal the module's session */
    readonly inner: InnerSession,
    private readonly onClose: (s: ProxySession) => void,
  ) {
    this.local = inner instanceof RemoteSession ? undefined : inner;
    const asyncCalls: Record<string, unknown> = {};
    for (const name of SESSION_CALLS) {
      const fn = (inner.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
      asyncCalls[name] = async (...args: unknown[]) => {
        this.check(name);
        return fn(...args);
      };
    }
    asyncCalls.getSessionInfo = async () => {
      this.check('getSessionInfo');
      return this.rewrite(await inner.async.getSessionInfo());
    };
    asyncCalls.close = () => this.closeAsync();
    this.async = asyncCalls as unknown as ProxySession['async'];
  }

  /** Whether the session can still be used (not closed; its module still in the generation it was opened in). */
  get open(): boolean {
    return !this.closed && this.inner.open;
  }

  /** The module's own handle for it. */
  get moduleHandle(): number {
    return this.inner.handle;
  }

  getSessionInfo(): SessionInfo {
    this.check('getSessionInfo');
    return this.rewrite(this.managed('getSessionInfo').getSessionInfo());
  }

  close(): void {
    if (this.closed) return;
    const inner = this.managed('close');
    // Forgotten by the proxy even when the module's C_CloseSession fails (a stale module, say).
    try {
      inner.close();
    } finally {
      this.closed = true;
      this.onClose(this);
    }
  }

  private async closeAsync(): Promise<void> {
    if (this.closed) return;
    try {
      await this.inner.close();
    } finally {
      this.closed = true;
      this.onClose(this);
    }
  }

  /** @internal the proxy let go of the module: the session died with it. */
  drop(): void {
    this.closed = true;
  }

  /** @internal */
  check(method: string): void {
    const v3 = V3_ONLY_CALLS.get(method);
    if (v3) throw proxyRv(CKR.CKR_FUNCTION_NOT_SUPPORTED, v3);
    if (this.closed) throw proxyRv(CKR.CKR_SESSION_HANDLE_INVALID, cName(method));
  }

  /** @internal the managed session, for a sync call; a remote module's session refuses it. */
  managed(method: string): ManagedSession {
    if (this.inner instanceof RemoteSession) throw asyncOnly(this.module, `session.async.${method}()`);
    return this.inner;
  }

  private rewrite(info: SessionInfo): SessionInfo {
    return { slotID: this.slot, state: info.state, flags: info.flags, deviceError: info.deviceError };
  }
}

// One method per session call, made once: a 3.0-only call always refuses; the others check
// that the session is open and forward with fixed arity (at most four arguments after the
// handle), so a call does no table lookup and builds no argument array.
function forward(name: SessionCallName) {
  const v3 = V3_ONLY_CALLS.get(name);
  if (v3) {
    return function (this: ProxySession): never {
      throw proxyRv(CKR.CKR_FUNCTION_NOT_SUPPORTED, v3);
    };
  }
  return function (this: ProxySession, a?: unknown, b?: unknown, c?: unknown, d?: unknown): unknown {
    if (this.closed) throw proxyRv(CKR.CKR_SESSION_HANDLE_INVALID, cName(name));
    const inner = this.local ?? this.managed(name);
    return callFirst((inner as unknown as Record<string, UpToFour>)[name], inner, arguments.length, a, b, c, d);
  };
}

for (const name of SESSION_CALLS) {
  if (name !== 'getSessionInfo') Object.defineProperty(ProxySession.prototype, name, { value: forward(name) });
}

/** The proxy's session handles. */
export class SessionTable {
  private next = 0x11;
  private readonly open = new Map<number, ProxySession>();

  add(slot: SlotId, module: string, inner: InnerSession): ProxySession {
    const s = new ProxySession(this.next++, slot, module, inner, (done) => this.open.delete(done.handle));
    this.open.set(s.handle, s);
    return s;
  }

  /** The open session with this handle; CKR_SESSION_HANDLE_INVALID otherwise. */
  get(handle: number, fn: string): ProxySession {
    const s = this.open.get(handle);
    if (!s) throw proxyRv(CKR.CKR_SESSION_HANDLE_INVALID, fn);
    return s;
  }

  all(): ProxySession[] {
    return [...this.open.values()];
  }

  /** Forgets every session (their modules closed them, or will with the release). */
  dropAll(): void {
    for (const s of this.open.values()) s.drop();
    this.open.clear();
  }
}
