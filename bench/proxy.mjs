// The proxy's cost per call: our proxy (the built dist/lib) against the module behind it called
// through the managed API, and the real p11-kit-proxy (bench/native/proxy-bench.c) against the
// same module called directly, on one config tree (SoftHSM2 with a token, p11-kit trust),
// interleaved round by round in one run. Prints ns per call, each side's proxy overhead, and
// ours against native.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './report.mjs';

const NATIVE = new URL('../dist/native/bench/proxy-bench', import.meta.url).pathname;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const COUNT = 20_000;
const ROUNDS = 5;

const dir = mkdtempSync(join(tmpdir(), 'p11kit-proxybench-'));
for (const d of ['system', 'package', 'tokens']) mkdirSync(join(dir, d));
const conf = join(dir, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = conf; // before SoftHSM2's C_Initialize in this process
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '1111', '--pin', '2222'], { stdio: 'pipe' });
writeFileSync(join(dir, 'pkcs11.conf'), '');
writeFileSync(join(dir, 'system/softhsm.module'), `module: ${SOFTHSM}\npriority: 1\n`);
writeFileSync(join(dir, 'package/trust.module'), 'module: p11-kit-trust.so\n');

const { openProxy } = await import('../dist/lib/index.js');
const proxy = openProxy({
  registry: {
    systemConfig: join(dir, 'pkcs11.conf'),
    systemModules: join(dir, 'system'),
    packageModules: join(dir, 'package'),
    userConfig: join(dir, 'none.conf'),
    userModules: join(dir, 'none'),
    program: 'proxy-bench',
  },
});

function nativeRound() {
  const r = spawnSync(NATIVE, [join(dir, 'pkcs11.conf'), join(dir, 'system'), join(dir, 'package'), SOFTHSM, String(COUNT)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`proxy-bench failed (${r.status}): ${r.stderr} — run 'make native'`);
  return JSON.parse(r.stdout);
}

function time(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < COUNT; i++) fn();
  return Number(process.hrtime.bigint() - t0) / COUNT;
}

const [slot] = proxy.getSlotList(true);
const { module: name, moduleSlot } = proxy.slotOwner(slot);
const managed = proxy.module(name);
const ps = proxy.openSession(slot);
const ms = managed.openSession(moduleSlot);

function oursRound() {
  return {
    proxy: { token_info: time(() => proxy.getTokenInfo(slot)), random: time(() => ps.generateRandom(16)), slot_list: time(() => proxy.getSlotList()) },
    direct: { token_info: time(() => managed.getTokenInfo(moduleSlot)), random: time(() => ms.generateRandom(16)) },
  };
}

try {
  oursRound(); // warm up
  const rounds = { native: [], ours: [] };
  for (let r = 0; r < ROUNDS; r++) {
    rounds.native.push(nativeRound());
    rounds.ours.push(oursRound());
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const pick = (side, kind, call) => median(rounds[side].map((r) => r[kind][call]));
  const ns = (v) => `${v.toFixed(0).padStart(7)} ns`;
  const rows = [];
  console.log(`Proxy cost per call, ${COUNT} calls per round, median of ${ROUNDS} interleaved rounds (SoftHSM2 token, p11-kit trust behind the proxy)`);
  for (const [call, label] of [['token_info', 'C_GetTokenInfo'], ['random', 'C_GenerateRandom(16) on a session']]) {
    const o = { proxy: pick('ours', 'proxy', call), direct: pick('ours', 'direct', call) };
    const n = { proxy: pick('native', 'proxy', call), direct: pick('native', 'direct', call) };
    console.log(`  ${label}`);
    console.log(`    native: p11-kit-proxy ${ns(n.proxy)}  module direct ${ns(n.direct)}  proxy overhead ${(n.proxy / n.direct).toFixed(2)}×`);
    console.log(`    ours:   proxy         ${ns(o.proxy)}  managed module ${ns(o.direct)}  proxy overhead ${(o.proxy / o.direct).toFixed(2)}×`);
    console.log(`    ours vs p11-kit-proxy: ${(n.proxy / o.proxy).toFixed(2)}× native speed`);
    rows.push({ bench: 'proxy', case: `${label} through the proxy`, ours: o.proxy, reference: n.proxy, referenceName: 'p11-kit-proxy', unit: 'ns', detail: `proxy overhead ${(o.proxy / o.direct).toFixed(2)}× ours, ${(n.proxy / n.direct).toFixed(2)}× p11-kit's` });
  }
  const ol = pick('ours', 'proxy', 'slot_list');
  const nl = pick('native', 'proxy', 'slot_list');
  console.log(`  C_GetSlotList(FALSE) of the proxy (every module asked again)`);
  console.log(`    native ${ns(nl)}  ours ${ns(ol)}  ours vs p11-kit-proxy: ${(nl / ol).toFixed(2)}× native speed`);
  rows.push({ bench: 'proxy', case: 'C_GetSlotList(FALSE) of the proxy', ours: ol, reference: nl, referenceName: 'p11-kit-proxy', unit: 'ns' });
  report(rows);
} finally {
  ps.close();
  ms.close();
  proxy.release();
  rmSync(dir, { recursive: true, force: true });
}
