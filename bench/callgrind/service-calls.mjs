// The service's cost per call in instructions, per thread, which the machine's load does not
// change: C_GenerateRandom(32) on SoftHSM2 through a service worker with FLIGHT calls in flight,
// against the same call in this thread (managed API). Run twice under callgrind with one output
// file per thread, N = 20000 and N = 120000; per thread, (Ir at 120k − Ir at 20k) / 100k:
//   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/cg.%p \
//     node --single-threaded --hash-seed=1 --random-seed=1 bench/callgrind/service-calls.mjs CASE N [FLIGHT]
// CASE: service (the default: in-process, through the shared-memory ring) | service-msg (the message
// path, `ring: false`) | inthread | bare (a bare worker_threads round trip making the same bridge call).
// The main thread is the file ending in -01; the service worker is the busiest of the others.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [which, count, flight] = [process.argv[2], Number(process.argv[3] ?? 20_000), Number(process.argv[4] ?? 32)];
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const dir = mkdtempSync(join(tmpdir(), 'p11kit-callgrind-service-'));
mkdirSync(join(dir, 'tokens'));
writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
const out = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'cg', '--so-pin', '12345678', '--pin', '1234'], { encoding: 'utf8' });
const slot = Number(/reassigned to slot (\d+)/.exec(out)[1]);
const { createPkcs11Worker, openModule } = await import('../../dist/lib/index.js');

/** n calls of one(), `flight` at a time. */
async function drive(one, n) {
  let left = n;
  let sink = 0;
  await Promise.all(Array.from({ length: flight }, async () => { while (left-- > 0) sink += (await one())[0]; }));
  return sink;
}

let one;
let close;
if (which === 'service' || which === 'service-msg') {
  const p11 = createPkcs11Worker({ ring: which === 'service' });
  const s = await (await p11.openModule(SOFTHSM)).openSession(slot);
  one = () => s.generateRandom(32);
  close = () => p11.close();
} else if (which === 'inthread') {
  const m = openModule(SOFTHSM);
  const s = m.openSession(slot);
  one = () => s.generateRandom(32);
  close = () => m.release();
} else if (which === 'bare') {
  const { Worker } = await import('node:worker_threads');
  const bare = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.bridge).then(({ loadModule }) => {
       const m = loadModule(workerData.path);
       m.initialize();
       const s = m.openSession(workerData.slot, 4);
       parentPort.on('message', (q) => {
         const out = m.generateRandom(s, q.length);
         parentPort.postMessage({ id: q.id, out }, [out.buffer]);
       });
       parentPort.postMessage('ready');
     });`,
    { eval: true, workerData: { bridge: new URL('../../dist/lib/bridge/index.js', import.meta.url).href, path: SOFTHSM, slot } },
  );
  await new Promise((resolve) => bare.once('message', resolve));
  const pending = new Map();
  let id = 0;
  bare.on('message', (m) => {
    pending.get(m.id)(m.out);
    pending.delete(m.id);
  });
  one = () => new Promise((resolve) => {
    id = (id + 1) & 0xffff;
    pending.set(id, resolve);
    bare.postMessage({ id, length: 32 });
  });
  close = () => bare.terminate();
} else throw new Error(`unknown case ${which}`);

let sink = await drive(one, 20_000); // warm-up, the same in both runs
sink += await drive(one, count);
await close();
rmSync(dir, { recursive: true, force: true });
if (sink === 0.5) console.log(sink);
