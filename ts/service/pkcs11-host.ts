// The PKCS#11 service itself: runs in a worker (or an Electron utility process) and answers
// whole operations — open a module, list slots, open a session and log in, sign a buffer,
// find objects and read their attributes, generate a key pair — so that one message does one
// job — and every other call of the in-thread API by name (sessionCall / moduleCall / the stream
// pieces of sessionFeed). Modules are the managed API's (one lifecycle owner per module per
// service, so several services and in-thread users share one C_Initialize), sessions are that
// owner's, and ids rather than raw handles cross the boundary. One instance serves one client;
// serve-pkcs11.ts checks the client's grant before any method here runs.
import { CKF_SLOT, CKR, CKU, Pkcs11Error, asObjectHandle, asSlotId } from '../bridge/index.js';
import { openModule, type ManagedModule, type ManagedSession } from '../managed/index.js';
import { loadRegistry } from '../registry/load.js';
import { compact } from './compact.js';
import { ServiceRefusedError } from './errors.js';
import { classOf, Grant, MODULE_CALL_CLASS, SESSION_CALL_CLASS, SLOW_SESSION_CALLS, type ClientGrant } from './grant.js';
import { replyTransfer } from './guarded-expose.js';
import './known-errors.js';
import { waitersReaped } from './isolated-events.js';
import { slotEventSource } from './slot-events.js';
import type {
  Attribute,
  FoundObject,
  KeyPairHandles,
  MechanismArg,
  MechanismEntry,
  ModuleRef,
  ModuleSpec,
  ServiceModuleState,
  SessionOptions,
  ServiceSessionRef,
  SlotEntry,
  SlotEvent,
  SlotEventOptions,
} from './pkcs11-types.js';

interface OpenModule {
  readonly managed: ManagedModule;
  readonly ref: ModuleRef;
  readonly sessions: Set<number>;
}

interface OpenSession {
  readonly ref: ServiceSessionRef;
  readonly managed: ManagedSession;
  readonly held: OpenModule;
  /** The async operation running on this session; the next one waits for it (sessions are not concurrent). */
  busy?: Promise<unknown>;
}

/** Turns a lazily decoded info view into plain data (views keep their fields on the prototype). */
const plain = <T>(v: T): T => {
  const toJSON = (v as { toJSON?: () => T } | null)?.toJSON;
  return typeof toJSON === 'function' ? toJSON.call(v) : v;
};
/** The multi-part updates a stream feeds. */
const FEEDABLE: ReadonlySet<string> = new Set(['signUpdate', 'verifyUpdate', 'digestUpdate', 'encryptUpdate', 'decryptUpdate']);
/** An id as a client sent it, for an error (a client may send anything, of any length). */
const shownId = (id: unknown): string => (typeof id === 'number' ? String(id) : typeof id === 'string' ? JSON.stringify(id.slice(0, 32)) : `(a ${typeof id})`);
const plainDeep = (v: unknown): unknown => (Array.isArray(v) ? v.map(plain) : plain(v));

