// Slot events as an async iterable. A blocking C_WaitForSlotEvent(0) goes through the bridge's
// async form (through the managed module's owner), which runs it on a dedicated thread (never on the service's own thread, never on
// libuv's shared pool), so every other call of the service keeps going while it waits. Modules
// that cannot block (SoftHSM2, NSS softokn answer CKR_FUNCTION_NOT_SUPPORTED) are polled with
// CKF_DONT_BLOCK instead when the mode is 'auto'.
//
// A blocking wait ends only with an event or with the module's C_Finalize (PKCS#11 makes a
// blocked caller return CKR_CRYPTOKI_NOT_INITIALIZED then). Cancelling the stream stops it
// from yielding at once, but the dedicated thread stays parked until one of those happens.
import { CKF_MISC, CKF_SLOT, CKR } from '../bridge/index.js';
import type { ManagedModule } from '../managed/index.js';
import type { SlotEvent, SlotEventOptions } from './pkcs11-types.js';

const rvOf = (err: unknown): number | undefined => (err as { rv?: number } | null)?.rv;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export async function* slotEventSource(m: ManagedModule, moduleId: number, opts: SlotEventOptions, signal: AbortSignal): AsyncGenerator<SlotEvent> {
  const intervalMs = Math.max(1, opts.intervalMs ?? 250);
  let via: 'block' | 'poll' = opts.mode === 'poll' ? 'poll' : 'block';
  while (!signal.aborted) {
    let slot: number | null;
    if (via === 'block') {
      try {
        slot = await m.async.waitForSlotEvent(0);
      } catch (err) {
        if (signal.aborted) return;
        if (opts.mode !== 'block' && rvOf(err) === CKR.CKR_FUNCTION_NOT_SUPPORTED) {
          via = 'poll';
          continue;
        }
        throw err;
      }
    } else {
      slot = m.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK);
      if (slot === null) {
        await sleep(intervalMs, signal);
        continue;
      }
    }
    if (signal.aborted || slot === null) return;
    const s = slot;
    const info = m.getSlotInfo(s);
    yield { module: moduleId, slot: s, tokenPresent: (info.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0, via };
  }
}
