// The calling side of a PKCS#11 service: modules and sessions as small objects that hold an id
// and the service generation they were made in. Short operations go batched (one message for
// everything called in the same tick), long or rare ones as single comlink calls. Nothing
// here loads koffi: an Electron renderer can use it over its MessagePort.
import * as Comlink from 'comlink';
import { SESSION_CALLS, type AsyncModuleReads, type AsyncSessionCalls } from '../managed/calls.js';
import { asObjectHandle, type SlotId } from '../bridge/handles.js';
import { ServiceDeadError } from './errors.js';
import { MODULE_CALLS, SLOW_SESSION_CALLS } from './grant.js';
import type { Pkcs11Service } from './pkcs11-host.js';
import { feed, transform, type ByteSource, type SendPiece, type StreamOptions } from './chunks.js';
import type {
  Attribute,
  AttributeResult,
  FoundObject,
  KeyPairHandles,
  MechanismArg,
  MechanismEntry,
  ModuleInfo,
  ModuleRef,
  ModuleSpec,
  ServiceModuleState,
  SessionOptions,
  ServiceSessionRef,
  SlotEntry,
  SlotEvent,
  SlotEventOptions,
} from './pkcs11-types.js';
import type { ArgsOf, MethodOf, ResultOf, Supervisor, SupervisorEvents } from './supervisor.js';

type Api = Pkcs11Service;

// Symbol.asyncDispose where the engine has it (Node 20), the registry symbol TypeScript's
// downlevel `await using` looks up otherwise.
const asyncDispose: typeof Symbol.asyncDispose = (Symbol as { asyncDispose?: typeof Symbol.asyncDispose }).asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose);

export interface ClientHooks {
  /** Called in the client's thread before the service opens a module (createPkcs11Worker maps it here first). */
  moduleOpening?(spec: ModuleSpec): void;
  /** Called in the client's thread for every module the service opened. */
  moduleOpened?(ref: ModuleRef): void;
}

/** Handles made by one generation of the service mean nothing to the next one. */
function staleGeneration(made: number, now: number, method: string): ServiceDeadError {
  return new ServiceDeadError(made, `the service restarted as generation ${now}; open the module and session again`, false, method);
}

/**
 * Appends the caller's own stack to an error that comes back from the service (its stack is
 * the service's). The stack is taken when the error arrives, in the async method or the
 * rejection handler the caller awaits: V8's async stack traces then name the caller's awaiting
 * functions. A call that succeeds pays nothing for it (a stack captured per call, in case it
 * failed, cost 4–16 µs here — more than a short call itself). `below` is the function whose
 * frame and those above it are left out.
 */
function withCallSite(e: unknown, below: (...a: never[]) => unknown = withCallSite): unknown {
  if (!(e instanceof Error)) return e;
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, below);
  if (typeof site.stack !== 'string') return e;
  // Line 0 is the header ('Error').
  const caller = site.stack.split('\n').slice(1).join('\n');
  try {
    Object.defineProperty(e, 'stack', { value: `${e.stack ?? `${e.name}: ${e.message}`}\n    --- called from ---\n${caller}`, configurable: true, writable: true });
  } catch {
    // a frozen error keeps its stack
  }
  return e;
}

/** withCallSite() as the rejection handler of a batched call (no async function per call). */
const rethrowWithCallSite = (e: unknown): never => {
  throw withCallSite(e, rethrowWithCallSite);
};

/** The module-level calls of ManagedModule, answered by the service. */
export type RemoteModuleCalls = AsyncModuleReads & {
  initToken(slot: SlotId, soPin: string | Uint8Array, label: string): Promise<void>;
  closeAllSessions(slot: SlotId): Promise<void>;
};

abstract class Stamped {
  /** The service generation this handle belongs to. */
  readonly generation: number;
  constructor(protected readonly sup: Supervisor<Pkcs11Service>) {
    this.generation = sup.generation;
  }

  /** Whether the handle belongs to the running generation of a live service. */
  get usable(): boolean {
    return this.generation === this.sup.generation && this.sup.alive;
  }

  /** Why `method` may not run on this handle (an earlier generation's), or undefined when it may. */
  protected stale(method: string): ServiceDeadError | undefined {
    return this.generation === this.sup.generation ? undefined : staleGeneration(this.generation, this.sup.generation, method);
  }

