// The lifecycle's view of a bridge module: its real C_Initialize / C_Finalize / C_CloseSession
// as CK_RVs, and the process-wide identity of its shared object.
import { asSessionHandle } from '../bridge/handles.js';
import type { Pkcs11Module } from '../bridge/module.js';
import { pinLoadedLibraries } from '../bridge/pin-libraries.js';
import type { LifecycleTarget } from '../lifecycle/manager.js';

function rvOf(fn: () => void): number {
  try {
    fn();
    return 0;
  } catch (err) {
    const rv = (err as { rv?: unknown }).rv;
    if (typeof rv === 'number') return rv;
    throw err;
  }
}

export function lifecycleTarget(module: Pkcs11Module, initReserved?: string): LifecycleTarget {
  return {
    identity: module.identity,
    name: module.name,
    initialize: () => rvOf(() => module.initialize({ reserved: initReserved ?? null })),
    finalize: () => {
      // A blocking wait that this finalize ends must not return into a library it unloads.
      pinLoadedLibraries();
      return rvOf(() => module.finalize());
    },
    closeSession: (handle) => rvOf(() => module.closeSession(asSessionHandle(handle))),
    initReserved,
  };
}
