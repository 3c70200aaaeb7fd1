// Binds the pure machine to the process-wide anchor and to a real module: every step
// runs under the module's process-wide lock, and only this file calls C_Initialize /
// C_Finalize. Owners are the consumers: each holds the module until it releases.
import { EventEmitter } from 'node:events';
import { Anchor, Busy, MAX_ISOLATES } from './anchor.js';
import {
  CKR_CRYPTOKI_ALREADY_INITIALIZED,
  CKR_CRYPTOKI_NOT_INITIALIZED,
  CKR_OK,
  CKR_SESSION_HANDLE_INVALID,
  step,
  type Decision,
  type LifecycleEvent,
  type ModuleState,
  type Policy,
  type RefuseReason,
} from './machine.js';

/** What the lifecycle needs of a module: its raw calls, and an identity shared by every isolate. */
export interface LifecycleTarget {
  /** The same string in every isolate for the same module (e.g. the shared object's device:inode). */
  readonly identity: string;
  readonly name: string;
  /** The real C_Initialize (CKF_OS_LOCKING_OK, the module's reserved string); returns its CK_RV. */
  initialize(): number;
  /** The real C_Finalize(NULL); returns its CK_RV. */
  finalize(): number;
  closeSession(handle: bigint): number;
  /** The pReserved string initialize() passes, if any (so a later opener that knows it can supply it). */
  readonly initReserved?: string;
}

export interface LifecycleChange {
  module: string;
  from: ModuleState;
  to: ModuleState;
  /** The event that caused it, e.g. 'acquire', 'callResult', 'generationChange'. */
  cause: LifecycleEvent['kind'] | 'owner-died' | 'lock-holder-died';
}

export class LifecycleError extends Error {
  override readonly name = 'LifecycleError';
  constructor(
    readonly rv: number,
    readonly reason: RefuseReason,
    readonly module: string,
  ) {
    super(`${module}: ${describe(reason)} (rv 0x${rv.toString(16)})`);
  }
}

function describe(reason: RefuseReason): string {
  switch (reason) {
    case 'stale-handle':
      return 'handle from an earlier generation of the module; reinitialize and open it again';
    case 'not-initialized':
      return 'module is not initialized for this owner; acquire it or call reinitialize()';
    case 'initialize-failed':
      return 'C_Initialize failed';
    case 'finalized-behind-our-back':
      return 'module was finalized by someone else; call reinitialize()';
  }
}

const errorRv = (err: unknown): number | undefined => {
  const rv = (err as { rv?: unknown } | null)?.rv;
  return typeof rv === 'number' ? rv : typeof rv === 'bigint' ? Number(rv) : undefined;
};

const lifecycles = new Map<string, ModuleLifecycle>();
/** The phase word's value for 'ready' (anchor.ts stores phases by their index). */
const PHASE_READY = 1;
/**
 * How long a last release waits for other isolates' calls that no hold covers (calls of an
 * older generation, made before someone finalized the module behind our back) to leave the
 * module before it gives up finalizing (the module then stays initialized: a leak, not a crash).
 */
export const FINALIZE_WAIT_MS = 30_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

export class ModuleLifecycle extends EventEmitter {
  private readonly anchor = Anchor.get();
  readonly slot: number;

  /** This isolate's lifecycle of the module (one per identity per isolate; the state itself is process-wide). */
  static of(target: LifecycleTarget, policy: Policy = 'explicit'): ModuleLifecycle {
    let lc = lifecycles.get(target.identity);
    if (!lc) lifecycles.set(target.identity, (lc = new ModuleLifecycle(target, policy)));
    // A module first opened by path, then by a registry name that knows its x-init-reserved:
    // the next C_Initialize must pass the string.
    else if (lc.target.initReserved === undefined && target.initReserved !== undefined) lc.target = target;
    return lc;
  }

  private constructor(
    public target: LifecycleTarget,
    public policy: Policy,
  ) {
    super();
    this.slot = this.anchor.moduleSlot(target.identity);
  }

  get state(): ModuleState {
    return this.anchor.readState(this.slot);
  }

  /** @internal */
  hotWords(): { words: Int32Array; gen: number; phase: number } | undefined {
    return this.anchor.hotWords(this.slot);
  }

