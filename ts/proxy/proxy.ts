// One virtual PKCS#11 module over every configured module, with the typed API of a single
// managed module: its own C_GetInfo, one slot list with proxy slot IDs, calls on a slot or a
// session routed to the module that owns it, slot events from all modules, URI lookups.
//
// Where p11-kit-proxy fails as a whole, this proxy fails per module: a module whose slot list,
// slot info or events fail (or whose handles went stale with a generation change) is reported
// (`failures`, the 'failure' event) and skipped for that call; the others keep being served.
// Only a module marked `critical` still takes a call down with it.
//
// A `remote:` module (remote.ts) is served by the async API only: the sync module-wide calls
// (getSlotList, findTokens) pass it over, and a sync call on its slot or session is refused with
// a ProxyError naming the async form. Its host's loss is reported ('host-lost'); until re-entry
// (its policy: reinitialize, or the next call when 'auto') its slots answer with the RPC
// client's typed errors, and the other modules keep serving.
import { EventEmitter } from 'node:events';
import { CKF_MISC, CKF_SLOT } from '../bridge/ckf.js';
import { CKR } from '../bridge/ckr.js';
import { CKA } from '../bridge/cka.js';
import { CKU } from '../bridge/ck-enums.js';
import type { SlotId } from '../bridge/handles.js';
import type { MechanismInfo, ModuleInfo, SlotInfo, TokenInfo } from '../bridge/info.js';
import type { Secret } from '../bridge/op-helpers.js';
import type { ManagedModule, OpenSessionOptions } from '../managed/module.js';
import type { Diagnostic } from '../registry/types.js';
import type { RemoteModule } from '../rpc/remote-module.js';
import { matchSlot, matchTokenInfo } from '../uri/match.js';
import type { Uri } from '../uri/types.js';
import { PROXY_NAME, ProxyError, proxyRv } from './errors.js';
import { SlotEvents } from './events.js';
import { objectTemplate, selectsModule, selectsModuleAsync, toUri } from './lookup.js';
import { LocalMember, type Member } from './members.js';
import { RemoteMember } from './remote.js';
import { SessionTable, type InnerSession, type ProxySession } from './sessions.js';
import { SlotTable, type SlotRoute } from './slots.js';
import { asV2Mechanism } from './version.js';
import type { FindObjectsOptions, ModuleFailure, OpenProxyOptions, ProxyModuleStatus, ProxyObject, ProxyStage, ProxyToken } from './types.js';

/** p11-kit-proxy's CK_INFO, kept so that programs that recognise the proxy by it still do. */
const PROXY_INFO: ModuleInfo = Object.freeze({
  cryptokiVersion: { major: 2, minor: 40 },
  manufacturerID: 'PKCS#11 Kit',
  flags: 0,
  libraryDescription: 'PKCS#11 Kit Proxy Module',
  libraryVersion: { major: 1, minor: 1 },
});

/** Failures kept in `failures` (oldest dropped first). */
const FAILURE_LOG = 256;

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export type SessionTarget = SlotId | string | Uri;

export interface ProxyEvents {
  failure: [ModuleFailure];
}

