// Slot events through the service, with a fixture module that raises them
// (test/fixtures/event-module.c): a blocking C_WaitForSlotEvent on the worker's dedicated
// thread while other calls go on, polling, events raised by the module's own thread, the
// stream ending when the worker dies, and SoftHSM2's typed refusal (it cannot wait).
// Needs the built fixture and library: make native ts.
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPkcs11Worker, Pkcs11Error, ServiceDeadError, type SlotEvent } from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const EVENTS = new URL('../dist/native/fixtures/event-module.so', import.meta.url).pathname;

// The fixture's test controls, on the same mapping of the library the workers use.
const fixture = koffi.load(EVENTS);
const raise = fixture.func('int event_module_raise(unsigned long slot)') as (slot: number) => number;
const blocked = fixture.func('unsigned long event_module_blocked(void)') as () => number;
const statsFn = fixture.func('void event_module_stats(_Out_ unsigned long *out)') as (out: number[]) => void;
const stats = () => {
  const out = [0, 0, 0, 0, 0];
  statsFn(out);
  const [waits, blockedNow, delivered, wokenByFinalize, dropped] = out.map(Number);
  return { waits, blockedNow, delivered, wokenByFinalize, dropped };
};

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

let hsm: SoftHsm;
beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('events', '12345678', '1234');
});
afterAll(() => hsm.cleanup());

describe('slot events through the service', () => {
  it('blocking wait on a dedicated thread: events arrive, other calls are not stalled, finalize ends the wait', async () => {
    const p11 = createPkcs11Worker();
    const mod = await p11.openModule(EVENTS);
    expect((await mod.slots(true)).map((s) => s.slot)).toEqual([10, 12]);
    const events = mod.slotEvents({ mode: 'block' });
    const first = events.next();
    await until(() => blocked() === 1); // the service's wait is parked in the module
    // While it waits, the service answers everything else.
    const t0 = performance.now();
    const slots = await mod.slots(false);
    const pong = await p11.ping();
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(slots.map((s) => s.slot)).toEqual([10, 11, 12, 13]);
    expect(pong.modules).toBe(1);
    expect(blocked()).toBe(1);

    expect(raise(11)).toBe(0); // a token arrives in slot 11
    expect((await first).value).toEqual({ module: mod.id, slot: 11, tokenPresent: true, via: 'block' });
    expect(raise(10)).toBe(0); // the token of slot 10 leaves
    expect(raise(11)).toBe(0); // and the one in 11 again
    const seen: SlotEvent[] = [];
    for await (const ev of events) {
      seen.push(ev);
      if (seen.length === 2) break;
    }
    expect(seen.map((e) => [e.slot, e.tokenPresent])).toEqual([
      [10, false],
      [11, false],
    ]);
    expect((await mod.slots(true)).map((s) => s.slot)).toEqual([12]);
    // Cancelled, but its thread is still parked in C_WaitForSlotEvent: the module's
    // C_Finalize (the last owner's release, in close()) is what wakes it.
    await until(() => blocked() === 1);
    const before = stats();
    await p11.close();
    expect(blocked()).toBe(0);
    expect(stats().wokenByFinalize).toBe(before.wokenByFinalize + 1);
  });

  it('events raised by the module itself (interval=20 in pReserved), polling mode', async () => {
    const p11 = createPkcs11Worker();
    const mod = await p11.openModule({ source: EVENTS, initReserved: 'interval=20' });
    const seen: SlotEvent[] = [];
    for await (const ev of mod.slotEvents({ mode: 'poll', intervalMs: 5 })) {
      seen.push(ev);
      if (seen.length === 6) break;
    }
    // The module's thread toggles 10, 11, 12, 13, 10, 11, ... starting from 10 and 12 present.
    expect(seen.map((e) => e.slot)).toEqual([10, 11, 12, 13, 10, 11]);
    expect(seen.map((e) => e.tokenPresent)).toEqual([false, true, false, true, true, false]);
    expect(seen.every((e) => e.via === 'poll')).toBe(true);
    await p11.close();
  });

  it('a worker killed while its stream waits: the iterator throws ServiceDeadError', async () => {
    const p11 = createPkcs11Worker();
    const mod = await p11.openModule(EVENTS);
    const it = mod.slotEvents({ mode: 'poll', intervalMs: 10 });
    const outcome = it.next().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 50));
    await p11.kill('stream test');
    const err = await outcome;
    expect(err).toBeInstanceOf(ServiceDeadError);
    expect(err).toMatchObject({ reason: 'stream test', pending: true });
    await p11.close();
  });

  it('SoftHSM2 cannot block for slot events: typed Pkcs11Error in block mode, quiet polling in auto mode', async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(SOFTHSM_MODULE);
      const err = await mod
        .slotEvents({ mode: 'block' })
        .next()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Pkcs11Error);
      expect(err).toMatchObject({ rv: 0x54, code: 'CKR_FUNCTION_NOT_SUPPORTED', fn: 'C_WaitForSlotEvent', module: 'libsofthsm2.so' });
      // auto: the blocking wait is refused, so it polls with CKF_DONT_BLOCK (CKR_NO_EVENT every time).
      const auto = mod.slotEvents({ intervalMs: 5 });
      const next = auto.next();
      const settledEarly = await Promise.race([next.then(() => true, () => true), new Promise((r) => setTimeout(() => r(false), 300))]);
      expect(settledEarly).toBe(false);
      expect((await mod.slots()).length).toBeGreaterThan(0);
      expect(await auto.return!()).toEqual({ done: true, value: undefined });
      expect(await next).toEqual({ done: true, value: undefined });
    } finally {
      await p11.close();
    }
  });
});
