// openProxy(): the registry's modules for p11-kit-proxy (or the given ones), each acquired
// through the process-wide lifecycle, behind one ProxyModule with its first slot mapping made.
import { loadRegistry } from '../registry/load.js';
import type { Diagnostic, ModuleEntry } from '../registry/types.js';
import { openMembers } from './members.js';
import { ProxyModule } from './proxy.js';
import type { ModuleFailure, OpenProxyOptions } from './types.js';

/**
 * Opens the proxy. Throws the registry's RegistryError when p11-kit would load nothing, and a
 * ProxyError (CRITICAL_MODULE_FAILED) when a critical module cannot be opened or listed; any
 * other module that fails is left out or skipped and shows in `failures`.
 */
export function openProxy(options: OpenProxyOptions = {}): ProxyModule {
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
  const members = openMembers(entries, { policy: options.policy, registry: options.registry, report: (f) => early.push(f) });
  const proxy = new ProxyModule(members, diagnostics, early, options);
  try {
    proxy.getSlotList(false); // the first mapping, in module order, as p11-kit-proxy's C_Initialize makes it
  } catch (err) {
    proxy.release();
    throw err;
  }
  return proxy;
}
