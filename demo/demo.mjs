// The main job on the embedded default: the demo config tree (demo/config) and a SoftHSM2 token
// this run creates in a temp dir, shown through the library as an application uses it.
// Run by `make demo` (build/demo.sh), after the build.
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CKA, CKM, CKU, ModuleLifecycle, createPkcs11Worker, lifecycleTarget, loadModule, loadRegistry, openModule, openProxy,
} from 'p11kit-wasm';

const root = new URL('..', import.meta.url).pathname;
const SO_PIN = '12345678';
const USER_PIN = '1234'; // demo values only: the token lives and dies in the temp dir
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const WORKERS = 3;

const heading = (text) => console.log(`\n== ${text}`);
const line = (text = '') => console.log(`   ${text}`);

const work = mkdtempSync(join(tmpdir(), 'p11kit-demo-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
mkdirSync(join(work, 'tokens'));
mkdirSync(join(work, 'empty'));
writeFileSync(join(work, 'softhsm2.conf'), `directories.tokendir = ${work}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = join(work, 'softhsm2.conf'); // workers inherit it

const locations = {
  systemConfig: join(root, 'demo/config/pkcs11.conf'),
  systemModules: join(root, 'demo/config/modules'),
  packageModules: join(work, 'empty'),
  userConfig: join(work, 'empty/pkcs11.conf'),
  userModules: join(work, 'empty'),
};
const cliArgs = Object.entries(locations).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, v]);

heading(`The embedded default: demo/config with a SoftHSM2 token in ${work}`);
line(`SO PIN ${SO_PIN}, user PIN ${USER_PIN} (demo values; nothing of ~/.config/pkcs11 or your tokens is used)`);

// The main thread holds SoftHSM2 for the whole demo: the one C_Initialize happens here.
const registry = loadRegistry(locations);
const entry = registry.modules.find((m) => m.name === 'softhsm2');
// The module's process-wide lifecycle, watched from this thread before anyone opens it.
const lifecycle = ModuleLifecycle.of(lifecycleTarget(loadModule(entry.path), entry.settings.initReserved));
const transitions = [];
lifecycle.on('change', (c) => transitions.push(`${c.cause}: ${c.from.phase}/${c.from.holders} -> ${c.to.phase}/${c.to.holders}`));
const main = openModule(entry);
// Real C_Initialize/C_Finalize calls on SoftHSM2 in this process, from any thread (they start at 0).
const counts = () => lifecycle.callCounts;
const [freeSlot] = main.getSlotList(true);
main.initToken(freeSlot, SO_PIN, 'p11kit-demo');
const [slot] = main.getSlotList(true).filter((s) => main.getTokenInfo(s).label === 'p11kit-demo');
const so = main.openSession(slot, { rw: true });
so.login(CKU.CKU_SO, SO_PIN);
so.initPIN(USER_PIN);
so.close();
line(`token 'p11kit-demo' initialized on slot ${slot} (C_InitToken, C_InitPIN through the library)`);

heading('The registry as p11-kit sees it: p11kit list-modules');
const listed = spawnSync(process.execPath, [join(root, 'dist/lib/cli.js'), 'list-modules', ...cliArgs], { encoding: 'utf8' });
process.stdout.write(`${listed.stdout.trimEnd().replace(/^/gm, '   ')}\n`);
if (listed.status !== 0) line(`(list-modules exited ${listed.status}: ${listed.stderr.trim()})`);

heading('Tokens through the proxy (one virtual module over every configured module)');
const proxy = openProxy({ registry: locations });
for (const id of proxy.getSlotList(true)) {
  const t = proxy.getTokenInfo(id);
  line(`virtual slot ${id}: '${t.label}' (${t.manufacturerID}, ${t.model})`);
}
proxy.release();

heading(`An EC P-256 key pair and signatures from ${WORKERS} worker threads (comlink service)`);
const clients = Array.from({ length: WORKERS }, () => createPkcs11Worker());
const spec = { source: entry.path, initReserved: entry.settings.initReserved };
const modules = await Promise.all(clients.map((c) => c.openModule(spec)));
line(`${WORKERS} workers hold SoftHSM2 with the main thread: holders ${lifecycle.state.holders}, real C_Initialize calls so far ${counts().initialize}`);
const first = await modules[0].openSession(slot, { rw: true, pin: USER_PIN });
const pair = await first.generateKeyPair(
  CKM.CKM_EC_KEY_PAIR_GEN,
  [{ type: CKA.CKA_EC_PARAMS, value: P256 }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_LABEL, value: 'demo-key' }],
  [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_PRIVATE, value: true }, { type: CKA.CKA_SENSITIVE, value: true }, { type: CKA.CKA_LABEL, value: 'demo-key' }],
);
line(`worker 1 generated 'demo-key' (public ${pair.publicKey}, private ${pair.privateKey})`);
const [point] = await first.getAttributes(pair.publicKey, [CKA.CKA_EC_POINT]);
const raw = Buffer.from(point.value).subarray(2);
const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
await first.close();

await Promise.all(modules.map(async (m, i) => {
  const s = await m.openSession(slot, { pin: USER_PIN });
  const [key] = await s.findObjects([{ type: CKA.CKA_LABEL, value: 'demo-key' }, { type: CKA.CKA_SIGN, value: true }]);
  const [pub] = await s.findObjects([{ type: CKA.CKA_LABEL, value: 'demo-key' }, { type: CKA.CKA_VERIFY, value: true }]);
  const message = Buffer.from(`message signed by worker ${i + 1}`);
  const signature = await s.sign(CKM.CKM_ECDSA, key, createHash('sha256').update(message).digest());
  const ok = await s.verify(CKM.CKM_ECDSA, pub, createHash('sha256').update(message).digest(), signature);
  const byNode = nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  line(`worker ${i + 1}: signed ${message.length} bytes -> ${signature.length}-byte signature; verified by the token: ${ok}, by node:crypto: ${byNode}`);
  await s.close();
}));
await Promise.all(clients.map((c) => c.close()));

heading('The lifecycle: who entered C_Initialize and C_Finalize');
line(`while the workers ran: ${WORKERS} workers + the main thread, one process-wide state`);
main.release();
const after = counts();
line(`real C_Initialize calls: ${after.initialize}, real C_Finalize calls: ${after.finalize}`);
line(`state now: ${lifecycle.state.phase}, holders ${lifecycle.state.holders}, generation ${lifecycle.state.generation}`);
line('main thread\'s view of the transitions (phase/holders):');
for (const t of transitions) line(`  ${t}`);
if (after.initialize !== 1 || after.finalize !== 1) {
  console.error('demo: expected exactly one C_Initialize and one C_Finalize');
  process.exitCode = 1;
}

heading('Real devices: a smart card put in and taken out (pcscd + vpcd, opensc-pkcs11, the proxy)');
const { showCardInsertion } = await import('./card-insertion.mjs');
await showCardInsertion(line);
