// The service's generic layer with real worker threads and a real module: a small service
// (SoftHSM2 through the bridge and the lifecycle) served in a worker,
// driven through the supervisor — batching, error fidelity, death of the worker mid-call,
// restart as a new generation, lifecycle reclaim, streams, and the MessagePortMain adapter.
// Workers run the built library (dist/lib): run `npx tsc -p .` (make ts) first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Manager from '../ts/lifecycle/manager.js';

const root = new URL('..', import.meta.url).pathname;
const lib = pathToFileURL(join(root, 'dist/lib')).href;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
// The test imports the built modules too, so that error classes are the very ones the
// supervisor's codec registered (a ts/ copy would be a different class object).
const { Supervisor } = (await import(`${lib}/service/supervisor.js`)) as typeof import('../ts/service/supervisor.js');
const { spawnWorkerHost } = (await import(`${lib}/service/worker-host.js`)) as typeof import('../ts/service/worker-host.js');
const { ServiceDeadError } = (await import(`${lib}/service/errors.js`)) as typeof import('../ts/service/errors.js');
const endpoints = (await import(`${lib}/service/endpoint.js`)) as typeof import('../ts/service/endpoint.js');
const { LifecycleError: BuiltLifecycleError, ModuleLifecycle } = (await import(`${lib}/lifecycle/manager.js`)) as typeof Manager;
const { loadModule, Pkcs11Error } = (await import(`${lib}/bridge/index.js`)) as typeof import('../ts/bridge/index.js');
await import(`${lib}/service/known-errors.js`);

// The service under test, as a module the worker loads from a data: URL.
const SERVICE = `
import { parentPort, workerData } from 'node:worker_threads';
import { serveService } from '${lib}/service/host.js';
import { nodePortEndpoint, portMainEndpoint, portMainFromNodePort } from '${lib}/service/endpoint.js';
import '${lib}/service/known-errors.js';
import { ModuleLifecycle } from '${lib}/lifecycle/manager.js';
import { loadModule } from '${lib}/bridge/modules.js';

const mod = loadModule(workerData.module);
const rvOf = (f) => { try { f(); return 0; } catch (e) { if (typeof e.rv === 'number') return e.rv; throw e; } };
const lc = ModuleLifecycle.of({
  identity: mod.identity,
  name: mod.path,
  initialize: () => rvOf(() => mod.initialize()),
  finalize: () => rvOf(() => mod.finalize()),
  closeSession: (h) => mod.raw.C_CloseSession(h),
});
let owner, session;
const random = (n) => owner.call(() => mod.generateRandom(session, n)).length;
const api = {
  open() {
    owner = lc.acquire();
    const slots = owner.call(() => mod.getSlotList(true), { idempotent: true });
    session = owner.call(() => mod.openSession(slots[0]));
    owner.addSession(BigInt(session));
    return { generation: owner.generation };
  },
  badSession() { return owner.call(() => mod.generateRandom(0xdead, 8)); },
  random,
  // Keeps the worker inside module calls for ms milliseconds: a call that is mid-way when killed.
  busy(ms) {
    const end = Date.now() + ms;
    let n = 0;
    while (Date.now() < end) n += random(32) && 1;
    return n;
  },
  stale() {
    const o = lc.acquire();
    o.release();
    o.check();
  },
  typeError() { return null.x; },
  custom() {
    const e = new RangeError('custom fields', { cause: new TypeError('inner') });
    Object.assign(e, { big: 0xffffffffffffffffn, bytes: new Uint8Array([1, 2]), fn: () => 1 });
    throw e;
  },
  throwValue() { throw { rv: 0x191, text: 'plain object' }; },
  crash(code) { process.exit(code); },
  drain() { owner?.release(); owner = undefined; },
  state() { return lc.state; },
};
const ep = workerData.port ? portMainEndpoint(portMainFromNodePort(workerData.port)) : nodePortEndpoint(parentPort);
serveService(api, ep, {
  batched: { random, stale: api.stale, typeError: api.typeError, badSession: api.badSession, fnResult: () => () => 1 },
  streams: {
    async *ticks(signal, count, ms) {
      for (let i = 0; i < count && !signal.aborted; i++) {
        await new Promise((r) => setTimeout(r, ms));
        yield { i, at: Date.now() };
      }
    },
    async *failing(signal) { yield 1; api.stale(); },
  },
});
`;
const serviceUrl = new URL(`data:text/javascript,${encodeURIComponent(SERVICE)}`);