  get generation(): number {
    return this.anchor.generation(this.slot);
  }

  /** Real C_Initialize / C_Finalize calls we made on this module in this process, from any isolate. */
  get callCounts(): { initialize: number; finalize: number } {
    return this.anchor.callCounts(this.slot);
  }

  /**
   * A new owner; the first one in a generation makes the real C_Initialize. `policy` is this
   * owner's re-entry policy (default: the lifecycle's, i.e. its first opener's); owners of one
   * module may differ, since the policy only decides what the owner that got the answer does.
   */
  acquire(policy: Policy = this.policy): Owner {
    return this.transact(() => {
      const gen = this.admit(this.apply({ kind: 'acquire' }));
      return new Owner(this, gen, policy);
    });
  }

  /** Reclaims what owners in dead isolates held (also done on every acquire and release). */
  sweep(): void {
    this.transact(() => undefined);
  }

  /**
   * Every handle made so far becomes stale: the module's host went away, or the process was
   * cloned. If the module is still initialized by us in this process, we finalize it first —
   * otherwise the next owner would find it initialized, take it for someone else's, and nobody
   * would ever finalize it. (Where the host is really gone, that C_Finalize just fails.)
   */
  generationChange(reason: 'host-lost' | 'fork'): void {
    this.transact(() => {
      const s = this.state;
      if (s.phase === 'ready' && s.ownedInit) {
        this.anchor.setBusy(this.slot, Busy.Finalizing);
        const rv = this.target.finalize();
        if (rv === CKR_OK) this.anchor.countCall(this.slot, 'finalize');
        this.emit('finalize', { module: this.target.name, rv });
      }
      this.invalidate({ kind: 'generationChange', reason });
    });
  }

  /**
   * The process is ending (a fatal signal): finalizes the module now if we initialized it,
   * whoever still holds it, once this isolate's calls in flight have returned (at most
   * `waitMs`; if they have not, the module is left to the process's end rather than finalized
   * under them). Every owner's handles become stale.
   */
  async shutdown(waitMs = 2000): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    while (this.anchor.callsHere(this.slot) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (this.anchor.callsHere(this.slot) > 0) return false;
    this.generationChange('host-lost');
    return true;
  }

  /** This isolate's lifecycles (one per module it opened). */
  static all(): ModuleLifecycle[] {
    return [...lifecycles.values()];
  }

  // ---- used by Owner ------------------------------------------------------------------

  /** @internal False when the owner keeps holding until its `inFlight` calls have returned. */
  release(owner: Owner, inFlight: number): boolean {
    return this.transact(() => {
      const s = this.state;
      const d = this.apply({ kind: 'release', ownerGeneration: owner.generation, inFlight });
      if (d.do === 'defer') return false;
      if (owner.generation === s.generation && s.phase === 'ready') {
        for (const ref of owner.sessions) {
          this.target.closeSession(ref.handle);
          this.anchor.removeSession(this.slot, ref.handle);
        }
        this.anchor.setHolding(this.slot, this.anchor.isolate, this.anchor.holding(this.slot, this.anchor.isolate) - 1);
      }
      for (const ref of owner.sessions) ref.open = false;
      owner.sessions.clear();
      if (d.do === 'finalize') this.finalize();
      return true;
    });
  }

  /** @internal An async call enters / leaves the module (counted process-wide, see finalize()). */
  entered(delta: 1 | -1): void {
    this.anchor.callsEntered(this.slot, delta);
  }

  /** Calls inside the module right now made through async paths, by this isolate and by others alive. */
  get callsInFlight(): { here: number; elsewhere: number } {
    return { here: this.anchor.callsHere(this.slot), elsewhere: this.anchor.callsElsewhere(this.slot) };
  }

  /** @internal Returns the owner's new generation. */
  reinitialize(owner: Owner): number {
    return this.transact(() => {
      const d = this.apply({ kind: 'reinitialize', ownerGeneration: owner.generation });
      if (d.do === 'none') return owner.generation;
      for (const ref of owner.sessions) ref.open = false;
      owner.sessions.clear();
      return this.admit(d);
    });
  }

