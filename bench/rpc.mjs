// The RPC benchmark: per-call cost of a SoftHSM2 token reached through p11-kit's RPC protocol
// — our client over a `p11-kit remote` child and over a `p11-kit server` socket, and p11-kit's
// own client (p11-kit-client.so) driven from C (bench/native/loops/pkcs11-loops.c, called
// through koffi once per sample) against the same server — next to the same token in-process
// through the bridge, all in one run. Cases rotate over rounds; the
// table shows medians of µs per operation and the ratio to in-process.
//
//   node bench/rpc.mjs               (needs `make build`: dist/lib)
//   BENCH_ROUNDS=5 BENCH_MS=1000 node bench/rpc.mjs
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './report.mjs';
import { nativeLoops } from './lib/sampling.mjs';

const { loadModule } = await import('../dist/lib/bridge/index.js');
const { RpcClient } = await import('../dist/lib/rpc/index.js');

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const P11_KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const PIN = '1234';
const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 150);
const MEASURE_MS = Number(process.env.BENCH_MS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CKF_RW_SERIAL = 0x6;
const CKU_USER = 1;
const CKM_EC_KEY_PAIR_GEN = 0x1040;
const CKM_ECDSA = 0x1041;
const CKA_EC_PARAMS = 0x180;
const CKA_SIGN = 0x108;
const P256 = Uint8Array.from(Buffer.from('06082a8648ce3d030107', 'hex'));
const DIGEST = new Uint8Array(32).fill(0x5a);

// ---- a token of our own, and a p11-kit server exporting it ----------------------------------

const dir = mkdtempSync(join(tmpdir(), 'p11kit-bench-rpc-'));
const conf = join(dir, 'softhsm2.conf');
execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = conf;
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', PIN], { stdio: 'ignore' });

const socket = join(dir, 'pkcs11.sock');
const server = spawn('p11-kit', ['server', '-f', '--provider', SOFTHSM, '-n', socket, 'pkcs11:'], { stdio: ['ignore', 'pipe', 'inherit'] });
const serverAddress = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = /P11_KIT_SERVER_ADDRESS=([^;]+);/.exec(out);
    if (m) resolve(m[1]);
  });
  server.once('exit', (code) => reject(new Error(`p11-kit server exited (${code})`)));
});
while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 10));

// ---- the cases: each gives a session with an EC key, and random() / sign() ------------------

/** A typed module interface (the bridge's sync or async calls, or the RPC client's). */
async function prepare(c) {
  const [slot] = await c.getSlotList(true);
  const session = await c.openSession(slot, CKF_RW_SERIAL);
  await c.login(session, CKU_USER, PIN);
  const ec = { mechanism: CKM_EC_KEY_PAIR_GEN };
  const pub = [{ type: CKA_EC_PARAMS, value: P256 }];
  const priv = [{ type: CKA_SIGN, value: true }];
  const { privateKey } = await c.generateKeyPair(session, ec, pub, priv);
  return { session, privateKey };
}

const cases = [];

const local = loadModule(SOFTHSM, { name: 'softhsm2' });
local.initialize();
const ls = await prepare(local);
cases.push({
  name: 'in-process (bridge, sync)',
  random: () => local.generateRandom(ls.session, 32),
  sign: () => (local.signInit(ls.session, { mechanism: CKM_ECDSA }, ls.privateKey), local.sign(ls.session, DIGEST)),
});
cases.push({
  name: 'in-process (bridge, async)',
  random: () => local.async.generateRandom(ls.session, 32),
  sign: async () => (await local.async.signInit(ls.session, { mechanism: CKM_ECDSA }, ls.privateKey), local.async.sign(ls.session, DIGEST)),
});

async function rpcCase(name, remote) {
  const client = new RpcClient({ remote, name: 'softhsm2' });
  await client.initialize();
  const s = await prepare(client);
  cases.push({
    name,
    client,
    random: () => client.generateRandom(s.session, 32),
    sign: async () => (await client.signInit(s.session, { mechanism: CKM_ECDSA }, s.privateKey), client.sign(s.session, DIGEST)),
    // 16 calls in flight on the one connection (the host still answers them one by one).
    pipelined: (n) => Promise.all(Array.from({ length: n }, () => client.generateRandom(s.session, 32))),
  });
}
await rpcCase('our RPC client: p11-kit remote (child)', `|p11-kit remote ${SOFTHSM}`);
await rpcCase('our RPC client: p11-kit server (socket)', serverAddress);

// p11-kit's own client, a PKCS#11 module itself, reads the address when it is initialized.
process.env.P11_KIT_SERVER_ADDRESS = serverAddress;
const p11kitClient = loadModule(P11_KIT_CLIENT, { name: 'p11-kit-client' });
p11kitClient.initialize();
const ps = await prepare(p11kitClient);
// The session and key are made through our bridge; the timed calls are C loops over its function list.
const C = nativeLoops();
const fl = p11kitClient.functionList;
cases.push({
  name: "p11-kit's client.so from C",
  native: {
    random: (n) => C.random(fl, ps.session, 32, n),
    sign: (n) => C.signEcdsa(fl, ps.session, ps.privateKey, n),
  },
});

// The floor of any async round trip to a child in Node: 48 bytes to `cat` and back.
const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
let echoWaiter = null;
let echoed = 0;
cat.stdout.on('data', (d) => {
  echoed += d.length;
  if (echoed >= 48 && echoWaiter) {
    echoed -= 48;
    const w = echoWaiter;
    echoWaiter = null;
    w(d);
  }
});
const ping = new Uint8Array(48);
const floor = { name: 'floor: 48 B to `cat` and back (no PKCS#11)', echo: () => new Promise((r) => ((echoWaiter = r), cat.stdin.write(ping))) };

