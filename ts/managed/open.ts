// openModule(): a module by registry name, registry entry or path, acquired through the
// process-wide lifecycle.
import { loadModule } from '../bridge/modules.js';
import { ModuleLifecycle } from '../lifecycle/manager.js';
import type { Policy } from '../lifecycle/machine.js';
import { loadRegistry } from '../registry/load.js';
import type { ModuleEntry, RegistryOptions } from '../registry/types.js';
import { UnknownModuleError } from '../registry/errors.js';
import { ManagedModule } from './module.js';
import { lifecycleTarget } from './target.js';
import { globalTrace, stderrSink, traceModule, type TraceSink } from '../trace/trace.js';

export interface OpenModuleOptions {
  /** This owner's re-entry policy after a generation change; default the module's `x-reinit-policy`, else explicit. */
  policy?: Policy;
  /** pReserved for C_Initialize; default the module's `x-init-reserved`. */
  initReserved?: string;
  /** Where to look a module name up (registry options). */
  registry?: RegistryOptions;
  /**
   * Trace every call into the module (p11-kit's `log-calls`): true for stderr, or a sink.
   * Default: the module's effective `log-calls` setting, or the process-wide switch (setGlobalTrace).
   */
  trace?: boolean | TraceSink;
}

function isPath(source: string): boolean {
  return source.includes('/') || source.endsWith('.so');
}

/** The registry entry named `name`, as loadRegistry() would return it. */
export function findModuleEntry(name: string, registry: RegistryOptions = {}): ModuleEntry {
  const modules = loadRegistry(registry).modules;
  const entry = modules.find((m) => m.name === name);
  if (!entry) throw new UnknownModuleError(name, modules.map((m) => m.name));
  return entry;
}

/**
 * Opens a module for one owner. The first owner in the process (any thread) makes the real
 * C_Initialize; the last release makes the real C_Finalize.
 */
export function openModule(source: string | ModuleEntry, opts: OpenModuleOptions = {}): ManagedModule {
  const entry = typeof source === 'string' ? (isPath(source) ? undefined : findModuleEntry(source, opts.registry)) : source;
  if (entry?.settings.remote !== undefined) {
    throw new Error(`p11kit-wasm: module '${entry.name}' is remote (${entry.settings.remote}); open it with the RPC client`);
  }
  const path = entry ? entry.path! : (source as string);
  const module = loadModule(path, { name: entry?.name, modulePath: opts.registry?.modulePath });
  const sink = typeof opts.trace === 'function' ? opts.trace : opts.trace || entry?.settings.logCalls ? stderrSink : globalTrace();
  if (sink && opts.trace !== false) traceModule(module, sink);
  const policy = opts.policy ?? entry?.settings.reinitPolicy ?? 'explicit';
  const lifecycle = ModuleLifecycle.of(lifecycleTarget(module, opts.initReserved ?? entry?.settings.initReserved), policy);
  // The policy is the owner's: it only decides what this owner does when it finds the module
  // finalized behind its back, so owners of one module may differ.
  return new ManagedModule(module, lifecycle.acquire(policy), entry);
}
