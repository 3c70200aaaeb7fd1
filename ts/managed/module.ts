// A managed module: one owner's handle on a module whose C_Initialize / C_Finalize belong to
// the process-wide lifecycle. What it opens is its own; release() gives everything back.
import { CKF_MISC, CKF_SESSION } from '../bridge/ckf.js';
import type { SlotId } from '../bridge/handles.js';
import type { Pkcs11Module } from '../bridge/module.js';
import { NO_CALL_OPTIONS, type CallOptions, type ModuleLifecycle, type Owner } from '../lifecycle/manager.js';
import type { ModuleState } from '../lifecycle/machine.js';
import type { ModuleEntry } from '../registry/types.js';
import { MODULE_READS, type AsyncModuleReads, type ModuleReads } from './calls.js';
import { ManagedSession } from './session.js';
import type { Secret } from '../bridge/op-helpers.js';

export interface OpenSessionOptions {
  /** A read/write session (CKF_RW_SESSION); default read-only. */
  rw?: boolean;
}

export class ManagedModule implements ModuleReads {
  /** The read-only module calls, returning promises. */
  readonly async: AsyncModuleReads & {
    openSession(slot: SlotId, opts?: OpenSessionOptions): Promise<ManagedSession>;
    waitForSlotEvent(flags?: number): Promise<SlotId | null>;
  };
  private readonly open = new Set<ManagedSession>();

  constructor(
    /** The bridge's module (raw and typed calls, no lifecycle checks: use with care). */
    readonly module: Pkcs11Module,
    readonly owner: Owner,
    /** The registry entry it was opened from, if any. */
    readonly entry?: ModuleEntry,
  ) {
    const asyncCalls: Record<string, unknown> = {
      openSession: (slot: SlotId, o?: OpenSessionOptions) => this.openSessionAsync(slot, o),
      // A blocking wait is not a hold: C_Finalize is how PKCS#11 ends it, so a release must not
      // wait for it. A CKF_DONT_BLOCK read is one (it may take seconds: OpenSC reads a card just
      // put in), so a release finalizes only after it has left the module.
      waitForSlotEvent: (flags?: number) =>
        this.owner.callAsync(() => this.module.async.waitForSlotEvent(flags), (Number(flags ?? 0) & CKF_MISC.CKF_DONT_BLOCK) !== 0 ? NO_CALL_OPTIONS : NOT_A_HOLD),
    };
    for (const name of MODULE_READS) {
      const fn = (module.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
      asyncCalls[name] = (...args: unknown[]) => this.owner.callAsync(() => fn(...args), IDEMPOTENT);
    }
    this.async = asyncCalls as unknown as ManagedModule['async'];
  }

  get name(): string {
    return this.module.name;
  }

  get lifecycle(): ModuleLifecycle {
    return this.owner.lifecycle;
  }

  get state(): ModuleState {
    return this.lifecycle.state;
  }

  get generation(): number {
    return this.owner.generation;
  }

  openSession(slot: SlotId, opts: OpenSessionOptions = {}): ManagedSession {
    const flags = CKF_SESSION.CKF_SERIAL_SESSION | (opts.rw ? CKF_SESSION.CKF_RW_SESSION : 0);
    const handle = this.owner.call(() => this.module.openSession(slot, flags));
    return this.adopt(handle, slot);
  }

  private async openSessionAsync(slot: SlotId, opts: OpenSessionOptions = {}): Promise<ManagedSession> {
    const flags = CKF_SESSION.CKF_SERIAL_SESSION | (opts.rw ? CKF_SESSION.CKF_RW_SESSION : 0);
    const handle = await this.owner.callAsync(() => this.module.async.openSession(slot, flags));
    return this.adopt(handle, slot);
  }

  private adopt(handle: number | bigint, slot: SlotId): ManagedSession {
    const s = new ManagedSession(this.module, this.owner, this.owner.addSession(BigInt(handle)), slot);
    this.open.add(s);
    return s;
  }

  /** This owner's open sessions (never anyone else's). */
  sessions(): ManagedSession[] {
    for (const s of this.open) if (!s.open) this.open.delete(s);
    return [...this.open];
  }

  /** Closes this owner's sessions on the slot, one by one; other owners' sessions are untouched. */
  closeAllSessions(slot: SlotId): void {
    for (const s of this.sessions()) if (s.slot === slot) s.close();
  }

  initToken(slot: SlotId, soPin: Secret, label: string): void {
    this.owner.call(() => this.module.initToken(slot, soPin, label));
  }

  waitForSlotEvent(flags = 0): SlotId | null {
    return this.owner.call(() => this.module.waitForSlotEvent(flags));
  }

  // The reads, written out: the check, then the bridge call inline, so a call builds no
  // closure, options or argument array (and stays shallow enough for V8 to inline). The retry
  // closure is made only on the cold path, after CKR_CRYPTOKI_NOT_INITIALIZED.
  getInfo(): ReturnType<ModuleReads['getInfo']> {
    this.owner.check();
    try {
      return this.module.getInfo();
    } catch (err) {
      return this.owner.failed(err, () => this.module.getInfo(), IDEMPOTENT);
    }
  }

  getSlotList(tokenPresent?: boolean): SlotId[] {
    this.owner.check();
    // Passed on only when given, so the callee (and a trace) sees the caller's call.
    const given = arguments.length > 0;
    try {
      return given ? this.module.getSlotList(tokenPresent) : this.module.getSlotList();
    } catch (err) {
      return this.owner.failed(err, () => (given ? this.module.getSlotList(tokenPresent) : this.module.getSlotList()), IDEMPOTENT);
    }
  }

  getSlotInfo(slot: SlotId): ReturnType<ModuleReads['getSlotInfo']> {
    this.owner.check();
    try {
      return this.module.getSlotInfo(slot);
    } catch (err) {
      return this.owner.failed(err, () => this.module.getSlotInfo(slot), IDEMPOTENT);
    }
  }

  getTokenInfo(slot: SlotId): ReturnType<ModuleReads['getTokenInfo']> {
    this.owner.check();
    try {
      return this.module.getTokenInfo(slot);
    } catch (err) {
      return this.owner.failed(err, () => this.module.getTokenInfo(slot), IDEMPOTENT);
    }
  }

  getMechanismList(slot: SlotId): number[] {
    this.owner.check();
    try {
      return this.module.getMechanismList(slot);
    } catch (err) {
      return this.owner.failed(err, () => this.module.getMechanismList(slot), IDEMPOTENT);
    }
  }

  getMechanismInfo(slot: SlotId, type: number): ReturnType<ModuleReads['getMechanismInfo']> {
    this.owner.check();
    try {
      return this.module.getMechanismInfo(slot, type);
    } catch (err) {
      return this.owner.failed(err, () => this.module.getMechanismInfo(slot, type), IDEMPOTENT);
    }
  }

  /** Holds the module again after a generation change (re-entering C_Initialize if nobody has). */
  reinitialize(): void {
    this.owner.reinitialize();
  }

  /**
   * Closes this owner's sessions and lets go of the module (the last owner's release finalizes
   * it). New calls are refused at once; if async calls of this owner are in flight, the module
   * is given back when the last of them returns (see whenReleased()).
   */
  release(): void {
    this.open.clear();
    this.owner.release();
  }

  /** Settles when release() has really given the module back (sessions closed, maybe finalized). */
  whenReleased(): Promise<void> {
    return this.owner.whenReleased();
  }
}

const IDEMPOTENT: Readonly<CallOptions> = Object.freeze({ idempotent: true });
const NOT_A_HOLD: Readonly<CallOptions> = Object.freeze({ holds: false });
