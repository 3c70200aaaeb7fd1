// The RPC benchmark: per-call cost of a SoftHSM2 token reached through p11-kit's RPC protocol —
// our client over a `p11-kit remote` child and over a `p11-kit server` socket, and p11-kit's own
// client (p11-kit-client.so) driven from C (bench/native/loops/pkcs11-loops.c, called through
// koffi once per sample) against the same server — next to the same token in-process through
// the bridge, and the floor of any round trip to a child (48 bytes to `cat` and back over Unix
// socketpairs, from Node and from C). Every cell is sampled in interleaved rounds in this one
// process (bench/lib/sampling.mjs), so a burst of load hits every side of a round alike.
//
// Placement: the one-call-at-a-time cells run with every process of the bench (this one and all
// its threads, the server and its per-connection children, `p11-kit remote`, the `cat` children)
// pinned to one CPU (bench/lib/placement.mjs). Unpinned, a round trip on this VM costs ~2 µs or
// 23–58 µs depending on whether the scheduler keeps the two processes on one CPU or wakes an idle
// vCPU per hop, and it decides per pair: a floor measured with one pair was not the floor of the
// client it was subtracted from (RESULTS-NOTES.md, "RPC client ≥ 1.0×"). The 16-in-flight cells
// run unpinned, after them: they are about using both CPUs. BENCH_RPC_CPU=N pins to CPU N (by
// default the last one allowed); BENCH_RPC_CPU=none runs every cell unpinned, as before, for
// comparison.
//
// Two targets (bench/RESULTS-NOTES.md, "RPC client ≥ 1.0×"):
//   - sequential: our client's time over the Node floor ≤ p11-kit's client's time over the C
//     floor + 10 µs (what our framing, buffers and dispatch add beyond the runtime's round trip);
//   - throughput: ≥ 1.0× p11-kit's client with 16 calls in flight on one connection (16 C
//     threads on one session for p11-kit's client, 16 awaited chains for ours).
//
//   node bench/rpc.mjs               (needs `make build`: dist/lib, dist/native/bench)
//   BENCH_ROUNDS=5 BENCH_SAMPLE_MS=50 node bench/rpc.mjs
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ALLOWED_CPUS, place } from './lib/placement.mjs';
import { report } from './report.mjs';
import { asyncCell, inFlightCell, jsCell, median, nativeLoops, perRound, quantile, ROUNDS, SAMPLE_MS, sampleInterleavedAsync, spread } from './lib/sampling.mjs';
import { CKA_EC_PARAMS, CKA_SIGN, CKF_RW_SERIAL, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKU_USER, DIGEST, P11_KIT_CLIENT, P256, PIN, SOFTHSM, makeToken, p11kitServerArgv, startServer } from './lib/rpc-token.mjs';

const { loadModule } = await import('../dist/lib/bridge/index.js');
const { RpcClient } = await import('../dist/lib/rpc/index.js');

/** Calls in flight on one connection for the throughput row. */
const FLIGHT = 16;
/** The sequential row's allowance over p11-kit's client, beyond each runtime's floor. */
const SEQ_ALLOWANCE_US = 10;

// ---- a token of our own, and a p11-kit server exporting it ----------------------------------

const token = makeToken('rpc');
// The bridge (in-process) and `p11-kit remote` (spawned with our environment) read it from here.
process.env.SOFTHSM2_CONF = token.conf;
const socket = join(token.dir, 'pkcs11.sock');
const server = await startServer('p11-kit server', p11kitServerArgv(socket), socket, token.env);

/** A session with an EC key on a typed module interface (the bridge's, sync or async, or the RPC client's). */
async function prepare(c) {
  const [slot] = await c.getSlotList(true);
  const session = await c.openSession(slot, CKF_RW_SERIAL);
  await c.login(session, CKU_USER, PIN);
  const { privateKey } = await c.generateKeyPair(session, { mechanism: CKM_EC_KEY_PAIR_GEN }, [{ type: CKA_EC_PARAMS, value: P256 }], [{ type: CKA_SIGN, value: true }]);
  return { session, privateKey };
}

const local = loadModule(SOFTHSM, { name: 'softhsm2' });
local.initialize();
const ls = await prepare(local);

async function rpcClient(remote) {
  const client = new RpcClient({ remote, name: 'softhsm2' });
  await client.initialize();
  return { client, ...(await prepare(client)) };
}
const viaRemote = await rpcClient(`|p11-kit remote ${SOFTHSM}`);
const viaServer = await rpcClient(server.address);

// p11-kit's own client, a PKCS#11 module itself, reads the address when it is initialized. The
// session and key are made through our bridge; the timed calls are C loops over its function list.
process.env.P11_KIT_SERVER_ADDRESS = server.address;
const p11kitClient = loadModule(P11_KIT_CLIENT, { name: 'p11-kit-client' });
p11kitClient.initialize();
const ps = await prepare(p11kitClient);
const C = nativeLoops();
const fl = p11kitClient.functionList;

