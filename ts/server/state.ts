// What the server holds for one client connection: the proxy sessions it opened (handles of
// other clients name nothing here), the answers it had no room for, and the slots it logged in
// on. When the client goes, its sessions are closed and nothing of it remains.
import { CKR } from '../bridge/ckr.js';
import { Pkcs11Error } from '../bridge/errors.js';
import type { SlotId } from '../bridge/handles.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { ProxySession } from '../proxy/sessions.js';
import type { ServerLimits } from './limits.js';
import type { ServedSlots } from './slots.js';

const SERVER = 'p11kit server';

/** Bookkeeping shared by all clients: who logged in where (PKCS#11 login state is per process). */
export interface LoginBook {
  loggedIn(client: ClientState, slot: number): void;
  /** The client logs out: whether the token's login should end (no other client is logged in). */
  logoutReaches(client: ClientState, slot: number): boolean;
  /** The client is gone: its logins end when no other client logged in on that slot. */
  forget(client: ClientState): Promise<void>;
}

export class ClientState {
  initialized = false;
  private readonly sessions = new Map<number, ProxySession>();
  private readonly kept = new Map<number, { call: string; data: Uint8Array }>();

  constructor(
    readonly proxy: ProxyModule,
    readonly served: ServedSlots,
    readonly limits: ServerLimits,
    private readonly logins: LoginBook,
  ) {}

  /** One of this client's open sessions; any other handle is CKR_SESSION_HANDLE_INVALID. */
  session(handle: number): ProxySession {
    const s = this.sessions.get(handle);
    if (!s || !s.open) throw new Pkcs11Error(CKR.CKR_SESSION_HANDLE_INVALID, 'session', SERVER);
    return s;
  }

  /** How many sessions this client has open. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The handles of this client's sessions on a slot (all slots without one). */
  handles(slot?: number): number[] {
    return [...this.sessions.values()].filter((s) => slot === undefined || s.slot === slot).map((s) => s.handle);
  }

  async openSession(slot: SlotId, rw: boolean): Promise<ProxySession> {
    if (this.sessions.size >= this.limits.maxSessions) throw new Pkcs11Error(CKR.CKR_SESSION_COUNT, 'C_OpenSession', SERVER);
    const s = await this.proxy.async.openSession(slot, { rw });
    this.sessions.set(s.handle, s);
    return s;
  }

  async closeSession(handle: number): Promise<void> {
    const s = this.sessions.get(handle);
    if (!s) throw new Pkcs11Error(CKR.CKR_SESSION_HANDLE_INVALID, 'C_CloseSession', SERVER);
    this.sessions.delete(handle);
    this.kept.delete(handle);
    await s.async.close();
  }

  /** Closes this client's sessions (on one slot, or all): never another client's. */
  async closeAll(slot?: number): Promise<void> {
    for (const h of this.handles(slot)) await this.closeSession(h).catch(() => undefined);
  }

  /** An answer computed but not delivered (no room): handed out once, to the same call. */
  keep(handle: number, call: string, data: Uint8Array): void {
    this.kept.set(handle, { call, data });
  }

  takeKept(handle: number, call: string): Uint8Array | undefined {
    const k = this.kept.get(handle);
    this.kept.delete(handle);
    return k && k.call === call ? k.data : undefined;
  }

  loggedIn(slot: number): void {
    this.logins.loggedIn(this, slot);
  }

  /** Whether this client's C_Logout should reach the module (see LoginBook). */
  logoutReaches(slot: number): boolean {
    return this.logins.logoutReaches(this, slot);
  }

  /** The connection ended: close everything it had. */
  async end(): Promise<void> {
    await this.closeAll();
    await this.logins.forget(this);
  }
}
