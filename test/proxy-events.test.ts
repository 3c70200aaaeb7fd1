// The proxy where p11-kit-proxy breaks: a module whose C_GetSlotList fails (reported and
// skipped; fatal only when critical), slots that come and go (new IDs, retired IDs never
// reused), and slot events from several modules at once (none lost, blocking or not). Fixture
// modules are driven through their exported test controls; the p11-kit trust module is a real
// module without slot events among them.
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF_MISC, CKR, ModuleLifecycle, Pkcs11Error, ProxyError, lifecycleTarget, loadModule, openProxy, type ProxyModule } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { rvOf } from './helpers/rv-of.js';

const DONT_BLOCK = CKF_MISC.CKF_DONT_BLOCK;
let tree: ConfTree;
let proxy: ProxyModule;
let ev: { raise(slot: number): number; blocked(): number };
let hp: { add(slot: number): number; remove(slot: number): number; raise(slot: number): number; failList(rv: number): void };

beforeAll(() => {
  tree = createConfTree();
  const evPath = tree.copyFixture('event-module.so', 'events.so');
  const hpPath = tree.copyFixture('hotplug-module.so', 'hotplug.so');
  tree.module('broken', `module: ${tree.copyFixture('slotlist-fails-module.so', 'broken.so')}\n`);
  tree.module('events', `module: ${evPath}\n`);
  tree.module('hotplug', `module: ${hpPath}\n`);
  tree.module('trust', 'module: p11-kit-trust.so\n', 'package');
  proxy = openProxy({ registry: tree.registry, pollIntervalMs: 20 });
  const evLib = koffi.load(evPath);
  ev = { raise: evLib.func('int event_module_raise(unsigned long)'), blocked: evLib.func('unsigned long event_module_blocked(void)') };
  const hpLib = koffi.load(hpPath);
  hp = {
    add: hpLib.func('int hotplug_add_slot(unsigned long)'),
    remove: hpLib.func('int hotplug_remove_slot(unsigned long)'),
    raise: hpLib.func('int hotplug_raise(unsigned long)'),
    failList: hpLib.func('void hotplug_fail_slot_list(unsigned long)'),
  };
});
afterAll(() => {
  proxy?.release();
  tree.cleanup();
});

