// The bridge benchmark: native C, pkcs11js and our raw and typed paths, side by side on SoftHSM2
// in one run. Each implementation runs in its own process (they would otherwise share the
// module's process-wide initialization), in rotated order over several rounds; the table shows
// medians, % of native, the nanoseconds each binding adds per call, and typed vs pkcs11js.
//
//   node bench/bridge.mjs            (needs `make build`: dist/lib and dist/native/bench/bridge-bench)
//   BENCH_ROUNDS=5 BENCH_MS=1000 node bench/bridge.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './report.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = '1234';
const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 200);
const MEASURE_MS = Number(process.env.BENCH_MS ?? 600);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const OPS = ['C_GetInfo', 'C_GetSlotList', 'C_GetTokenInfo', 'GenerateRandom 32 B', 'Digest SHA-256 64 B', 'Sign ECDSA P-256'];
/** PKCS#11 calls per operation in the C and raw versions (count+fill, init+one-shot). */
const CALLS = { C_GetInfo: 1, C_GetSlotList: 2, C_GetTokenInfo: 1, 'GenerateRandom 32 B': 1, 'Digest SHA-256 64 B': 2, 'Sign ECDSA P-256': 2 };
const CKM_SHA256 = 0x250;
const CKM_ECDSA = 0x1041;
const CKM_EC_KEY_PAIR_GEN = 0x1040;
const CKA_EC_PARAMS = 0x180;
const CKA_SIGN = 0x108;
const CKA_TOKEN = 0x1;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

let sink = 0;

/** ns per call of op: warm-up, then batches of 256 for at least MEASURE_MS. A fresh loop per op keeps call sites monomorphic. */
function measure(op) {
  const loop = new Function('op', 'return function (n) { let s = 0; for (let i = 0; i < n; i++) s += op() | 0; return s; }')(op);
  const warmEnd = performance.now() + WARM_MS;
  while (performance.now() < warmEnd) sink += loop(256);
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    sink += loop(256);
    n += 256;
    elapsed = Number(process.hrtime.bigint() - start);
  } while (elapsed < MEASURE_MS * 1e6);
  return elapsed / n;
}

// --- the three JS implementations, each in its own child process ---

async function ours() {
  const { loadModule, CKF_TOKEN } = await import(join(ROOT, 'dist/lib/bridge/index.js'));
  const m = loadModule(MODULE);
  m.initialize();
  const slot = m.getSlotList(true).find((s) => m.getTokenInfo(s).flags & CKF_TOKEN.CKF_TOKEN_INITIALIZED);
  const session = m.openSession(slot, 6);
  m.login(session, 1, PIN);
  const { privateKey } = m.generateKeyPair(session, CKM_EC_KEY_PAIR_GEN, [{ type: CKA_EC_PARAMS, value: P256 }, { type: CKA_TOKEN, value: false }], [{ type: CKA_SIGN, value: true }, { type: CKA_TOKEN, value: false }]);
  return { m, slot, session, privateKey };
}

function mechanism(type) {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(BigInt(type), 0);
  return b;
}

