// What the lifecycle and the managed API add per call, on a syscall-free module (the fragile
// fixture's C_GetInfo), interleaved round by round in this one process (bench/lib/sampling.mjs):
//   - the hot-path check: owner.check() + the raw bridge call, against the raw call alone
//     (target ≤ +10 ns);
//   - the managed API as every caller uses it: managed.getInfo() (whatever closure, options and
//     arguments it builds per call) against the bridge's typed getInfo() (target ≤ +20 ns);
//   - owner.call() with a prebuilt closure, for where the time goes.
import { Arena, openModule } from '../dist/lib/index.js';
import { report } from './report.mjs';
import { jsCell, median, perRound, ROUNDS, SAMPLE_MS, sampleInterleaved, spread } from './lib/sampling.mjs';

const FRAGILE = new URL('../dist/native/fixtures/fragile-module.so', import.meta.url).pathname;
const managed = openModule(FRAGILE);
const m = managed.module;
const owner = managed.owner;
const RAW = { returnsRv: true };
const mem = new Arena(256);
const info = mem.alloc(128);
const getInfo = m.raw.C_GetInfo;
const op = () => getInfo(info);
const read = (x) => x.flags + x.manufacturerID.length;

const s = sampleInterleaved({
  raw: jsCell(() => getInfo(info)),
  checked: jsCell(() => (owner.check(), getInfo(info))),
  ownerCall: jsCell(() => owner.call(op, RAW)),
  typed: jsCell(() => read(m.getInfo())),
  managed: jsCell(() => read(managed.getInfo())),
});
managed.release();

const diff = (a, b) => perRound(s[a], s[b], (x, y) => x - y);
const signed = (ns) => `${ns >= 0 ? '+' : ''}${ns.toFixed(1)} ns/call`;
const checkAdds = diff('checked', 'raw');
const managedAdds = diff('managed', 'typed');
console.log(`lifecycle and managed API per call (fragile fixture C_GetInfo), ns, median [p10–p90] of ${ROUNDS} interleaved rounds of ~${SAMPLE_MS} ms`);
console.log(`  raw bridge call                 ${spread(s.raw, (v) => v.toFixed(1))}`);
console.log(`  owner.check() + raw call        ${spread(s.checked, (v) => v.toFixed(1))}  (${signed(checkAdds)}; target ≤ +10)`);
console.log(`  owner.call(prebuilt closure)    ${spread(s.ownerCall, (v) => v.toFixed(1))}  (${signed(diff('ownerCall', 'raw'))})`);
console.log(`  bridge typed getInfo()          ${spread(s.typed, (v) => v.toFixed(1))}`);
console.log(`  managed getInfo()               ${spread(s.managed, (v) => v.toFixed(1))}  (${signed(managedAdds)}; target ≤ +20)`);
const ratio = (a, b) => perRound(s[b], s[a], (x, y) => x / y);
report([
  { bench: 'lifecycle', case: 'hot-path check (owner.check()) added to a raw call', ours: median(s.checked), reference: median(s.raw), referenceName: 'raw bridge call', unit: 'ns', ratio: ratio('checked', 'raw'), target: '≤ +10 ns/call', met: checkAdds <= 10, detail: signed(checkAdds) },
  { bench: 'lifecycle', case: 'managed getInfo() over the bridge typed getInfo()', ours: median(s.managed), reference: median(s.typed), referenceName: 'bridge typed', unit: 'ns', ratio: ratio('managed', 'typed'), target: '≤ +20 ns/call', met: managedAdds <= 20, detail: signed(managedAdds) },
  { bench: 'lifecycle', case: 'owner.call() with a prebuilt closure over a raw call', ours: median(s.ownerCall), reference: median(s.raw), referenceName: 'raw bridge call', unit: 'ns', ratio: ratio('ownerCall', 'raw'), detail: signed(diff('ownerCall', 'raw')) },
]);