// The whole operations of the batched crypto calls (Pkcs11Service.runWith), made once.
const signOp = (s: ManagedSession, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array => {
  s.signInit(mechanism, asObjectHandle(key));
  return s.sign(data);
};
const verifyOp = (s: ManagedSession, mechanism: MechanismArg, key: number, data: Uint8Array, signature: Uint8Array): boolean => {
  s.verifyInit(mechanism, asObjectHandle(key));
  return s.verify(data, signature);
};
const digestOp = (s: ManagedSession, mechanism: MechanismArg, data: Uint8Array): Uint8Array => {
  s.digestInit(mechanism);
  return s.digest(data);
};
const encryptOp = (s: ManagedSession, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array => {
  s.encryptInit(mechanism, asObjectHandle(key));
  return s.encrypt(data);
};
const decryptOp = (s: ManagedSession, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array => {
  s.decryptInit(mechanism, asObjectHandle(key));
  return s.decrypt(data);
};
const randomOp = (s: ManagedSession, length: number): Uint8Array => s.generateRandom(length);

export class Pkcs11Service {
  /** What this service's client may do (see grant.ts); the default is a renderer's: 'use' only, no paths. */
  readonly grant: Grant;
  private readonly modules = new Map<number, OpenModule>();
  private readonly sessions = new Map<number, OpenSession>();
  private readonly streams = new Set<AbortController>();
  private nextId = 1;

  constructor(grant: ClientGrant | Grant = {}) {
    this.grant = grant instanceof Grant ? grant : new Grant(grant);
  }

  // ---- modules --------------------------------------------------------------------------

  /** Loads the module and holds it (the process's first holder makes the real C_Initialize). */
  openModule(spec: ModuleSpec): ModuleRef {
    if (typeof spec !== 'object' || spec === null) throw new ServiceRefusedError('openModule', 'a module spec is { source }');
    this.grant.checkModule(spec.source, spec.initReserved, () => loadRegistry().modules.map((m) => m.name));
    if (spec.policy !== undefined && spec.policy !== 'auto' && spec.policy !== 'explicit') throw new TypeError(`openModule: unknown policy '${String(spec.policy)}'`);
    const managed = openModule(spec.source, { policy: spec.policy, initReserved: spec.initReserved });
    try {
      const m = managed.module;
      const ref: ModuleRef = {
        id: this.nextId++,
        name: m.name,
        path: m.path,
        initReserved: spec.initReserved ?? managed.entry?.settings.initReserved,
        policy: managed.lifecycle.policy,
        identity: m.identity,
        info: plain(managed.getInfo()),
      };
      this.modules.set(ref.id, { managed, ref, sessions: new Set() });
      return ref;
    } catch (err) {
      managed.release();
      throw err;
    }
  }

  /** Closes the module's sessions and lets go of it (the last holder makes the real C_Finalize). */
  closeModule(id: number): void {
    const held = this.module(id, 'closeModule');
    this.forgetSessions(held);
    this.modules.delete(id);
    held.managed.release();
  }

  listModules(): ModuleRef[] {
    return [...this.modules.values()].map((m) => m.ref);
  }

  moduleState(id: number): ServiceModuleState {
    const { lifecycle } = this.module(id, 'moduleState').managed;
    const s = lifecycle.state;
    return { phase: s.phase, generation: s.generation, holders: s.holders, ...lifecycle.callCounts };
  }

  /** After the module was finalized behind our back (explicit policy): hold it again; old sessions are gone. */
  reinitialize(id: number): void {
    const held = this.module(id, 'reinitialize');
    held.managed.reinitialize();
    this.forgetSessions(held);
  }

  // ---- slots and tokens -----------------------------------------------------------------

  slots(id: number, tokenPresent = true): SlotEntry[] {
    const m = this.module(id, 'slots').managed;
    return m.getSlotList(tokenPresent).map((slot) => {
      const info = plain(m.getSlotInfo(slot));
      const token = info.flags & CKF_SLOT.CKF_TOKEN_PRESENT ? plain(m.getTokenInfo(slot)) : undefined;
      return { slot, info, token };
    });
  }

  mechanisms(id: number, slot: number): MechanismEntry[] {
    const m = this.module(id, 'mechanisms').managed;
    const s = asSlotId(slot); // a client's number
    return m.getMechanismList(s).map((type) => ({ type, info: plain(m.getMechanismInfo(s, type)) }));
  }

  // ---- sessions -------------------------------------------------------------------------

  /** Opens a session and, given a PIN, logs in (on a dedicated thread: a PIN pad may take its time). */
  async openSession(id: number, slot: number, opts: SessionOptions = {}): Promise<ServiceSessionRef> {
    const held = this.module(id, 'openSession');
    const managed = held.managed.openSession(asSlotId(slot), { rw: opts.rw });
    const ref: ServiceSessionRef = { id: this.nextId++, module: id, slot: managed.slot, handle: managed.handle };
    this.sessions.set(ref.id, { ref, managed, held });
    held.sessions.add(ref.id);
    if (opts.pin !== undefined) {
      try {
        await this.login(ref.id, opts.pin, opts.userType);
      } catch (err) {
        this.closeSession(ref.id);
        throw err;
      }
    }
    return ref;
  }

  /** This client's open sessions on module `id`. */
  sessionsOf(id: number): ServiceSessionRef[] {
    return [...this.module(id, 'sessions').sessions].flatMap((sid) => {
      const s = this.sessions.get(sid);
      return s && s.managed.open ? [s.ref] : [];
    });
  }

  closeSession(sid: number): void {
    const s = this.session(sid, 'C_CloseSession');
    this.sessions.delete(sid);
    s.held.sessions.delete(sid);
    s.managed.close();
  }

  /** C_Login; a token already logged in by another session of this process counts as success. */
  login(sid: number, pin: string | Uint8Array, userType: number = CKU.CKU_USER): Promise<void> {
    return this.exclusive(sid, 'C_Login', async (s) => {
      try {
        await s.async.login(userType, pin);
      } catch (err) {
        if ((err as { rv?: number }).rv !== CKR.CKR_USER_ALREADY_LOGGED_IN) throw err;
      }
    });
  }

  logout(sid: number): void {
    this.run(sid, 'C_Logout', (s) => s.logout());
  }

  // ---- objects --------------------------------------------------------------------------

  findObjects(sid: number, template: Attribute[] = [], max = 1024): number[] {
    return this.run(sid, 'C_FindObjects', (s) => s.findAllObjects(template).slice(0, max));
  }

  getAttributes(sid: number, object: number, types: number[]) {
    return this.run(sid, 'C_GetAttributeValue', (s) => s.getAttributeValue(asObjectHandle(object), types));
  }

  /** Finds the objects matching `template` and reads `types` of each, in one go. */
  findAndRead(sid: number, template: Attribute[], types: number[], max = 1024): FoundObject[] {
    return this.run(sid, 'C_FindObjects', (s) =>
      s
        .findAllObjects(template)
        .slice(0, max)
        .map((handle) => ({ handle, attributes: s.getAttributeValue(handle, types) })),
    );
  }

  createObject(sid: number, template: Attribute[]): number {
    return this.run(sid, 'C_CreateObject', (s) => s.createObject(template));
  }

  destroyObject(sid: number, object: number): void {
    this.run(sid, 'C_DestroyObject', (s) => s.destroyObject(asObjectHandle(object)));
  }

  // ---- crypto: each a whole operation (init + the single-part call) ----------------------
  // These are the batched hot path: each passes a module-level operation and its arguments
  // (see runWith), so a call builds no closure.

  sign(sid: number, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array {
    return this.runWith(sid, 'C_Sign', signOp, mechanism, key, data);
  }

  verify(sid: number, mechanism: MechanismArg, key: number, data: Uint8Array, signature: Uint8Array): boolean {
    return this.runWith(sid, 'C_Verify', verifyOp, mechanism, key, data, signature);
  }

  digest(sid: number, mechanism: MechanismArg, data: Uint8Array): Uint8Array {
    return this.runWith(sid, 'C_Digest', digestOp, mechanism, data);
  }

  encrypt(sid: number, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array {
    return this.runWith(sid, 'C_Encrypt', encryptOp, mechanism, key, data);
  }

  decrypt(sid: number, mechanism: MechanismArg, key: number, data: Uint8Array): Uint8Array {
    return this.runWith(sid, 'C_Decrypt', decryptOp, mechanism, key, data);
  }

  generateRandom(sid: number, length: number): Uint8Array {
    return this.runWith(sid, 'C_GenerateRandom', randomOp, length);
  }

  /** C_GenerateKeyPair on a dedicated thread (slow on hardware), so other sessions keep going. */
  generateKeyPair(sid: number, mechanism: MechanismArg, publicTemplate: Attribute[], privateTemplate: Attribute[]): Promise<KeyPairHandles> {
    return this.exclusive(sid, 'C_GenerateKeyPair', (s) => s.async.generateKeyPair(mechanism, publicTemplate, privateTemplate));
  }

  generateKey(sid: number, mechanism: MechanismArg, template: Attribute[]): Promise<number> {
    return this.exclusive(sid, 'C_GenerateKey', (s) => s.async.generateKey(mechanism, template));
  }

  // ---- every other PKCS#11 call of the in-thread API, by name (grant.ts classifies them) ----

  /**
   * A session call of ManagedSession by name, e.g. ('signUpdate', [chunk]). Slow ones (login,
   * key generation, PIN changes) run off the service's thread.
   */
  sessionCall(sid: number, name: string, args: unknown[] = []): unknown {
    if (!Array.isArray(args)) throw new TypeError(`${String(name)}: arguments are an array`);
    if (classOf(SESSION_CALL_CLASS, name, args) === undefined) throw new ServiceRefusedError(String(name).slice(0, 64), 'no such session call');
    const fn = `C_${name[0].toUpperCase()}${name.slice(1)}`;
    if (SLOW_SESSION_CALLS.has(name)) {
      return this.exclusive(sid, fn, async (s) => plainDeep(await (s.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name](...args)));
    }
    return this.run(sid, fn, (s) => plainDeep((s as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args)));
  }

  /**
   * One piece of a stream (chunks.ts): `buf` arrives transferred from the client's pool, the
   * update runs on its first `len` bytes, and `buf` goes back transferred with the update's output.
   */
  sessionFeed(sid: number, name: string, buf: ArrayBuffer, len: number): { buf: ArrayBuffer; out: unknown } {
    if (!FEEDABLE.has(name)) throw new ServiceRefusedError(String(name).slice(0, 64), 'not a call that takes a stream');
    if (!(buf instanceof ArrayBuffer) || !Number.isInteger(len) || len < 0 || len > buf.byteLength) {
      throw new TypeError(`${name}: a stream piece is an ArrayBuffer and a length within it`);
    }
    const out = compact(this.sessionCall(sid, name, [new Uint8Array(buf, 0, len)]));
    return replyTransfer({ buf, out }, [buf]);
  }

  /** A module-level call of ManagedModule by name (info, slot and mechanism lists, initToken, closeAllSessions). */
  moduleCall(id: number, name: string, args: unknown[] = []): unknown {
    if (!Array.isArray(args)) throw new TypeError(`${String(name)}: arguments are an array`);
    if (classOf(MODULE_CALL_CLASS, name, args) === undefined) throw new ServiceRefusedError(String(name).slice(0, 64), 'no such module call');
    const held = this.module(id, name);
    const r = (held.managed as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
    if (name === 'closeAllSessions') for (const sid of [...held.sessions]) if (!this.sessions.get(sid)?.managed.open) this.forget(sid);
    return plainDeep(r);
  }

  /** What this client was granted. */
  whoami(): ReturnType<Grant['describe']> {
    return this.grant.describe();
  }

  // ---- events and shutdown --------------------------------------------------------------

  /** Slot events of a module, for as long as the client iterates (see slot-events.ts). */
  slotEvents(signal: AbortSignal, id: number, opts: SlotEventOptions = {}): AsyncIterable<SlotEvent> {
    const held = this.module(id, 'slotEvents');
    const abort = new AbortController();
    signal.addEventListener('abort', () => abort.abort(), { once: true });
    this.streams.add(abort);
    const source = slotEventSource(held.managed, id, opts, abort.signal);
    const streams = this.streams;
    return (async function* () {
      try {
        yield* source;
      } finally {
        streams.delete(abort);
      }
    })();
  }

  /**
   * Lets go of everything: ends event streams, closes sessions, releases every module (a last
   * holder finalizes, which also ends blocked waits). Called before the service is stopped;
   * settles once every module is really given back (a module's calls in flight hold it until
   * they return: the service must not be terminated before, or its hold outlives its JS).
   */
  async drain(): Promise<number> {
    for (const a of this.streams) a.abort();
    this.streams.clear();
    // Their waiter children are killed now; reaped only while this thread's loop runs.
    const reaped = waitersReaped();
    const n = this.modules.size;
    const released = [...this.modules.values()].map((m) => m.managed.whenReleased().catch(() => undefined));
    for (const id of [...this.modules.keys()]) this.closeModule(id);
    await Promise.all([...released, reaped]);
    return n;
  }

  /** Which thread answers, for tests and diagnostics. */
  ping(): { pid: number; modules: number; sessions: number } {
    return { pid: process.pid, modules: this.modules.size, sessions: this.sessions.size };
  }

  // ---- internals ------------------------------------------------------------------------

  private module(id: number, what: string): OpenModule {
    const held = this.modules.get(id);
    if (!held) throw new TypeError(`${what}: no open module with id ${shownId(id)} in this service`);
    return held;
  }

  private forget(sid: number): void {
    const s = this.sessions.get(sid);
    this.sessions.delete(sid);
    s?.held.sessions.delete(sid);
  }

  /** Drops a module's sessions from the service's books (their handles are gone or going with it). */
  private forgetSessions(held: OpenModule): void {
    for (const s of held.sessions) this.sessions.delete(s);
    held.sessions.clear();
  }

  private session(sid: number, fn: string): OpenSession {
    const s = this.sessions.get(sid);
    if (!s) throw new Pkcs11Error(CKR.CKR_SESSION_HANDLE_INVALID, fn, '(service)', `no open session with id ${shownId(sid)}`);
    return s;
  }

  /**
   * Runs a synchronous operation on a managed session (its owner refuses stale handles before
   * they reach the module). If an async operation holds the session, this waits for it.
   */
  private run<R>(sid: number, fn: string, op: (s: ManagedSession) => R): R {
    const s = this.session(sid, fn);
    if (s.busy) return this.exclusive(sid, fn, op) as R;
    return op(s.managed);
  }

  /** run() for an operation that takes its arguments (up to four) rather than closing over them. */
  private runWith<A, B, C, D, R>(sid: number, fn: string, op: (s: ManagedSession, a: A, b: B, c: C, d: D) => R, a: A, b?: B, c?: C, d?: D): R {
    const s = this.session(sid, fn);
    if (s.busy) return this.exclusive(sid, fn, (m) => op(m, a, b as B, c as C, d as D)) as R;
    return op(s.managed, a, b as B, c as C, d as D);
  }

  /** Runs an operation with the session to itself: after the one before it, before the next. */
  private exclusive<R>(sid: number, fn: string, op: (s: ManagedSession) => R | Promise<R>): Promise<R> {
    const s = this.session(sid, fn);
    const before = s.busy ?? Promise.resolve();
    const mine = before
      .catch(() => undefined)
      .then(() => {
        if (!this.sessions.has(sid)) throw new Pkcs11Error(CKR.CKR_SESSION_HANDLE_INVALID, fn, '(service)', 'the session was closed');
        return op(s.managed);
      });
    s.busy = mine;
    const clear = () => {
      if (s.busy === mine) s.busy = undefined;
    };
    mine.then(clear, clear);
    return mine;
  }
}
