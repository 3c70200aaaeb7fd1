import type { LibraryHandle } from 'koffi';
import type { LifecycleTarget } from '../../ts/lifecycle/manager.js';

export interface RawModule extends LifecycleTarget {
  lib: LibraryHandle;
  getInfo(): number;
  slotList(): { rv: number; slots: number[] };
  openSession(slot: number): { rv: number; handle: bigint };
  generateRandom(handle: bigint, len: number): number;
}
export function openRawModule(path: string, reserved?: string): RawModule;