  /** @internal Handles CKR_CRYPTOKI_NOT_INITIALIZED from an ordinary call. */
  onNotInitialized(owner: Owner, idempotent: boolean): Decision {
    return this.transact(() =>
      this.invalidate(
        { kind: 'callResult', handleGeneration: owner.generation, rv: CKR_CRYPTOKI_NOT_INITIALIZED, idempotent },
        undefined,
        owner.policy,
      ),
    );
  }

  /** @internal */
  refuse(d: Decision): never {
    const rv = d.do === 'refuse' ? d.rv : CKR_CRYPTOKI_NOT_INITIALIZED;
    throw new LifecycleError(rv, d.do === 'refuse' ? d.reason : 'not-initialized', this.target.name);
  }

  /** @internal */
  trackSession(handle: bigint, add: boolean): void {
    this.transact(() => (add ? this.anchor.addSession(this.slot, handle) : this.anchor.removeSession(this.slot, handle)));
  }

  // ---- under the lock -----------------------------------------------------------------

  private transact<T>(fn: () => T): T {
    const orphaned = this.anchor.lockModule(this.slot);
    try {
      if (orphaned !== undefined) this.recover(orphaned);
      this.reclaimDeadIsolates();
      return fn();
    } finally {
      this.anchor.setBusy(this.slot, Busy.No);
      this.anchor.unlockModule(this.slot);
    }
  }

  private apply(event: LifecycleEvent, cause: LifecycleChange['cause'] = event.kind, policy = this.policy): Decision {
    const from = this.state;
    const { state: to, decision } = step(from, event, policy);
    this.anchor.writeState(this.slot, to);
    if (from.phase !== to.phase || from.generation !== to.generation || from.holders !== to.holders) {
      this.emit('change', { module: this.target.name, from, to, cause } satisfies LifecycleChange);
    }
    return decision;
  }

  /** Acts on an acquire-like decision; the caller becomes a holder. Returns the generation held. */
  private admit(d: Decision): number {
    if (d.do === 'initialize') {
      // The busy mark stays until transact() ends: a successor that finds it knows we died mid-way.
      this.anchor.setBusy(this.slot, Busy.Initializing);
      const rv = this.target.initialize();
      if (rv === CKR_OK) this.anchor.countCall(this.slot, 'initialize');
      this.emit('initialize', { module: this.target.name, rv });
      const after = this.apply({ kind: 'initialized', rv });
      if (after.do === 'refuse') this.refuse(after);
    } else if (d.do === 'refuse') {
      this.refuse(d);
    }
    this.anchor.setHolding(this.slot, this.anchor.isolate, this.anchor.holding(this.slot, this.anchor.isolate) + 1);
    return this.state.generation;
  }

  private finalize(): void {
    this.anchor.setBusy(this.slot, Busy.Finalizing);
    // Sessions of owners that never released are the module's to drop with the finalize.
    this.anchor.takeSessions(this.slot, undefined);
    if (!this.callsLeft()) {
      this.emit('finalize-skipped', { module: this.target.name, callsInFlight: this.anchor.callsElsewhere(this.slot) });
      this.apply({ kind: 'finalized', rv: CKR_OK });
      return;
    }
    const rv = this.target.finalize();
    if (rv === CKR_OK) this.anchor.countCall(this.slot, 'finalize');
    this.emit('finalize', { module: this.target.name, rv });
    this.apply({ kind: 'finalized', rv });
  }

  /**
   * Every call of ours covered by a hold has returned when the last holder leaves; what can
   * still be inside is another isolate's call of an older generation (the module was
   * finalized and re-initialized under it). Those decrement without the lock: wait for them.
   */
  private callsLeft(): boolean {
    const deadline = Date.now() + FINALIZE_WAIT_MS;
    while (this.anchor.callsElsewhere(this.slot) > 0) {
      if (Date.now() > deadline) return false;
      Atomics.wait(pause, 0, 0, 1);
    }
    return true;
  }

  /** A generation change: nothing held so far means anything any more. */
  private invalidate(event: LifecycleEvent, cause?: LifecycleChange['cause'], policy = this.policy): Decision {
    const before = this.state.generation;
    const d = this.apply(event, cause, policy);
    if (this.state.generation !== before) {
      this.anchor.clearHoldings(this.slot);
      this.anchor.takeSessions(this.slot, undefined);
    }
    return d;
  }