  protected async call<K extends MethodOf<Api>>(method: K, ...args: ArgsOf<Api, K>): Promise<ResultOf<Api, K>> {
    try {
      const err = this.stale(method);
      if (err) throw err;
      return await this.sup.call(method, ...args);
    } catch (e) {
      throw withCallSite(e);
    }
  }

  /**
   * The hot path: one promise more than the call's own, not an async function — V8 still
   * follows the handler's promise to the caller's await for the call site.
   */
  protected batch<K extends MethodOf<Api>>(method: K, ...args: ArgsOf<Api, K>): Promise<ResultOf<Api, K>> {
    const err = this.stale(method);
    return (err ? Promise.reject(err) : this.sup.batchArgs(method, args)).then(undefined, rethrowWithCallSite) as Promise<ResultOf<Api, K>>;
  }
}

export class RemoteSession extends Stamped {
  readonly id: number;
  readonly slot: SlotId;
  /** The PKCS#11 session handle in the service (diagnostics only). */
  readonly handle: number;
  /**
   * Every session call of the in-thread API (ManagedSession), by the same name and arguments,
   * answered by the service: `await s.calls.signInit(m, key); await s.calls.signUpdate(part)`.
   * Short ones travel batched; slow ones (login, key generation, PIN changes) alone.
   */
  readonly calls: AsyncSessionCalls;

