// Instructions in this process per RPC round trip, for callgrind (the server is another process,
// not counted): CASE N runs a warm-up of WARM sequential operations, then N more. Run it at two N
// and divide the difference of the totals by the difference of the N (startup, connection and
// warm-up cancel out). CASE: random (our client, C_GenerateRandom(32) over `p11-kit server`) |
// floor (48 B to `cat` and back, async: the Node floor of bench/rpc.mjs) | c-floor (the same from
// C, blocking) | c-random (p11-kit's client.so, the C loop of pkcs11-loops.c).
//   for n in 5000 25000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node --single-threaded --hash-seed=1 --random-seed=1 bench/callgrind/rpc-calls.mjs random $n; done
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CKF_RW_SERIAL, makeToken, P11_KIT_CLIENT, p11kitServerArgv, startServer } from '../lib/rpc-token.mjs';
import { nativeLoops } from '../lib/sampling.mjs';

const { RpcClient } = await import('../../dist/lib/rpc/index.js');
const { loadModule } = await import('../../dist/lib/bridge/index.js');

const [which, count] = [process.argv[2], Number(process.argv[3] ?? 20_000)];
const WARM = Number(process.env.CALLGRIND_WARM ?? 5_000);

const token = makeToken('callgrind-rpc');
const socket = join(token.dir, 'pkcs11.sock');
const server = await startServer('p11-kit server', p11kitServerArgv(socket), socket, token.env);
const cleanups = [() => token.remove(), () => server.stop()];

async function setup() {
  if (which === 'random') {
    const client = new RpcClient({ remote: server.address, name: 'softhsm2' });
    await client.initialize();
    cleanups.push(() => client.close());
    const [slot] = await client.getSlotList(true);
    const session = await client.openSession(slot, CKF_RW_SERIAL);
    return () => client.generateRandom(session, 32);
  }
  if (which === 'floor') {
    const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
    cleanups.push(() => cat.stdin.end());
    let waiter = null;
    let echoed = 0;
    cat.stdout.on('data', (d) => {
      echoed += d.length;
      if (echoed >= 48 && waiter) {
        echoed -= 48;
        const w = waiter;
        waiter = null;
        w(d);
      }
    });
    const ping = new Uint8Array(48);
    return () => new Promise((r) => ((waiter = r), cat.stdin.write(ping)));
  }
  if (which === 'c-floor') {
    const C = nativeLoops();
    return { native: (n) => C.catEcho(n, 1) };
  }
  if (which === 'c-random') {
    process.env.P11_KIT_SERVER_ADDRESS = server.address;
    const m = loadModule(P11_KIT_CLIENT, { name: 'p11-kit-client' });
    m.initialize();
    cleanups.push(() => m.finalize());
    const [slot] = m.getSlotList(true);
    const session = m.openSession(slot, CKF_RW_SERIAL);
    const C = nativeLoops();
    return { native: (n) => C.random(m.functionList, session, 32, n) };
  }
  throw new Error(`unknown case ${which}`);
}

const op = await setup();
let sink = 0;
if (op.native) {
  sink += op.native(WARM) + op.native(count);
} else {
  for (let i = 0; i < WARM; i++) sink += (await op()).length;
  for (let i = 0; i < count; i++) sink += (await op()).length;
}
for (const c of cleanups.reverse()) await c();
if (sink === 0.5) console.log(sink);
