// Slot events from a module that misbehaves now and then (the event fixture on request): a
// transient C_WaitForSlotEvent error is reported as a 'failure' and the module is asked again
// after a short back-off — its events are never withheld, polled or waited for; a module whose
// blocking wait returns CKR_NO_EVENT at once is re-parked with a back-off, so one waiter costs
// little CPU (measured with process.cpuUsage() in a child process).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF_MISC, CKR, openProxy, type ModuleFailure, type ProxyModule } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';

const DONT_BLOCK = CKF_MISC.CKF_DONT_BLOCK;
let tree: ConfTree;
let evPath: string;
let proxy: ProxyModule;
let ev: { raise(slot: number): number; failWaits(rv: number, n: number): void };
const failures: ModuleFailure[] = [];

beforeAll(() => {
  tree = createConfTree();
  evPath = tree.copyFixture('event-module.so', 'faulty-events.so');
  tree.module('events', `module: ${evPath}\n`);
  proxy = openProxy({ registry: tree.registry, pollIntervalMs: 20 });
  proxy.on('failure', (f: ModuleFailure) => failures.push(f));
  const lib = koffi.load(evPath);
  ev = { raise: lib.func('int event_module_raise(unsigned long)'), failWaits: lib.func('void event_module_fail_waits(unsigned long, unsigned long)') };
});

afterAll(() => {
  proxy?.release();
  tree?.cleanup();
});

const idOf = (real: number) => proxy.getSlotList().find((s) => proxy.slotOwner(s).moduleSlot === real)!;

/** Resolves with the value, or 'late' after `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'late'>((r) => setTimeout(() => r('late'), ms))]);

describe('a transient C_WaitForSlotEvent error', () => {
  it('is reported, and a blocking wait still gets the module\'s next event within 2 s', async () => {
    const before = failures.length;
    ev.failWaits(CKR.CKR_DEVICE_ERROR, 1);
    const waiting = proxy.waitForSlotEvent(0);
    ev.raise(11);
    expect(await within(waiting, 2000)).toBe(idOf(11));
    expect(failures.slice(before)).toMatchObject([{ module: 'events', stage: 'slot-event', error: { rv: CKR.CKR_DEVICE_ERROR } }]);
  });

  it('while parked: errors on re-parking are reported, later events still arrive within 2 s', async () => {
    const before = failures.length;
    const first = proxy.waitForSlotEvent(0);
    ev.failWaits(CKR.CKR_GENERAL_ERROR, 2); // the re-park after this event fails twice
    ev.raise(13);
    expect(await within(first, 2000)).toBe(idOf(13));
    const second = proxy.waitForSlotEvent(0);
    await new Promise((r) => setTimeout(r, 100));
    ev.raise(13);
    expect(await within(second, 2000)).toBe(idOf(13));
    expect(failures.slice(before).map((f) => (f.error as { rv?: number }).rv)).toEqual([CKR.CKR_GENERAL_ERROR, CKR.CKR_GENERAL_ERROR]);
  });

  it('polls (CKF_DONT_BLOCK) return the module\'s events again after the back-off', async () => {
    const before = failures.length;
    ev.failWaits(CKR.CKR_DEVICE_ERROR, 1);
    ev.raise(12);
    const started = Date.now();
    let got: number | null = null;
    while (got === null && Date.now() - started < 2000) {
      got = await proxy.waitForSlotEvent(DONT_BLOCK);
      if (got === null) await new Promise((r) => setTimeout(r, 20));
    }
    expect(got).toBe(idOf(12));
    expect(failures.length).toBe(before + 1);
    expect(proxy.modules[0]!.events).not.toBe('none');
  });
});

describe('a module whose blocking wait returns CKR_NO_EVENT at once', () => {
  it('is backed off: one waiter costs under 5% of a core', async () => {
    const args = JSON.stringify({ libDir: join(process.cwd(), 'dist/lib'), registry: tree.registry, module: evPath });
    const child = spawn(process.execPath, [join(process.cwd(), 'test/workers/sloppy-waiter.mjs'), args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(err).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(out) as { share: number; slot: number; failures: string[] };
    expect(result.slot).toBeGreaterThan(0);
    expect(result.failures).toEqual([]);
    expect(result.share, out).toBeLessThan(0.05);
  }, 30_000);
});
