// Opening a configured module as the typed async interface: a `remote:` config is reached over
// p11-kit's RPC protocol (as p11-kit does), and any local module can be run out of process in
// `p11-kit remote <path>` with `isolate: true` — a crash in it then takes down that child, not
// this process. Everything else is loaded in-process by the bridge.
import { loadModule } from '../bridge/modules.js';
import type { ModuleEntry } from '../registry/types.js';
import { isolatedModuleAddress } from './address.js';
import type { ReinitPolicy } from './host.js';
import { RemoteModule, type AsyncModule } from './remote-module.js';

export interface OpenModuleOptions {
  /** Run a local module out of process, hosted by `p11-kit remote` (default false). */
  isolate?: boolean;
  /** What the first call after a host loss does (remote and isolated modules); default: the
   *  module's `x-reinit-policy`, else 'explicit'. */
  policy?: ReinitPolicy;
  /** Environment of spawned hosts (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** The p11-kit program that hosts isolated modules (default 'p11-kit', found on PATH). */
  p11kit?: string;
  /** Per-call reply deadline for remote and isolated modules; a late reply counts as host loss. */
  callTimeoutMs?: number;
}

/** A local module (absolute path, or as the bridge resolves it) hosted in its own `p11-kit remote` child. */
export function isolateModule(path: string, opts: Omit<OpenModuleOptions, 'isolate'> & { name?: string; initReserved?: string } = {}): RemoteModule {
  return new RemoteModule({
    remote: isolatedModuleAddress(path, opts.p11kit),
    name: opts.name ?? path.split('/').pop(),
    path,
    policy: opts.policy,
    env: opts.env,
    callTimeoutMs: opts.callTimeoutMs,
    initReserved: opts.initReserved,
  });
}

/**
 * A module of the registry as the typed async interface, opened the way its configuration (and
 * `isolate`) says. (The managed API's openModule refuses `remote:` entries; this is their door.)
 */
export function openAsyncModule(entry: ModuleEntry, opts: OpenModuleOptions = {}): AsyncModule {
  const { remote, initReserved, reinitPolicy } = entry.settings;
  const policy = opts.policy ?? reinitPolicy;
  if (remote !== undefined) {
    return new RemoteModule({ remote, name: entry.name, policy, env: opts.env, callTimeoutMs: opts.callTimeoutMs, initReserved });
  }
  if (!entry.path) throw new Error(`module ${entry.name} has neither a path nor a remote`);
  if (opts.isolate) return isolateModule(entry.path, { ...opts, policy, name: entry.name, initReserved });
  return loadModule(entry.path, { name: entry.name });
}