export class ProxyModule extends EventEmitter<ProxyEvents> {
  readonly name = PROXY_NAME;
  /** The same calls, returning promises; modules are asked in parallel where the answer allows. */
  readonly async: {
    getInfo(): Promise<ModuleInfo>;
    getSlotList(tokenPresent?: boolean): Promise<SlotId[]>;
    getSlotInfo(slot: SlotId): Promise<SlotInfo>;
    getTokenInfo(slot: SlotId): Promise<TokenInfo>;
    getMechanismList(slot: SlotId): Promise<number[]>;
    getMechanismInfo(slot: SlotId, type: number): Promise<MechanismInfo>;
    openSession(target: SessionTarget, opts?: OpenSessionOptions): Promise<ProxySession>;
    waitForSlotEvent(flags?: number, opts?: { signal?: AbortSignal }): Promise<SlotId | null>;
    /** Tokens a URI matches on every module, remote ones included. */
    findTokens(uri: string | Uri): Promise<ProxyToken[]>;
    findObjects(uri: string | Uri, opts?: FindObjectsOptions): Promise<ProxyObject[]>;
    /** reinitialize() for every module, remote ones included (a new host, a fresh C_Initialize). */
    reinitialize(module?: string): Promise<void>;
    /** release(), then waits until remote modules' hosts are finalized and gone. */
    release(): Promise<void>;
  };
  private readonly slots = new SlotTable();
  /** The route of the last slot call (see routeOf()). */
  private lastRoute?: SlotRoute;
  private readonly sessionTable = new SessionTable();
  private readonly events: SlotEvents;
  private readonly failureLog: ModuleFailure[] = [];
  private released = false;
  /** Remote modules being let go (release() cannot wait for their hosts). */
  private closing: Promise<void>[] = [];

  /** @internal use openProxy() */
  constructor(
    private readonly members: readonly Member[],
    /** The registry's diagnostics (empty when the modules were given). */
    readonly diagnostics: readonly Diagnostic[],
    earlyFailures: readonly ModuleFailure[],
    options: OpenProxyOptions,
  ) {
    super();
    this.failureLog.push(...earlyFailures);
    this.events = new SlotEvents(
      {
        members: () => this.members,
        translate: (m, real) => this.eventSlot(m, real),
        report: (m, err) => this.report(m.name, 'slot-event', err),
      },
      { blockingWaits: Math.max(0, options.blockingWaits ?? 2), pollIntervalMs: Math.max(1, options.pollIntervalMs ?? 100), waits: options.waits ?? 'auto' },
    );
    this.async = {
      getInfo: async () => this.getInfo(),
      getSlotList: (tokenPresent = false) => this.getSlotListAsync(tokenPresent),
      getSlotInfo: async (slot) => this.routeOf(slot, 'C_GetSlotInfo').member.async.getSlotInfo(this.realOf(slot)),
      getTokenInfo: async (slot) => this.routeOf(slot, 'C_GetTokenInfo').member.async.getTokenInfo(this.realOf(slot)),
      getMechanismList: async (slot) => this.routeOf(slot, 'C_GetMechanismList').member.async.getMechanismList(this.realOf(slot)),
      getMechanismInfo: async (slot, type) => asV2Mechanism(await this.routeOf(slot, 'C_GetMechanismInfo').member.async.getMechanismInfo(this.realOf(slot), type)),
      openSession: async (target, opts) => {
        const r = await this.sessionRouteAsync(target);
        return this.adopt(r, await r.member.async.openSession(r.real, opts));
      },
      waitForSlotEvent: async (flags, opts) => this.waitForSlotEvent(flags, opts),
      findTokens: (uri) => this.findTokensAsync(uri),
      findObjects: (uri, opts) => this.findObjects(uri, opts),
      reinitialize: (module) => this.reinitializeAsync(module),
      release: async () => {
        try {
          this.release();
        } finally {
          // A remote module's release never rejects; a local one's held by a call in flight rejects with its finalize's error.
          await Promise.all(this.closing);
        }
      },
    };
    for (const m of members) m.onHostLost((err) => this.report(m.name, 'host-lost', err));
  }

  // ---- the modules behind it ----------------------------------------------------------

  get modules(): ProxyModuleStatus[] {
    return this.members.map((m) => ({
      name: m.name,
      path: m.entry.path,
      critical: m.critical,
      state: m.state,
      generation: m.generation,
      usable: m.usable,
      events: m.events,
      ...(m.events === 'isolated' && { watcher: this.events.watcher(m) }),
      ...(m.host !== undefined && { host: m.host }),
    }));
  }

  /** The managed module behind the proxy with this registry name (its sessions are not the proxy's). */
  module(name: string): ManagedModule | undefined {
    const m = this.members.find((m) => m.name === name);
    return m instanceof LocalMember ? m.managed : undefined;
  }

