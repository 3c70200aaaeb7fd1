// Issue 12: no C_Finalize ever runs under a call in flight — async calls, dedicated threads,
// the service, terminated workers — and every refusal is a LifecycleError. The racy cases run
// in a child process of their own (test/workers/inflight-child.mjs), so that a crash or an
// abort is an exit status this suite sees, not the end of the test runner.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import koffi from 'koffi';
import { LifecycleError, openModule } from '../dist/lib/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const root = new URL('..', import.meta.url).pathname;
const libDir = join(root, 'dist/lib');
const FRAGILE = join(root, 'dist/native/fixtures/fragile-module.so');
const PIN = '1234';

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: Record<string, unknown> | undefined;
  stderr: string;
}

function child(args: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(root, 'test/workers/inflight-child.mjs'), JSON.stringify({ libDir, ...args })], { env });
    let out = '';
    let stderr = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop();
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = line ? JSON.parse(line) : undefined;
      } catch {
        parsed = undefined;
      }
      resolve({ code, signal, out: parsed, stderr: stderr.slice(-2000) });
    });
  });
}

let hsm: SoftHsm;
let slot: number;
/** The keygen test's second child gets a token store of its own: two processes re-initializing
 * SoftHSM2 while the other writes key objects into the same store can catch a token half-written
 * and find its slot gone (CKR_SLOT_ID_INVALID), which is SoftHSM2's file store, not our lifecycle. */
let hsm2: SoftHsm;
let slot2: number;
beforeAll(() => {
  hsm = createSoftHsm();
  slot = hsm.initToken('inflight', '12345678', PIN);
  hsm2 = createSoftHsm({ setEnv: false });
  slot2 = hsm2.initToken('inflight', '12345678', PIN);
});
afterAll(() => (hsm.cleanup(), hsm2.cleanup()));

describe('calls in flight are holds', () => {
  it('SoftHSM2: release() during s.async.generateKeyPair — 20 of 20 without a crash, the keygen completes, later calls are LifecycleErrors', async () => {
    const runs = await Promise.all(
      [false, true].map((twoOwners) =>
        child({ scenario: 'keygen', path: SOFTHSM_MODULE, slot: twoOwners ? slot2 : slot, pin: PIN, bits: 2048, delayMs: 150, iterations: 10, twoOwners, seed: twoOwners ? 3 : 5 }, (twoOwners ? hsm2 : hsm).env),
      ),
    );
    for (const r of runs) {
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      // Each iteration: the keygen in flight completes ('ok'), the call made after release() is refused.
      expect(r.out!.results).toEqual({ ok: 10, 'LifecycleError:not-initialized': 10 });
      const counts = r.out!.callCounts as { initialize: number; finalize: number };
      expect(counts.finalize).toBe(counts.initialize);
    }
  }, 600_000);

  it('fragile fixture: 64 async calls then release() — none reaches the module after its C_Finalize', async () => {
    const r = await child({ scenario: 'fragile', path: FRAGILE });
    expect(r.code, r.stderr).toBe(0);
    expect(r.out!.results).toEqual({ ok: 64 });
    expect(r.out!.late).toBe('LifecycleError:not-initialized');
    expect(r.out!.state).toMatchObject({ phase: 'uninitialized', holders: 0 });
    expect(r.out!.fixture).toMatchObject({ notInitialized: 0, calls: 64, initialized: 1, finalized: 1, overlaps: 0 });
  }, 120_000);

  it('whenReleased() settles when the last call in flight returns; the owner holds until then', async () => {
    const m = openModule(FRAGILE);
    const pending = Array.from({ length: 8 }, () => m.async.getSlotList());
    m.release();
    expect(m.owner.callsInFlight).toBe(8);
    expect(m.lifecycle.state.holders).toBeGreaterThanOrEqual(1);
    expect(() => m.getInfo()).toThrow(LifecycleError);
    await Promise.all(pending);
    await m.whenReleased();
    expect(m.lifecycle.state.phase).toBe('uninitialized');
    expect(m.lifecycle.callsInFlight).toEqual({ here: 0, elsewhere: 0 });
  });
});

describe('no abort window of ours', () => {
  it('150 workers terminated right after their first blocking call (C_Login on a dedicated thread): 0 aborts, all reclaimed', async () => {
    const r = await child({ scenario: 'terminate', path: SOFTHSM_MODULE, slot, pin: PIN, workers: 150, parallel: 4, jitterMs: 10, seed: 11 }, hsm.env);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.out).toEqual({ terminated: 150, holdersBeforeOurs: 0 });
  }, 600_000);
});