type Api = {
  open(): { generation: number };
  random(n: number): number;
  badSession(): unknown;
  fnResult(): unknown;
  busy(ms: number): number;
  stale(): void;
  typeError(): unknown;
  custom(): void;
  throwValue(): void;
  crash(code: number): string;
  drain(): void;
  state(): { phase: string; holders: number };
};

const work = mkdtempSync(join(tmpdir(), 'p11kit-service-core-'));
beforeAll(() => {
  const dir = join(work, 'softhsm');
  spawnSync('mkdir', ['-p', join(dir, 'tokens')]);
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'svc', '--so-pin', '12345678', '--pin', '1234']);
  if (r.status !== 0) throw new Error(`softhsm2-util failed: ${r.stderr}`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The main thread's view of the same module, used to reclaim what dead workers held.
let mainView: Manager.ModuleLifecycle | undefined;
const rvOf = (f: () => void) => {
  try {
    f();
    return 0;
  } catch (e) {
    return (e as { rv: number }).rv;
  }
};
const lifecycle = () => {
  if (mainView) return mainView;
  const m = loadModule(SOFTHSM);
  return (mainView = ModuleLifecycle.of({
    identity: m.identity,
    name: m.path,
    initialize: () => rvOf(() => m.initialize()),
    finalize: () => rvOf(() => m.finalize()),
    closeSession: (h: bigint) => m.raw.C_CloseSession(h),
  }));
};

function supervise(restart = false) {
  const reclaimed: number[] = [];
  const sup = new Supervisor<Api>({
    spawn: () => spawnWorkerHost(serviceUrl, { workerData: { module: SOFTHSM } }),
    restart,
    drain: 'drain',
    reclaim: (gen: number) => {
      lifecycle().sweep();
      reclaimed.push(gen);
    },
  });
  return { sup, reclaimed };
}

const settle = (ps: Promise<unknown>[]) => Promise.allSettled(ps);
const waitFor = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('service core: supervisor, batches, errors', () => {
  it('runs comlink calls and batched calls against SoftHSM2 in a worker', async () => {
    const { sup } = supervise();
    expect((await sup.call('open')).generation).toBeGreaterThan(0);
    const sizes = Array.from({ length: 40 }, (_, i) => i + 1);
    expect(await Promise.all(sizes.map((n) => sup.batch('random', n)))).toEqual(sizes);
    expect(await sup.call('random', 16)).toBe(16);
    expect(lifecycle().state.holders).toBe(1);
    await sup.close();
    expect(lifecycle().state).toMatchObject({ phase: 'uninitialized', holders: 0 });
  });

  it('keeps error classes and fields across the boundary (comlink and batched)', async () => {
    const { sup } = supervise();
    await sup.call('open');
    for (const p of [sup.call('stale'), sup.batch('stale')]) {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BuiltLifecycleError);
      expect(err).toMatchObject({ name: 'LifecycleError', rv: 0x190, reason: 'not-initialized', module: SOFTHSM });
      expect((err as Error).message).toContain('not initialized');
      expect((err as Error).stack).toContain('LifecycleError');
    }
    for (const p of [sup.call('badSession'), sup.batch('badSession')]) {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(Pkcs11Error);
      expect(err).toMatchObject({ name: 'Pkcs11Error', rv: 0xb3, code: 'CKR_SESSION_HANDLE_INVALID', fn: 'C_GenerateRandom', module: 'libsofthsm2.so' });
    }
    const te = await sup.batch('typeError').catch((e: unknown) => e);
    expect(te).toBeInstanceOf(TypeError);
    const custom = (await sup.call('custom').catch((e: unknown) => e)) as RangeError & Record<string, unknown>;
    expect(custom).toBeInstanceOf(RangeError);
    expect(custom.big).toBe(0xffffffffffffffffn);
    expect(custom.bytes).toEqual(new Uint8Array([1, 2]));
    expect(custom.fn).toBeUndefined(); // functions cannot cross; the rest still does
    expect(custom.cause).toBeInstanceOf(TypeError);
    expect((custom.cause as Error).message).toBe('inner');
    expect(await sup.call('throwValue').catch((e: unknown) => e)).toEqual({ rv: 0x191, text: 'plain object' });
    expect(await sup.batch('nope' as never).catch((e: unknown) => e)).toBeInstanceOf(TypeError);
    await sup.close();
  });

  it('malformed messages and unserializable results fail alone; the service lives on', async () => {
    const { sup } = supervise();
    await sup.call('open');
    const ep = (sup as unknown as { current: { host: { endpoint: { postMessage(m: unknown): void } } } }).current.host.endpoint;
    ep.postMessage({ p11wBatch: 1e9, calls: 'junk' });
    ep.postMessage({ p11wBatch: 1e9 + 1, calls: [[1, 2], null, ['random']] });
    ep.postMessage({ p11wStreamOpen: 1e9, name: 'nope', args: 'junk' });
    const [a, b, c] = await Promise.allSettled([sup.batch('random', 4), sup.batch('fnResult'), sup.batch('random', 5)]);
    expect(a).toEqual({ status: 'fulfilled', value: 4 });
    expect(b.status === 'rejected' && b.reason).toBeInstanceOf(TypeError);
    expect((b as PromiseRejectedResult).reason.message).toBe('unserializable result');
    expect(c).toEqual({ status: 'fulfilled', value: 5 });
    expect(sup.alive).toBe(true);
    expect(await sup.call('random', 3)).toBe(3);
    await sup.close();
  });

  it('a worker terminated mid-call: every pending call rejects, later calls reject at once, owners reclaimed', async () => {
    const { sup, reclaimed } = supervise(false);
    await sup.call('open');
    const deaths: unknown[] = [];
    sup.on('death', (d) => deaths.push(d));
    const busy = sup.call('busy', 5000);
    const batched = Array.from({ length: 32 }, () => sup.batch('random', 32));
    const stream = sup.stream<{ i: number }>('ticks', 1000, 50);
    await new Promise((r) => setTimeout(r, 150)); // the worker is now inside busy()
    expect(sup.pending).toBe(33);
    const worker = (sup as unknown as { current: { host: { worker: Worker } } }).current.host.worker;
    await worker.terminate();
    const results = await settle([busy, ...batched]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    for (const r of results) {
      const e = (r as PromiseRejectedResult).reason;
      expect(e).toBeInstanceOf(ServiceDeadError);
      expect(e).toMatchObject({ generation: 1, pending: true });
    }
    expect(((results[0] as PromiseRejectedResult).reason as Error).message).toMatch(/busy: .*generation 1 is gone.*in flight/);
    await expect(stream.next()).rejects.toBeInstanceOf(ServiceDeadError);
    // After death, without restart: at once, not in flight.
    const later = await sup.call('random', 1).catch((e: unknown) => e);
    expect(later).toMatchObject({ name: 'ServiceDeadError', pending: false });
    await expect(sup.batch('random', 1)).rejects.toMatchObject({ pending: false });
    expect(deaths).toEqual([{ generation: 1, reason: 'worker exited with code 1', rejected: 33, restarting: false }]);
    await waitFor(() => reclaimed.includes(1));
    expect(lifecycle().state).toMatchObject({ phase: 'uninitialized', holders: 0 });
    const counts = lifecycle().callCounts;
    expect(counts.finalize).toBe(counts.initialize);
  });

  it('restarts as a new generation after a crash; the old generation is reclaimed', async () => {
    const { sup, reclaimed } = supervise(true);
    await sup.call('open');
    const deathReasons: string[] = [];
    sup.on('death', (d: { reason: string }) => deathReasons.push(d.reason));
    const generations: number[] = [];
    sup.on('generation', (g: number) => generations.push(g));
    // Answered before the crash is sent: a reply the worker posts in the turn before its
    // process.exit() was not always delivered (1 run in 5), and the supervisor then rightly
    // reports that call's outcome as unknown — not what this test is about.
    expect(await sup.call('busy', 200)).toBeGreaterThan(0);
    // process.exit() inside a worker ends only that worker; this call never answers.
    const crash = sup.call('crash', 3);
    const after = sup.batch('random', 8);
    await expect(crash).rejects.toMatchObject({ name: 'ServiceDeadError', generation: 1, pending: true, method: 'crash' });
    await expect(after).rejects.toMatchObject({ name: 'ServiceDeadError', generation: 1, pending: true });
    expect(deathReasons).toEqual(['worker exited with code 3']);
    await waitFor(() => generations.length === 1);
    expect(sup.generation).toBe(2);
    expect(sup.alive).toBe(true);
    expect((await sup.call('open')).generation).toBeGreaterThan(0);
    expect(await sup.batch('random', 8)).toBe(8);
    await waitFor(() => reclaimed.includes(1));
    expect(lifecycle().state.holders).toBe(1); // generation 2's owner only
    expect(await sup.restart()).toBe(3);
    expect((await sup.call('open')).generation).toBeGreaterThan(0);
    await sup.close();
    expect(reclaimed.sort()).toEqual([1, 2, 3]);
    expect(lifecycle().state).toMatchObject({ phase: 'uninitialized', holders: 0 });
  });

  it('streams: values in order, break cancels, a thrown error arrives typed', async () => {
    const { sup } = supervise();
    await sup.call('open');
    const seen: number[] = [];
    for await (const t of sup.stream<{ i: number }>('ticks', 100, 5)) {
      seen.push(t.i);
      if (seen.length === 4) break;
    }
    expect(seen).toEqual([0, 1, 2, 3]);
    const all: number[] = [];
    for await (const t of sup.stream<{ i: number }>('ticks', 3, 1)) all.push(t.i);
    expect(all).toEqual([0, 1, 2]);
    const it = sup.stream<number>('failing');
    expect(await it.next()).toEqual({ done: false, value: 1 });
    await expect(it.next()).rejects.toBeInstanceOf(BuiltLifecycleError);
    await sup.close();
  });
});

describe('Electron MessagePortMain adapter (over Node MessageChannel ports shaped like MessagePortMain)', () => {
  it('serves the same service over a port pair; closing the port rejects what is pending', async () => {
    const workers: Worker[] = [];
    const sup = new Supervisor<Api>({
      spawn: () => {
        const { port1, port2 } = new MessageChannel();
        const w = new Worker(serviceUrl, { workerData: { module: SOFTHSM, port: port2 }, transferList: [port2] });
        workers.push(w);
        const exited = new Promise((r) => w.once('exit', r));
        // The main-process side talks MessagePortMain, as Electron's main process would.
        const endpoint = endpoints.portMainEndpoint(endpoints.portMainFromNodePort(port1));
        return { endpoint, exited, terminate: () => w.terminate() };
      },
      reclaim: () => lifecycle().sweep(),
    });
    await sup.call('open');
    const n = await Promise.all(Array.from({ length: 20 }, () => sup.batch('random', 64)));
    expect(n).toEqual(new Array(20).fill(64));
    const err = await sup.call('stale').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuiltLifecycleError);
    const pending = sup.call('busy', 5000);
    await new Promise((r) => setTimeout(r, 100));
    // The utility process going away shows on the port as 'close'.
    workers[0].terminate();
    await expect(pending).rejects.toMatchObject({ name: 'ServiceDeadError', reason: 'port closed', pending: true });
    await sup.close();
    expect(lifecycle().state.holders).toBe(0);
  });
});