  constructor(
    sup: Supervisor<Pkcs11Service>,
    readonly module: RemoteModule,
    ref: ServiceSessionRef,
  ) {
    super(sup);
    this.id = ref.id;
    this.slot = ref.slot;
    this.handle = ref.handle;
    const calls: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const name of SESSION_CALLS) {
      calls[name] = SLOW_SESSION_CALLS.has(name)
        ? (...args) => this.call('sessionCall', this.id, name, args)
        : (...args) => this.batch('sessionCall', this.id, name, args);
    }
    this.calls = Object.freeze(calls) as unknown as AsyncSessionCalls;
  }

  // ---- streams: large data in bounded pieces, a few in flight (chunks.ts: memory bounded whatever the size)

  /** Sends one stream piece to `name` (an update call), its buffer transferred both ways. */
  private piece<R>(name: string): SendPiece<R> {
    return (buf, len) => this.call('sessionFeed', this.id, name, Comlink.transfer(buf, [buf]), len) as Promise<{ buf: ArrayBuffer; out: R }>;
  }

  /** C_SignInit, C_SignUpdate per piece of `data`, C_SignFinal. */
  async signStream(mechanism: MechanismArg, key: number, data: ByteSource, opts?: StreamOptions): Promise<Uint8Array> {
    await this.calls.signInit(mechanism, asObjectHandle(key));
    await feed(data, this.piece('signUpdate'), () => this.calls.signFinal(), opts);
    return this.calls.signFinal();
  }

  /** C_VerifyInit, C_VerifyUpdate per piece, C_VerifyFinal: false for a signature that does not verify. */
  async verifyStream(mechanism: MechanismArg, key: number, data: ByteSource, signature: Uint8Array, opts?: StreamOptions): Promise<boolean> {
    await this.calls.verifyInit(mechanism, asObjectHandle(key));
    await feed(data, this.piece('verifyUpdate'), () => this.calls.verifyFinal(new Uint8Array(0)), opts);
    return this.calls.verifyFinal(signature);
  }

  /** C_DigestInit, C_DigestUpdate per piece, C_DigestFinal. */
  async digestStream(mechanism: MechanismArg, data: ByteSource, opts?: StreamOptions): Promise<Uint8Array> {
    await this.calls.digestInit(mechanism);
    await feed(data, this.piece('digestUpdate'), () => this.calls.digestFinal(), opts);
    return this.calls.digestFinal();
  }

  /** C_EncryptInit, then the ciphertext as it comes (C_EncryptUpdate per piece, C_EncryptFinal last). */
  encryptStream(mechanism: MechanismArg, key: number, data: ByteSource, opts?: StreamOptions): AsyncGenerator<Uint8Array> {
    return this.transformStream(() => this.calls.encryptInit(mechanism, asObjectHandle(key)), 'encryptUpdate', () => this.calls.encryptFinal(), data, opts);
  }

  /** C_DecryptInit, then the plaintext as it comes. */
  decryptStream(mechanism: MechanismArg, key: number, data: ByteSource, opts?: StreamOptions): AsyncGenerator<Uint8Array> {
    return this.transformStream(() => this.calls.decryptInit(mechanism, asObjectHandle(key)), 'decryptUpdate', () => this.calls.decryptFinal(), data, opts);
  }

  private async *transformStream(
    init: () => Promise<void>,
    update: string,
    final: () => Promise<Uint8Array>,
    data: ByteSource,
    opts?: StreamOptions,
  ): AsyncGenerator<Uint8Array> {
    await init();
    // One piece at a time, each output handed on before the next is read: the consumer's pace is the producer's.
    let finished = false;
    try {
      for await (const out of transform<Uint8Array>(data, this.piece(update), opts)) if (out.length) yield out;
      finished = true;
      const last = await final();
      if (last.length) yield last;
    } finally {
      if (!finished) await final().catch(() => undefined);
    }
  }

  /** C_SignInit + C_Sign in one step. */
  sign(mechanism: MechanismArg, key: number, data: Uint8Array): Promise<Uint8Array> {
    return this.batch('sign', this.id, mechanism, key, data);
  }

  /** C_VerifyInit + C_Verify; false for a signature that does not verify. */
  verify(mechanism: MechanismArg, key: number, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return this.batch('verify', this.id, mechanism, key, data, signature);
  }

  digest(mechanism: MechanismArg, data: Uint8Array): Promise<Uint8Array> {
    return this.batch('digest', this.id, mechanism, data);
  }

  encrypt(mechanism: MechanismArg, key: number, data: Uint8Array): Promise<Uint8Array> {
    return this.batch('encrypt', this.id, mechanism, key, data);
  }

  decrypt(mechanism: MechanismArg, key: number, data: Uint8Array): Promise<Uint8Array> {
    return this.batch('decrypt', this.id, mechanism, key, data);
  }

  generateRandom(length: number): Promise<Uint8Array> {
    return this.batch('generateRandom', this.id, length);
  }

  findObjects(template: Attribute[] = [], max?: number): Promise<number[]> {
    return this.batch('findObjects', this.id, template, max);
  }

  getAttributes(object: number, types: number[]): Promise<AttributeResult[]> {
    return this.batch('getAttributes', this.id, object, types);
  }

  /** Finds the objects matching `template` and reads `types` of each: one message. */
  findAndRead(template: Attribute[], types: number[], max?: number): Promise<FoundObject[]> {
    return this.batch('findAndRead', this.id, template, types, max);
  }

  generateKeyPair(mechanism: MechanismArg, publicTemplate: Attribute[], privateTemplate: Attribute[]): Promise<KeyPairHandles> {
    return this.call('generateKeyPair', this.id, mechanism, publicTemplate, privateTemplate);
  }

  generateKey(mechanism: MechanismArg, template: Attribute[]): Promise<number> {
    return this.call('generateKey', this.id, mechanism, template);
  }

  createObject(template: Attribute[]): Promise<number> {
    return this.call('createObject', this.id, template);
  }

  destroyObject(object: number): Promise<void> {
    return this.call('destroyObject', this.id, object);
  }

  login(pin: string | Uint8Array, userType?: number): Promise<void> {
    return this.call('login', this.id, pin, userType);
  }

  logout(): Promise<void> {
    return this.call('logout', this.id);
  }

  close(): Promise<void> {
    return this.call('closeSession', this.id);
  }
}

export class RemoteModule extends Stamped {
  readonly id: number;
  readonly name: string;
  readonly path: string;
  readonly identity: string;
  readonly info: ModuleInfo;
  /** The module-level calls of the in-thread API (ManagedModule), by the same names. */
  readonly calls: RemoteModuleCalls;