describe('typed answers', () => {
  it('a module finalized behind our back under sync and async calls: every NOT_INITIALIZED is a LifecycleError', async () => {
    const lib = koffi.load(FRAGILE);
    const behind = lib.func('void fragile_finalize_behind_back(void)');
    const kinds: string[] = [];
    for (let cycle = 0; cycle < 200; cycle++) {
      const m = openModule(FRAGILE);
      const inFlight = Array.from({ length: 4 }, () => m.async.getSlotList().then(() => 'ok', (e) => (e instanceof LifecycleError ? 'lifecycle' : `raw:${e?.rv}`)));
      if (cycle % 2) behind();
      try {
        m.getInfo();
        kinds.push('ok');
      } catch (e) {
        kinds.push(e instanceof LifecycleError ? 'lifecycle' : `raw:${(e as { rv?: number }).rv}`);
      }
      if (cycle % 2 === 0) behind();
      kinds.push(...(await Promise.all(inFlight)));
      m.release();
      await m.whenReleased();
    }
    expect(kinds.filter((k) => k.startsWith('raw'))).toEqual([]);
    expect(kinds).toContain('lifecycle');
  });

  it('policy is per owner: an auto owner retries after a foreign finalize while an explicit owner of the same module is refused', () => {
    const behind = koffi.load(FRAGILE).func('void fragile_finalize_behind_back(void)');
    const explicit = openModule(FRAGILE);
    const auto = openModule(FRAGILE, { policy: 'auto' });
    expect(auto.owner.policy).toBe('auto');
    expect(explicit.owner.policy).toBe('explicit');
    behind();
    expect(auto.getSlotList().length).toBe(1); // re-initialized once, retried
    behind();
    expect(() => explicit.getSlotList()).toThrow(LifecycleError);
    auto.release();
    explicit.release();
  });
});

const readlinkSafe = (path: string): string => {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
};

describe('the region goes away', () => {
  // The region is an anonymous memfd (ts/lifecycle/region.ts): alive while a descriptor of the
  // process names it, gone with the process; nothing of ours is ever left in /dev/shm.
  const regions = (pid: number) => {
    const shm = readdirSync('/dev/shm').filter((n) => n.startsWith('p11kit-wasm-') && n.includes(`${pid}`));
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSafe(`/proc/${pid}/fd/${fd}`)).filter((l) => l.startsWith(`/memfd:p11kit-wasm-anchor-${pid}`));
    } catch {
      // the process is gone, and its descriptors with it
    }
    return [...shm, ...fds];
  };

  it('at a normal exit when a worker, not the main thread, used the library first', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      import(${JSON.stringify(`${libDir}/index.js`)}).then(() => {
        const w = new Worker(\`import(${JSON.stringify(`${libDir}/index.js`)}).then((l) => { const m = l.openModule(${JSON.stringify(FRAGILE)}); m.getInfo(); m.release(); });\`, { eval: true });
        w.on('exit', () => { console.log(process.pid); });
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    expect(regions(pid)).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('CLI on %s: finalizes what it initialized, removes the region, dies of the signal', async (sig) => {
    // A command that holds a module and waits: `p11kit` reading a message from stdin to sign.
    const script = `
      import(${JSON.stringify(join(libDir, 'cli/signals.js'))}).then(async ({ installSignalHandlers }) => {
        const { openModule } = await import(${JSON.stringify(`${libDir}/index.js`)});
        installSignalHandlers();
        const m = openModule(${JSON.stringify(FRAGILE)});
        m.lifecycle.on('finalize', () => process.stderr.write('finalized\\n'));
        m.getInfo();
        console.log(process.pid);
        setInterval(() => {}, 1000);
      });`;
    const p = spawn(process.execPath, ['-e', script]);
    let out = '';
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const pid = await new Promise<number>((resolve) => p.stdout.on('data', (d) => ((out += d), out.includes('\n') && resolve(Number(out.trim())))));
    expect(regions(pid).length).toBe(1);
    p.kill(sig);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => p.on('close', (c, s) => r([c, s])));
    expect(signal).toBe(sig);
    expect(code).toBeNull();
    expect(err).toContain('finalized');
    expect(regions(pid)).toEqual([]);
  });
});

describe('the service with 32 calls in flight (8 RSA key generations)', () => {
  // Bounds (README): kill/restart settle every promise at once; close() after its drain
  // timeout (2 s); mod.close() as the calls already inside the module end. The generous
  // ceiling below only catches a hang.
  it.each(['close', 'kill', 'restart', 'release'] as const)('%s: no crash, every call settles, the module ends finalized', async (how) => {
    const r = await child({ scenario: 'service', path: SOFTHSM_MODULE, slot, pin: PIN, bits: 2048, delayMs: 100, how }, hsm.env);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const results = r.out!.results as Record<string, number>;
    expect(Object.values(results).reduce((a, b) => a + b, 0)).toBe(32);
    // mod.close(): calls queued behind it on its sessions are refused by the service (the session was closed).
    for (const k of Object.keys(results)) expect(['ok', 'ServiceDeadError', 'LifecycleError:not-initialized', 'rv:0xb3']).toContain(k);
    expect(r.out!.holdersLeft).toBe(0);
    const counts = r.out!.counts as { initialize: number; finalize: number };
    expect(counts.finalize).toBe(counts.initialize);
    expect(r.out!.settledMs as number).toBeLessThan(120_000);
  }, 300_000);
});

