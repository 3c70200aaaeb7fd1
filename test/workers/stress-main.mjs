// One stress run in its own process (so a crash is an exit status, not a dead test runner):
// N plain workers start together and cycle through the lifecycle; optionally some are
// terminated at random moments. Prints one JSON line with the counters and the module state.
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';

const opts = JSON.parse(process.argv[2]);
const { path, reserved, workers: n, cycles, terminate, libDir, withSessions, seed = 1, hold, asyncCalls } = opts;
const { loadModule, lifecycleTarget, ModuleLifecycle } = await import(`${libDir}/index.js`);
const counters = new Int32Array(new SharedArrayBuffer(4 * 8));
const barrier = new Int32Array(new SharedArrayBuffer(8));
let rand = seed;
const random = () => ((rand = (rand * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

// The main thread keeps the library mapped for the whole run, as an application would.
const mod = loadModule(path);
const workerUrl = new URL('./stress-worker.mjs', import.meta.url);
const threads = Array.from({ length: n }, () =>
  new Worker(workerUrl, { workerData: { path, reserved, cycles, counters, barrier, libDir, withSessions, asyncCalls, seed: seed * 977 + Math.floor(random() * 1e6), holdMs: hold ? 500 + Math.floor(random() * 1500) : 0 } }),
);
let gone = 0;
const exits = threads.map((w) => new Promise((resolve) => {
  w.on('error', (e) => { console.error('worker error', e); resolve('error'); });
  w.on('exit', (code) => { gone++; resolve(code); });
}));
// A worker that dies before the start line (say, its import failed) must not hang the run.
while (Atomics.load(barrier, 0) + gone < n) await new Promise((r) => setTimeout(r, 5));
Atomics.store(barrier, 1, 1);
Atomics.notify(barrier, 1);

let terminated = 0;
if (terminate) {
  for (const w of threads) {
    if (random() < 0.5) {
      setTimeout(() => { terminated++; w.terminate(); }, Math.floor(random() * 80));
    }
  }
}
const codes = await Promise.all(exits);

// The main thread reclaims what terminated workers held, then looks at the module.
const lc = ModuleLifecycle.of(lifecycleTarget(mod, reserved));
lc.sweep();
// A terminated worker's OS thread may still be unwinding when its 'exit' event arrives; its
// liveness lock is only released when the thread is gone. Give it a moment, then sweep again.
for (let i = 0; i < 20 && lc.state.holders > 0; i++) {
  await new Promise((r) => setTimeout(r, 50));
  lc.sweep();
}
let fixture;
try {
  const out = new Array(8).fill(0);
  koffi.load(path).func('void fragile_stats(_Out_ unsigned long *out)')(out);
  const [initialized, finalized, overlaps, already, notInitialized, opened, closed, calls] = out.map(Number);
  fixture = { initialized, finalized, overlaps, already, notInitialized, opened, closed, calls };
} catch {
  fixture = undefined; // a real module: no counters to read
}
// The truth, from the module itself: a C_Initialize of our own succeeds only if nobody left
// it initialized. (NSS answers most calls with CKR_OK even when finalized; this it can't fake.)
let leftInitialized;
try {
  mod.initialize({ reserved: reserved ?? null });
  mod.finalize();
  leftInitialized = false;
} catch (e) {
  leftInitialized = e?.rv === 0x191 ? true : `unexpected: ${e?.message}`;
}
console.log(JSON.stringify({
  leftInitialized,
  counters: { cycles: counters[0], ok: counters[1], errors: counters[2], emptySlots: counters[3], sessions: counters[4] },
  terminated,
  workerErrors: codes.filter((c) => c === 'error').length,
  state: lc.state,
  callCounts: lc.callCounts,
  fixture,
}));