// The floor of any async round trip to a child in Node: 48 bytes to `cat` and back (libuv makes
// a child's 'pipe' stdio a Unix socketpair; the C floor uses the same).
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
const echo = () => new Promise((r) => ((echoWaiter = r), cat.stdin.write(ping)));

// ---- the cells: each runs n operations and returns the nanoseconds ---------------------------

const rpcCells = (prefix, { client, session, privateKey }) => ({
  [`${prefix} random`]: asyncCell(() => client.generateRandom(session, 32)),
  [`${prefix} sign`]: asyncCell(async () => (await client.signInit(session, { mechanism: CKM_ECDSA }, privateKey), client.sign(session, DIGEST))),
});
// One call at a time, every participant on one CPU (see the top).
const oneAtATime = {
  'in-process sync random': jsCell(() => local.generateRandom(ls.session, 32).length),
  'in-process sync sign': jsCell(() => (local.signInit(ls.session, { mechanism: CKM_ECDSA }, ls.privateKey), local.sign(ls.session, DIGEST).length)),
  'in-process async random': asyncCell(() => local.async.generateRandom(ls.session, 32)),
  'in-process async sign': asyncCell(async () => (await local.async.signInit(ls.session, { mechanism: CKM_ECDSA }, ls.privateKey), local.async.sign(ls.session, DIGEST))),
  ...rpcCells('remote', viaRemote),
  ...rpcCells('server', viaServer),
  'p11-kit client random': (n) => C.random(fl, ps.session, 32, n),
  'p11-kit client sign': (n) => C.signEcdsa(fl, ps.session, ps.privateKey, n),
  'floor node': asyncCell(echo),
  // The same echo from C, blocking (a `cat` child per sample, forked untimed; how p11-kit's client waits).
  'floor C': (n) => C.catEcho(n, 1),
};
// Many calls in flight, unpinned; p11-kit's client one call at a time again, as its best rate here.
const inFlight = {
  'server random in flight': inFlightCell(() => viaServer.client.generateRandom(viaServer.session, 32), FLIGHT),
  'p11-kit client random in flight': (n) => C.randomThreads(fl, ps.session, 32, n, FLIGHT),
  'p11-kit client random unpinned': (n) => C.random(fl, ps.session, 32, n),
};

const cpus = ALLOWED_CPUS;
const pinnedCpu = process.env.BENCH_RPC_CPU === 'none' ? undefined : Number(process.env.BENCH_RPC_CPU ?? cpus[cpus.length - 1]);
const load0 = loadavg()[0];
if (pinnedCpu !== undefined) place([process.pid], [pinnedCpu]);
const ns = await sampleInterleavedAsync(oneAtATime);
place([process.pid], cpus);
Object.assign(ns, await sampleInterleavedAsync(inFlight));
const s = Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, v.map((x) => x / 1000)])); // µs per op

// ---- the table -----------------------------------------------------------------------------

