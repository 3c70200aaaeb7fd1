// The lifecycle check on the hot path: what owner.call() adds per call over the raw bridge
// call it wraps (target ≤ 10 ns), measured in one run, interleaved to share the machine's mood.
import { Arena, loadModule, lifecycleTarget, ModuleLifecycle } from '../dist/lib/index.js';
import { report } from './report.mjs';

const FRAGILE = new URL('../dist/native/fixtures/fragile-module.so', import.meta.url).pathname;
const m = loadModule(FRAGILE);
const lc = ModuleLifecycle.of(lifecycleTarget(m));
const owner = lc.acquire();
const N = 200_000;
const RAW = { returnsRv: true };
// The raw bridge's fast path: an address in reused native memory, the CK_RV back.
const mem = new Arena(256);
const info = mem.alloc(128);
const getInfo = m.raw.C_GetInfo;
const op = () => getInfo(info);

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / N;
}
const raw = () => { for (let i = 0; i < N; i++) getInfo(info); };
const checked = () => { for (let i = 0; i < N; i++) { owner.check(); getInfo(info); } };
const wrapped = () => { for (let i = 0; i < N; i++) owner.call(op, RAW); };
const checkOnly = () => { for (let i = 0; i < N; i++) owner.check(); };
const empty = () => { for (let i = 0; i < N; i++) (() => 0)(); };

for (let i = 0; i < 3; i++) { raw(); checked(); wrapped(); checkOnly(); empty(); } // warm up the JIT
const samples = { raw: [], checked: [], wrapped: [], check: [], empty: [] };
for (let round = 0; round < 9; round++) {
  samples.raw.push(time(raw));
  samples.checked.push(time(checked));
  samples.wrapped.push(time(wrapped));
  samples.check.push(time(checkOnly));
  samples.empty.push(time(empty));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const r = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
owner.release();

console.log('lifecycle hot path (fragile fixture C_GetInfo, raw bridge), median of 9 rounds × %d calls', N);
console.log(`  raw bridge call              ${r.raw.toFixed(1)} ns/call`);
console.log(`  owner.check() + raw call     ${r.checked.toFixed(1)} ns/call  (added ${(r.checked - r.raw).toFixed(1)} ns; target ≤ 10 ns)`);
console.log(`  through owner.call()         ${r.wrapped.toFixed(1)} ns/call  (added ${(r.wrapped - r.raw).toFixed(1)} ns: the check plus a closure call and a try)`);
console.log(`  owner.check() alone          ${(r.check - r.empty).toFixed(1)} ns/call (loop overhead ${r.empty.toFixed(1)} ns subtracted)`);
const added = r.checked - r.raw;
const signed = (ns) => `${ns >= 0 ? '+' : ''}${ns.toFixed(1)} ns/call`;
report([
  { bench: 'lifecycle', case: 'C_GetInfo through owner.call()', ours: r.wrapped, reference: r.raw, referenceName: 'raw bridge call', unit: 'ns', detail: signed(r.wrapped - r.raw) },
  { bench: 'lifecycle', case: 'hot-path check (owner.check()) added to a call', ours: r.checked, reference: r.raw, referenceName: 'raw bridge call', unit: 'ns', target: '≤ +10 ns/call', met: added <= 10, detail: signed(added) },
]);
