// The proxy's added cost per call, the same way on both sides: our proxy (the built dist/lib)
// minus the module called directly through our bridge's typed calls, and the real
// p11-kit-proxy minus the same module called directly, both from C (bench/native/proxy-bench.c,
// a long-lived process, warmed up). One config tree (SoftHSM2 with a token, p11-kit trust).
// Our side samples in this process (bench/lib/sampling.mjs) and the native side measures one
// round between each of ours. Target: ours adds ≤ what p11-kit-proxy adds + 50 ns.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './report.mjs';
import { jsCell, lineServer, median, perRound, ROUNDS, SAMPLE_MS, sampleInterleaved, spread } from './lib/sampling.mjs';

const NATIVE = new URL('../dist/native/bench/proxy-bench', import.meta.url).pathname;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const COUNT = Number(process.env.BENCH_PROXY_COUNT ?? 5_000);

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

const [slot] = proxy.getSlotList(true);
const { module: name, moduleSlot } = proxy.slotOwner(slot);
const managed = proxy.module(name);
const direct = managed.module; // the bridge's module: typed calls, no lifecycle
const ps = proxy.openSession(slot);
const ms = managed.openSession(moduleSlot);
const ds = direct.openSession(moduleSlot, 4);

const native = spawn(NATIVE, [join(dir, 'pkcs11.conf'), join(dir, 'system'), join(dir, 'package'), SOFTHSM, String(COUNT)], { stdio: ['pipe', 'pipe', 'inherit'] });
const nativeRounds = [];
const server = lineServer(native);
const read = (x) => x.flags + x.slotDescription.length;

try {
  const s = await sampleInterleaved(
    {
      'proxy slot_info': jsCell(() => read(proxy.getSlotInfo(slot))),
      'proxy random': jsCell(() => ps.generateRandom(16)[0]),
      'proxy slot_list': jsCell(() => proxy.getSlotList().length),
      'direct slot_info': jsCell(() => read(direct.getSlotInfo(moduleSlot))),
      'direct random': jsCell(() => direct.generateRandom(ds, 16)[0]),
      'managed slot_info': jsCell(() => read(managed.getSlotInfo(moduleSlot))),
      'managed random': jsCell(() => ms.generateRandom(16)[0]),
    },
    { between: async () => nativeRounds.push(await server.ask()) },
  );
  const n = (side, call) => nativeRounds.map((r) => r[side][call]);
  const sub = (a, b) => perRound(a, b, (x, y) => x - y);
  const f0 = (v) => v.toFixed(0);
  const rows = [];
  console.log(`Proxy cost per call (SoftHSM2 token, p11-kit trust behind the proxy): ns, median [p10–p90] of ${ROUNDS} interleaved rounds`);
  console.log(`(ours: ~${SAMPLE_MS} ms samples in this process; p11-kit: ${COUNT} calls per sample from C, one round between each of ours)`);
  for (const [call, label] of [['slot_info', 'C_GetSlotInfo'], ['random', 'C_GenerateRandom(16) on a session']]) {
    const oursAdds = sub(s[`proxy ${call}`], s[`direct ${call}`]);
    const theirsAdds = sub(n('proxy', call), n('direct', call));
    console.log(`  ${label}`);
    console.log(`    p11-kit: proxy ${spread(n('proxy', call), f0)}  module direct (C) ${spread(n('direct', call), f0)}  adds ${f0(theirsAdds)} ns`);
    console.log(`    ours:    proxy ${spread(s[`proxy ${call}`], f0)}  bridge direct ${spread(s[`direct ${call}`], f0)}  adds ${f0(oursAdds)} ns  (managed module ${spread(s[`managed ${call}`], f0)})`);
    const met = oursAdds <= theirsAdds + 50;
    rows.push({ bench: 'proxy', case: `${label}: added by the proxy`, ours: median(s[`proxy ${call}`]), reference: median(n('proxy', call)), referenceName: 'p11-kit-proxy', unit: 'ns', target: '≤ p11-kit-proxy’s added cost + 50 ns', met, detail: `ours adds ${f0(oursAdds)} ns over the bridge, p11-kit-proxy ${f0(theirsAdds)} ns over C` });
  }
  console.log(`  C_GetSlotList(FALSE) of the proxy (every module asked again, once per call on both sides)`);
  console.log(`    p11-kit-proxy ${spread(n('proxy', 'slot_list'), f0)}  ours ${spread(s['proxy slot_list'], f0)}`);
  // One re-query of every module on each side (C: one call into a big enough buffer, see proxy-bench.c).
  rows.push({ bench: 'proxy', case: 'C_GetSlotList(FALSE) of the proxy', ours: median(s['proxy slot_list']), reference: median(n('proxy', 'slot_list')), referenceName: 'p11-kit-proxy', unit: 'ns', detail: 'one re-query of every module each; ours typed from JavaScript, p11-kit-proxy from C' });
  report(rows);
} finally {
  server.close();
  ps.close();
  ms.close();
  direct.closeSession(ds);
  proxy.release();
  rmSync(dir, { recursive: true, force: true });
}