/** The proxy slot ID of a module's slot (as currently listed). */
function idOf(module: string, real: number): number {
  const id = proxy.getSlotList().find((s) => {
    const o = proxy.slotOwner(s);
    return o.module === module && o.moduleSlot === real;
  });
  if (id === undefined) throw new Error(`${module} slot ${real} is not listed`);
  return id;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function drainAll(): Promise<number[]> {
  const out: number[] = [];
  for (let e = await proxy.waitForSlotEvent(DONT_BLOCK); e !== null; e = await proxy.waitForSlotEvent(DONT_BLOCK)) out.push(e);
  return out;
}

describe('a module failing C_GetSlotList', () => {
  it('is reported and skipped; the others are served with IDs from 17', () => {
    expect(proxy.modules.map((m) => m.name)).toEqual(['broken', 'events', 'hotplug', 'trust']);
    const [failure] = proxy.failures;
    expect(failure).toMatchObject({ module: 'broken', stage: 'slot-list', dropped: false });
    expect(failure.error).toBeInstanceOf(Pkcs11Error);
    expect((failure.error as Pkcs11Error).rv).toBe(CKR.CKR_DEVICE_ERROR);
    const slots = proxy.getSlotList();
    expect(slots.slice(0, 6)).toEqual([17, 18, 19, 20, 21, 22]);
    expect(slots.slice(0, 6).map((s) => proxy.slotOwner(s))).toEqual([
      ...[10, 11, 12, 13].map((moduleSlot) => ({ module: 'events', moduleSlot })),
      ...[1, 2].map((moduleSlot) => ({ module: 'hotplug', moduleSlot })),
    ]);
    expect(slots.slice(6).every((s) => proxy.slotOwner(s).module === 'trust')).toBe(true);
    // Slots 11 and 13 of the event module start without a token.
    expect(proxy.getSlotList(true)).toEqual(slots.filter((s) => s !== 18 && s !== 20));
  });

  it('is fatal when it is critical: nothing stays acquired', () => {
    const t = createConfTree();
    try {
      const evPath = t.copyFixture('event-module.so', 'events-c.so');
      t.module('broken', `module: ${t.copyFixture('slotlist-fails-module.so', 'broken-c.so')}\ncritical: yes\n`);
      t.module('events', `module: ${evPath}\n`);
      let caught: unknown;
      try {
        openProxy({ registry: t.registry });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProxyError);
      expect(caught).toMatchObject({ code: 'CRITICAL_MODULE_FAILED', module: 'broken' });
      expect(((caught as ProxyError).cause as Pkcs11Error).rv).toBe(CKR.CKR_DEVICE_ERROR);
      const lc = ModuleLifecycle.of(lifecycleTarget(loadModule(evPath)));
      expect(lc.state).toMatchObject({ phase: 'uninitialized', holders: 0 });
      expect(lc.callCounts).toEqual({ initialize: 1, finalize: 1 });
    } finally {
      t.cleanup();
    }
  });

  it('a remote module is kept (async-only: see proxy-remote.test.ts); its host is not started by the sync API, and it takes no part in slot events', () => {
    const t = createConfTree();
    try {
      t.module('events', `module: ${t.copyFixture('event-module.so', 'events-r.so')}\n`);
      t.module('far', 'remote: |p11-kit remote /usr/lib/softhsm/libsofthsm2.so\n');
      const p = openProxy({ registry: t.registry });
      try {
        expect(p.modules.map((m) => [m.name, m.host, m.events])).toEqual([
          ['events', undefined, 'unprobed'],
          ['far', 'closed', 'none'],
        ]);
        expect(p.failures).toEqual([]);
        expect(p.getSlotList()).toEqual([17, 18, 19, 20]);
      } finally {
        p.release();
      }
    } finally {
      t.cleanup();
    }
  });

  it('a module that starts failing later is skipped until it recovers, keeping its IDs', () => {
    const before = proxy.getSlotList();
    const hotplugIds = before.filter((s) => proxy.slotOwner(s).module === 'hotplug');
    const failures = proxy.failures.length;
    hp.failList(CKR.CKR_DEVICE_ERROR);
    try {
      expect(proxy.getSlotList()).toEqual(before.filter((s) => !hotplugIds.includes(s)));
      expect(proxy.failures.slice(failures).map((f) => [f.module, f.stage])).toEqual([
        ['broken', 'slot-list'],
        ['hotplug', 'slot-list'],
      ]);
      // Its slots are still routed: only its listing fails.
      expect(proxy.getTokenInfo(hotplugIds[0]).label).toBe('hotplug 1');
    } finally {
      hp.failList(0);
    }
    expect(proxy.getSlotList()).toEqual(before);
  });
});

describe('hot-plug', () => {
  it('new slots get new IDs, removed slots lose theirs for good, and their events name them', async () => {
    expect(await drainAll()).toEqual([]);
    const before = proxy.getSlotList();
    const top = Math.max(...before);
    const one = idOf('hotplug', 1);

    expect(hp.add(5)).toBe(0);
    const appeared = await proxy.waitForSlotEvent(DONT_BLOCK);
    expect(appeared).toBe(top + 1);
    const withFive = proxy.getSlotList();
    expect(withFive).toEqual([...before.slice(0, before.indexOf(one) + 2), top + 1, ...before.slice(before.indexOf(one) + 2)]);
    expect(proxy.getTokenInfo(top + 1).label).toBe('hotplug 5');

    expect(hp.remove(1)).toBe(0);
    expect(await proxy.waitForSlotEvent(DONT_BLOCK)).toBe(one); // the removal names the slot's ID
    expect(proxy.getSlotList()).toEqual(withFive.filter((s) => s !== one));
    expect(rvOf(() => proxy.getSlotInfo(one))).toBe(CKR.CKR_SLOT_ID_INVALID);

    expect(hp.add(1)).toBe(0);
    const again = await proxy.waitForSlotEvent(DONT_BLOCK);
    expect(again).toBe(top + 2); // the same module slot back: a new ID, the old one stays retired
    expect(idOf('hotplug', 1)).toBe(top + 2);
    expect(rvOf(() => proxy.getSlotInfo(one))).toBe(CKR.CKR_SLOT_ID_INVALID);
    expect(proxy.getSlotList().filter((s) => before.includes(s))).toEqual(before.filter((s) => s !== one));
  });
});

describe('slot events', () => {
  it('several at once from two modules, without blocking: every one is delivered, in turn', async () => {
    expect(await drainAll()).toEqual([]);
    for (const s of [10, 11, 13]) expect(ev.raise(s)).toBe(0);
    expect(hp.raise(2)).toBe(0);
    expect(hp.add(7)).toBe(0);
    const got = await drainAll();
    const want = [idOf('events', 10), idOf('events', 11), idOf('events', 13), idOf('hotplug', 2), idOf('hotplug', 7)];
    expect(got).toEqual(want); // module order, each module's own order
    expect(await proxy.waitForSlotEvent(DONT_BLOCK)).toBeNull();
    // The module without events (p11-kit trust) and the failing one did not end the poll.
    expect(Object.fromEntries(proxy.modules.map((m) => [m.name, m.events]))).toMatchObject({ broken: 'none', trust: 'none' });
  });

  it('several at once while waiting: a blocking wait parked off the main thread, a polled module, nothing lost', async () => {
    expect(await drainAll()).toEqual([]);
    const first = proxy.waitForSlotEvent();
    await until('a parked wait in the event module', () => ev.blocked() === 1);
    expect(proxy.modules.find((m) => m.name === 'events')!.events).toBe('candidate');
    // The main thread is free while the wait is parked.
    await new Promise((r) => setTimeout(r, 30));
    expect(ev.raise(12)).toBe(0);
    expect(ev.raise(11)).toBe(0);
    expect(hp.raise(5)).toBe(0);
    const got = [await first, await proxy.waitForSlotEvent(), await proxy.waitForSlotEvent()];
    expect(got.sort()).toEqual([idOf('events', 11), idOf('events', 12), idOf('hotplug', 5)].sort());
    expect(await proxy.waitForSlotEvent(DONT_BLOCK)).toBeNull();
    // hotplug's blocking probe answers "not supported" on its own thread: let it come back.
    await until('every module to settle on an event mode', () => proxy.modules.every((m) => m.events !== 'candidate'));
    const modes = Object.fromEntries(proxy.modules.map((m) => [m.name, m.events]));
    expect(modes).toMatchObject({ events: 'block', hotplug: 'poll', trust: 'none', broken: 'none' });
  });

  it('an event that reaches a wait after its caller gave up is kept for the next one', async () => {
    expect(await drainAll()).toEqual([]);
    const ac = new AbortController();
    const gaveUp = proxy.waitForSlotEvent(0, { signal: ac.signal });
    await until('a parked wait in the event module', () => ev.blocked() === 1);
    ac.abort(new Error('not interested'));
    await expect(gaveUp).rejects.toThrow('not interested');
    expect(ev.raise(13)).toBe(0);
    await until('the parked wait to return', () => ev.blocked() === 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await proxy.waitForSlotEvent(DONT_BLOCK)).toBe(idOf('events', 13));
  });

  it('answers CKR_FUNCTION_NOT_SUPPORTED when no module can report events', async () => {
    const t = createConfTree();
    try {
      t.module('broken', `module: ${t.copyFixture('slotlist-fails-module.so', 'broken-n.so')}\n`);
      t.module('trust', 'module: p11-kit-trust.so\n', 'package');
      const quiet = openProxy({ registry: t.registry });
      try {
        expect(await quiet.waitForSlotEvent(DONT_BLOCK)).toBeNull();
        await expect(quiet.waitForSlotEvent()).rejects.toMatchObject({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED });
      } finally {
        quiet.release();
      }
    } finally {
      t.cleanup();
    }
  });

  it('release ends a pending wait, and the module finalize frees the parked thread', async () => {
    expect(await drainAll()).toEqual([]);
    const pending = proxy.waitForSlotEvent();
    await until('a parked wait in the event module', () => ev.blocked() === 1);
    proxy.release();
    await expect(pending).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    expect(ev.blocked()).toBe(0);
    await expect(proxy.waitForSlotEvent(DONT_BLOCK)).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
  });
});