const us = (v) => v.toFixed(2);
const ratioTo = (a, b) => perRound(s[b], s[a], (ref, ours) => ref / ours); // > 1: a faster than b
const paths = [
  ['in-process (bridge, sync)', 'in-process sync'],
  ['in-process (bridge, async)', 'in-process async'],
  ['our RPC client: p11-kit remote (child)', 'remote'],
  ['our RPC client: p11-kit server (socket)', 'server'],
  ["p11-kit's client.so from C, same server", 'p11-kit client'],
];
const loadEnd = loadavg()[0];
console.log(`SoftHSM2 through p11-kit 0.24.1's RPC protocol; µs per operation, median [p10–p90] of ${ROUNDS} interleaved rounds of ~${SAMPLE_MS} ms (load average ${load0.toFixed(1)} → ${loadEnd.toFixed(1)})`);
/** Where the one-call-at-a-time cells ran, for the rows' text. */
const where = pinnedCpu === undefined ? 'unpinned' : 'all on one CPU';
const placement = pinnedCpu === undefined ? 'unpinned (BENCH_RPC_CPU=none)' : `every process of the bench on CPU ${pinnedCpu}`;
console.log(`one call at a time: ${placement}; ${FLIGHT} in flight: unpinned (CPUs ${cpus.join(',')})`);
console.log(`${'path'.padEnd(42)} ${'GenerateRandom 32 B'.padStart(30)} ${'ECDSA P-256 sign (SignInit+Sign)'.padStart(34)}`);
for (const [label, key] of paths) {
  const cell = (w) => `${spread(s[`${key} ${w}`], us)} (${(1 / ratioTo(`${key} ${w}`, `in-process sync ${w}`)).toFixed(1)}x)`;
  console.log(`${label.padEnd(42)} ${cell('random').padStart(30)} ${cell('sign').padStart(34)}`);
}
console.log(`${`our client (socket), ${FLIGHT} GenerateRandom in flight`.padEnd(60)} ${spread(s['server random in flight'], us)} µs/op`);
console.log(`${`p11-kit's client from ${FLIGHT} C threads, one session`.padEnd(60)} ${spread(s['p11-kit client random in flight'], us)} µs/op`);
console.log(`${`floor: 48 B to \`cat\` and back, socketpairs, ${where}, Node async`.padEnd(60)} ${spread(s['floor node'], us)} µs`);
console.log(`${'floor: the same from C, blocking reads'.padEnd(60)} ${spread(s['floor C'], us)} µs`);

// Sequential: each client's time over its runtime's floor, differences taken within a round.
// A sign is two round trips (C_SignInit, C_Sign): two floors off, twice the allowance.
const overFloors = (cell, floor, trips) => s[cell].map((v, i) => v - trips * s[floor][i]);
const sequential = (w, trips) => {
  const ours = overFloors(`server ${w}`, 'floor node', trips);
  const theirs = overFloors(`p11-kit client ${w}`, 'floor C', trips);
  const excess = perRound(ours, theirs, (a, b) => a - b);
  return { ours, theirs, excess, allowance: trips * SEQ_ALLOWANCE_US };
};
const seq = { random: sequential('random', 1), sign: sequential('sign', 2) };
const signed = (v) => `${v >= 0 ? '+' : ''}${us(v)}`;
for (const [w, q] of Object.entries(seq)) {
  console.log(`sequential ${w} over each runtime's floor: ours ${spread(q.ours, us)} µs, p11-kit's ${spread(q.theirs, us)} µs; ours − theirs ${signed(q.excess)} µs (target ≤ +${q.allowance})`);
}
// The fastest tenth of each cell's samples is the least disturbed by other processes' load.
const p10Over = (a, f) => quantile(s[a], 0.1) - quantile(s[f], 0.1);
console.log(`  the same at the p10s (least disturbed): ours ${us(p10Over('server random', 'floor node'))} µs, p11-kit's ${us(p10Over('p11-kit client random', 'floor C'))} µs`);
const flightRatio = ratioTo('server random in flight', 'p11-kit client random in flight');
// p11-kit's client is faster one call at a time than from 16 threads (they queue for its one
// socket): the rate ours is also compared with, as its best.
const flightVsSeq = ratioTo('server random in flight', 'p11-kit client random unpinned');
console.log(`${FLIGHT} in flight: ours ${flightRatio.toFixed(2)}x p11-kit's client's rate from ${FLIGHT} threads (target ≥ 1.0), ${flightVsSeq.toFixed(2)}x its rate one call at a time`);

const shortLabel = { random: 'GenerateRandom 32 B', sign: 'ECDSA P-256 sign' };
const row = (c, a, b, referenceName, extra = {}) => ({ bench: 'rpc', case: c, ours: median(s[a]), reference: median(s[b]), referenceName, unit: 'µs', ratio: ratioTo(a, b), ...extra });
report([
  row(`floor: 48 B to \`cat\` and back over socketpairs, Node async, ${where}`, 'floor node', 'floor C', 'the same from C, blocking', { detail: 'no PKCS#11: the round trip alone, placed as the calls are' }),
  ...['random', 'sign'].flatMap((w) => [
    row(`${shortLabel[w]}, our client over p11-kit remote, ${where}`, `remote ${w}`, `in-process sync ${w}`, 'in-process'),
    // One call at a time, ≥ 1.0× is below Node's own round-trip floor (RESULTS-NOTES.md): the
    // target is the sequential row's, each client over its runtime's floor once per round trip.
    row(`${shortLabel[w]}, our client over p11-kit server, ${where}`, `server ${w}`, `p11-kit client ${w}`, "p11-kit's client.so from C", { detail: 'same server; target: the sequential row' }),
    row(`sequential ${shortLabel[w]}, over each runtime's round-trip floor (48 B to \`cat\` and back${w === 'sign' ? ', two trips' : ''}), ${where}`, `server ${w}`, `p11-kit client ${w}`, "p11-kit's client.so from C", {
      target: `≤ p11-kit's + ${seq[w].allowance} µs, each over its floor`,
      met: seq[w].excess <= seq[w].allowance,
      detail: `ours ${us(median(seq[w].ours))} µs over the Node floor, p11-kit's ${us(median(seq[w].theirs))} µs over the C floor: ${signed(seq[w].excess)} µs`,
    }),
  ]),
  row(`GenerateRandom 32 B, ${FLIGHT} in flight on one connection`, 'server random in flight', 'p11-kit client random in flight', `p11-kit's client.so, ${FLIGHT} C threads`, {
    target: 1,
    detail: `same server, unpinned; ${flightVsSeq.toFixed(2)}× p11-kit's client one call at a time`,
  }),
]);

// ---- teardown ------------------------------------------------------------------------------

await viaRemote.client.close();
await viaServer.client.close();
p11kitClient.finalize();
cat.stdin.end();
local.finalize();
await server.stop();
token.remove();
