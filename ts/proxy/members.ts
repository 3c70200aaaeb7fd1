// The modules behind a proxy: each acquired through the process-wide lifecycle (openModule),
// never initialized by the proxy itself. A module that cannot be opened is reported and left
// out, unless it is critical: then nothing is kept and the proxy does not open.
import type { ManagedModule } from '../managed/module.js';
import { openModule } from '../managed/open.js';
import type { ModuleEntry, RegistryOptions } from '../registry/types.js';
import type { Policy } from '../lifecycle/machine.js';
import { ProxyError } from './errors.js';
import type { ModuleFailure, SlotEventMode } from './types.js';

export class Member {
  /** How its slot events are fetched (see events.ts). */
  events: SlotEventMode = 'unprobed';
  /** A blocking C_WaitForSlotEvent of ours is parked in it. */
  waiting = false;

  constructor(
    readonly entry: ModuleEntry,
    readonly managed: ManagedModule,
  ) {}

  get name(): string {
    return this.entry.name;
  }

  get critical(): boolean {
    return this.entry.settings.critical;
  }

  /** Whether calls can reach the module now (same generation, initialized, not released). */
  get usable(): boolean {
    return this.managed.owner.usable();
  }
}

export interface OpenMembersOptions {
  policy?: Policy;
  registry?: RegistryOptions;
  report(failure: ModuleFailure): void;
}

/** Opens the entries in order; the same shared object configured twice is served once (as p11-kit does). */
export function openMembers(entries: readonly ModuleEntry[], opts: OpenMembersOptions): Member[] {
  const members: Member[] = [];
  for (const entry of entries) {
    let managed: ManagedModule;
    try {
      // openModule refuses `remote:` entries (the RPC client's business): reported like any failure.
      managed = openModule(entry, { policy: opts.policy, registry: opts.registry });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (entry.settings.critical) {
        for (const m of members) m.managed.release();
        throw new ProxyError('CRITICAL_MODULE_FAILED', `critical module '${entry.name}' failed to open: ${error.message}`, entry.name, { cause: error });
      }
      opts.report({ module: entry.name, stage: 'open', error, dropped: true });
      continue;
    }
    if (members.some((m) => m.managed.module === managed.module)) {
      managed.release();
      continue;
    }
    members.push(new Member(entry, managed));
  }
  return members;
}