const IMPLS = {
  async raw() {
    // The raw path as meant to be used: memory from the bridge's Arena, passed as addresses.
    const { m, slot, session, privateKey } = await ours();
    const { Arena } = await import(join(ROOT, 'dist/lib/bridge/index.js'));
    const r = m.raw;
    const mem = new Arena(4096);
    const [info, token, count, slots, rand, data, hash, out, len] = [88, 208, 8, 512, 32, 64, 32, 64, 8].map((n) => mem.alloc(n));
    const byte = (addr) => mem.view(addr, 1);
    const [infoB, tokenB, slotsB, randB, outB] = [info, token, slots, rand, out].map(byte);
    const lenU32 = new Uint32Array(mem.view(len, 8).buffer, mem.view(len, 8).byteOffset, 2);
    const sha = mem.put(mechanism(CKM_SHA256));
    const ecdsa = mem.put(mechanism(CKM_ECDSA));
    return {
      C_GetInfo: () => r.C_GetInfo(info) + infoB[0],
      C_GetSlotList: () => r.C_GetSlotList(1, 0, count) + r.C_GetSlotList(1, slots, count) + slotsB[0],
      C_GetTokenInfo: () => r.C_GetTokenInfo(slot, token) + tokenB[0],
      'GenerateRandom 32 B': () => r.C_GenerateRandom(session, rand, 32) + randB[0],
      'Digest SHA-256 64 B': () => {
        lenU32[0] = 32;
        return r.C_DigestInit(session, sha) + r.C_Digest(session, data, 64, out, len) + outB[0];
      },
      'Sign ECDSA P-256': () => {
        lenU32[0] = 64;
        return r.C_SignInit(session, ecdsa, privateKey) + r.C_Sign(session, hash, 32, out, len) + outB[0];
      },
    };
  },

  async typed() {
    const { m, slot, session, privateKey } = await ours();
    const data = Buffer.alloc(64, 1);
    const hash = Buffer.alloc(32, 2);
    return {
      C_GetInfo: () => m.getInfo().manufacturerID.length,
      C_GetSlotList: () => m.getSlotList(true)[0],
      C_GetTokenInfo: () => m.getTokenInfo(slot).label.length,
      'GenerateRandom 32 B': () => m.generateRandom(session, 32)[0],
      'Digest SHA-256 64 B': () => (m.digestInit(session, CKM_SHA256), m.digest(session, data)[0]),
      'Sign ECDSA P-256': () => (m.signInit(session, CKM_ECDSA, privateKey), m.sign(session, hash)[0]),
    };
  },

  async pkcs11js() {
    const pkcs11js = createRequire(import.meta.url)('pkcs11js');
    const p = new pkcs11js.PKCS11();
    p.load(MODULE);
    p.C_Initialize({ flags: 2 });
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).flags & 0x400);
    const session = p.C_OpenSession(slot, 6);
    p.C_Login(session, 1, PIN);
    const { privateKey } = p.C_GenerateKeyPair(
      session,
      { mechanism: CKM_EC_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA_EC_PARAMS, value: P256 }, { type: CKA_TOKEN, value: false }],
      [{ type: CKA_SIGN, value: true }, { type: CKA_TOKEN, value: false }],
    );
    const rand = Buffer.alloc(32);
    const data = Buffer.alloc(64, 1);
    const hash = Buffer.alloc(32, 2);
    const out = Buffer.alloc(64);
    const sha = { mechanism: CKM_SHA256, parameter: null };
    const ecdsa = { mechanism: CKM_ECDSA, parameter: null };
    return {
      C_GetInfo: () => p.C_GetInfo().manufacturerID.length,
      C_GetSlotList: () => p.C_GetSlotList(true)[0][0],
      C_GetTokenInfo: () => p.C_GetTokenInfo(slot).label.length,
      'GenerateRandom 32 B': () => p.C_GenerateRandom(session, rand)[0],
      'Digest SHA-256 64 B': () => (p.C_DigestInit(session, sha), p.C_Digest(session, data, out)[0]),
      'Sign ECDSA P-256': () => (p.C_SignInit(session, ecdsa, privateKey), p.C_Sign(session, hash, out)[0]),
    };
  },
};

async function child(impl) {
  const ops = await IMPLS[impl]();
  const out = {};
  for (const name of OPS) out[name] = measure(ops[name]);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  if (sink === 0.5) console.error(sink);
}

// --- the parent: a token store, rounds of all four, the table ---

function softhsm() {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-bench-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', PIN, '--so-pin', '5678'], { env, stdio: 'ignore' });
  return { dir, env };
}