  constructor(sup: Supervisor<Pkcs11Service>, ref: ModuleRef) {
    super(sup);
    this.id = ref.id;
    this.name = ref.name;
    this.path = ref.path;
    this.identity = ref.identity;
    this.info = ref.info;
    const calls: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const name of MODULE_CALLS) calls[name] = (...args) => this.call('moduleCall', this.id, name, args);
    this.calls = Object.freeze(calls) as unknown as RemoteModuleCalls;
  }

  /** This client's open sessions on the module (ManagedModule.sessions()). */
  async sessions(): Promise<RemoteSession[]> {
    return (await this.call('sessionsOf', this.id)).map((ref) => new RemoteSession(this.sup, this, ref));
  }

  /** Slots with their info, and token info where a token is present. */
  slots(tokenPresent = true): Promise<SlotEntry[]> {
    return this.call('slots', this.id, tokenPresent);
  }

  mechanisms(slot: SlotId): Promise<MechanismEntry[]> {
    return this.call('mechanisms', this.id, slot);
  }

  /** Opens a session; with `pin`, also logs in (one message). */
  async openSession(slot: SlotId, opts: SessionOptions = {}): Promise<RemoteSession> {
    return new RemoteSession(this.sup, this, await this.call('openSession', this.id, slot, opts));
  }

  /** The module's lifecycle state, process-wide. */
  state(): Promise<ServiceModuleState> {
    return this.call('moduleState', this.id);
  }

  /** After a foreign C_Finalize under the explicit policy: hold the module again (sessions are gone). */
  reinitialize(): Promise<void> {
    return this.call('reinitialize', this.id);
  }

  /**
   * Slot events, for `for await`; break out to stop. The waiting happens in the service, off
   * its own thread (see slot-events.ts); the stream ends with ServiceDeadError if the service dies.
   */
  slotEvents(opts: SlotEventOptions = {}): AsyncIterableIterator<SlotEvent> {
    const err = this.stale('slotEvents');
    if (err) {
      const it: AsyncIterableIterator<SlotEvent> = {
        next: () => Promise.reject(err),
        return: () => Promise.resolve({ done: true, value: undefined }),
        [Symbol.asyncIterator]: () => it,
      };
      return it;
    }
    return this.sup.stream<SlotEvent>('slotEvents', this.id, opts);
  }

  /** Closes the sessions this service opened on it and lets go of the module. */
  close(): Promise<void> {
    return this.call('closeModule', this.id);
  }
}

/** A PKCS#11 service seen from its client: modules, events, generations, shutdown. */
export class Pkcs11Client {
  constructor(
    readonly supervisor: Supervisor<Pkcs11Service>,
    private readonly hooks: ClientHooks = {},
  ) {}

  /** The running generation of the service (1, then +1 on every restart). */
  get generation(): number {
    return this.supervisor.generation;
  }

  get alive(): boolean {
    return this.supervisor.alive;
  }

  on<K extends keyof SupervisorEvents>(event: K, listener: (value: SupervisorEvents[K]) => void): this {
    this.supervisor.on(event, listener);
    return this;
  }

  off<K extends keyof SupervisorEvents>(event: K, listener: (value: SupervisorEvents[K]) => void): this {
    this.supervisor.off(event, listener);
    return this;
  }

  /** Opens a module in the service by registry name or path (a string), or with options. */
  async openModule(spec: ModuleSpec | string): Promise<RemoteModule> {
    const generation = this.supervisor.generation;
    const full = typeof spec === 'string' ? { source: spec } : spec;
    this.hooks.moduleOpening?.(full);
    let ref: ModuleRef;
    try {
      ref = await this.supervisor.call('openModule', full);
    } catch (e) {
      throw withCallSite(e);
    }
    this.hooks.moduleOpened?.(ref);
    if (generation !== this.supervisor.generation) throw staleGeneration(generation, this.supervisor.generation, 'openModule');
    return new RemoteModule(this.supervisor, ref);
  }

  /** Which thread answers and what it holds (diagnostics). */
  ping(): Promise<{ pid: number; modules: number; sessions: number }> {
    return this.supervisor.call('ping');
  }

  /** A new generation of the service; every module and session of the old one is stale. */
  restart(): Promise<number> {
    return this.supervisor.restart();
  }

  /** Ends the service abruptly, as a crash would (the restart policy applies); pending calls reject. */
  kill(reason?: string): Promise<void> {
    return this.supervisor.kill(reason);
  }

  /** Lets the service release everything, then stops it; pending calls reject. */
  close(): Promise<void> {
    return this.supervisor.close();
  }

  /** `await using p11 = createPkcs11Worker()`: closed when the scope ends. */
  [asyncDispose](): Promise<void> {
    return this.close();
  }
}
