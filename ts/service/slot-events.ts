// Slot events as an async iterable. A blocking C_WaitForSlotEvent(0) goes through the bridge's
// async form (through the managed module's owner), which runs it on a dedicated thread (never on the service's own thread, never on
// libuv's shared pool), so every other call of the service keeps going while it waits. Modules
// that cannot block (SoftHSM2, NSS softokn answer CKR_FUNCTION_NOT_SUPPORTED) are polled with
// CKF_DONT_BLOCK instead when the mode is 'auto'. Modules with no C_WaitForSlotEvent at all
// (ykcs11 answers CKR_FUNCTION_NOT_SUPPORTED even with CKF_DONT_BLOCK) are polled by comparing
// each slot's CKF_TOKEN_PRESENT between rounds, unless the mode is 'block'.
//
// A blocking wait ends only with an event or with the module's C_Finalize (PKCS#11 makes a
// blocked caller return CKR_CRYPTOKI_NOT_INITIALIZED then). Cancelling the stream stops it
// from yielding at once, but the dedicated thread stays parked until one of those happens.
// Modules whose C_Finalize does not survive that (OpenSC) are watched from a child process in
// 'auto' mode instead (isolated-events.ts), as is any module in 'isolated' mode; if the child
// fails, a warning says so and the module is polled.
//
// Polling is off this thread too: CKF_DONT_BLOCK reads, slot lists and slot infos are the
// bridge's async calls, holds of the module (OpenSC spends seconds in them over a card just
// put in; the module is finalized only after they return).
import { CKF_SLOT, CKR, type SlotId } from '../bridge/index.js';
import { readSlotEvent } from '../managed/event-reads.js';
import type { ManagedModule } from '../managed/index.js';
import { isolatesWaits } from '../managed/wait-isolation.js';
import { isolatedEvents, type WatchEnd } from './isolated-events.js';
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

type Presence = Map<SlotId, boolean>;

async function presence(m: ManagedModule): Promise<Presence> {
  const out: Presence = new Map();
  for (const s of await m.async.getSlotList(false)) {
    try {
      out.set(s, ((await m.async.getSlotInfo(s)).flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0);
    } catch (err) {
      if (rvOf(err) !== CKR.CKR_SLOT_ID_INVALID) throw err; // gone since the listing: as if not listed
    }
  }
  return out;
}

/** Slots whose token came or went between two rounds (a slot that vanished with its token counts as a removal). */
function changes(before: Presence, now: Presence): Array<[SlotId, boolean]> {
  const out: Array<[SlotId, boolean]> = [];
  for (const [slot, present] of now) if ((before.get(slot) ?? false) !== present) out.push([slot, present]);
  for (const [slot, present] of before) if (present && !now.has(slot)) out.push([slot, false]);
  return out;
}

/** The isolated watch's events, until the stream is cancelled or the module is to be polled instead. */
async function* isolated(m: ManagedModule, moduleId: number, signal: AbortSignal): AsyncGenerator<SlotEvent> {
  const watch = isolatedEvents(m, moduleId, signal);
  try {
    for (;;) {
      let r: IteratorResult<SlotEvent, WatchEnd | null>;
      try {
        r = await watch.next();
      } catch (err) {
        if (rvOf(err) === CKR.CKR_FUNCTION_NOT_SUPPORTED) return; // no events at all: polled below
        throw err;
      }
      if (!r.done) {
        yield r.value;
        continue;
      }
      const end = r.value;
      if (end?.end === 'failed' && end.error.kind !== 'unsupported') process.emitWarning(end.error.message, { code: 'P11KIT_SLOT_WATCH_FAILED' });
      return;
    }
  } finally {
    await watch.return(null);
  }
}

export async function* slotEventSource(m: ManagedModule, moduleId: number, opts: SlotEventOptions, signal: AbortSignal): AsyncGenerator<SlotEvent> {
  const intervalMs = Math.max(1, opts.intervalMs ?? 250);
  const mode = opts.mode ?? 'auto';
  const isolate = mode === 'isolated' || (mode === 'auto' && isolatesWaits(m, 'auto'));
  if (isolate) {
    yield* isolated(m, moduleId, signal);
    if (signal.aborted) return;
  }
  let via: 'block' | 'poll' = mode === 'poll' || isolate ? 'poll' : 'block';
  let seen: Presence | undefined;
  while (!signal.aborted) {
    let slot: SlotId | null;
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
    } else if (seen) {
      await sleep(intervalMs, signal);
      if (signal.aborted) return;
      const now = await presence(m);
      if (signal.aborted) return;
      const changed = changes(seen, now);
      seen = now;
      for (const [s, tokenPresent] of changed) yield { module: moduleId, slot: s, tokenPresent, via };
      continue;
    } else {
      try {
        slot = await readSlotEvent(m);
      } catch (err) {
        if (signal.aborted) return;
        if (opts.mode !== 'block' && rvOf(err) === CKR.CKR_FUNCTION_NOT_SUPPORTED) {
          seen = await presence(m); // no events at all: token presence, compared from now on
          continue;
        }
        throw err;
      }
      if (slot === null) {
        await sleep(intervalMs, signal);
        continue;
      }
    }
    if (signal.aborted || slot === null) return;
    const s = slot;
    const info = await m.async.getSlotInfo(s);
    if (signal.aborted) return;
    yield { module: moduleId, slot: s, tokenPresent: (info.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0, via };
  }
}
