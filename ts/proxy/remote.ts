// A `remote:` module behind the proxy: p11-kit's RPC client (RemoteModule) served through the
// proxy's async API only — every call is a message to a host process, so there is no sync form.
//
// It needs no lifecycle anchor: each client starts a host process of its own, so nothing else
// in this process (no other owner, no worker) can initialize or finalize what it talks to. The
// host's C_Initialize is made when the proxy first needs the module (openProxyAsync does so at
// once); after a host loss the RPC client applies the module's re-entry policy itself.
//
// Remote modules take no part in slot events: a host answers one call at a time, so a blocking
// C_WaitForSlotEvent would hold every other call of the module behind it, and the proxy's
// CKF_DONT_BLOCK polls are synchronous.
import { CKF_SESSION } from '../bridge/ckf.js';
import type { SlotId } from '../bridge/handles.js';
import type { ModuleState } from '../lifecycle/machine.js';
import type { ManagedModule, OpenSessionOptions } from '../managed/module.js';
import type { ModuleEntry } from '../registry/types.js';
import { HostLostError } from '../rpc/errors.js';
import type { HostState } from '../rpc/host.js';
import type { RemoteModule } from '../rpc/remote-module.js';
import { asyncOnly } from './errors.js';
import { Member, type MemberCalls } from './members.js';
import { RemoteSession } from './remote-session.js';
import type { SlotEventMode } from './types.js';

export class RemoteMember extends Member {
  readonly asyncOnly = true;
  override events: SlotEventMode = 'none';
  readonly async: MemberCalls;
  /** The first C_Initialize (or the last explicit one); a failure stays until reinitialize(). */
  private started: Promise<void> | undefined;

  constructor(
    entry: ModuleEntry,
    readonly remote: RemoteModule,
  ) {
    super(entry);
    const r = remote.async;
    const afterStart =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        await this.start();
        return fn(...a);
      };
    this.async = {
      getInfo: afterStart(r.getInfo),
      getSlotList: afterStart(r.getSlotList),
      getSlotInfo: afterStart(r.getSlotInfo),
      getTokenInfo: afterStart(r.getTokenInfo),
      getMechanismList: afterStart(r.getMechanismList),
      getMechanismInfo: afterStart(r.getMechanismInfo),
      waitForSlotEvent: afterStart(r.waitForSlotEvent),
      openSession: afterStart(async (slot: SlotId, opts: OpenSessionOptions = {}) => {
        const flags = CKF_SESSION.CKF_SERIAL_SESSION | (opts.rw ? CKF_SESSION.CKF_RW_SESSION : 0);
        return new RemoteSession(remote, Number(await r.openSession(slot, flags)), slot); // RPC handles are numbers on the wire
      }),
    };
  }

  get usable(): boolean {
    return this.remote.client.state === 'ready';
  }

  override get host(): HostState {
    return this.remote.client.state;
  }

  /** The host's state in the lifecycle's terms: its one holder is this proxy. */
  get state(): ModuleState {
    const host = this.remote.client.state;
    const ready = host === 'ready';
    return { phase: ready ? 'ready' : host === 'lost' ? 'stale' : 'uninitialized', ownedInit: ready, generation: this.generation, holders: ready ? 1 : 0 };
  }

  get generation(): number {
    return this.remote.generation;
  }

  get paths(): readonly (string | undefined)[] {
    return [this.entry.options.module, this.entry.path];
  }

  local(form: string): ManagedModule {
    throw asyncOnly(this.name, form);
  }

  /** A new host with a fresh C_Initialize, unless one is running or starting. */
  async reinitialize(): Promise<void> {
    const host = this.remote.client.state;
    if (host === 'ready' || host === 'connecting') return;
    this.started = this.remote.async.initialize();
    await this.started;
  }

  /** C_Finalize on a running host, then the host is let go (its process ends with its input). */
  async release(): Promise<void> {
    if (this.remote.client.state !== 'closed') {
      // The host is let go whether C_Finalize answers or not: there is no one left to tell.
      await this.remote.async.finalize().catch(() => undefined);
    }
    await this.remote.close();
  }

  override onHostLost(listener: (error: HostLostError) => void): void {
    this.remote.client.on('hostLost', (e) => listener(new HostLostError('host', e.generation, e.reason, true, this.name)));
  }

  private start(): Promise<void> {
    return (this.started ??= this.remote.async.initialize());
  }
}
