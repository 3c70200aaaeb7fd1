// A virtual smart card through the real PC/SC stack: our vpcd card (a read-only PKCS#15 card)
// in a private pcscd, read by the real opensc-pkcs11. Slot events for insert/remove cycles
// through the proxy and through the service (exactly two per cycle, none lost, none invented),
// URI lookups following the card, and 16 workers cycling the lifecycle on OpenSC. Each toggle
// waits for its event: PC/SC coalesces faster ones.
//
// OpenSC's C_Finalize does not survive its own parked C_WaitForSlotEvent (README, Real
// devices), so its blocking waits are parked in a child process ('isolated', the default for
// OpenSC): releases with a wait pending, and that child killed from outside, are tested here.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF_MISC, CKF_SLOT, CKR, ModuleLifecycle, WakeError, createPkcs11Worker, lifecycleTarget, loadModule, openProxy, type ProxyModule, type SlotEvent } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { expectCleanRun, runStress } from './helpers/stress-run.js';
import { startCardRig, within as withinMs, type CardRig } from './devices/card-rig.js';
import { childExists, until, watcherAlive, watcherPids } from './devices/wake-children.js';
import { OPENSC_MODULE } from './devices/opensc.mjs';
import { havePcscd } from './devices/pcscd.mjs';

const CYCLES = 10;
const RELEASES = 12;
const LABEL = 'Card One';
const SERIAL = '19a0c0de';
const DATA = Buffer.from('hello from a virtual card');

let rig: CardRig;
let tree: ConfTree;
beforeAll(async () => {
  rig = await startCardRig({ kind: 'pkcs15', label: LABEL, serial: SERIAL, objects: [{ label: 'greeting', application: 'p11kit-wasm', value: DATA }] });
  tree = createConfTree();
  tree.module('opensc', `module: ${OPENSC_MODULE}\n`);
});
afterAll(async () => {
  await rig?.close();
  tree?.cleanup();
});

/** An event takes two OpenSC card bindings when watched from a child (~1 s each, seconds on a loaded machine). */
const within = <T>(what: string, p: Promise<T>) => withinMs(what, p, 60_000);

const present = (p: ProxyModule, slot: number) => (p.getSlotInfo(slot).flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0;

/** The proxy slot of the card's reader. */
function readerSlot(p: ProxyModule): number {
  const slot = p.getSlotList().find((s) => p.getSlotInfo(s).slotDescription.trim() === rig.reader);
  if (slot === undefined) throw new Error(`no slot for ${rig.reader}`);
  return slot;
}

/** No event pending now nor coming within a PC/SC round (insert events take up to ~1.5 s). */
async function expectNoEvent(p: ProxyModule): Promise<void> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new Error('quiet')), 2500);
  try {
    await expect(p.waitForSlotEvent(0, { signal: ac.signal })).rejects.toThrow('quiet');
  } finally {
    clearTimeout(t);
  }
}

