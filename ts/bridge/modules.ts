// loadModule(): one module object per shared object per isolate. The same realpath (however
// it was reached: symlinks, relative to the module directory) gives the same object, which
// pins the library for as long as the object lives (see loader.ts).
import { defaultLocations } from '../registry/paths.js';
import { loadLibrary, resolveModulePath } from './loader.js';
import { onUnload, Pkcs11Module, type ModuleOptions } from './module.js';
import { existsSync, realpathSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { lanes } from './lanes.js';

export interface LoadModuleOptions extends ModuleOptions {
  /** Directory for relative paths (p11-kit's module directory); default: the platform's. */
  modulePath?: string;
}

const byRealPath = new Map<string, Pkcs11Module>();
onUnload((m) => {
  if (byRealPath.get(m.realPath) === m) byRealPath.delete(m.realPath);
});

/**
 * Loads a PKCS#11 module (a path with a slash is relative to the current directory, a bare file
 * name is looked up in the module directory), or returns the
 * object already loaded for the same shared object. Throws ModuleLoadError naming the path and
 * the reason. Never calls C_Initialize.
 */
export function loadModule(path: string, opts: LoadModuleOptions = {}): Pkcs11Module {
  const resolved = resolveModulePath(path, opts.modulePath ?? defaultLocations().modulePath);
  if (existsSync(resolved)) {
    const known = byRealPath.get(realpathSync(resolved));
    if (known) return known;
  }
  const module = new Pkcs11Module(loadLibrary(resolved), opts);
  byRealPath.set(module.realPath, module);
  // A worker may be terminated at any moment after this returns: its blocking-call thread must
  // not be built later, under a call (see dedicated-threads.ts). The main thread is never
  // terminated, so it starts that thread on its first blocking call instead.
  if (!isMainThread) lanes.dedicated.prepare(module.dedicatedPreparation());
  return module;
}

/** The modules loaded in this isolate. */
export function loadedModules(): Pkcs11Module[] {
  return [...byRealPath.values()];
}