  /**
   * The previous lock holder died inside a step. Nobody held the module in this generation
   * while it was initializing, and the one finalizing was the last holder, so the way back
   * to a known state is to make sure the module is finalized: an initialize (whose answer
   * says whether the dead holder's C_Initialize happened) followed by a finalize.
   */
  private recover(busy: Busy): void {
    if (busy === Busy.No) return this.reconcile();
    if (busy === Busy.Initializing) {
      const rv = this.target.initialize();
      if (rv === CKR_OK) this.anchor.countCall(this.slot, 'initialize');
      if (rv !== CKR_OK && rv !== CKR_CRYPTOKI_ALREADY_INITIALIZED) return this.restart();
    }
    this.anchor.setBusy(this.slot, Busy.Finalizing);
    if (this.target.finalize() === CKR_OK) this.anchor.countCall(this.slot, 'finalize');
    this.restart();
  }

  /**
   * The dead holder was between two writes of an ordinary step (the shared state and its own
   * holding count): the holding counts are the truth, the state's holder count follows them.
   * If that leaves nobody holding a module we initialized, it is finalized now.
   */
  private reconcile(): void {
    const s = this.state;
    if (s.phase !== 'ready') return;
    let held = 0;
    for (let i = 0; i < MAX_ISOLATES; i++) held += this.anchor.holding(this.slot, i);
    if (held === s.holders) return;
    this.anchor.writeState(this.slot, { ...s, holders: held });
    this.emit('change', { module: this.target.name, from: s, to: this.state, cause: 'lock-holder-died' } satisfies LifecycleChange);
    if (held > 0) return;
    if (s.ownedInit) {
      this.finalize();
    } else {
      this.anchor.writeState(this.slot, { ...s, phase: 'uninitialized', holders: 0 });
    }
  }

  private restart(): void {
    const from = this.state;
    this.anchor.writeState(this.slot, { phase: 'uninitialized', ownedInit: false, generation: from.generation + 1, holders: 0 });
    this.anchor.clearHoldings(this.slot);
    this.anchor.takeSessions(this.slot, undefined);
    this.emit('change', { module: this.target.name, from, to: this.state, cause: 'lock-holder-died' } satisfies LifecycleChange);
  }

  private reclaimDeadIsolates(): void {
    for (const iso of this.anchor.holdersOf(this.slot)) {
      if (this.anchor.isolateAlive(iso)) continue;
      const sessions = this.anchor.takeSessions(this.slot, iso);
      if (this.state.phase === 'ready') for (const h of sessions) this.target.closeSession(h);
      const held = this.anchor.holding(this.slot, iso);
      this.anchor.setHolding(this.slot, iso, 0);
      for (let i = 0; i < held; i++) {
        const gen = this.state.generation;
        if (this.apply({ kind: 'release', ownerGeneration: gen, inFlight: 0 }, 'owner-died').do === 'finalize') this.finalize();
      }
    }
  }
}

export interface CallOptions {
  /** Changes nothing in the module: may be retried after an automatic re-initialize. */
  idempotent?: boolean;
  /** The session the call is made on: refused unless this owner opened it in this generation. */
  session?: SessionRef;
  /** The op returns a raw CK_RV (the bridge's raw layer) rather than throwing Pkcs11Error. */
  returnsRv?: boolean;
  /**
   * Async calls only: whether the call holds the module while in flight (default true). False
   * for a blocking C_WaitForSlotEvent, which only the module's C_Finalize ends.
   */
  holds?: boolean;
}

/** No options: one frozen object instead of a literal per call. */
export const NO_CALL_OPTIONS: Readonly<CallOptions> = Object.freeze({});

/** A session an owner opened: usable only by that owner, only in the generation it was opened in. */
export interface SessionRef {
  readonly handle: bigint;
  readonly owner: Owner;
  readonly generation: number;
  open: boolean;
}

/** A CKR_CRYPTOKI_NOT_INITIALIZED that escaped the machine (say, from a retry) as the typed refusal. */
function typed(lc: ModuleLifecycle, err: unknown): unknown {
  if (errorRv(err) !== CKR_CRYPTOKI_NOT_INITIALIZED) return err;
  return new LifecycleError(CKR_CRYPTOKI_NOT_INITIALIZED, 'finalized-behind-our-back', lc.target.name);
}

