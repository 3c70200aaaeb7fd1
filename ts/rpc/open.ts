// Opening a configured module as the typed async interface: a `remote:` config is reached over
// p11-kit's RPC protocol (as p11-kit does), and any local module can be run out of process in
// `p11-kit remote <path>` with `isolate: true` — a crash in it then takes down that child, not
// this process. Everything else is loaded in-process by the bridge.
import { loadModule } from '../bridge/modules.js';
import { remoteTuning } from '../registry/remote.js';
import type { ModuleEntry } from '../registry/types.js';
import { isolatedModuleAddress } from './address.js';
import type { ReinitPolicy, RemoteOptions } from './host.js';
import { RemoteModule, type AsyncModule } from './remote-module.js';

/** Deadlines, limits and restart back-off of a remote or isolated module (see RemoteOptions). */
export type RemoteTuning = Pick<
  RemoteOptions,
  'callTimeoutMs' | 'connectTimeoutMs' | 'releaseTimeoutMs' | 'exitGraceMs' | 'limits' | 'restartDelayMs' | 'restartMaxDelayMs'
>;

export interface OpenModuleOptions extends RemoteTuning {
  /** Run a local module out of process, hosted by `p11-kit remote` (default false). */
  isolate?: boolean;
  /** What the first call after a host loss does (remote and isolated modules); default: the
   *  module's `x-reinit-policy`, else 'explicit'. */
  policy?: ReinitPolicy;
  /** Environment of spawned hosts (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** The p11-kit program that hosts isolated modules (default 'p11-kit', found on PATH). */
  p11kit?: string;
}

const tuningOf = (o: RemoteTuning): RemoteTuning => ({
  callTimeoutMs: o.callTimeoutMs,
  connectTimeoutMs: o.connectTimeoutMs,
  releaseTimeoutMs: o.releaseTimeoutMs,
  exitGraceMs: o.exitGraceMs,
  limits: o.limits,
  restartDelayMs: o.restartDelayMs,
  restartMaxDelayMs: o.restartMaxDelayMs,
});

/** A module's `x-rpc-*` options, overridden by what the caller passed. */
function entryTuning(entry: ModuleEntry, opts: RemoteTuning): RemoteTuning {
  const { maxPayload, ...times } = remoteTuning(entry.name, entry.options);
  const given = Object.fromEntries(Object.entries(tuningOf(opts)).filter(([, v]) => v !== undefined));
  const limits = maxPayload === undefined ? opts.limits : { maxPayload, ...opts.limits };
  return { ...times, ...given, limits };
}

/** A local module (absolute path, or as the bridge resolves it) hosted in its own `p11-kit remote` child. */
export function isolateModule(path: string, opts: Omit<OpenModuleOptions, 'isolate'> & { name?: string; initReserved?: string } = {}): RemoteModule {
  return new RemoteModule({
    remote: isolatedModuleAddress(path, opts.p11kit),
    name: opts.name ?? path.split('/').pop(),
    path,
    policy: opts.policy,
    env: opts.env,
    initReserved: opts.initReserved,
    ...tuningOf(opts),
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
    return new RemoteModule({ remote, name: entry.name, policy, env: opts.env, initReserved, ...entryTuning(entry, opts) });
  }
  if (!entry.path) throw new Error(`module ${entry.name} has neither a path nor a remote`);
  if (opts.isolate) return isolateModule(entry.path, { ...opts, ...entryTuning(entry, opts), policy, name: entry.name, initReserved });
  return loadModule(entry.path, { name: entry.name });
}