// ---- measurement ---------------------------------------------------------------------------

let sink = 0;
/** µs per op of a native loop (n ops per call, timed in C), about ms long. */
function timeNative(loop, ms) {
  let n = 1;
  let t;
  while ((t = loop(n)) < ms * 2.5e5) {
    if (t < 0) throw new Error('a native loop reported a failed call');
    n *= 2;
  }
  n = Math.max(1, Math.round((n * ms * 1e6) / t));
  return loop(n) / 1000 / n;
}

async function timeOp(fn, ms, batch = 1) {
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 32; i++) {
      const r = fn();
      const v = r instanceof Promise ? await r : r;
      sink += v ? (v.length ?? 1) : 0;
      ops += batch;
    }
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / ops; // µs per op
}

const workloads = [
  { key: 'random', label: 'GenerateRandom 32 B (1 call)' },
  { key: 'sign', label: 'ECDSA P-256 sign (SignInit+Sign)' },
];
const results = new Map();
for (let round = 0; round < ROUNDS; round++) {
  const order = cases.map((_, i) => (i + round) % cases.length);
  for (const i of order) {
    const c = cases[i];
    for (const w of workloads) {
      let us;
      if (c.native) {
        timeNative(c.native[w.key], WARM_MS);
        us = timeNative(c.native[w.key], MEASURE_MS);
      } else {
        await timeOp(c[w.key], WARM_MS);
        us = await timeOp(c[w.key], MEASURE_MS);
      }
      const k = `${c.name}|${w.key}`;
      results.set(k, [...(results.get(k) ?? []), us]);
    }
    if (c.pipelined) {
      await timeOp(() => c.pipelined(16), WARM_MS, 16);
      const us = await timeOp(() => c.pipelined(16), MEASURE_MS, 16);
      const k = `${c.name}|pipelined`;
      results.set(k, [...(results.get(k) ?? []), us]);
    }
  }
}

const floorUs = [];
const cFloorUs = [];
for (let round = 0; round < ROUNDS; round++) {
  await timeOp(floor.echo, WARM_MS);
  floorUs.push(await timeOp(floor.echo, MEASURE_MS));
  // The same echo from C, blocking (a `cat` child per sample; what p11-kit's client waits like).
  cFloorUs.push(timeNative((n) => C.catEcho(n), MEASURE_MS));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = Object.fromEntries(workloads.map((w) => [w.key, median(results.get(`${cases[0].name}|${w.key}`))]));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

console.log(`SoftHSM2 through p11-kit 0.24.1's RPC protocol vs in-process; median of ${ROUNDS} rounds, µs per operation (ratio to in-process sync)`);
console.log(`${pad('path', 42)} ${workloads.map((w) => lpad(w.label, 34)).join(' ')}`);
for (const c of cases) {
  const cells = workloads.map((w) => {
    const us = median(results.get(`${c.name}|${w.key}`));
    return lpad(`${us.toFixed(2)} µs (${(us / base[w.key]).toFixed(1)}x)`, 34);
  });
  console.log(`${pad(c.name, 42)} ${cells.join(' ')}`);
}
for (const c of cases.filter((x) => x.pipelined)) {
  const us = median(results.get(`${c.name}|pipelined`));
  const seq = median(results.get(`${c.name}|random`));
  console.log(`${pad(`${c.name}, 16 GenerateRandom in flight`, 60)} ${us.toFixed(2)} µs/op (${(seq / us).toFixed(1)}x the sequential rate)`);
}
console.log(`${pad(floor.name, 60)} ${median(floorUs).toFixed(2)} µs per round trip`);
console.log(`${pad('floor from C: the same echo, blocking reads', 60)} ${median(cFloorUs).toFixed(2)} µs per round trip`);
const ours = median(results.get(`our RPC client: p11-kit server (socket)|sign`));
const theirs = median(results.get(`p11-kit's client.so from C|sign`));
const oursR = median(results.get(`our RPC client: p11-kit server (socket)|random`));
const theirsR = median(results.get(`p11-kit's client.so from C|random`));
console.log(`same server, our client vs p11-kit's: random ${(oursR / theirsR).toFixed(2)}x, sign ${(ours / theirs).toFixed(2)}x the time (<1 = ours faster)`);
const rpcUs = (name, key) => median(results.get(`${name}|${key}`));
const shortLabel = { random: 'GenerateRandom 32 B', sign: 'ECDSA P-256 sign' };
const floorRow = { bench: 'rpc', case: 'floor: 48 B to `cat` and back, Node async', ours: median(floorUs), reference: median(cFloorUs), referenceName: 'the same from C', unit: 'µs', detail: 'no PKCS#11: the round trip alone' };
report([
  floorRow,
  ...workloads.flatMap((w) => [
    { bench: 'rpc', case: `${shortLabel[w.key]}, our client over p11-kit remote`, ours: rpcUs('our RPC client: p11-kit remote (child)', w.key), reference: base[w.key], referenceName: 'in-process', unit: 'µs' },
    { bench: 'rpc', case: `${shortLabel[w.key]}, our client over p11-kit server`, ours: rpcUs('our RPC client: p11-kit server (socket)', w.key), reference: rpcUs("p11-kit's client.so from C", w.key), referenceName: "p11-kit's client.so from C", unit: 'µs', target: 1, detail: 'same server' },
  ]),
]);

// ---- teardown ------------------------------------------------------------------------------

for (const c of cases) if (c.client) await c.client.close();
p11kitClient.finalize();
cat.stdin.end();
local.finalize();
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dir, { recursive: true, force: true });
if (sink === 0) console.log('(no work was done?)');
