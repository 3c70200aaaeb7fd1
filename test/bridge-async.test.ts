// Async calls and libuv's threadpool. koffi's async form runs on that pool, which fs, dns and
// crypto share (4 threads by default): a few PKCS#11 calls parked in a module would stall the
// process's I/O. The bridge sends calls that may block (C_Login, blocking C_WaitForSlotEvent,
// key generation...) to dedicated threads and bounds its own use of the pool. The fixture
// (test/fixtures/blocking-module.c) parks C_Login and C_WaitForSlotEvent until released.
import { spawnSync } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModule, asyncStats, configureAsync, CKR, Pkcs11Error, type Pkcs11Module } from '../ts/bridge/index.js';

const PATH = `${process.cwd()}/dist/native/fixtures/blocking-module.so`;
const UV_THREADS = Number(process.env.UV_THREADPOOL_SIZE) || 4;

const hooks = koffi.load(PATH);
const inFlight = hooks.func('int blocking_fixture_in_flight(void)') as () => number;
const maxInFlight = hooks.func('int blocking_fixture_max_in_flight(void)') as () => number;
const total = hooks.func('int blocking_fixture_total(void)') as () => number;
const releaseAll = hooks.func('void blocking_fixture_release_all(void)') as () => void;

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 4000 && !cond(); i++) await tick();
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}
/** Releases parked calls until every promise has settled. */
async function drain(promises: Promise<unknown>[]): Promise<PromiseSettledResult<unknown>[]> {
  let settled = false;
  const all = Promise.allSettled(promises).finally(() => (settled = true));
  while (!settled) {
    releaseAll();
    await tick();
  }
  return all;
}
const ioWork = () => Promise.all([readFile(PATH), promisify(pbkdf2)('pw', 'salt', 1000, 32, 'sha256')]);

let m: Pkcs11Module;
beforeAll(() => {
  m = loadModule(PATH);
  m.initialize();
});
afterAll(() => {
  try {
    m.finalize();
  } catch {
    // the last test finalizes
  }
});

describe('async calls and the libuv threadpool', () => {
  it('control: parking koffi async calls on the pool does stall fs and crypto', async () => {
    const login = koffi.decode(m.functionList, 8 + 8 * 18, 'void *');
    const raw = koffi.decode(login, koffi.proto('unsigned long ctl_login(unsigned long, unsigned long, void *, unsigned long)'));
    const parked = Array.from({ length: UV_THREADS }, () => promisify(raw.async)(1, 1, null, 0));
    await until(() => inFlight() === UV_THREADS, 'the pool threads to park');
    const order: string[] = [];
    const io = ioWork().then(() => order.push('io'));
    await tick(200);
    order.push('release');
    await drain(parked);
    await io;
    expect(order).toEqual(['release', 'io']);
  });

  it('blocking calls run on dedicated threads: fs and crypto keep working while 20 are parked', async () => {
    configureAsync({ dedicatedThreads: 4 });
    const before = total();
    const logins = Array.from({ length: 16 }, () => m.async.login(1, 1, '1234'));
    const waits = Array.from({ length: 4 }, () => m.async.waitForSlotEvent(0));
    const all = [...logins, ...waits];
    let settledEarly = 0;
    all.forEach((p) => p.then(() => settledEarly++, () => settledEarly++));
    await until(() => inFlight() === 4, 'the dedicated threads to park');
    expect(asyncStats().dedicated).toEqual({ threads: 4, busy: 4, queued: 16 });

    await ioWork(); // would hang (and time out) if the blocked calls held the pool
    expect(inFlight()).toBe(4);
    expect(settledEarly).toBe(0);

    const results = await drain(all);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(await waits[0]).toBe(1);
    expect(total() - before).toBe(20);
    expect(maxInFlight()).toBe(4);
  });

  it('bounds its own use of the pool for short calls', async () => {
    configureAsync({ poolCalls: 2 });
    const calls = Array.from({ length: 100 }, () => m.async.getInfo());
    expect(asyncStats().pool.running).toBeLessThanOrEqual(2);
    expect(asyncStats().pool.queued).toBeGreaterThan(0);
    const infos = await Promise.all(calls);
    expect(infos.every((i) => i.cryptokiVersion.minor === 40)).toBe(true);
    expect(asyncStats().pool).toEqual({ running: 0, queued: 0 });
  });

  it('C_WaitForSlotEvent with CKF_DONT_BLOCK stays on the pool and answers null', async () => {
    expect(await m.async.waitForSlotEvent(1)).toBeNull();
    expect(asyncStats().dedicated.busy).toBe(0);
  });

  it('dedicated threads also run in a process started with --input-type=module (their eval inherits it)', () => {
    const lib = `${process.cwd()}/dist/lib/bridge/index.js`;
    const script = `
      import koffi from 'koffi';
      const { loadModule } = await import(${JSON.stringify(lib)});
      const inFlight = koffi.load(${JSON.stringify(PATH)}).func('int blocking_fixture_in_flight(void)');
      const m = loadModule(${JSON.stringify(PATH)});
      m.initialize();
      const wait = m.async.waitForSlotEvent(0).then(() => 'event', (e) => e.code ?? e.message);
      while (inFlight() === 0) await new Promise((r) => setTimeout(r, 5));
      m.finalize();
      console.log(await wait);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: process.cwd() });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
  });

  it('a blocking wait ends with CKR_CRYPTOKI_NOT_INITIALIZED when C_Finalize runs', async () => {
    const wait = m.async.waitForSlotEvent(0);
    await until(() => inFlight() === 1, 'the wait to park');
    m.finalize();
    const err = await wait.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((err as Pkcs11Error).rv).toBe(CKR.CKR_CRYPTOKI_NOT_INITIALIZED);
    expect((err as Pkcs11Error).fn).toBe('C_WaitForSlotEvent');
  });
});