  /** The remote module (RPC client) behind the proxy with this registry name. */
  remote(name: string): RemoteModule | undefined {
    const m = this.members.find((m) => m.name === name);
    return m instanceof RemoteMember ? m.remote : undefined;
  }

  /** Which module owns a proxy slot, and its own ID for it. */
  slotOwner(slot: SlotId): { module: string; moduleSlot: SlotId } {
    const r = this.routeOf(slot, 'C_GetSlotInfo');
    return { module: r.member.name, moduleSlot: r.real };
  }

  /** Module problems the proxy reported and worked around, oldest first. */
  get failures(): readonly ModuleFailure[] {
    return this.failureLog;
  }

  /**
   * Holds a module again after a generation change (host lost, finalized behind our back), or
   * every local module the proxy cannot reach now when no name is given. Its slots keep their
   * IDs. Remote modules are reinitialized by async.reinitialize().
   */
  reinitialize(module?: string): void {
    this.live('C_Initialize');
    for (const m of this.members) {
      if (module !== undefined ? m.name !== module : m.usable || m.asyncOnly) continue;
      m.local('proxy.async.reinitialize()').reinitialize();
    }
  }

  // ---- module-level calls --------------------------------------------------------------

  getInfo(): ModuleInfo {
    this.live('C_GetInfo');
    return { ...PROXY_INFO, cryptokiVersion: { ...PROXY_INFO.cryptokiVersion }, libraryVersion: { ...PROXY_INFO.libraryVersion } };
  }

  /**
   * Every module's slots (each module asked afresh), in module order: known slots keep their
   * IDs, new ones get new IDs, vanished ones' IDs are retired. With tokenPresent, only slots
   * whose C_GetSlotInfo says CKF_TOKEN_PRESENT (as p11-kit-proxy filters). Remote modules are
   * left out (async-only: async.getSlotList() lists them).
   */
  getSlotList(tokenPresent = false): SlotId[] {
    this.live('C_GetSlotList');
    const out: SlotId[] = [];
    for (const m of this.members) {
      if (m.asyncOnly) continue;
      for (const r of this.list(m) ?? []) if (!tokenPresent || this.hasToken(r)) out.push(r.id);
    }
    return out;
  }

  getSlotInfo(slot: SlotId): SlotInfo {
    const r = this.routeOf(slot, 'C_GetSlotInfo');
    return r.member.local('proxy.async.getSlotInfo()').getSlotInfo(r.real);
  }

  getTokenInfo(slot: SlotId): TokenInfo {
    const r = this.routeOf(slot, 'C_GetTokenInfo');
    return r.member.local('proxy.async.getTokenInfo()').getTokenInfo(r.real);
  }

  getMechanismList(slot: SlotId): number[] {
    const r = this.routeOf(slot, 'C_GetMechanismList');
    return r.member.local('proxy.async.getMechanismList()').getMechanismList(r.real);
  }

  getMechanismInfo(slot: SlotId, type: number): MechanismInfo {
    const r = this.routeOf(slot, 'C_GetMechanismInfo');
    return asV2Mechanism(r.member.local('proxy.async.getMechanismInfo()').getMechanismInfo(r.real, type));
  }

  initToken(slot: SlotId, soPin: Secret, label: string): void {
    const r = this.routeOf(slot, 'C_InitToken');
    r.member.local(`proxy.remote('${r.member.name}').async.initToken()`).initToken(r.real, soPin, label);
  }

  /**
   * The next slot event from any module, as a proxy slot ID. With CKF_DONT_BLOCK: an event
   * already seen or one the modules have now, else null. Without: waits (never on this thread)
   * until one comes; CKR_FUNCTION_NOT_SUPPORTED when no module can report events.
   */
  async waitForSlotEvent(flags = 0, opts: { signal?: AbortSignal } = {}): Promise<SlotId | null> {
    this.live('C_WaitForSlotEvent');
    if (flags & CKF_MISC.CKF_DONT_BLOCK) return this.events.poll();
    return this.events.wait(opts.signal);
  }

