// Parse + format 100,000 PKCS#11 URIs through our wasm core (the built dist/lib) and through the
// native libp11-kit 0.24.1 (bench/native/uri-bench.c), interleaved round by round in one run.
// Prints both rates and the ratio (target: ours ≥ 0.5× native).
import { spawnSync } from 'node:child_process';
import { normalizeUri, parseUri, formatUri, UriError } from '../dist/lib/index.js';
import { report } from './report.mjs';

const NATIVE = new URL('../dist/native/bench/uri-bench', import.meta.url).pathname;
const COUNT = 100_000;
const ROUNDS = 7;

// A deterministic mix like real use: object URIs with ids and PIN sources, token and module
// URIs, escapes, vendor queries, and about 5% that fail to parse.
function uris() {
  let seed = 0x7512;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const hex = (n) => Array.from({ length: n }, () => `%${rand(256).toString(16).padStart(2, '0').toUpperCase()}`).join('');
  const word = () => ['My', 'Token', 'Signing', 'Key', 'SoftHSM', 'ACME', 'CA', 'Root', 'p11', 'kit'][rand(10)];
  const label = () => Array.from({ length: 1 + rand(3) }, word).join('%20');
  const out = [];
  for (let i = 0; i < 1000; i++) {
    switch (rand(6)) {
      case 0:
        out.push(`pkcs11:token=${label()};object=${label()};type=${['private', 'cert', 'public'][rand(3)]};id=${hex(1 + rand(20))}?pin-source=file:%2Fetc%2Fpki%2Fpin${i}.txt&module-name=softhsm2`);
        break;
      case 1:
        out.push(`pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=${rand(1e9).toString(16)};token=${label()}`);
        break;
      case 2:
        out.push(`pkcs11:library-description=${label()};library-manufacturer=${word()};library-version=${rand(5)}.${rand(30)}`);
        break;
      case 3:
        out.push(`pkcs11:slot-description=${label()};slot-id=${rand(100000)};token=${label()}?x-vendor=${word()}&pin-value=${rand(9999)}`);
        break;
      case 4:
        out.push(`pkcs11:object=${label()}/${word()};id=${hex(4)}`);
        break;
      default:
        out.push(rand(4) === 0 ? `pkcs11:token=${label()}%G${rand(9)}` : `pkcs11:token=${label()};serial=${rand(1e6)}`);
    }
  }
  return out;
}

const list = uris();
const input = `${list.join('\n')}\n`;

function nativeRound() {
  const r = spawnSync(NATIVE, [String(COUNT), '1'], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`uri-bench failed (${r.status}): ${r.stderr} — run 'make native'`);
  const out = JSON.parse(r.stdout);
  return { ns: out.ns_per_uri[0], bytes: out.formatted_bytes, failed: out.failed };
}

function oursRound(parseFormat) {
  let bytes = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < COUNT; i++) {
    try {
      bytes += parseFormat(list[i % list.length]).length;
    } catch (e) {
      if (!(e instanceof UriError)) throw e;
      failed++;
    }
  }
  return { ns: Number(process.hrtime.bigint() - t0) / COUNT, bytes, failed };
}

const normalize = (t) => normalizeUri(t, { lowercase: false });
const viaObject = (t) => formatUri(parseUri(t), { lowercase: false });

oursRound(normalize); // warm up the JIT and the core's scratch block
oursRound(viaObject);
const samples = { native: [], normalize: [], object: [] };
let check;
for (let r = 0; r < ROUNDS; r++) {
  const n = nativeRound();
  const a = oursRound(normalize);
  const b = oursRound(viaObject);
  samples.native.push(n.ns);
  samples.normalize.push(a.ns);
  samples.object.push(b.ns);
  check = { n, a, b };
}
if (check.n.bytes !== check.a.bytes || check.n.failed !== check.a.failed || check.n.failed !== check.b.failed)
  throw new Error(`the two sides did different work: ${JSON.stringify(check)}`);

const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const rate = (ns) => `${(1e9 / ns / 1e3).toFixed(0).padStart(5)} k URIs/s (${ns.toFixed(0)} ns each)`;
console.log(`URI parse + format, ${COUNT} URIs per round (${list.length} distinct, ${check.n.failed} failing), median of ${ROUNDS} interleaved rounds`);
console.log(`  native libp11-kit 0.24.1          ${rate(m.native)}`);
console.log(`  wasm core, normalizeUri            ${rate(m.normalize)}  ratio ${(m.native / m.normalize).toFixed(2)}× native (target ≥ 0.5×)`);
console.log(`  wasm core, formatUri(parseUri())   ${rate(m.object)}  ratio ${(m.native / m.object).toFixed(2)}× native (typed object both ways)`);
report([
  { bench: 'uri', case: 'parse + format, normalizeUri', ours: m.normalize, reference: m.native, referenceName: 'libp11-kit', unit: 'ns', target: 0.5 },
  { bench: 'uri', case: 'parse + format, formatUri(parseUri())', ours: m.object, reference: m.native, referenceName: 'libp11-kit', unit: 'ns', detail: 'typed JS object both ways' },
]);
