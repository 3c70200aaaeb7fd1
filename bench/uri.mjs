// Parse + format PKCS#11 URIs through our wasm core (the built dist/lib) and through the native
// libp11-kit 0.24.1, whose loop (bench/native/loops/uri-loops.c) this process calls through
// koffi: both sides warmed up and sampled round by round, interleaved, in one process
// (bench/lib/sampling.mjs). Both must format the same bytes and fail on the same URIs.
// Prints both rates and the ratio (target: ours ≥ 0.8× native), then the native split
// (bench/native/uri-split.c): the same C core compiled natively against libp11-kit.
import { execFileSync } from 'node:child_process';
import koffi from 'koffi';
import { normalizeUri, parseUri, formatUri, UriError } from '../dist/lib/index.js';
import { report } from './report.mjs';
import { uriMix } from './lib/uri-mix.mjs';
import { median, perRound, ROUNDS, SAMPLE_MS, sampleInterleaved, spread } from './lib/sampling.mjs';

const NATIVE = new URL('../dist/native/bench/liburi-loops.so', import.meta.url).pathname;
const SPLIT = new URL('../dist/native/bench/uri-split', import.meta.url).pathname;

const list = uriMix();
const lib = koffi.load(NATIVE);
const load = lib.func('long uri_loops_load(const char *block)');
const run = lib.func('double uri_loops_run(long start, long n, _Out_ double *out)');
if (load(`${list.join('\n')}\n`) !== list.length) throw new Error('uri-loops: could not take the URIs');

/** A cell over parseFormat, cycling through the list; `last` gets the work done in its last run. */
function oursCell(parseFormat, last) {
  let next = 0;
  return (n) => {
    let bytes = 0;
    let failed = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      try {
        bytes += parseFormat(list[next]).length;
      } catch (e) {
        if (!(e instanceof UriError)) throw e;
        failed++;
      }
      if (++next === list.length) next = 0;
    }
    const t = Number(process.hrtime.bigint() - t0);
    Object.assign(last, { bytes, failed });
    return t;
  };
}
function nativeCell(last) {
  let next = 0;
  const out = [0, 0];
  return (n) => {
    const t = run(next, n, out);
    next = (next + n) % list.length;
    Object.assign(last, { bytes: out[0], failed: out[1] });
    return t;
  };
}

const normalize = (t) => normalizeUri(t, { lowercase: false });
const viaObject = (t) => formatUri(parseUri(t), { lowercase: false });

// Same work: one pass over the whole list on every side.
const work = { native: {}, normalize: {}, object: {} };
const cells = { native: nativeCell(work.native), normalize: oursCell(normalize, work.normalize), object: oursCell(viaObject, work.object) };
for (const c of Object.values(cells)) c(list.length);
if (work.native.bytes !== work.normalize.bytes || work.native.failed !== work.normalize.failed || work.native.failed !== work.object.failed || work.native.failed === 0)
  throw new Error(`the two sides did different work: ${JSON.stringify(work)}`);
const failing = work.native.failed;

const samples = sampleInterleaved(cells);
const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const ratio = (k) => perRound(samples.native, samples[k], (n, o) => n / o);
const rate = (ns) => `${(1e9 / ns / 1e3).toFixed(0).padStart(5)} k URIs/s`;
console.log(`URI parse + format (${list.length} distinct URIs, ${failing} failing), ns per URI, median [p10–p90] of ${ROUNDS} interleaved rounds of ~${SAMPLE_MS} ms, one process`);
console.log(`  native libp11-kit 0.24.1          ${rate(m.native)}  ${spread(samples.native)}`);
console.log(`  wasm core, normalizeUri            ${rate(m.normalize)}  ${spread(samples.normalize)}  ratio ${ratio('normalize').toFixed(2)}× native (target ≥ 0.8×)`);
console.log(`  wasm core, formatUri(parseUri())   ${rate(m.object)}  ${spread(samples.object)}  ratio ${ratio('object').toFixed(2)}× native (typed object both ways)`);
report([
  { bench: 'uri', case: 'parse + format, normalizeUri', ours: m.normalize, reference: m.native, referenceName: 'libp11-kit', unit: 'ns', ratio: ratio('normalize'), target: 0.8 },
  { bench: 'uri', case: 'parse + format, formatUri(parseUri())', ours: m.object, reference: m.native, referenceName: 'libp11-kit', unit: 'ns', ratio: ratio('object'), detail: 'typed JS object both ways' },
]);

// The split: our C core compiled natively against libp11-kit, on the same mix, in its own
// process (bench/native/uri-split.c). What the wasm row loses beyond it is wasm and the edge.
console.log(execFileSync(SPLIT, ['time', String(ROUNDS)], { input: `${list.join('\n')}\n`, encoding: 'utf8' }).trimEnd().replace(/^/gm, '  split: '));