/**
 * One consumer of a module. It can use only the sessions it opened; its release closes
 * them (and no one else's). Handles carry the generation they were made in.
 *
 * Calls in flight are holds: release() refuses new calls at once, and if async calls of this
 * owner are still inside the module, the owner keeps holding (its sessions stay open) until
 * the last of them returns; then the release completes (the last one finalizes).
 * `whenReleased()` says when.
 */
export class Owner {
  readonly sessions = new Set<SessionRef>();
  private released = false;
  /** This owner's async calls inside the module. */
  private inFlight = 0;
  /** release() was called while calls were in flight: complete it when the last returns. */
  private releasing = false;
  private settle?: { promise: Promise<void>; resolve(): void; reject(e: unknown): void; done: boolean };
  // The hot path reads the module's generation and phase words straight from shared memory.
  private readonly words: Int32Array;
  private readonly genAt: number;
  private readonly phaseAt: number;

  constructor(
    readonly lifecycle: ModuleLifecycle,
    public generation: number,
    /** What this owner does when the module was finalized behind its back (see machine.ts). */
    readonly policy: Policy = lifecycle.policy,
  ) {
    const hot = lifecycle.hotWords();
    this.words = hot?.words ?? new Int32Array(0);
    this.genAt = hot?.gen ?? -1;
    this.phaseAt = hot?.phase ?? -1;
  }

  /** Whether a call made now may reach the module: not released, same generation, module ready. */
  usable(): boolean {
    if (this.genAt < 0) return !this.released && this.lifecycle.generation === this.generation && this.lifecycle.state.phase === 'ready';
    return !this.released && this.words[this.genAt] === this.generation && this.words[this.phaseAt] === PHASE_READY;
  }

  /** The checks before any call: this owner may call now, and the session (if any) is its own, of this generation. */
  admits(ses: SessionRef | undefined): void {
    this.check();
    if (ses !== undefined && (ses.owner !== this || !ses.open || ses.generation !== this.generation)) {
      this.lifecycle.refuse({ do: 'refuse', rv: CKR_SESSION_HANDLE_INVALID, reason: 'stale-handle' });
    }
  }

  /** Throws the typed refusal when the owner's handles are stale or the module is not initialized for it. */
  check(): void {
    if (this.usable()) return;
    if (this.released) this.lifecycle.refuse({ do: 'refuse', rv: CKR_CRYPTOKI_NOT_INITIALIZED, reason: 'not-initialized' });
    if (this.lifecycle.generation === this.generation) {
      this.lifecycle.refuse({ do: 'refuse', rv: CKR_CRYPTOKI_NOT_INITIALIZED, reason: 'not-initialized' });
    }
    this.lifecycle.refuse({ do: 'refuse', rv: CKR_SESSION_HANDLE_INVALID, reason: 'stale-handle' });
  }

  /**
   * Runs one call into the module. A CKR_CRYPTOKI_NOT_INITIALIZED answer (thrown with `.rv`,
   * or returned when `returnsRv` says the op returns a raw CK_RV) means someone finalized the
   * module behind our back: under the `auto` policy an idempotent call is retried once after
   * one serialized re-initialize.
   */
  call<T>(op: () => T, opts: Readonly<CallOptions> = NO_CALL_OPTIONS): T {
    this.admits(opts.session);
    let result: T;
    try {
      result = op();
    } catch (err) {
      return this.failed(err, op, opts);
    }
    // Only a raw op's number is a CK_RV: a typed op may return 0x190 as a handle.
    if (opts.returnsRv && result === CKR_CRYPTOKI_NOT_INITIALIZED) return this.afterNotInitialized(op, opts);
    return result;
  }

  /**
   * call() for a promise-returning op (the bridge's async calls); same checks, same re-entry
   * rules. The call is a hold: the owner's release cannot complete while it is in flight.
   */
  async callAsync<T>(op: () => Promise<T>, opts: Readonly<Omit<CallOptions, 'returnsRv'>> = NO_CALL_OPTIONS): Promise<T> {
    this.admits(opts.session);
    const holds = opts.holds !== false;
    if (holds) {
      this.inFlight++;
      this.lifecycle.entered(1);
    }
    try {
      return await op();
    } catch (err) {
      if (errorRv(err) !== CKR_CRYPTOKI_NOT_INITIALIZED) throw err;
      const d = this.lifecycle.onNotInitialized(this, !!opts.idempotent && opts.session === undefined);
      if (d.do !== 'retry') this.lifecycle.refuse(d);
      this.reinitialize();
      try {
        return await op();
      } catch (again) {
        throw typed(this.lifecycle, again);
      }
    } finally {
      if (holds) {
        this.lifecycle.entered(-1);
        if (--this.inFlight === 0 && this.releasing) this.completeRelease(true);
      }
    }
  }