function run(impl, env) {
  const r =
    impl === 'C'
      ? spawnSync(join(ROOT, 'dist/native/bench/bridge-bench'), [MODULE, PIN, `${WARM_MS}`, `${MEASURE_MS}`], { env, encoding: 'utf8' })
      : spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--child=${impl}`], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${impl} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ns) => (ns >= 10000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
const opsPerSec = (ns) => (1e9 / ns >= 1e6 ? `${(1e9 / ns / 1e6).toFixed(2)} M` : `${(1e9 / ns / 1e3).toFixed(0)} k`);

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')).join('\n');
}

async function parent() {
  const { dir, env } = softhsm();
  const impls = ['C', 'pkcs11js', 'raw', 'typed'];
  const results = Object.fromEntries(impls.map((i) => [i, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = impls.map((_, i) => impls[(i + round) % impls.length]);
      for (const impl of order) results[impl].push(run(impl, env));
      process.stderr.write(`round ${round + 1}/${ROUNDS} done (${order.join(', ')})\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Per round ratios, then medians: rounds share machine conditions.
  const perRound = (impl, op, f) => median(results[impl].map((r, i) => f(r[op], results.C[i][op])));
  const ns = (impl, op) => median(results[impl].map((r) => r[op]));
  const rows = [['operation', 'C ops/s (ns)', 'pkcs11js (% of C)', 'raw (% of C)', 'typed (% of C)', 'added ns/op: pkcs11js / raw / typed', 'raw ns/call', 'typed vs pkcs11js']];
  const verdicts = [];
  const reportRows = [];
  for (const op of OPS) {
    const pct = (impl) => `${(perRound(impl, op, (x, c) => (c / x) * 100)).toFixed(0)}%`;
    const added = (impl) => perRound(impl, op, (x, c) => x - c);
    const speedup = median(results.typed.map((t, i) => results.pkcs11js[i][op] / t[op]));
    rows.push([
      op,
      `${opsPerSec(ns('C', op))} (${fmt(ns('C', op))})`,
      `${opsPerSec(ns('pkcs11js', op))} (${pct('pkcs11js')})`,
      `${opsPerSec(ns('raw', op))} (${pct('raw')})`,
      `${opsPerSec(ns('typed', op))} (${pct('typed')})`,
      `${added('pkcs11js').toFixed(0)} / ${added('raw').toFixed(0)} / ${added('typed').toFixed(0)}`,
      `+${(added('raw') / CALLS[op]).toFixed(0)}`,
      `${speedup.toFixed(2)}×`,
    ]);
    const cNs = ns('C', op);
    const perCall = added('raw') / CALLS[op];
    verdicts.push(`${perCall <= 60 ? 'met ' : 'MISS'} raw adds ≤ 60 ns per call on ${op}: ${perCall.toFixed(0)} ns (${CALLS[op]} call${CALLS[op] > 1 ? 's' : ''})`);
    if (cNs >= 500) {
      const rawPct = perRound('raw', op, (x, c) => (c / x) * 100);
      verdicts.push(`${rawPct >= 90 ? 'met ' : 'MISS'} raw ≥ 90% of native on ${op} (C ${fmt(cNs)}): ${rawPct.toFixed(1)}%`);
    }
    if (['C_GetInfo', 'C_GetSlotList', 'C_GetTokenInfo'].includes(op)) {
      const addedRatio = added('pkcs11js') / Math.max(1, added('typed'));
      verdicts.push(`${speedup >= 3 ? 'met ' : 'MISS'} typed ≥ 3× pkcs11js on ${op}: ${speedup.toFixed(2)}× throughput; pkcs11js adds ${addedRatio.toFixed(1)}× the ns typed adds`);
    }
    const rawRatio = perRound('raw', op, (x, c) => c / x);
    const ratioTarget = cNs >= 500 ? { targetRatio: 0.9 } : {};
    reportRows.push(
      { bench: 'bridge', case: `${op}, raw path`, ours: ns('raw', op), reference: cNs, referenceName: 'native C', unit: 'ns', ratio: rawRatio, target: `≤ +60 ns/call${cNs >= 500 ? ', ≥ 0.9×' : ''}`, ...ratioTarget, met: perCall <= 60 && (cNs < 500 || rawRatio >= 0.9), detail: `${perCall >= 0 ? '+' : ''}${perCall.toFixed(0)} ns/call` },
      { bench: 'bridge', case: `${op}, typed path`, ours: ns('typed', op), reference: ns('pkcs11js', op), referenceName: 'pkcs11js', unit: 'ns', ratio: speedup, ...(['C_GetInfo', 'C_GetSlotList', 'C_GetTokenInfo'].includes(op) ? { target: 3 } : {}) },
    );
  }
  console.log(`bridge benchmark: SoftHSM2, ${ROUNDS} rounds (rotated order), ${MEASURE_MS} ms per op after ${WARM_MS} ms warm-up, medians`);
  console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${process.env.BENCH_NOTE ?? 'compare only numbers from one run'})`);
  console.log(table(rows));
  console.log(verdicts.join('\n'));
  report(reportRows);
}

const childArg = process.argv.find((a) => a.startsWith('--child='));
if (childArg) await child(childArg.slice('--child='.length));
else await parent();
