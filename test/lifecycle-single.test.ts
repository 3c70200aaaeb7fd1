// The lifecycle manager in one thread, against the fragile fixture and SoftHSM2.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import koffi from 'koffi';
import { CKF_SESSION, loadModule } from '../ts/bridge/index.js';
import { ModuleLifecycle, LifecycleError, type LifecycleChange, type Owner } from '../ts/lifecycle/manager.js';

const FRAGILE = new URL('../dist/native/fixtures/fragile-module.so', import.meta.url).pathname;

/**
 * The module as the lifecycle's target, plus the few C_* calls these tests make behind its
 * back on purpose: the bridge's raw functions, each answering its CK_RV (no checks, no
 * throws). `lib` is the same library handle (dlopen gives it back) for the fixture's controls.
 */
function openRawModule(path: string) {
  const m = loadModule(path);
  const raw = m.rawBuffers;
  return {
    identity: m.identity,
    name: path,
    lib: koffi.load(path),
    initialize: () => m.initializeRv(),
    finalize: () => m.finalizeRv(),
    closeSession: (handle: bigint) => raw.C_CloseSession(handle),
    getInfo: () => raw.C_GetInfo(Buffer.alloc(128)),
    slotList() {
      const slots = new BigUint64Array(64);
      const count = BigUint64Array.of(64n);
      const rv = raw.C_GetSlotList(1, slots, count);
      return { rv, slots: [...slots.subarray(0, Number(count[0]))].map(Number) };
    },
    openSession(slot: number) {
      const handle = new BigUint64Array(1);
      const rv = raw.C_OpenSession(slot, CKF_SESSION.CKF_SERIAL_SESSION | CKF_SESSION.CKF_RW_SESSION, null, null, handle);
      return { rv, handle: handle[0]! };
    },
    generateRandom: (handle: bigint, len: number) => raw.C_GenerateRandom(handle, Buffer.alloc(len), len),
  };
}

function fragileStats(lib: koffi.LibraryHandle) {
  const out = new Array<number>(8).fill(0);
  lib.func('void fragile_stats(_Out_ unsigned long *out)')(out);
  const [initialized, finalized, overlaps, already, notInitialized, opened, closed, calls] = out.map(Number);
  return { initialized, finalized, overlaps, already, notInitialized, opened, closed, calls };
}

describe('lifecycle manager, one thread', () => {
  const mod = openRawModule(FRAGILE);
  const lc = ModuleLifecycle.of(mod);
  const changes: LifecycleChange[] = [];
  lc.on('change', (c: LifecycleChange) => changes.push(c));
  afterAll(() => lc.removeAllListeners());

  it('initializes on the first acquire and finalizes on the last release only', () => {
    const before = fragileStats(mod.lib);
    const a = lc.acquire();
    const b = lc.acquire();
    expect(lc.state).toMatchObject({ phase: 'ready', ownedInit: true, holders: 2 });
    a.release();
    expect(fragileStats(mod.lib).finalized).toBe(before.finalized);
    b.release();
    const after = fragileStats(mod.lib);
    expect(after.initialized - before.initialized).toBe(1);
    expect(after.finalized - before.finalized).toBe(1);
    expect(lc.state.phase).toBe('uninitialized');
    expect(changes.map((c) => c.to.phase)).toContain('ready');
  });

  it("closes an owner's own sessions on release and no one else's", () => {
    const a = lc.acquire();
    const b = lc.acquire();
    const sa = a.call(() => mod.openSession(7));
    const sb = b.call(() => mod.openSession(7));
    a.addSession(sa.handle);
    b.addSession(sb.handle);
    const closedBefore = fragileStats(mod.lib).closed;
    a.release();
    expect(fragileStats(mod.lib).closed - closedBefore).toBe(1);
    expect(b.call(() => mod.generateRandom(sb.handle, 8), { returnsRv: true })).toBe(0);
    expect(mod.generateRandom(sa.handle, 8)).toBe(0xb3); // a's session is gone
    b.release();
  });

  it('after a foreign finalize: explicit policy refuses with a typed error until reinitialize()', () => {
    lc.policy = 'explicit';
    const a = lc.acquire();
    const gen = a.generation;
    mod.lib.func('void fragile_finalize_behind_back(void)')();
    expect(() => a.call(() => mod.getInfo(), { idempotent: true, returnsRv: true })).toThrow(LifecycleError);
    expect(lc.state).toMatchObject({ phase: 'stale', generation: gen + 1 });
    // The stale owner is refused without reaching the module.
    const calls = fragileStats(mod.lib).notInitialized;
    expect(() => a.call(() => mod.getInfo(), { returnsRv: true })).toThrow(/earlier generation/);
    expect(fragileStats(mod.lib).notInitialized).toBe(calls);
    a.reinitialize();
    expect(a.generation).toBe(gen + 1);
    expect(a.call(() => mod.getInfo(), { returnsRv: true })).toBe(0);
    a.release();
    expect(lc.state.phase).toBe('uninitialized');
  });

  it('after a foreign finalize: auto policy re-initializes once and retries idempotent calls', () => {
    lc.policy = 'auto';
    const a = lc.acquire();
    const inits = fragileStats(mod.lib).initialized;
    mod.lib.func('void fragile_finalize_behind_back(void)')();
    expect(a.call(() => mod.getInfo(), { idempotent: true, returnsRv: true })).toBe(0);
    expect(fragileStats(mod.lib).initialized - inits).toBe(1);
    // A non-idempotent call is not retried.
    mod.lib.func('void fragile_finalize_behind_back(void)')();
    expect(() => a.call(() => mod.openSession(7).rv, { returnsRv: true })).toThrow(LifecycleError);
    a.reinitialize();
    a.release();
    expect(fragileStats(mod.lib).overlaps).toBe(0);
    lc.policy = 'explicit';
  });

  it('never finalizes a module that someone else initialized', () => {
    expect(mod.initialize()).toBe(0); // the "someone else"
    const fin = fragileStats(mod.lib).finalized;
    const a = lc.acquire();
    expect(lc.state.ownedInit).toBe(false);
    a.release();
    expect(fragileStats(mod.lib).finalized).toBe(fin);
    expect(mod.finalize()).toBe(0);
  });
});

