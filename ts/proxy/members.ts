// The modules behind a proxy, one Member each. A local module is acquired through the
// process-wide lifecycle (openModule), never initialized by the proxy itself, and serves both
// the sync and the async API; a `remote:` module (remote.ts) serves the async API only.
import type { SlotId } from '../bridge/handles.js';
import type { ModuleState } from '../lifecycle/machine.js';
import type { ManagedModule, OpenSessionOptions } from '../managed/module.js';
import type { ModuleEntry } from '../registry/types.js';
import type { HostLostError } from '../rpc/errors.js';
import type { HostState } from '../rpc/host.js';
import type { InnerSession } from './sessions.js';
import type { SlotEventMode } from './types.js';

/** The calls the proxy's async API makes on a module, local or remote. */
export type MemberCalls = Omit<ManagedModule['async'], 'openSession'> & {
  openSession(slot: SlotId, opts?: OpenSessionOptions): Promise<InnerSession>;
};

export abstract class Member {
  /** How its slot events are fetched (see events.ts). */
  events: SlotEventMode = 'unprobed';
  /** A blocking C_WaitForSlotEvent of ours is parked in it. */
  waiting = false;
  abstract readonly async: MemberCalls;
  /** Served by the async API only (a remote module): the sync API skips or refuses it. */
  abstract readonly asyncOnly: boolean;

  constructor(readonly entry: ModuleEntry) {}

  get name(): string {
    return this.entry.name;
  }

  get critical(): boolean {
    return this.entry.settings.critical;
  }

  /** Whether calls can reach the module now (same generation, initialized, not released). */
  abstract get usable(): boolean;
  abstract get state(): ModuleState;
  abstract get generation(): number;
  /** Remote modules: their host's state. */
  get host(): HostState | undefined {
    return undefined;
  }

  /** What a URI's module-path may name it by. */
  abstract get paths(): readonly (string | undefined)[];

  /** The managed module, for the sync API; a remote module refuses with ASYNC_ONLY naming `form`. */
  abstract local(form: string): ManagedModule;

  /** Holds the module again after a generation change (nothing when it is usable). */
  abstract reinitialize(): Promise<void>;

  /** Lets go of the module; a promise when that completes later (a remote module's always resolves). */
  abstract release(): void | Promise<void>;

  /** Tells `listener` each time the module's host is lost (a local module has no host). */
  onHostLost(_listener: (error: HostLostError) => void): void {}
}

/** A module loaded in this process, held through the process-wide lifecycle. */
export class LocalMember extends Member {
  readonly asyncOnly = false;
  readonly async: MemberCalls;

  constructor(
    entry: ModuleEntry,
    readonly managed: ManagedModule,
  ) {
    super(entry);
    this.async = managed.async;
  }

  get usable(): boolean {
    return this.managed.owner.usable();
  }

  get state(): ModuleState {
    return this.managed.state;
  }

  get generation(): number {
    return this.managed.generation;
  }

  get paths(): readonly (string | undefined)[] {
    const m = this.managed.module;
    return [this.entry.options.module, this.entry.path, m.path, m.realPath];
  }

  local(): ManagedModule {
    return this.managed;
  }

  async reinitialize(): Promise<void> {
    this.managed.reinitialize();
  }

  /** A call still inside the module (a slot-event read) holds it: the promise settles once it is given back. */
  release(): void | Promise<void> {
    this.managed.release();
    if (this.managed.owner.callsInFlight > 0) return this.managed.whenReleased();
  }
}
