// openProxy(): the registry's modules for p11-kit-proxy (or the given ones) behind one
// ProxyModule with its first slot mapping made. Local modules are acquired through the
// process-wide lifecycle; `remote:` modules through p11-kit's RPC client (no lifecycle: see
// remote.ts). openProxyAsync() also lists the remote modules' slots before it returns.
import { openModule } from '../managed/open.js';
import { loadRegistry } from '../registry/load.js';
import type { Diagnostic, ModuleEntry, RegistryOptions } from '../registry/types.js';
import type { Policy } from '../lifecycle/machine.js';
import { openAsyncModule, type RemoteTuning } from '../rpc/open.js';
import { RemoteModule } from '../rpc/remote-module.js';
import { ProxyError } from './errors.js';
import { LocalMember, type Member } from './members.js';
import { ProxyModule } from './proxy.js';
import { RemoteMember } from './remote.js';
import type { ModuleFailure, OpenProxyOptions } from './types.js';

/**
 * Opens the proxy. Throws the registry's RegistryError when p11-kit would load nothing, and a
 * ProxyError (CRITICAL_MODULE_FAILED) when a critical module cannot be opened or listed; any
 * other module that fails is left out or skipped and shows in `failures`. The first mapping
 * lists local modules only: a remote module's slots get their IDs when the async API first
 * lists them (after the local modules' IDs; openProxyAsync keeps module order).
 */
export function openProxy(options: OpenProxyOptions = {}): ProxyModule {
  const proxy = assemble(options);
  try {
    proxy.getSlotList(false); // the first mapping, in module order, as p11-kit-proxy's C_Initialize makes it
  } catch (err) {
    proxy.release();
    throw err;
  }
  return proxy;
}

/**
 * Opens the proxy and makes the first mapping through the async API: remote modules' hosts are
 * started (C_Initialize) and every module's slots get IDs in module order, as p11-kit-proxy
 * numbers them. A critical module that cannot start or list fails the open.
 */
export async function openProxyAsync(options: OpenProxyOptions = {}): Promise<ProxyModule> {
  const proxy = assemble(options);
  try {
    await proxy.async.getSlotList(false);
  } catch (err) {
    await proxy.async.release();
    throw err;
  }
  return proxy;
}

function assemble(options: OpenProxyOptions): ProxyModule {
  let entries: readonly ModuleEntry[];
  let diagnostics: Diagnostic[] = [];
  if (options.modules) {
    entries = options.modules;
  } else {
    const registry = loadRegistry({ ...options.registry, forProxy: true });
    entries = registry.modules;
    diagnostics = registry.diagnostics;
  }
  const early: ModuleFailure[] = [];
  const members = openMembers(entries, { policy: options.policy, remote: options.remote, registry: options.registry, report: (f) => early.push(f) });
  return new ProxyModule(members, diagnostics, early, options);
}

interface OpenMembersOptions {
  policy?: Policy;
  remote?: RemoteTuning;
  registry?: RegistryOptions;
  report(failure: ModuleFailure): void;
}

/**
 * Opens the entries in order; the same shared object configured twice is served once (as
 * p11-kit does). A module that cannot be opened is reported and left out, unless it is
 * critical: then nothing is kept and the proxy does not open.
 */
function openMembers(entries: readonly ModuleEntry[], opts: OpenMembersOptions): Member[] {
  const members: Member[] = [];
  for (const entry of entries) {
    let member: Member;
    try {
      member = entry.settings.remote !== undefined ? openRemote(entry, opts.policy, opts.remote) : new LocalMember(entry, openModule(entry, { policy: opts.policy, registry: opts.registry }));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (entry.settings.critical) {
        for (const m of members) void m.release();
        throw new ProxyError('CRITICAL_MODULE_FAILED', `critical module '${entry.name}' failed to open: ${error.message}`, entry.name, { cause: error });
      }
      opts.report({ module: entry.name, stage: 'open', error, dropped: true });
      continue;
    }
    const local = member instanceof LocalMember ? member : undefined;
    if (local && members.some((m) => m instanceof LocalMember && m.managed.module === local.managed.module)) {
      local.release();
      continue;
    }
    members.push(member);
  }
  return members;
}

/** A remote module's client; its host starts with the proxy's first async call on it. */
function openRemote(entry: ModuleEntry, policy: Policy | undefined, tuning: RemoteTuning = {}): RemoteMember {
  const remote = openAsyncModule(entry, { ...tuning, policy });
  if (!(remote instanceof RemoteModule)) throw new Error(`module '${entry.name}' did not open as a remote module`);
  return new RemoteMember(entry, remote);
}