  // ---- sessions ------------------------------------------------------------------------

  /** A session on a proxy slot, or on the first token (in slot order) a URI matches. */
  openSession(target: SessionTarget, opts: OpenSessionOptions = {}): ProxySession {
    const r = this.sessionRoute(target);
    return this.adopt(r, r.member.local('proxy.async.openSession()').openSession(r.real, opts));
  }

  /** The open session with this proxy handle. */
  session(handle: number): ProxySession {
    this.live('C_GetSessionInfo');
    return this.sessionTable.get(handle, 'C_GetSessionInfo');
  }

  sessions(): ProxySession[] {
    return this.sessionTable.all();
  }

  closeSession(handle: number): void {
    this.live('C_CloseSession');
    this.sessionTable.get(handle, 'C_CloseSession').close();
  }

  /** Closes the proxy's sessions on the slot (not other users' sessions of the module), also on a slot that has gone since. */
  closeAllSessions(slot: SlotId): void {
    this.live('C_CloseAllSessions');
    const on = this.sessionTable.all().filter((s) => s.slot === slot);
    if (!on.length) this.routeOf(slot, 'C_CloseAllSessions');
    eachThenThrow(on, (s) => s.close());
  }

  // ---- URI lookups ---------------------------------------------------------------------

  /**
   * The tokens a URI matches, in slot order. A module that fails is reported and skipped.
   * Remote modules are left out (async-only: async.findTokens() searches them too).
   */
  findTokens(uri: string | Uri): ProxyToken[] {
    this.live('C_GetSlotList');
    const parsed = toUri(uri);
    const found: ProxyToken[] = [];
    for (const m of this.members) {
      if (m.asyncOnly) continue;
      try {
        if (!selectsModule(parsed, m, uri)) continue;
      } catch (err) {
        this.report(m.name, 'lookup', err);
        continue;
      }
      const managed = m.local('proxy.async.findTokens()');
      for (const r of this.list(m) ?? []) {
        try {
          const slotInfo = managed.getSlotInfo(r.real);
          if (!(slotInfo.flags & CKF_SLOT.CKF_TOKEN_PRESENT) || !matchSlot(uri, slotInfo, r.id)) continue;
          const token = managed.getTokenInfo(r.real);
          if (matchTokenInfo(uri, token)) found.push({ slot: r.id, module: m.name, moduleSlot: r.real, slotInfo, token });
        } catch (err) {
          this.report(m.name, 'lookup', err);
        }
      }
    }
    return found;
  }

  /**
   * The objects a URI matches on the tokens it matches (every module's, as async.findTokens()),
   * each read in a read-only session that is closed again. A PIN (or the PIN callback) logs
   * the user in first; its errors, and login's (a wrong PIN), are thrown. Other module errors
   * are reported and the token skipped.
   */
  async findObjects(uri: string | Uri, opts: FindObjectsOptions = {}): Promise<ProxyObject[]> {
    const parsed = toUri(uri);
    const template = objectTemplate(parsed);
    const types = opts.attributes ?? [CKA.CKA_CLASS, CKA.CKA_LABEL, CKA.CKA_ID];
    const out: ProxyObject[] = [];
    for (const t of await this.findTokensAsync(uri)) {
      const m = this.routeOf(t.slot, 'C_OpenSession').member;
      let session: InnerSession;
      try {
        session = await m.async.openSession(t.moduleSlot);
      } catch (err) {
        this.report(m.name, 'lookup', err);
        continue;
      }
      try {
        const pin = typeof opts.pin === 'function' ? await opts.pin(t) : opts.pin;
        if (pin !== undefined) await login(session, pin);
        try {
          for (const handle of await session.async.findAllObjects(template)) {
            out.push({ ...t, handle, attributes: await session.async.getAttributeValue(handle, types) });
          }
        } catch (err) {
          this.report(m.name, 'lookup', err);
        }
      } finally {
        await this.closeQuietly(m, session);
      }
    }
    return out;
  }

