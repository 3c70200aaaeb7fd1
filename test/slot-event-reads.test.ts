// Slot-event reads that take long (OpenSC reads a card just put in inside its
// C_WaitForSlotEvent(CKF_DONT_BLOCK): ~4 s under load) run off the JS thread and hold the
// module: the thread keeps running while one is inside the module, and a release made then
// finalizes only after it has returned. The fixture (test/fixtures/event-module.c) makes such a
// read sleep without its lock, so a C_Finalize during it would run — and be counted.
// Through the proxy (polled and isolated) and the service (polled and isolated).
import koffi from 'koffi';
import { afterAll, describe, expect, it } from 'vitest';
import { CKF_MISC, CKR, createPkcs11Worker, openProxy, type SlotEvent } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';

/** How long a read with an event sleeps: long enough for a loaded machine's timers to fire several times. */
const SLOW_MS = 800;
/** Timer ticks (or service answers) a slow read must let through at least; a blocked thread lets none. */
const MIN_TICKS = 3;

interface Fixture {
  path: string;
  /** A configuration tree with this module alone. */
  tree: ConfTree;
  raise(slot: number): number;
  slowReads(ms: number): void;
  reading(): number;
  overlaps(): { finalizes: number; finalizeWhileReading: number; callsUninitialized: number };
}

const trees: ConfTree[] = [];
afterAll(() => {
  for (const t of trees) t.cleanup();
});

/** A private copy of the event fixture (its own state) in a tree of its own as module `name`, with its controls. */
function fixture(name: string): Fixture {
  const tree = createConfTree();
  trees.push(tree);
  const path = tree.copyFixture('event-module.so', `${name}.so`);
  tree.module(name, `module: ${path}\n`);
  const lib = koffi.load(path);
  const overlaps = lib.func('void event_module_overlaps(_Out_ unsigned long *out)') as (out: number[]) => void;
  return {
    path,
    tree,
    raise: lib.func('int event_module_raise(unsigned long)'),
    slowReads: lib.func('void event_module_slow_reads(long)'),
    reading: lib.func('unsigned long event_module_reading(void)'),
    overlaps: () => {
      const out = [0, 0, 0];
      overlaps(out);
      const [finalizes, finalizeWhileReading, callsUninitialized] = out.map(Number);
      return { finalizes, finalizeWhileReading, callsUninitialized };
    },
  };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Counts this thread's timer ticks that find a slow read inside the module, until stop(). */
function ticksDuringReads(f: Fixture): { stop(): number } {
  let ticks = 0;
  const t = setInterval(() => {
    if (f.reading() > 0) ticks++;
  }, 5);
  return {
    stop: () => {
      clearInterval(t);
      return ticks;
    },
  };
}

describe('the proxy', () => {
  it('polled: a slow CKF_DONT_BLOCK read (in a wait and in a poll) leaves the JS thread running; the event is delivered once', async () => {
    const f = fixture('polled');
    const p = openProxy({ registry: f.tree.registry, pollIntervalMs: 20, blockingWaits: 0 });
    try {
      const [slot11, slot12] = [11, 12].map((real) => p.getSlotList().find((s) => p.slotOwner(s).moduleSlot === real)!);
      expect(await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)).toBeNull();
      f.slowReads(SLOW_MS);

      const ticks = ticksDuringReads(f);
      const next = p.waitForSlotEvent();
      expect(f.raise(11)).toBe(0);
      expect(await next).toBe(slot11);
      expect(ticks.stop()).toBeGreaterThanOrEqual(MIN_TICKS);

      const pollTicks = ticksDuringReads(f);
      expect(f.raise(12)).toBe(0);
      expect(await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)).toBe(slot12);
      expect(pollTicks.stop()).toBeGreaterThanOrEqual(MIN_TICKS);
      expect(await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)).toBeNull();
      expect(p.failures).toEqual([]);
    } finally {
      await p.async.release();
    }
  });

  it('release() during a slow read finalizes only after the read returned; no call after the finalize', async () => {
    const f = fixture('released');
    const p = openProxy({ registry: f.tree.registry, pollIntervalMs: 20, blockingWaits: 0 });
    f.slowReads(2 * SLOW_MS);
    const pending = p.waitForSlotEvent();
    pending.catch(() => undefined);
    expect(f.raise(11)).toBe(0);
    await until('a slow read inside the module', () => f.reading() === 1);
    const before = f.overlaps();
    p.release();
    const inside = f.reading();
    const finalizedAtOnce = f.overlaps().finalizes - before.finalizes;
    const released = p.async.release();
    await expect(pending).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    await released;
    expect(inside).toBe(1);
    expect(finalizedAtOnce).toBe(0); // the read holds the module
    expect(f.reading()).toBe(0);
    expect(f.overlaps()).toEqual({ finalizes: before.finalizes + 1, finalizeWhileReading: 0, callsUninitialized: 0 });
  });

  it('isolated: a wake-up drain that reads slowly leaves the JS thread running', async () => {
    const f = fixture('isolated');
    const p = openProxy({ registry: f.tree.registry, pollIntervalMs: 20, waits: 'isolated' });
    try {
      const slot13 = p.getSlotList().find((s) => p.slotOwner(s).moduleSlot === 13)!;
      const next = p.waitForSlotEvent();
      // The child's instance of the module has no events of ours: its 'ready' and the safety poll drain ours.
      await until('the waiter child', () => p.modules[0].events === 'isolated' && p.modules[0].watcher?.ready === true);
      f.slowReads(SLOW_MS);
      const ticks = ticksDuringReads(f);
      expect(f.raise(13)).toBe(0);
      expect(await next).toBe(slot13);
      expect(ticks.stop()).toBeGreaterThanOrEqual(MIN_TICKS);
      expect(await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)).toBeNull();
      expect(p.failures).toEqual([]);
    } finally {
      await p.async.release();
    }
  });
});

describe('the service', () => {
  /** Service answers (pings) while a slow read is inside the module. */
  async function pingsDuringRead(f: Fixture, ping: () => Promise<unknown>): Promise<number> {
    await until('a slow read inside the module', () => f.reading() === 1);
    let answers = 0;
    while (f.reading() > 0) {
      await ping();
      if (f.reading() > 0) answers++;
    }
    return answers;
  }

  for (const mode of ['poll', 'isolated'] as const) {
    it(`${mode}: the service answers while a slow read is inside the module; closing then finalizes after it, with no call after`, async () => {
      const f = fixture(`service-${mode}`);
      const p11 = createPkcs11Worker();
      let closed = false;
      try {
        const mod = await p11.openModule(f.path);
        f.slowReads(SLOW_MS);
        expect(f.raise(11)).toBe(0); // before the stream: its first drain reads it
        const events = mod.slotEvents({ mode, intervalMs: 20 });
        const first = events.next();
        expect(await pingsDuringRead(f, () => p11.ping())).toBeGreaterThanOrEqual(MIN_TICKS);
        expect((await first).value).toEqual({ module: mod.id, slot: 11, tokenPresent: true, via: mode } satisfies SlotEvent);

        // A second event, read slowly; the service is closed while the read is inside the module.
        const second = events.next();
        second.catch(() => undefined);
        expect(f.raise(12)).toBe(0);
        await until('a slow read inside the module', () => f.reading() === 1);
        const before = f.overlaps();
        await p11.close();
        closed = true;
        expect(f.reading()).toBe(0);
        expect(f.overlaps()).toEqual({ finalizes: before.finalizes + 1, finalizeWhileReading: 0, callsUninitialized: 0 });
      } finally {
        if (!closed) await p11.close();
      }
    });
  }
});
