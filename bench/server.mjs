// The server benchmark: per-call cost of serving a SoftHSM2 token over p11-kit's RPC protocol —
// our `p11kit server` next to p11-kit's own `p11-kit server` (0.24.1), both on the same token
// store, both driven by p11-kit's client (p11-kit-client.so through pkcs11js). p11-kit-client's
// calls block its thread, so each measurement runs in a child process of its own (this file with
// --measure); servers alternate over rounds; the table shows medians of µs per call.
//
//   node bench/server.mjs               (needs `make build`: dist/lib)
//   BENCH_ROUNDS=5 BENCH_MS=1000 node bench/server.mjs
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './report.mjs';
import { P11_KIT_CLIENT, PIN, SOFTHSM, TIMED_MS, TIMED_ROUNDS, TIMED_WARM_MS, makeToken, p11kitServerArgv, startServer, timeOp } from './lib/rpc-token.mjs';

const SELF = fileURLToPath(import.meta.url);
const CLI = join(SELF, '../../dist/lib/cli.js');

// ---- one measurement: p11-kit-client.so against P11_KIT_SERVER_ADDRESS ------------------------

async function measure() {
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
    await timeOp(fn, TIMED_WARM_MS);
    result[k] = await timeOp(fn, TIMED_MS);
  }
  p.C_Logout(s);
  p.C_CloseSession(s);
  p.C_Finalize();
  process.stdout.write(JSON.stringify(result));
}

if (process.argv[2] === '--measure') {
  await measure();
  process.exit(0);
}

// ---- the token, and the two servers on it --------------------------------------------------

const token = makeToken('server');
const { env } = token;
const servers = [
  await startServer('p11kit server (ours)', [process.execPath, CLI, 'server', '-q', '-p', SOFTHSM, '-n', join(token.dir, 'ours.sock')], join(token.dir, 'ours.sock'), env),
  await startServer('p11-kit server 0.24.1', p11kitServerArgv(join(token.dir, 'theirs.sock')), join(token.dir, 'theirs.sock'), env),
];

const results = new Map();
for (let round = 0; round < TIMED_ROUNDS; round++) {
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
console.log(`SoftHSM2 served over p11-kit's RPC protocol to p11-kit-client.so; median of ${TIMED_ROUNDS} rounds, µs per call`);
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

for (const s of servers) await s.stop();
token.remove();