  /**
   * @internal What call() does when its op threw, for callers that run the op inline after
   * admits() (the managed API's generated methods): rethrows, or re-enters as call() would.
   * `op` is only built here, on this cold path.
   */
  failed<T>(err: unknown, op: () => T, opts: Readonly<CallOptions>): T {
    if (errorRv(err) !== CKR_CRYPTOKI_NOT_INITIALIZED) throw err;
    return this.afterNotInitialized(op, opts);
  }

  private afterNotInitialized<T>(op: () => T, opts: Readonly<CallOptions>): T {
    // A call on a session is never retried: the session died with the old generation.
    const d = this.lifecycle.onNotInitialized(this, !!opts.idempotent && opts.session === undefined);
    if (d.do !== 'retry') this.lifecycle.refuse(d);
    this.reinitialize();
    let result: T;
    try {
      result = op();
    } catch (again) {
      throw typed(this.lifecycle, again);
    }
    if (opts.returnsRv && result === CKR_CRYPTOKI_NOT_INITIALIZED) throw typed(this.lifecycle, { rv: CKR_CRYPTOKI_NOT_INITIALIZED });
    return result;
  }

  /** Holds the module again in its current generation (re-entering C_Initialize if nobody has). */
  reinitialize(): void {
    if (this.released) this.lifecycle.refuse({ do: 'refuse', rv: CKR_CRYPTOKI_NOT_INITIALIZED, reason: 'not-initialized' });
    this.generation = this.lifecycle.reinitialize(this);
  }

  /** Records a session this owner opened (so its release, or its isolate's death, closes it). */
  addSession(handle: bigint): SessionRef {
    const ref: SessionRef = { handle, owner: this, generation: this.generation, open: true };
    this.sessions.add(ref);
    this.lifecycle.trackSession(handle, true);
    return ref;
  }

  /** Forgets a session after the module closed it. */
  removeSession(ref: SessionRef): void {
    ref.open = false;
    if (this.sessions.delete(ref) && ref.generation === this.generation) this.lifecycle.trackSession(ref.handle, false);
  }

  /** Async calls of this owner still inside the module. */
  get callsInFlight(): number {
    return this.inFlight;
  }

  /**
   * Lets go of the module. New calls are refused at once (LifecycleError 'not-initialized'); calls in
   * flight finish normally, and the hold (sessions, the last owner's C_Finalize) is given back
   * when the last of them returns. Errors of a deferred completion go to whenReleased().
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.completeRelease(false);
  }

  /** Settles once release() has really given the module back (at once when nothing was in flight). */
  whenReleased(): Promise<void> {
    if (!this.settle) {
      const settle = this.settlement();
      if (this.released && !this.releasing) this.settleRelease();
      return settle.promise;
    }
    return this.settle.promise;
  }

  private settlement(): NonNullable<Owner['settle']> {
    if (this.settle) return this.settle;
    let resolve!: () => void, reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // an error nobody asked about is not unhandled
    return (this.settle = { promise, resolve, reject, done: false });
  }

  /** Gives the hold back now, or marks it to be given back when the last call in flight returns. */
  private completeRelease(deferred: boolean): void {
    try {
      this.releasing = !this.lifecycle.release(this, this.inFlight);
    } catch (err) {
      this.releasing = false;
      if (!deferred) throw err;
      // From the finally of an async call: its caller keeps its own result; whenReleased() gets the error.
      const settle = this.settlement();
      if (!settle.done) {
        settle.done = true;
        settle.reject(err);
      }
      return;
    }
    if (!this.releasing) this.settleRelease();
  }

  private settleRelease(): void {
    if (this.settle && !this.settle.done) {
      this.settle.done = true;
      this.settle.resolve();
    }
  }
}