describe.skipIf(!havePcscd())('a virtual card in a private pcscd, through opensc-pkcs11', { timeout: 600_000 }, () => {
  it('the token is the card: label, serial and its data object, found by URI', async () => {
    const p = openProxy({ registry: tree.registry, pollIntervalMs: 50 });
    try {
      const slot = readerSlot(p);
      expect(present(p, slot)).toBe(false);
      await rig.card.insert();
      expect(await within('the insertion event', p.waitForSlotEvent())).toBe(slot);
      const [token, ...more] = p.findTokens(`pkcs11:token=${encodeURIComponent(LABEL)}`);
      expect(more).toEqual([]);
      expect(token).toMatchObject({ slot, module: 'opensc', token: { label: LABEL, serialNumber: SERIAL, manufacturerID: 'p11kit-wasm tests' } });
      const objects = await p.findObjects(`pkcs11:token=${encodeURIComponent(LABEL)};object=greeting;type=data`, { attributes: [CKA.CKA_LABEL, CKA.CKA_VALUE] });
      expect(objects.map((o) => o.attributes.map((a) => a.value))).toEqual([['greeting', new Uint8Array(DATA)]]);
      await rig.card.remove();
      expect(await within('the removal event', p.waitForSlotEvent())).toBe(slot);
      expect(present(p, slot)).toBe(false);
    } finally {
      await p.async.release();
    }
  });

  it(`proxy: ${CYCLES} insert/remove cycles give exactly ${2 * CYCLES} events, tokenPresent following the card; findTokens follows it too (OpenSC watched from a child process)`, async () => {
    const p = openProxy({ registry: tree.registry, pollIntervalMs: 50 });
    try {
      const slot = readerSlot(p);
      expect(present(p, slot)).toBe(false);
      expect(await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)).toBeNull();
      const uri = `pkcs11:token=${encodeURIComponent(LABEL)};serial=${SERIAL}`;
      expect(p.findTokens(uri)).toEqual([]);
      const seen: Array<[number | null, boolean]> = [];
      for (let i = 0; i < CYCLES; i++) {
        await rig.card.insert();
        seen.push([await within(`insertion ${i + 1}`, p.waitForSlotEvent()), present(p, slot)]);
        expect(p.findTokens(uri).map((t) => t.slot)).toEqual([slot]);
        await rig.card.remove();
        seen.push([await within(`removal ${i + 1}`, p.waitForSlotEvent()), present(p, slot)]);
        expect(p.findTokens(uri)).toEqual([]);
      }
      expect(seen).toEqual(Array.from({ length: CYCLES }, () => [[slot, true], [slot, false]]).flat());
      const [status] = p.modules;
      expect(status.events).toBe('isolated');
      expect(watcherPids()).toEqual([status.watcher!.pid]); // one child for the whole run
      await expectNoEvent(p);
      expect(p.failures).toEqual([]);
    } finally {
      await p.async.release();
    }
    expect(watcherPids()).toEqual([]);
  });

  it(`proxy: ${RELEASES} releases with a wait parked in the waiter process: each wait ends at once with CKR_CRYPTOKI_NOT_INITIALIZED, OpenSC is finalized with nothing inside it, the child is reaped`, async () => {
    const lifecycle = ModuleLifecycle.of(lifecycleTarget(loadModule(OPENSC_MODULE)));
    try {
      for (let i = 0; i < RELEASES; i++) {
        // Half of them with the card in: OpenSC then holds a connected card as well.
        const p = openProxy({ registry: tree.registry, pollIntervalMs: 50 });
        if (i === RELEASES / 2) {
          await rig.card.insert();
          expect(await within('the insertion event', p.waitForSlotEvent())).toBe(readerSlot(p));
        }
        // A fresh OpenSC may report the card it found at start-up: taken before the wait is parked.
        if (i > RELEASES / 2) for (let n = 0; n < 4 && (await p.waitForSlotEvent(CKF_MISC.CKF_DONT_BLOCK)) !== null; n++);
        let settled = false;
        const pending = p.waitForSlotEvent().then(
          (slot) => ((settled = true), slot),
          (err: unknown) => ((settled = true), err),
        );
        await until(`the waiter of round ${i + 1} to park its wait`, () => p.modules[0].watcher?.ready === true);
        expect(settled).toBe(false);
        const pid = p.modules[0].watcher!.pid!;
        const t0 = Date.now();
        const released = p.async.release();
        const outcome = await within('the released wait', pending);
        expect(Date.now() - t0).toBeLessThan(5000); // at once, in fact; generous for a loaded machine
        expect(outcome).toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
        await within('the waiter to be reaped', released);
        expect(childExists(pid)).toBe(false);
        expect(lifecycle.state).toMatchObject({ phase: 'uninitialized', holders: 0 });
      }
    } finally {
      if (rig.card.inserted) await rig.card.remove();
    }
    expect(watcherPids()).toEqual([]);
  });

  it('proxy: the waiter process killed from outside is reported, the module is polled, and events stay exact', async () => {
    const p = openProxy({ registry: tree.registry, pollIntervalMs: 50 });
    try {
      const slot = readerSlot(p);
      const first = p.waitForSlotEvent();
      await until('the waiter to park its wait', () => p.modules[0].watcher?.ready === true);
      const pid = p.modules[0].watcher!.pid!;
      process.kill(pid, 'SIGKILL');
      await until('the fallback to polling', () => p.modules[0].events === 'poll');
      expect(p.failures).toEqual([expect.objectContaining({ module: 'opensc', stage: 'slot-event', dropped: false, error: expect.any(WakeError) })]);
      expect(p.failures[0].error).toMatchObject({ kind: 'exit', message: expect.stringMatching(/signal SIGKILL.*polling it instead/) });
      await until('the killed waiter to be reaped', () => !childExists(pid));
      const seen: Array<[number | null, boolean]> = [];
      await rig.card.insert();
      seen.push([await within('insertion 1', first), present(p, slot)]);
      await rig.card.remove();
      seen.push([await within('removal 1', p.waitForSlotEvent()), present(p, slot)]);
      for (let i = 1; i < 3; i++) {
        await rig.card.insert();
        seen.push([await within(`insertion ${i + 1}`, p.waitForSlotEvent()), present(p, slot)]);
        await rig.card.remove();
        seen.push([await within(`removal ${i + 1}`, p.waitForSlotEvent()), present(p, slot)]);
      }
      expect(seen).toEqual(Array.from({ length: 3 }, () => [[slot, true], [slot, false]]).flat());
      await expectNoEvent(p);
      expect(p.failures).toHaveLength(1);
      expect(watcherPids()).toEqual([]);
    } finally {
      await p.async.release();
    }
  });

  for (const how of ['killed (SIGKILL)', 'exiting without release()'] as const) {
    it(`a program ${how} with a wait parked takes its waiter child with it: no orphan`, async () => {
      const host = spawn(process.execPath, [new URL('./devices/watcher-host.mjs', import.meta.url).pathname, new URL('../dist/lib/index.js', import.meta.url).href, JSON.stringify(tree.registry)], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: rig.env,
      });
      const exited = once(host, 'exit');
      try {
        let out = '';
        host.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        await until('the program to report its waiter child', () => out.includes('\n') || host.exitCode !== null);
        const pid = Number(out.trim());
        expect(watcherAlive(pid)).toBe(true);
        if (how === 'killed (SIGKILL)') host.kill('SIGKILL');
        else host.stdin.write('exit\n');
        await within('the program to end', exited);
        await until('the orphaned waiter to end', () => !watcherAlive(pid));
      } finally {
        if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
        await exited;
      }
    });
  }

  it(`service: ${CYCLES} insert/remove cycles give exactly ${2 * CYCLES} events (OpenSC watched from a child process); close ends the pending read and the child`, async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(OPENSC_MODULE);
      const slot = (await mod.slots(false)).find((s) => s.info.slotDescription.trim() === rig.reader)!.slot;
      const events = mod.slotEvents(); // 'auto': isolated for OpenSC
      const seen: SlotEvent[] = [];
      for (let i = 0; i < CYCLES; i++) {
        await rig.card.insert();
        seen.push((await within(`insertion ${i + 1}`, events.next())).value as SlotEvent);
        await rig.card.remove();
        seen.push((await within(`removal ${i + 1}`, events.next())).value as SlotEvent);
      }
      expect(seen.map((e) => [e.slot, e.tokenPresent, e.via])).toEqual(
        Array.from({ length: CYCLES }, () => [[slot, true, 'isolated'], [slot, false, 'isolated']]).flat(),
      );
      const [pid, ...more] = watcherPids();
      expect(more).toEqual([]);
      // None invented: nothing comes while the card stays out.
      const extra = events.next();
      const quiet = await Promise.race([extra.then(() => 'event'), new Promise((r) => setTimeout(() => r('quiet'), 2500))]);
      expect(quiet).toBe('quiet');
      // The next() above is pending: closing the service ends it, kills the child and finalizes the module.
      await within('the service to close', p11.close());
      await within('the parked stream to end', extra.catch(() => ({ done: true })));
      await until('the waiter to be reaped', () => !childExists(pid));
    } finally {
      await p11.close();
    }
  });

  it('service: the waiter process killed from outside: a warning, then polling, and events stay exact', async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(OPENSC_MODULE);
      const slot = (await mod.slots(false)).find((s) => s.info.slotDescription.trim() === rig.reader)!.slot;
      const events = mod.slotEvents({ mode: 'isolated', intervalMs: 50 });
      const first = events.next();
      await until('the waiter to start', () => watcherPids().length === 1);
      const [pid] = watcherPids();
      process.kill(pid, 'SIGKILL');
      await until('the killed waiter to be reaped', () => !childExists(pid));
      const seen: SlotEvent[] = [];
      await rig.card.insert();
      seen.push((await within('insertion 1', first)).value as SlotEvent);
      await rig.card.remove();
      seen.push((await within('removal 1', events.next())).value as SlotEvent);
      for (let i = 1; i < 3; i++) {
        await rig.card.insert();
        seen.push((await within(`insertion ${i + 1}`, events.next())).value as SlotEvent);
        await rig.card.remove();
        seen.push((await within(`removal ${i + 1}`, events.next())).value as SlotEvent);
      }
      // The first event may still have been taken by the isolated watch (the child died after its wake-up): the rest are polled.
      expect(seen.map((e) => [e.slot, e.tokenPresent])).toEqual(Array.from({ length: 3 }, () => [[slot, true], [slot, false]]).flat());
      expect(seen.slice(1).map((e) => e.via)).toEqual(Array(5).fill('poll'));
      expect(watcherPids()).toEqual([]);
    } finally {
      await p11.close();
    }
  });


  it('lifecycle: 16 workers cycling opensc-pkcs11 with the card in, everything reclaimed', async () => {
    // The card is in once OpenSC has said so: every worker's slot list must then show it.
    const p = openProxy({ registry: tree.registry, pollIntervalMs: 50 });
    try {
      await rig.card.insert();
      await within('the insertion event', p.waitForSlotEvent());
    } finally {
      p.release();
    }
    try {
      const r = await runStress({ path: OPENSC_MODULE, cycles: 8 }, rig.env);
      expectCleanRun(r, { cycles: 8 });
    } finally {
      await rig.card.remove();
    }
  });
});