describe('foreign finalize and re-initialization on SoftHSM2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'life', '--so-pin', '12345678', '--pin', '1234']);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const hsm = openRawModule('/usr/lib/softhsm/libsofthsm2.so');
  const lc = ModuleLifecycle.of(hsm);

  function openOn(owner: Owner) {
    const slots = owner.call(() => hsm.slotList(), { idempotent: true });
    expect(slots.rv).toBe(0);
    const s = owner.call(() => hsm.openSession(slots.slots[0]));
    expect(s.rv).toBe(0);
    return owner.addSession(s.handle);
  }

  for (const policy of ['explicit', 'auto'] as const) {
    it(`${policy}: stale sessions are refused without reaching the module, re-init works`, () => {
      expect(init.status).toBe(0);
      lc.policy = policy;
      const owner = lc.acquire();
      const session = openOn(owner);
      expect(owner.call(() => hsm.generateRandom(session.handle, 16), { session, returnsRv: true })).toBe(0);
      const gen = lc.generation;

      expect(hsm.finalize()).toBe(0); // someone else finalizes SoftHSM behind our back
      if (policy === 'explicit') {
        expect(() => owner.call(() => hsm.getInfo(), { idempotent: true, returnsRv: true })).toThrow(/finalized by someone else/);
        expect(() => owner.call(() => hsm.getInfo(), { returnsRv: true })).toThrow(LifecycleError);
        owner.reinitialize();
      } else {
        expect(owner.call(() => hsm.getInfo(), { idempotent: true, returnsRv: true })).toBe(0); // one serialized re-init, retried
      }
      expect(lc.generation).toBe(gen + 1);
      expect(lc.state).toMatchObject({ phase: 'ready', ownedInit: true, holders: 1 });
      // The session from the old generation never reaches the module again.
      expect(() => owner.call(() => hsm.generateRandom(session.handle, 16), { session, returnsRv: true })).toThrow(/earlier generation/);
      const fresh = openOn(owner);
      expect(owner.call(() => hsm.generateRandom(fresh.handle, 16), { session: fresh, returnsRv: true })).toBe(0);
      owner.release();
      expect(lc.state.phase).toBe('uninitialized');
      expect(hsm.getInfo()).toBe(0x190); // we finalized what we initialized
    });
  }
});

describe('generation change on an in-process module', () => {
  it('finalizes what we initialized, so the next owner initializes it as ours again', () => {
    const mod = openRawModule(FRAGILE);
    const lc = ModuleLifecycle.of(mod);
    const before = fragileStats(mod.lib);
    const a = lc.acquire();
    lc.generationChange('fork');
    expect(fragileStats(mod.lib).finalized - before.finalized).toBe(1);
    expect(lc.state).toMatchObject({ phase: 'stale', holders: 0 });
    expect(() => a.call(() => mod.getInfo(), { returnsRv: true })).toThrow(/earlier generation/);
    const b = lc.acquire();
    expect(lc.state).toMatchObject({ phase: 'ready', ownedInit: true, holders: 1 });
    b.release();
    a.release();
    expect(lc.state.phase).toBe('uninitialized');
    const after = fragileStats(mod.lib);
    expect(after.initialized - before.initialized).toBe(2);
    expect(after.finalized - before.finalized).toBe(2);
    expect(after.already).toBe(before.already);
  });
});
