// The concurrency baseline, reproduced through our lifecycle: 16 plain worker threads of one
// process cycling acquire → calls → release (or holding the module for a while) against the
// fragile fixture, SoftHSM2 and NSS softokn — without and with workers terminated at random.
// Each run is its own process, so a crash shows as a signal and a hang as a timeout.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectCleanRun, runStress, type StressRun } from './helpers/stress-run.js';

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'p11kit-lifecycle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let softhsm: NodeJS.ProcessEnv | undefined;
function softhsmEnv(): NodeJS.ProcessEnv {
  if (softhsm) return softhsm;
  const dir = join(work, 'softhsm');
  spawnSync('mkdir', ['-p', join(dir, 'tokens')]);
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') };
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'stress', '--so-pin', '12345678', '--pin', '1234'], { env });
  if (r.status !== 0) throw new Error(`softhsm2-util failed: ${r.stderr}`);
  return (softhsm = env);
}

let nss: string | undefined;
function nssReserved(): string {
  if (nss) return nss;
  const dir = join(work, 'nssdb');
  spawnSync('mkdir', ['-p', dir]);
  const r = spawnSync('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password']);
  if (r.status !== 0) throw new Error(`certutil failed: ${r.stderr}`);
  return (nss = `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=noModDB`);
}

type RunResult = StressRun;
/** 200 cycles per worker unless a case says otherwise. */
const run = (opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env, limitMs = 90_000) => runStress({ cycles: 200, ...opts }, env, limitMs);


const FRAGILE = join(root, 'dist/native/fixtures/fragile-module.so');
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const NSS = '/usr/lib/x86_64-linux-gnu/libsoftokn3.so';

describe('16 plain workers through the process-wide lifecycle', { timeout: 200_000 }, () => {
  it('fragile fixture: 16 × 200 cycles, 0 overlaps, init count = finalize count', async () => {
    expectCleanRun(await run({ path: FRAGILE, withSessions: true }), { terminated: false });
  });

  it('fragile fixture: workers terminated at random moments, nothing deadlocks, everything reclaimed', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await run({ path: FRAGILE, withSessions: true, terminate: true, seed });
      expectCleanRun(r, { terminated: true });
      expect(r.report!.terminated).toBeGreaterThan(0);
    }
  });

  it('SoftHSM2: 16 × 200 cycles with sessions, then with random terminations', async () => {
    const env = softhsmEnv();
    expectCleanRun(await run({ path: SOFTHSM, withSessions: true }, env), { terminated: false });
    expectCleanRun(await run({ path: SOFTHSM, withSessions: true, terminate: true, seed: 7 }, env), { terminated: true });
  });

  it('NSS softokn: 16 × 200 cycles, never an empty slot list, then with random terminations', async () => {
    const reserved = nssReserved();
    expectCleanRun(await run({ path: NSS, reserved }), { terminated: false });
    expectCleanRun(await run({ path: NSS, reserved, terminate: true, seed: 11 }), { terminated: true });
  });

  it('async variant (half the cycles async, half of those released with calls in flight, random terminations): fragile fixture and SoftHSM2, 0 calls after finalize', async () => {
    for (const seed of [21, 22]) {
      const r = await run({ path: FRAGILE, withSessions: true, asyncCalls: true, cycles: 100, terminate: seed === 22, seed });
      expectCleanRun(r, { terminated: seed === 22, cycles: 100 });
      expect(r.report!.fixture!.notInitialized, 'calls that reached the module after its C_Finalize').toBe(0);
    }
    expectCleanRun(await run({ path: SOFTHSM, withSessions: true, asyncCalls: true, cycles: 100, terminate: true, seed: 23 }, softhsmEnv()), { terminated: true, cycles: 100 });
  });

  it('hold variant (each worker holds the module 0.5–2 s, releases at its own time): SoftHSM2, NSS, fixture', async () => {
    const env = softhsmEnv();
    expectCleanRun(await run({ path: SOFTHSM, hold: true, seed: 3 }, env), { terminated: false });
    expectCleanRun(await run({ path: NSS, reserved: nssReserved(), hold: true, seed: 4 }), { terminated: false });
    const r = await run({ path: FRAGILE, hold: true, seed: 5 });
    expectCleanRun(r, { terminated: false });
    expect(r.report!.callCounts.initialize).toBe(1); // one C_Initialize for all 16 workers
  });
});