  // ---- the end -------------------------------------------------------------------------

  /**
   * Ends pending waits, forgets the proxy's sessions and lets go of every module (the last
   * holder of a local one finalizes it; a remote one's host is finalized and let go in the
   * background: async.release() waits for it). A local module with a slot-event read still
   * inside it is given back when the read returns, never before; async.release() waits for
   * that too.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    // The children watching modules are killed now; async.release() waits until they are reaped.
    this.closing.push(this.events.close(proxyRv(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, 'C_WaitForSlotEvent')));
    this.sessionTable.dropAll();
    eachThenThrow(this.members, (m) => {
      const closing = m.release();
      if (closing) this.closing.push(closing);
    });
  }

  // ---- inside --------------------------------------------------------------------------

  private live(fn: string): void {
    if (this.released) throw proxyRv(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, fn);
  }

  private routeOf(slot: SlotId, fn: string): SlotRoute {
    this.live(fn);
    // Callers tend to stay on one slot: the last route answers while its slot is still listed.
    const last = this.lastRoute;
    if (last !== undefined && last.id === slot && !last.retired) return last;
    const r = typeof slot === 'number' ? this.slots.route(slot) : undefined;
    if (!r) throw proxyRv(CKR.CKR_SLOT_ID_INVALID, fn);
    return (this.lastRoute = r);
  }

  private realOf(slot: SlotId): SlotId {
    return this.slots.route(slot)!.real;
  }

  private sessionRoute(target: SessionTarget): SlotRoute {
    if (typeof target === 'number') return this.routeOf(target, 'C_OpenSession');
    const [first] = this.findTokens(target);
    const remote = this.members.some((m) => m.asyncOnly) ? ' on a local module (remote modules: proxy.async.openSession())' : '';
    return this.firstRoute(first, target, remote);
  }

  private async sessionRouteAsync(target: SessionTarget): Promise<SlotRoute> {
    if (typeof target === 'number') return this.routeOf(target, 'C_OpenSession');
    const [first] = await this.findTokensAsync(target);
    return this.firstRoute(first, target, '');
  }

  private firstRoute(first: ProxyToken | undefined, target: string | Uri, where: string): SlotRoute {
    if (!first) throw new ProxyError('NO_MATCHING_TOKEN', `no token${where} matches ${typeof target === 'string' ? target : 'the URI'}`);
    return this.routeOf(first.slot, 'C_OpenSession');
  }

  private adopt(r: SlotRoute, inner: InnerSession): ProxySession {
    return this.sessionTable.add(r.id, r.member.name, inner);
  }

  /** findTokens() over every module through the async API, one module after another (IDs in module order). */
  private async findTokensAsync(uri: string | Uri): Promise<ProxyToken[]> {
    this.live('C_GetSlotList');
    const parsed = toUri(uri);
    const found: ProxyToken[] = [];
    for (const m of this.members) {
      try {
        if (!(await selectsModuleAsync(parsed, m, uri))) continue;
      } catch (err) {
        this.report(m.name, 'lookup', err);
        continue;
      }
      for (const r of (await this.listAsync(m)) ?? []) {
        try {
          const slotInfo = await m.async.getSlotInfo(r.real);
          if (!(slotInfo.flags & CKF_SLOT.CKF_TOKEN_PRESENT) || !matchSlot(uri, slotInfo, r.id)) continue;
          const token = await m.async.getTokenInfo(r.real);
          if (matchTokenInfo(uri, token)) found.push({ slot: r.id, module: m.name, moduleSlot: r.real, slotInfo, token });
        } catch (err) {
          this.report(m.name, 'lookup', err);
        }
      }
    }
    return found;
  }

  private async reinitializeAsync(module?: string): Promise<void> {
    this.live('C_Initialize');
    for (const m of this.members) {
      if (module !== undefined ? m.name !== module : m.usable) continue;
      await m.reinitialize();
    }
  }

