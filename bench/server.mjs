// The server benchmark: per-call cost of serving a SoftHSM2 token over p11-kit's RPC protocol —
// our `p11kit server` next to p11-kit's own `p11-kit server` (0.24.1), both on the same token
// store, both driven by p11-kit's client (p11-kit-client.so through pkcs11js). p11-kit-client's
// calls block its thread, so each measurement runs in a child process of its own (this file with
// --measure); servers alternate over rounds; the table shows medians of µs per call.
//
//   node bench/server.mjs               (needs `make build`: dist/lib)
//   BENCH_ROUNDS=5 BENCH_MS=1000 node bench/server.mjs
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './report.mjs';

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const P11_KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const PIN = '1234';
const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 150);
const MEASURE_MS = Number(process.env.BENCH_MS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SELF = fileURLToPath(import.meta.url);
const CLI = join(SELF, '../../dist/lib/cli.js');

// ---- one measurement: p11-kit-client.so against P11_KIT_SERVER_ADDRESS ------------------------

function timeOp(fn, ms) {
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 32; i++, ops++) fn();
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / ops;
}

function measure() {
  const require = createRequire(import.meta.url);
  const pkcs11js = require('pkcs11js');
  const p = new pkcs11js.PKCS11();
  p.load(P11_KIT_CLIENT);
  p.C_Initialize({ flags: 2 });
  const [slot] = p.C_GetSlotList(true);
  const s = p.C_OpenSession(slot, 6);
  p.C_Login(s, 1, PIN);
  const { privateKey } = p.C_GenerateKeyPair(s, { mechanism: 0x1040 }, [{ type: 0x180, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: 0x1, value: false }], [{ type: 0x108, value: true }, { type: 0x1, value: false }]);
  const digest = Buffer.alloc(32, 0x5a);
  const out = Buffer.alloc(128);
  const random = () => p.C_GenerateRandom(s, Buffer.alloc(32));
  const sign = () => (p.C_SignInit(s, { mechanism: 0x1041 }, privateKey), p.C_Sign(s, digest, out));
  const info = () => p.C_GetTokenInfo(slot);
  const result = {};
  for (const [k, fn] of Object.entries({ random, sign, info })) {
    timeOp(fn, WARM_MS);
    result[k] = timeOp(fn, MEASURE_MS);
  }
  p.C_Logout(s);
  p.C_CloseSession(s);
  p.C_Finalize();
  process.stdout.write(JSON.stringify(result));
}

if (process.argv[2] === '--measure') {
  measure();
  process.exit(0);
}

// ---- the token, and the two servers on it --------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'p11kit-bench-server-'));
const conf = join(dir, 'softhsm2.conf');
execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
const env = { ...process.env, SOFTHSM2_CONF: conf };
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', PIN], { env, stdio: 'ignore' });

async function start(name, argv, socket) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /P11_KIT_SERVER_ADDRESS=([^;]+);/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
  while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 10));
  return { name, child, address };
}

const servers = [
  await start('p11kit server (ours)', [process.execPath, CLI, 'server', '-p', SOFTHSM, '-n', join(dir, 'ours.sock')], join(dir, 'ours.sock')),
  await start('p11-kit server 0.24.1', ['p11-kit', 'server', '-f', '--provider', SOFTHSM, '-n', join(dir, 'theirs.sock'), 'pkcs11:'], join(dir, 'theirs.sock')),
];

const results = new Map();
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < servers.length; i++) {
    const srv = servers[(i + round) % servers.length];
    const r = spawnSync(process.execPath, [SELF, '--measure'], { env: { ...env, P11_KIT_SERVER_ADDRESS: srv.address }, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`measuring ${srv.name} failed: ${r.stderr}`);
    const m = JSON.parse(r.stdout);
    for (const [k, us] of Object.entries(m)) results.set(`${srv.name}|${k}`, [...(results.get(`${srv.name}|${k}`) ?? []), us]);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const workloads = [
  ['info', 'C_GetTokenInfo'],
  ['random', 'GenerateRandom 32 B'],
  ['sign', 'ECDSA P-256 sign (SignInit+Sign)'],
];
const [ours, theirs] = servers;
console.log(`SoftHSM2 served over p11-kit's RPC protocol to p11-kit-client.so; median of ${ROUNDS} rounds, µs per call`);
console.log(`${'call'.padEnd(34)} ${ours.name.padStart(22)} ${theirs.name.padStart(22)}   ratio`);
for (const [k, label] of workloads) {
  const a = median(results.get(`${ours.name}|${k}`));
  const b = median(results.get(`${theirs.name}|${k}`));
  console.log(`${label.padEnd(34)} ${a.toFixed(2).padStart(22)} ${b.toFixed(2).padStart(22)}   ${(a / b).toFixed(2)}x`);
}
report(
  workloads.map(([k, label]) => ({
    bench: 'server',
    case: `${label}, p11-kit-client.so to our server`,
    ours: median(results.get(`${ours.name}|${k}`)),
    reference: median(results.get(`${theirs.name}|${k}`)),
    referenceName: 'p11-kit server',
    unit: 'µs',
  })),
);

for (const s of servers) {
  s.child.kill('SIGTERM');
  await new Promise((r) => (s.child.exitCode !== null ? r() : s.child.once('exit', r)));
}
rmSync(dir, { recursive: true, force: true });
