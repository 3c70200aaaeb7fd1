// The lifecycle check on the hot path: what owner.call() adds per call over the raw bridge
// call it wraps (target ≤ 10 ns), measured in one run, interleaved to share the machine's mood.
import { openRawModule } from '../test/workers/raw-module.mjs';
import { ModuleLifecycle } from '../dist/lib/lifecycle/manager.js';
import { report } from './report.mjs';

const FRAGILE = new URL('../dist/native/fixtures/fragile-module.so', import.meta.url).pathname;
const mod = openRawModule(FRAGILE);
const lc = ModuleLifecycle.of(mod);
const owner = lc.acquire();
const N = 200_000;
const RAW = { returnsRv: true };

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / N;
}
const raw = () => { for (let i = 0; i < N; i++) mod.getInfo(); };
const wrapped = () => { for (let i = 0; i < N; i++) owner.call(() => mod.getInfo()); };
const checkOnly = () => { for (let i = 0; i < N; i++) owner.check(); };
const empty = () => { for (let i = 0; i < N; i++) (() => 0)(); };

for (let i = 0; i < 3; i++) { raw(); wrapped(); checkOnly(); empty(); } // warm up the JIT
const samples = { raw: [], wrapped: [], check: [], empty: [] };
for (let round = 0; round < 9; round++) {
  samples.raw.push(time(raw));
  samples.wrapped.push(time(wrapped));
  samples.check.push(time(checkOnly));
  samples.empty.push(time(empty));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const r = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
owner.release();

console.log('lifecycle hot path (fragile fixture C_GetInfo via koffi), median of 9 rounds × %d calls', N);
console.log(`  raw bridge call              ${r.raw.toFixed(1)} ns/call`);
console.log(`  through owner.call()         ${r.wrapped.toFixed(1)} ns/call  (added ${(r.wrapped - r.raw).toFixed(1)} ns, ratio ${(r.raw / r.wrapped).toFixed(3)}×)`);
console.log(`  owner.check() alone          ${(r.check - r.empty).toFixed(1)} ns/call (loop overhead ${r.empty.toFixed(1)} ns subtracted; target ≤ 10 ns)`);
const added = r.check - r.empty;
const signed = (ns) => `${ns >= 0 ? '+' : ''}${ns.toFixed(1)} ns/call`;
report([
  { bench: 'lifecycle', case: 'C_GetInfo through owner.call()', ours: r.wrapped, reference: r.raw, referenceName: 'raw bridge call', unit: 'ns', detail: signed(r.wrapped - r.raw) },
  { bench: 'lifecycle', case: 'hot-path check (owner.check()) added to a call', ours: r.raw + added, reference: r.raw, referenceName: 'raw bridge call', unit: 'ns', target: '≤ +10 ns/call', met: added <= 10, detail: signed(added) },
]);
