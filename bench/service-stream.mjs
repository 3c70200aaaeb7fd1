// Streaming through the PKCS#11 service: a large input (generated as it is read, never held
// whole) is digested (SHA-256) and signed (SHA256-RSA-PKCS, multi-part) by SoftHSM2 in a
// service worker, in bounded pieces. Reports throughput and the peak growth of the process's
// RSS (the worker is a thread of this process, so its memory counts too) over a baseline taken
// after a warm-up; the in-thread multi-part sign over the same input is the reference.
//
//   node bench/service-stream.mjs                  1 GiB (BENCH_QUICK=1: 128 MiB)
//   node bench/service-stream.mjs --mib 256 --json --no-reference
//                                                  what test/service-stream-rss.test.ts runs
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './report.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const MIB = Number(opt('--mib') ?? (process.env.BENCH_QUICK ? 128 : 1024));
const JSON_ONLY = args.includes('--json');
const REFERENCE = !args.includes('--no-reference');
const CHUNK = 1 << 20;
const log = (...a) => JSON_ONLY || console.log(...a);

// A SoftHSM2 token of our own, before the library loads the module.
const dir = mkdtempSync(join(tmpdir(), 'p11kit-stream-bench-'));
mkdirSync(join(dir, 'tokens'));
writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
const out = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'stream', '--so-pin', '12345678', '--pin', '1234'], { encoding: 'utf8' });
const slot = Number(/slot (\d+)/.exec(out)[1]);

const lib = await import(new URL('../dist/lib/index.js', import.meta.url).href);
const { CKA, CKM, CKU, createPkcs11Worker, openModule } = lib;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

/** `mib` MiB of deterministic bytes, 1 MiB fresh buffer at a time; `onChunk` sees each. */
async function* generate(mib, onChunk) {
  const pattern = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) pattern[i] = (i * 31 + (i >> 8)) & 0xff;
  for (let n = 0; n < mib; n++) {
    const chunk = Buffer.allocUnsafe(CHUNK);
    pattern.copy(chunk);
    chunk.writeUInt32LE(n, 0); // every MiB differs
    onChunk?.(chunk);
    yield chunk;
  }
}

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
const rss = () => process.memoryUsage.rss();

const p11 = createPkcs11Worker();
let result;
try {
  const m = await p11.openModule(SOFTHSM);
  const s = await m.openSession(slot, { pin: '1234' });
  const kp = await s.generateKeyPair(
    CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
    [{ type: CKA.CKA_MODULUS_BITS, value: 2048 }, { type: CKA.CKA_VERIFY, value: true }],
    [{ type: CKA.CKA_SIGN, value: true }],
  );
  // Warm-up: both paths once, so the baseline includes what a first use allocates.
  await s.digestStream(CKM.CKM_SHA256, generate(16));
  await s.signStream(CKM.CKM_SHA256_RSA_PKCS, kp.privateKey, generate(16));
  global.gc?.();
  const baseline = rss();
  peak = baseline;

  const expected = createHash('sha256');
  let t = performance.now();
  const digest = await s.digestStream(CKM.CKM_SHA256, generate(MIB, (c) => expected.update(c)));
  const digestMs = performance.now() - t;
  const digestMatches = Buffer.from(digest).equals(expected.digest());
  t = performance.now();
  const signature = await s.signStream(CKM.CKM_SHA256_RSA_PKCS, kp.privateKey, generate(MIB));
  const signMs = performance.now() - t;
  const verified = await s.verifyStream(CKM.CKM_SHA256_RSA_PKCS, kp.publicKey, generate(Math.min(MIB, 64)), signature).catch(() => undefined);
  peak = Math.max(peak, rss());
  const peakGrowthMB = (peak - baseline) / 1e6;

  let inThreadMs;
  if (REFERENCE) {
    const local = openModule(SOFTHSM);
    const ls = local.openSession(slot);
    try {
      ls.login(CKU.CKU_USER, '1234');
    } catch (e) {
      if (e.code !== 'CKR_USER_ALREADY_LOGGED_IN') throw e; // the worker's login is the process's
    }
    t = performance.now();
    ls.signInit(CKM.CKM_SHA256_RSA_PKCS, kp.privateKey);
    for await (const chunk of generate(MIB)) ls.signUpdate(chunk);
    ls.signFinal();
    inThreadMs = performance.now() - t;
    ls.close();
    local.release();
  }
  result = { mib: MIB, digestMs, signMs, inThreadMs, baselineMB: baseline / 1e6, peakGrowthMB, digestMatches, signatureBytes: signature.length, verifiedPrefix: verified };
} finally {
  clearInterval(sampler);
  await p11.close();
  rmSync(dir, { recursive: true, force: true });
}

if (JSON_ONLY) console.log(JSON.stringify(result));
else {
  const mbps = (ms) => ((MIB * CHUNK) / 1e6 / (ms / 1000)).toFixed(0);
  log(`service stream, ${MIB} MiB generated on the fly, ${CHUNK >> 10} KiB pieces:`);
  log(`  digest SHA-256          ${result.digestMs.toFixed(0)} ms  (${mbps(result.digestMs)} MB/s)  matches node:crypto: ${result.digestMatches}`);
  log(`  sign SHA256-RSA-PKCS    ${result.signMs.toFixed(0)} ms  (${mbps(result.signMs)} MB/s)`);
  if (result.inThreadMs !== undefined) log(`  in-thread sign (ref.)   ${result.inThreadMs.toFixed(0)} ms  (${mbps(result.inThreadMs)} MB/s)`);
  log(`  peak RSS growth         ${result.peakGrowthMB.toFixed(1)} MB over a ${result.baselineMB.toFixed(0)} MB baseline (limit 64 MB)`);
  if (result.inThreadMs !== undefined) {
    report([{
      bench: 'service-stream',
      case: `service signStream SHA256-RSA ${MIB} MiB (peak RSS +${result.peakGrowthMB.toFixed(0)} MB)`,
      ours: result.signMs,
      reference: result.inThreadMs,
      referenceName: 'in-thread',
      unit: 'ms',
      target: 'peak RSS growth < 64 MB',
      met: result.peakGrowthMB < 64 && result.digestMatches,
      detail: `${mbps(result.signMs)} MB/s`,
    }]);
  }
}
