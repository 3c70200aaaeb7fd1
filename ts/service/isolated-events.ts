// Slot events of a module watched from a child process (managed/wake-process.ts): the child
// parks the blocking wait in its own instance of the module; each of its wake-ups (and a slow
// safety poll) makes us take the module's events here with CKF_DONT_BLOCK, so slot IDs and
// token state are this service's own. Nothing of ours ever waits inside the module, so closing
// the module finalizes it with no wait parked (OpenSC crashes otherwise; README, Real devices).
// Those reads run off this thread and hold the module (managed/event-reads.ts): OpenSC takes
// seconds over a card just put in, and the module is finalized only after they return.
import { CKF_SLOT, type SlotId } from '../bridge/index.js';
import { MAX_DRAIN, readSlotEvent } from '../managed/event-reads.js';
import type { ManagedModule } from '../managed/module.js';
import { SAFETY_POLL_MS, WakeError, WakeProcess } from '../managed/wake-process.js';
import type { SlotEvent } from './pkcs11-types.js';

/** Children at once in this service: a client opening streams without end gets polling beyond this. */
const MAX_CHILDREN = 8;
let children = 0;
/** Children killed and not yet reaped: a worker thread ending before would leave them zombies. */
const reaping = new Set<Promise<void>>();

/** Settles once every waiter child killed so far is reaped (the service's drain waits for it). */
export function waitersReaped(): Promise<void> {
  return Promise.all(reaping).then(() => undefined);
}

function reap(w: WakeProcess): Promise<void> {
  const done = w.stop();
  reaping.add(done);
  void done.finally(() => reaping.delete(done));
  return done;
}

/** Why the watch stopped: the caller polls after 'failed', and ends after 'aborted'. */
export type WatchEnd = { end: 'aborted' } | { end: 'failed'; error: WakeError };

/** Wake-ups as awaitable signals. */
class Wakes {
  private pending = true; // a first drain, before the child is even up
  private failure?: WakeError;
  private notify?: () => void;
  readonly process: WakeProcess;

  constructor(m: ManagedModule) {
    const poke = () => {
      this.pending = true;
      this.notify?.();
    };
    this.process = new WakeProcess(m, {
      ready: poke,
      wake: poke,
      failed: (f) => {
        this.failure = new WakeError(m.name, f);
        poke();
      },
    });
  }

  /** Resolves after a wake-up, the safety period, a failure or the abort. */
  async next(signal: AbortSignal): Promise<void> {
    if (this.pending || this.failure || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.notify = undefined;
        resolve();
      };
      const t = setTimeout(done, SAFETY_POLL_MS);
      signal.addEventListener('abort', done, { once: true });
      this.notify = done;
    });
  }

  take(): WakeError | undefined {
    this.pending = false;
    return this.failure;
  }
}

/**
 * Yields the module's events until the signal aborts (returns { end: 'aborted' }) or the child
 * fails (returns { end: 'failed' }: the caller polls from then on). Null when no child may be
 * started now (too many): the caller polls.
 */
export async function* isolatedEvents(m: ManagedModule, moduleId: number, signal: AbortSignal): AsyncGenerator<SlotEvent, WatchEnd | null> {
  if (children >= MAX_CHILDREN) return null;
  children++;
  let wakes: Wakes;
  try {
    wakes = new Wakes(m);
  } catch (err) {
    children--;
    throw err;
  }
  // Killed on abort even while the consumer holds us suspended at a yield.
  const stop = () => void reap(wakes.process);
  signal.addEventListener('abort', stop, { once: true });
  try {
    while (!signal.aborted) {
      const error = wakes.take();
      if (error) return { end: 'failed', error };
      for (let i = 0; i < MAX_DRAIN && !signal.aborted; i++) {
        const slot: SlotId | null = await readSlotEvent(m);
        if (slot === null || signal.aborted) break;
        const info = await m.async.getSlotInfo(slot);
        if (signal.aborted) break;
        yield { module: moduleId, slot, tokenPresent: (info.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0, via: 'isolated' };
      }
      await wakes.next(signal);
    }
    return { end: 'aborted' };
  } finally {
    signal.removeEventListener('abort', stop);
    children--;
    await reap(wakes.process);
  }
}
