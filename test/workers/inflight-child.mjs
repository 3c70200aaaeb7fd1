// Calls in flight meet a release, in a process of its own (so a crash is an exit status, not a
// dead test runner). argv[2]: { scenario, libDir, ... }. Prints one JSON line of findings.
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';

const opts = JSON.parse(process.argv[2]);
const lib = await import(`${opts.libDir}/index.js`);
const { openModule, CKM, CKA, CKU, LifecycleError } = lib;
const kind = (e) => (e instanceof LifecycleError ? `LifecycleError:${e.reason}` : e?.rv !== undefined ? `rv:0x${Number(e.rv).toString(16)}` : `other:${e?.message}`);
const tally = (xs) => xs.reduce((t, x) => ((t[x] = (t[x] ?? 0) + 1), t), {});
let rand = opts.seed ?? 7;
const random = () => ((rand = (rand * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fragileStats(path) {
  const out = new Array(8).fill(0);
  koffi.load(path).func('void fragile_stats(_Out_ unsigned long *out)')(out);
  const [initialized, finalized, overlaps, already, notInitialized, opened, closed, calls] = out.map(Number);
  return { initialized, finalized, overlaps, already, notInitialized, opened, closed, calls };
}

const RSA = (bits) => [
  [{ type: CKA.CKA_MODULUS_BITS, value: bits }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_TOKEN, value: false }],
  [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_TOKEN, value: false }],
];

const scenarios = {
  // s.async.generateKeyPair, then the owner's release while it runs (and with two owners, the other's).
  async keygen() {
    const results = [];
    for (let i = 0; i < opts.iterations; i++) {
      const m = openModule(opts.path);
      const other = opts.twoOwners ? openModule(opts.path) : undefined;
      const s = await m.async.openSession(opts.slot, { rw: true });
      await s.async.login(CKU.CKU_USER, opts.pin);
      const gen = s.async.generateKeyPair(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, ...RSA(opts.bits)).then(
        (kp) => (typeof kp.privateKey === 'number' ? 'ok' : 'bad'),
        kind,
      );
      await sleep(opts.delayMs * random());
      m.release();
      const after = await m.async.getInfo().then(() => 'reached', kind);
      other?.release();
      results.push(await gen, after);
      await m.whenReleased?.();
    }
    const lc = openModule(opts.path);
    const { callCounts, state } = lc.lifecycle;
    lc.release();
    return { results: tally(results), callCounts: lc.lifecycle.callCounts, stateBefore: state, before: callCounts };
  },
  // 64 async reads, then release: none may reach the module after its C_Finalize.
  async fragile() {
    const m = openModule(opts.path);
    const calls = Array.from({ length: 64 }, () => m.async.getInfo().then(() => 'ok', kind));
    m.release();
    const late = await m.async.getSlotList().then(() => 'reached', kind);
    const settled = await Promise.all(calls);
    await m.whenReleased?.();
    return { results: tally(settled), late, state: m.state, fixture: fragileStats(opts.path) };
  },
  // Workers terminated right after their first blocking call (the dedicated thread's first use).
  async terminate() {
    let done = 0;
    const src = new URL('./inflight-terminate-worker.mjs', import.meta.url);
    const one = async () => {
      const w = new Worker(src, { workerData: { libDir: opts.libDir, path: opts.path, slot: opts.slot, pin: opts.pin } });
      await new Promise((resolve) => w.once('message', resolve));
      await sleep(random() * opts.jitterMs);
      await w.terminate();
      done++;
    };
    for (let i = 0; i < opts.workers; i += opts.parallel) {
      await Promise.all(Array.from({ length: Math.min(opts.parallel, opts.workers - i) }, one));
    }
    const m = openModule(opts.path);
    m.lifecycle.sweep();
    const state = m.lifecycle.state;
    m.release();
    return { terminated: done, holdersBeforeOurs: state.holders - 1 };
  },
  // The service with 32 calls in flight (8 key generations), then close/kill/restart/mod.close.
  async service() {
    const { createPkcs11Worker, ServiceDeadError } = lib;
    const p11 = createPkcs11Worker();
    const mod = await p11.openModule(opts.path);
    const sessions = [];
    for (let i = 0; i < 8; i++) sessions.push(await mod.openSession(opts.slot, { rw: true, pin: i === 0 ? opts.pin : undefined }));
    const calls = [];
    for (let i = 0; i < 32; i++) {
      const s = sessions[i % 8];
      const p = i < 8 ? s.generateKeyPair(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, ...RSA(opts.bits)) : s.generateRandom(32);
      calls.push(p.then(() => 'ok', (e) => (e instanceof ServiceDeadError ? 'ServiceDeadError' : kind(e))));
    }
    await sleep(opts.delayMs);
    const t0 = Date.now();
    const ending = { close: () => p11.close(), kill: () => p11.kill(), restart: () => p11.restart(), release: () => mod.close() }[opts.how]();
    const results = await Promise.all(calls);
    const settledMs = Date.now() - t0;
    await ending;
    if (opts.how !== 'close') await p11.close();
    const endedMs = Date.now() - t0;
    // The module as the process sees it once the service is gone.
    const local = openModule(opts.path);
    const state = local.lifecycle.state;
    local.release();
    const counts = local.lifecycle.callCounts;
    return { results: tally(results), settledMs, endedMs, holdersLeft: state.holders - 1, counts };
  },
};

console.log(JSON.stringify(await scenarios[opts.scenario]()));
