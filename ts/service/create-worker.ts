// createPkcs11Worker(): the PKCS#11 service in a worker thread of this process, supervised.
// Every module the service opens is also loaded (not initialized) in the calling thread: that
// keeps its shared object mapped if the worker dies — a worker's koffi lets go of its libraries
// when its isolate ends — and gives the supervisor what it needs to reclaim the dead worker's
// lifecycle holdings at once (ModuleLifecycle.sweep()).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkerOptions } from 'node:worker_threads';
import { loadModule } from '../bridge/modules.js';
import { ModuleLifecycle } from '../lifecycle/manager.js';
import { lifecycleTarget } from '../managed/target.js';
import { FULL_GRANT, type ClientGrant } from './grant.js';
import './known-errors.js';
import { Pkcs11Client } from './pkcs11-client.js';
import type { Pkcs11Service } from './pkcs11-host.js';
import type { ModuleRef } from './pkcs11-types.js';
import { Supervisor, type RestartPolicy } from './supervisor.js';
import { spawnWorkerHost } from './worker-host.js';

export interface Pkcs11WorkerOptions {
  /** Start a new generation when the worker dies unexpectedly (default: no). */
  readonly restart?: boolean | RestartPolicy;
  /** Batched calls per message (default 32). */
  readonly maxBatch?: number;
  /**
   * The single-part byte operations of a session (generateRandom, digest, sign, verify, encrypt,
   * decrypt) through a shared-memory ring instead of messages (default true; ring-client.ts).
   */
  readonly ring?: boolean;
  /** How long close() lets the service release its modules before terminating it (default 2000 ms). */
  readonly drainTimeoutMs?: number;
  /** Passed to `new Worker()` (resourceLimits, env, name...). */
  readonly worker?: Omit<WorkerOptions, 'eval'>;
  /**
   * What the service in the worker may do (grant.ts). Default: everything, by name or path — the
   * worker runs the application's own code. Narrow it when the client is less trusted.
   */
  readonly grant?: ClientGrant;
  /** The worker's entry; default the compiled worker-main.js next to this file (or under dist/lib when running from ts/). */
  readonly entry?: URL | string;
}

function defaultEntry(): URL {
  const sibling = new URL('./worker-main.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  // Running from TypeScript sources (tests): the built library holds the worker's JavaScript.
  const built = new URL('../../dist/lib/service/worker-main.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error('p11kit-wasm: the service worker entry (worker-main.js) is not built; run `make ts`');
}

/** Starts a PKCS#11 service worker and returns its client. */
export function createPkcs11Worker(opts: Pkcs11WorkerOptions = {}): Pkcs11Client {
  const entry = opts.entry ?? defaultEntry();
  const lifecycles = new Map<string, ModuleLifecycle>();
  const supervisor = new Supervisor<Pkcs11Service>({
    spawn: () => spawnWorkerHost(entry, { ...opts.worker, workerData: { p11wGrant: opts.grant ?? FULL_GRANT } }),
    restart: opts.restart,
    drain: 'drain',
    drainTimeoutMs: opts.drainTimeoutMs,
    // openModule loads the library in the worker: see SupervisorOptions.terminateAfter.
    terminateAfter: ['openModule'],
    maxBatch: opts.maxBatch,
    ring: opts.ring ?? true,
    reclaim: () => {
      for (const lc of lifecycles.values()) lc.sweep();
    },
  });
  const track = (path: string, name: string | undefined, initReserved: string | undefined, policy: ModuleRef['policy']) => {
    const module = loadModule(path, { name });
    if (!lifecycles.has(module.identity)) {
      lifecycles.set(module.identity, ModuleLifecycle.of(lifecycleTarget(module, initReserved), policy));
    }
  };
  return new Pkcs11Client(supervisor, {
    // A module given by path is mapped here before the worker can hold it, so that even a
    // worker dying mid-open leaves nothing unreclaimable. (Registry names are resolved by the worker.)
    moduleOpening(spec) {
      if (spec.source.includes('/')) track(spec.source, undefined, spec.initReserved, spec.policy ?? 'explicit');
    },
    moduleOpened(ref) {
      track(ref.path, ref.name, ref.initReserved, ref.policy);
    },
  });
}
