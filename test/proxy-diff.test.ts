// The proxy against the real p11-kit-proxy (libp11-kit 0.24.1, run by test/oracle/proxy-oracle
// on the same config tree): the same modules in the same order, the same slot IDs, slot and
// token lists and C_GetInfo; the same IDs through hot-plug. Where p11-kit-proxy is broken (a
// module failing C_GetSlotList fails its C_Initialize; events from all but the last module are
// lost) the oracle's answer is checked to be the broken one, and ours the repaired one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import koffi from 'koffi';
import { CKF_MISC, CKF_SLOT, CKR, openProxy, type ProxyModule } from '../ts/index.js';
import { createNssDb, NSS_SOFTOKN_MODULE, type NssDb } from './helpers/nss.js';
import { createConfTree, runOracle, type ConfTree, type OracleStep } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

interface SlotView {
  id: number;
  description: string;
  manufacturer: string;
  present: boolean;
  token: { label: string; manufacturer: string; model: string; serial: string } | null;
}

/** Our proxy's slots in the oracle's shape. */
function slotsOf(proxy: ProxyModule): SlotView[] {
  return proxy.getSlotList().map((id) => {
    const si = proxy.getSlotInfo(id);
    const present = (si.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0;
    const ti = present ? proxy.getTokenInfo(id) : undefined;
    return {
      id,
      description: si.slotDescription,
      manufacturer: si.manufacturerID,
      present,
      token: ti ? { label: ti.label, manufacturer: ti.manufacturerID, model: ti.model, serial: ti.serialNumber } : null,
    };
  });
}

/** The oracle's slots without its per-slot rv (always checked to be CKR_OK). */
function oracleSlots(step: OracleStep): SlotView[] {
  expect(step).toMatchObject({ step: 'slots', rv: CKR.CKR_OK });
  return (step.slots as (SlotView & { rv: number })[]).map(({ rv, ...slot }) => {
    expect(rv).toBe(CKR.CKR_OK);
    return slot;
  });
}

let hsm: SoftHsm;
let nss: NssDb;
beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('first', '0000', '1234');
  hsm.initToken('second', '0000', '1234');
  nss = createNssDb();
});
afterAll(() => {
  nss.cleanup();
  hsm.cleanup();
});

describe('same behaviour as p11-kit-proxy', () => {
  let tree: ConfTree;
  let paths: Record<string, string>;
  beforeAll(() => {
    tree = createConfTree();
    paths = {
      events: tree.copyFixture('event-module.so', 'events.so'),
      hotplug: tree.copyFixture('hotplug-module.so', 'hotplug.so'),
      mini: tree.copyFixture('mini-module.so', 'mini.so'),
      hidden: tree.copyFixture('event-module.so', 'hidden.so'),
      alone: tree.copyFixture('hotplug-module.so', 'alone.so'),
      both: tree.copyFixture('hotplug-module.so', 'both.so'),
    };
    tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
    tree.module('Nss', `module: ${NSS_SOFTOKN_MODULE}\nx-init-reserved: ${nss.reservedString}\n`);
    tree.module('trust', 'module: p11-kit-trust.so\n', 'package');
    tree.module('events', `module: ${paths.events}\n`);
    tree.module('hotplug', `module: ${paths.hotplug}\npriority: 5\n`);
    tree.module('mini', `module: ${paths.mini}\npriority: -1\n`);
    // Hidden from the proxy; and `enable-in: p11-kit-proxy` alone never loads (p11-kit's bug, kept).
    tree.module('hidden', `module: ${paths.hidden}\ndisable-in: p11-kit-proxy\n`);
    tree.module('alone', `module: ${paths.alone}\nenable-in: p11-kit-proxy\n`);
    tree.module('both', `module: ${paths.both}\nenable-in: proxy-oracle, p11-kit-proxy\n`);
  });
  afterAll(() => tree.cleanup());

  it('the same slot IDs, slots, tokens, present list and C_GetInfo', () => {
    const [init, info, slots, present] = runOracle(tree, ['initialize', 'info', 'slots', 'present', 'finalize'], hsm.env);
    expect(init).toMatchObject({ rv: CKR.CKR_OK });
    const proxy = openProxy({ registry: tree.registry });
    try {
      // priority (descending), then the name by bytes: 'Nss' before 'both'.
      expect(proxy.modules.map((m) => m.name)).toEqual(['hotplug', 'Nss', 'both', 'events', 'softhsm', 'trust', 'mini']);
      const ours = slotsOf(proxy);
      expect(ours).toEqual(oracleSlots(slots));
      expect(ours.length).toBeGreaterThan(10);
      expect(present).toMatchObject({ rv: CKR.CKR_OK, ids: proxy.getSlotList(true) });
      const i = proxy.getInfo();
      expect(info).toMatchObject({
        rv: CKR.CKR_OK,
        manufacturer: i.manufacturerID,
        description: i.libraryDescription,
        cryptoki: `${i.cryptokiVersion.major}.${i.cryptokiVersion.minor}`,
        version: `${i.libraryVersion.major}.${i.libraryVersion.minor}`,
      });
    } finally {
      proxy.release();
    }
  });

  it('the same IDs as slots come and go', () => {
    const control = (sym: string, n: number) => `raise:${paths.hotplug}:${sym}:${n}`;
    const steps = ['initialize', 'slots', control('hotplug_add_slot', 5), 'slots', control('hotplug_remove_slot', 1), 'slots', control('hotplug_add_slot', 1), 'slots', 'finalize'];
    const oracle = runOracle(tree, steps, hsm.env).filter((s) => s.step === 'slots').map(oracleSlots);
    const proxy = openProxy({ registry: tree.registry });
    try {
      const lib = koffi.load(paths.hotplug);
      const add = lib.func('int hotplug_add_slot(unsigned long)');
      const remove = lib.func('int hotplug_remove_slot(unsigned long)');
      const ours = [slotsOf(proxy)];
      expect(add(5)).toBe(0);
      ours.push(slotsOf(proxy));
      expect(remove(1)).toBe(0);
      ours.push(slotsOf(proxy));
      expect(add(1)).toBe(0);
      ours.push(slotsOf(proxy));
      expect(ours).toEqual(oracle);
      // A slot that came back has a new ID on both sides.
      const idOf = (view: SlotView[], label: string) => view.find((s) => s.token?.label === label)?.id;
      expect(idOf(ours[3], 'hotplug 1')).not.toBe(idOf(ours[0], 'hotplug 1'));
    } finally {
      proxy.release();
    }
  });
});

