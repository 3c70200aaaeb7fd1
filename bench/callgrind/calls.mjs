// One operation repeated N times, for instruction counts under callgrind (the machine's load
// does not change them): run it twice, with N = 20000 and N = 120000, and divide the difference
// of the two totals by 100000 (startup and warm-up cancel out). See bench/RESULTS-NOTES.md.
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node --single-threaded --hash-seed=1 --random-seed=1 bench/callgrind/calls.mjs CASE N
// (one V8 thread and fixed seeds: without them two identical runs differ by thousands of instructions per op)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeUri, openModule, openProxy, UriError } from '../../dist/lib/index.js';
import { core as wasmCore } from '../../dist/lib/wasm/core.js';
import { uriMix } from '../lib/uri-mix.mjs';

const FRAGILE = new URL('../../dist/native/fixtures/fragile-module.so', import.meta.url).pathname;
const [which, count] = [process.argv[2], Number(process.argv[3] ?? 20_000)];
const read = (x) => x.flags + x.manufacturerID.length;
const cleanups = [];

function proxyOverFragile() {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-callgrind-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['system', 'package']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'pkcs11.conf'), '');
  writeFileSync(join(dir, 'system/fragile.module'), `module: ${FRAGILE}\n`);
  const proxy = openProxy({
    registry: { systemConfig: join(dir, 'pkcs11.conf'), systemModules: join(dir, 'system'), packageModules: join(dir, 'package'), userConfig: join(dir, 'none.conf'), userModules: join(dir, 'none'), program: 'callgrind' },
  });
  cleanups.push(() => proxy.release());
  return proxy;
}

// One URI of bench/uri.mjs's mix per operation, cycling; a failing one counts as 0.
function uriCase() {
  const list = uriMix();
  let next = 0;
  const nextUri = () => {
    const t = list[next];
    if (++next === list.length) next = 0;
    return t;
  };
  if (which === 'uri-normalize') {
    return () => {
      try {
        return normalizeUri(nextUri(), { lowercase: false }).length;
      } catch (e) {
        if (!(e instanceof UriError)) throw e;
        return 0;
      }
    };
  }
  // The core's export alone, every URI already in wasm memory: what the wasm build of the C
  // core costs without the API edge (string in, string out, errors).
  const exp = wasmCore().exports;
  const normalize = exp.p11w_uri_normalize;
  const bytes = list.map((t) => Buffer.from(t));
  const base = exp.p11w_alloc(bytes.reduce((n, b) => n + b.length, 0) + 8);
  const at = [];
  let off = base + 8;
  for (const b of bytes) {
    new Uint8Array(exp.memory.buffer).set(b, off);
    at.push([off, b.length]);
    off += b.length;
  }
  return () => {
    const [ptr, len] = at[next];
    if (++next === list.length) next = 0;
    return normalize(ptr, len, 0xffff, 0, base) ? 1 : 0;
  };
}

function setup() {
  if (which.startsWith('uri-')) return uriCase();
  if (which.startsWith('proxy')) {
    const proxy = proxyOverFragile();
    const [slot] = proxy.getSlotList(false);
    if (which === 'proxy-slotinfo') return () => proxy.getSlotInfo(slot).flags;
    const s = proxy.openSession(slot);
    return () => s.generateRandom(16)[0];
  }
  const managed = openModule(FRAGILE);
  cleanups.push(() => managed.release());
  const m = managed.module;
  const [slot] = m.getSlotList(false);
  switch (which) {
    case 'typed-getinfo': return () => read(m.getInfo());
    case 'managed-getinfo': return () => read(managed.getInfo());
    case 'typed-slotinfo': return () => m.getSlotInfo(slot).flags;
    case 'managed-slotinfo': return () => managed.getSlotInfo(slot).flags;
    case 'typed-random': { const h = m.openSession(slot, 4); return () => m.generateRandom(h, 16)[0]; }
    case 'managed-random': { const s = managed.openSession(slot); return () => s.generateRandom(16)[0]; }
    case 'owner-check': { const o = managed.owner; return () => (o.check(), 0); }
    case 'checked-typed-getinfo': { const o = managed.owner; return () => (o.check(), read(m.getInfo())); }
  }
  throw new Error(`unknown case ${which}`);
}

const op = setup();
let sink = 0;
for (let i = 0; i < 20_000; i++) sink += op(); // warm-up, the same in both runs
for (let i = 0; i < count; i++) sink += op();
for (const c of cleanups.reverse()) c();
if (sink === 0.5) console.log(sink);
