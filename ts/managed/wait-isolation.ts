// Which modules get their blocking slot-event waits in a child process (wake-process.ts) when
// the caller lets us choose. PKCS#11 ends a blocking C_WaitForSlotEvent only with C_Finalize;
// a module is listed here when its finalize is known not to survive its own waiting thread.
import type { ModuleInfo } from '../bridge/info.js';
import type { ManagedModule } from './module.js';

/**
 * How a blocking wait is made: 'in-process' parks it on one of the bridge's dedicated threads
 * (C_Finalize ends it); 'isolated' parks it in a child process that only wakes us up;
 * 'auto' isolates the modules listed below and keeps the others in-process.
 */
export type WaitPlacement = 'auto' | 'in-process' | 'isolated';

/**
 * OpenSC (0.23 measured): C_Finalize cancels the PC/SC wait, then frees its slots and context
 * while the waiting thread returns into them — SIGSEGV in 3 of 8 releases with a wait parked.
 */
const FINALIZE_UNSAFE: ReadonlyArray<(info: ModuleInfo) => boolean> = [(info) => info.manufacturerID.trim() === 'OpenSC Project'];

/** Whether a blocking wait on this module goes to a child process under `placement`. */
export function isolatesWaits(m: ManagedModule, placement: WaitPlacement = 'auto'): boolean {
  if (placement !== 'auto') return placement === 'isolated';
  let info: ModuleInfo;
  try {
    info = m.getInfo();
  } catch {
    return false; // no answer, no known module: its own wait, as before
  }
  return FINALIZE_UNSAFE.some((unsafe) => unsafe(info));
}
