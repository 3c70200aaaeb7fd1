// One stress run in its own process (so a crash is an exit status, not a dead test runner):
// N plain workers start together and cycle through the lifecycle; optionally some are
// terminated at random moments. Prints one JSON line with the counters and the module state.
import { Worker } from 'node:worker_threads';
import { openRawModule } from './raw-module.mjs';

const opts = JSON.parse(process.argv[2]);
const { path, reserved, workers: n, cycles, terminate, libDir, slotWanted, seed = 1, hold } = opts;
const counters = new Int32Array(new SharedArrayBuffer(4 * 8));
const barrier = new Int32Array(new SharedArrayBuffer(8));
let rand = seed;
const random = () => ((rand = (rand * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

// The main thread keeps the library mapped for the whole run, as an application would.
const mod = openRawModule(path, reserved);
const workerUrl = new URL('./stress-worker.mjs', import.meta.url);
const threads = Array.from({ length: n }, () =>
  new Worker(workerUrl, { workerData: { path, reserved, cycles, counters, barrier, libDir, slotWanted, holdMs: hold ? 500 + Math.floor(random() * 1500) : 0 } }),
);
const exits = threads.map((w) => new Promise((resolve) => {
  w.on('error', (e) => { console.error('worker error', e); resolve('error'); });
  w.on('exit', (code) => resolve(code));
}));
while (Atomics.load(barrier, 0) < n) await new Promise((r) => setTimeout(r, 5));
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
const { ModuleLifecycle } = await import(`${libDir}/lifecycle/manager.js`);
const lc = ModuleLifecycle.of(mod);
lc.sweep();
let fixture;
try {
  const out = new Array(8).fill(0);
  mod.lib.func('void fragile_stats(_Out_ unsigned long *out)')(out);
  const [initialized, finalized, overlaps, already, notInitialized, opened, closed, calls] = out.map(Number);
  fixture = { initialized, finalized, overlaps, already, notInitialized, opened, closed, calls };
} catch {
  fixture = undefined; // a real module: no counters to read
}
console.log(JSON.stringify({
  counters: { cycles: counters[0], ok: counters[1], errors: counters[2], emptySlots: counters[3], sessions: counters[4] },
  terminated,
  workerErrors: codes.filter((c) => c === 'error').length,
  state: lc.state,
  callCounts: lc.callCounts,
  fixture,
}));