describe('where p11-kit-proxy is broken', () => {
  let tree: ConfTree;
  let paths: Record<string, string>;
  beforeAll(() => {
    tree = createConfTree();
    paths = { events: tree.copyFixture('event-module.so', 'events.so'), hotplug: tree.copyFixture('hotplug-module.so', 'hotplug.so') };
    tree.module('events', `module: ${paths.events}\n`);
    tree.module('hotplug', `module: ${paths.hotplug}\n`);
  });
  afterAll(() => tree.cleanup());

  const raiseBoth = ['initialize', 'raise:EV:event_module_raise:11', 'raise:HP:hotplug_raise:2', 'wait-nb', 'wait-nb', 'wait-nb', 'finalize'];

  async function ourEvents(): Promise<{ got: (number | null)[]; want: number[] }> {
    const proxy = openProxy({ registry: tree.registry });
    try {
      const id = (module: string, real: number) => proxy.getSlotList().find((s) => proxy.slotOwner(s).module === module && proxy.slotOwner(s).moduleSlot === real)!;
      expect(koffi.load(paths.events).func('int event_module_raise(unsigned long)')(11)).toBe(0);
      expect(koffi.load(paths.hotplug).func('int hotplug_raise(unsigned long)')(2)).toBe(0);
      const DONT_BLOCK = CKF_MISC.CKF_DONT_BLOCK;
      const got = [await proxy.waitForSlotEvent(DONT_BLOCK), await proxy.waitForSlotEvent(DONT_BLOCK), await proxy.waitForSlotEvent(DONT_BLOCK)];
      return { got, want: [id('events', 11), id('hotplug', 2)] };
    } finally {
      proxy.release();
    }
  }

  it("events from two modules at once: p11-kit returns only the last module's, we return both", async () => {
    const steps = raiseBoth.map((s) => s.replace('EV', paths.events).replace('HP', paths.hotplug));
    const waits = runOracle(tree, steps, hsm.env).filter((s) => s.step === 'wait-nb');
    const { got, want } = await ourEvents();
    // p11-kit: the event module's event was taken from the module, then overwritten by the next module's answer.
    expect(waits.map((w) => [w.rv, w.slot])).toEqual([[CKR.CKR_OK, want[1]], [CKR.CKR_NO_EVENT, 0], [CKR.CKR_NO_EVENT, 0]]);
    expect(got).toEqual([...want, null]);

    // With SoftHSM2 last (it answers CKR_NO_EVENT), its answer overwrites both events: nothing comes back.
    tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
    const withHsm = runOracle(tree, steps, hsm.env).filter((s) => s.step === 'wait-nb');
    expect(withHsm.map((w) => w.rv)).toEqual([CKR.CKR_NO_EVENT, CKR.CKR_NO_EVENT, CKR.CKR_NO_EVENT]);
    const again = await ourEvents();
    expect(again.got).toEqual([...again.want, null]);
  });

  it("a module failing C_GetSlotList: p11-kit's C_Initialize fails, we serve the others with the same IDs", () => {
    tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
    const healthy = runOracle(tree, ['initialize', 'slots', 'finalize'], hsm.env);
    tree.module('broken', `module: ${tree.copyFixture('slotlist-fails-module.so', 'broken.so')}\npriority: 9\n`);
    const [init, slots] = runOracle(tree, ['initialize', 'slots'], hsm.env);
    expect(init).toMatchObject({ rv: CKR.CKR_DEVICE_ERROR });
    expect(slots).toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    const proxy = openProxy({ registry: tree.registry });
    try {
      expect(proxy.failures.map((f) => [f.module, f.stage])).toEqual([['broken', 'slot-list']]);
      expect(slotsOf(proxy)).toEqual(oracleSlots(healthy[1]));
    } finally {
      proxy.release();
    }
  });
});
