// CKF_DONT_BLOCK reads of a module's slot events, made off the JS thread. Such a read can take
// seconds (OpenSC reads a card just put in inside the call: ~4 s measured under load), which
// on the JS thread is a frozen Electron main process. Each read is the bridge's async call (a
// koffi worker thread) and a hold of the owner: a release finalizes only once it has returned.
//
// Reads of one module are made one at a time, in the order they were asked for, whoever asks
// (the proxy's event source, each of the service's event streams): two reads in flight could
// hand their events back in the other order.
import { CKF_MISC } from '../bridge/ckf.js';
import type { SlotId } from '../bridge/handles.js';
import type { ManagedModule } from './module.js';

/** Events taken from one module per drain at most: a module that never says CKR_NO_EVENT cannot hold us. */
export const MAX_DRAIN = 64;

/** The last read asked of each module, settled or not. */
const lastRead = new WeakMap<ManagedModule, Promise<unknown>>();

const ignore = () => undefined;

/** The module's next queued slot event (null: none now), read after every read asked before. */
export function readSlotEvent(m: ManagedModule): Promise<SlotId | null> {
  const before = lastRead.get(m);
  const read = before ? before.then(() => m.async.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)) : m.async.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK);
  const settled = read.then(ignore, ignore);
  lastRead.set(m, settled);
  void settled.then(() => {
    if (lastRead.get(m) === settled) lastRead.delete(m);
  });
  return read;
}
