// Memory over many calls: C_GenerateRandom (32 B) on SoftHSM2 through the managed API, the
// service (32 in flight) and our RPC client over `p11-kit remote` (16 in flight), CALLS calls
// each. The process's RSS is read (after a full GC) at the half and at the end: target, flat —
// at most 2 MiB growth over the second half (the first half is warm-up: JIT, pools, caches).
// The service's and the RPC client's rows leave out the growth of V8's young generation in this
// thread: with calls in flight across scavenges, V8 doubles its semi-spaces up to their fixed cap
// (new space 8 → 16 → 32 MiB here), a one-time step that lands wherever the survivors add up to —
// in the second half of one of the 1M-call rows, the service's or (since the service keeps fewer
// objects across scavenges) the RPC client's, which runs after it in this process — and is no
// memory kept per call (bench/RESULTS-NOTES.md, service; RSS of the RPC client). What is left out
// is the new space's resident pages (physical size), the part of the step that RSS sees.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { report } from './report.mjs';

const CALLS = Number(process.env.BENCH_RSS_CALLS ?? (process.env.BENCH_QUICK === '1' ? 200_000 : 1_000_000));
const LIMIT = 2 * 1024 * 1024;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const dir = mkdtempSync(join(tmpdir(), 'p11kit-bench-rss-'));
mkdirSync(join(dir, 'tokens'));
writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
const out = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', '1234'], { encoding: 'utf8' });
const slot = Number(/reassigned to slot (\d+)/.exec(out)[1]);
const { createPkcs11Worker, openModule, RpcClient } = await import('../dist/lib/index.js');

async function rss() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().rss;
}

/**
 * This thread's V8 young generation, its resident pages (its growth is a capped resize, not a
 * leak). Not its committed size: V8 commits both semi-spaces, and RSS counts only the pages touched.
 */
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;

/** Runs CALLS calls of one(), `flight` at a time (0: synchronous); RSS at the half and at the end. */
async function measure(one, flight) {
  const half = async () => {
    if (flight === 0) {
      for (let i = 0; i < CALLS / 2; i++) one();
      return;
    }
    let left = CALLS / 2;
    // Each half runs to completion, so no call is in flight at a reading.
    await Promise.all(Array.from({ length: flight }, async () => { while (left-- > 0) await one(); }));
  };
  await half();
  const middle = await rss();
  const young = newSpace();
  await half();
  const end = await rss();
  return { half: middle, end, youngGrowth: newSpace() - young };
}

const rows = [];
const mib = (b) => `${(b / 1048576).toFixed(2)} MiB`;
const signed = (b) => `${b >= 0 ? '+' : ''}${mib(b)}`;
function record(name, r, { lessYoung = false } = {}) {
  const raw = r.end - r.half;
  const young = lessYoung ? r.youngGrowth : 0;
  const growth = raw - young;
  const end = r.end - young;
  const less = lessYoung ? ` (RSS ${signed(raw)}, V8 young generation ${signed(r.youngGrowth)})` : '';
  console.log(`  ${name.padEnd(34)} RSS at half ${mib(r.half)}, at end ${mib(r.end)}: second half ${signed(growth)}${less}`);
  rows.push({ bench: 'rss', case: `${name}, ${CALLS / 1e6}M calls: second-half RSS growth${lessYoung ? ', young-generation resize left out' : ''}`, ours: end / 1048576, reference: r.half / 1048576, referenceName: 'RSS at half', unit: 'MiB', ratio: r.half / end, target: '≤ +2 MiB', met: growth <= LIMIT, detail: `${signed(growth)}${less}` });
}

console.log(`RSS over ${CALLS} C_GenerateRandom(32) calls on SoftHSM2 (after a full GC at the half and at the end)`);
try {
  const local = openModule(SOFTHSM);
  const ls = local.openSession(slot);
  record('managed API (sync)', await measure(() => ls.generateRandom(32), 0));

  const p11 = createPkcs11Worker();
  const rmod = await p11.openModule(SOFTHSM);
  const rs = await rmod.openSession(slot, {});
  record('service, 32 in flight', await measure(() => rs.generateRandom(32), 32), { lessYoung: true });
  await p11.close();

  const client = new RpcClient({ remote: `|p11-kit remote ${SOFTHSM}`, name: 'softhsm2' });
  await client.initialize();
  const [cslot] = await client.getSlotList(true);
  const cs = await client.openSession(cslot, 4);
  record('RPC client, 16 in flight', await measure(() => client.generateRandom(cs, 32), 16), { lessYoung: true });
  await client.close();

  ls.close();
  local.release();
  report(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