  /** A module's slots now; undefined when it failed (reported), unless it is critical (thrown). */
  private list(m: Member): SlotRoute[] | undefined {
    let reals: SlotId[];
    try {
      reals = m.local('proxy.async.getSlotList()').getSlotList(false);
    } catch (err) {
      return this.listFailed(m, err);
    }
    return this.slots.update(m, reals);
  }

  private async listAsync(m: Member): Promise<SlotRoute[] | undefined> {
    let reals: SlotId[];
    try {
      reals = await m.async.getSlotList(false);
    } catch (err) {
      return this.listFailed(m, err);
    }
    return this.slots.update(m, reals);
  }

  private listFailed(m: Member, err: unknown): undefined {
    if (m.critical) {
      throw new ProxyError('CRITICAL_MODULE_FAILED', `critical module '${m.name}' failed to list its slots: ${asError(err).message}`, m.name, { cause: err });
    }
    this.report(m.name, 'slot-list', err);
    return undefined;
  }

  private hasToken(r: SlotRoute): boolean {
    try {
      return (r.member.local('proxy.async.getSlotList()').getSlotInfo(r.real).flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0;
    } catch (err) {
      this.report(r.member.name, 'slot-info', err);
      return false;
    }
  }

  private async getSlotListAsync(tokenPresent: boolean): Promise<SlotId[]> {
    this.live('C_GetSlotList');
    const lists = await Promise.all(this.members.map((m) => m.async.getSlotList(false).then((reals) => ({ reals }), (err: unknown) => ({ err }))));
    // IDs are handed out in module order, whatever order the answers came in.
    const routes = this.members.map((m, i) => {
      const answer = lists[i];
      return 'reals' in answer ? this.slots.update(m, answer.reals) : (this.listFailed(m, answer.err) ?? []);
    });
    const all = routes.flat();
    if (!tokenPresent) return all.map((r) => r.id);
    const present = await Promise.all(
      all.map((r) =>
        r.member.async.getSlotInfo(r.real).then(
          (info) => (info.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0,
          (err: unknown) => (this.report(r.member.name, 'slot-info', err), false),
        ),
      ),
    );
    return all.filter((_, i) => present[i]).map((r) => r.id);
  }

  /** The proxy slot ID an event names: the slot's ID (even when the event is its removal), after re-listing the module. */
  private eventSlot(m: Member, real: SlotId): SlotId {
    const known = this.slots.find(m, real);
    try {
      this.list(m);
    } catch (err) {
      this.report(m.name, 'slot-event', err); // a critical module's failure: no call of the user's to fail
    }
    return known?.id ?? this.slots.find(m, real)?.id ?? this.slots.retiredId();
  }

  private async closeQuietly(m: Member, session: InnerSession): Promise<void> {
    try {
      await session.close();
    } catch (err) {
      this.report(m.name, 'lookup', err);
    }
  }

  private report(module: string, stage: ProxyStage, err: unknown): void {
    const failure: ModuleFailure = { module, stage, error: asError(err), dropped: false };
    this.failureLog.push(failure);
    if (this.failureLog.length > FAILURE_LOG) this.failureLog.shift();
    this.emit('failure', failure);
  }
}

/** Runs fn on every item even when some throw; then throws the first error. */
function eachThenThrow<T>(items: readonly T[], fn: (item: T) => void): void {
  let first: { err: unknown } | undefined;
  for (const item of items) {
    try {
      fn(item);
    } catch (err) {
      first ??= { err };
    }
  }
  if (first) throw first.err;
}

/** C_Login as the user; already logged in (another session of ours) is fine. */
async function login(session: InnerSession, pin: string | Uint8Array): Promise<void> {
  try {
    await session.async.login(CKU.CKU_USER, pin);
  } catch (err) {
    if ((err as { rv?: number }).rv !== CKR.CKR_USER_ALREADY_LOGGED_IN) throw err;
  }
}
