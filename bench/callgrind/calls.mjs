// One operation repeated N times, for instruction counts under callgrind (the machine's load
// does not change them): run it twice, with N = 20000 and N = 120000, and divide the difference
// of the two totals by 100000 (startup and warm-up cancel out). See bench/RESULTS-NOTES.md.
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node --single-threaded --hash-seed=1 --random-seed=1 bench/callgrind/calls.mjs CASE N
// (one V8 thread and fixed seeds: without them two identical runs differ by thousands of instructions per op)
// With CALLGRIND_LOOP=jit the loop runs as the benches' cells do (bench/lib/sampling.mjs jsCell):
// a function called in chunks of 1,000, which TurboFan compiles; without it, the module's top
// level, which stays in baseline code (about 90 instructions more per operation).
//
// Raw-call cases, MODULE-SIDE-OP: MODULE fragile | nop (bench/native/loops/nop-module.c) | nss | softhsm;
// SIDE raw (module.raw, as the bridge bench) | koffi (the same function pointer declared here with
// its own koffi prototype: the bare koffi call) | koffi32 (the same, CK_RV read as uint32_t: what
// koffi's 64-bit return conversion costs) | rawcopy (module.raw's functions in a small object) |
// rawshared (raw, its closure sharing feedback with one over other functions: megamorphic calls) |
// c (the C loop of pkcs11-loops.c) | typed (the typed call, every field read as bench/bridge.mjs;
// OP also slotinfo | tokeninfo); OP getinfo |
// random | digest (DigestInit + Digest, as the bridge bench). raw − koffi is what the bridge adds
// to koffi's call; koffi − c is koffi's own price.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { Arena, normalizeUri, openModule, openProxy, UriError } from '../../dist/lib/index.js';
import { loadModule } from '../../dist/lib/bridge/index.js';
import { core as wasmCore } from '../../dist/lib/wasm/core.js';
import { readInfo, readSlotInfo, readTokenInfo } from '../lib/info-readers.mjs';
import { nativeLoops } from '../lib/sampling.mjs';
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

/** A fresh SoftHSM2 token in a temp dir (SOFTHSM2_CONF points at it; removed at the end). */
function softhsmToken() {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-callgrind-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'cg', '--pin', '1234', '--so-pin', '5678'], { stdio: 'ignore' });
}

const RAW_MODULES = {
  fragile: { path: FRAGILE },
  nop: { path: new URL('../../dist/native/bench/libnop-module.so', import.meta.url).pathname },
  softhsm: { path: '/usr/lib/softhsm/libsofthsm2.so', token: true },
  nss: { path: '/usr/lib/x86_64-linux-gnu/libsoftokn3.so', reserved: "configdir='' certPrefix='' keyPrefix='' secmod='' flags=readOnly,noCertDB,noModDB,forceOpen,optimizeSpace" },
};

/** MODULE-SIDE-OP: one raw call shape, through the bridge, bare koffi or C (see the top). */
function rawCase() {
  const [name, side, op] = which.split('-');
  const spec = RAW_MODULES[name];
  if (spec.token) softhsmToken();
  const m = loadModule(spec.path);
  let session = 1;
  if (name !== 'nop') {
    m.initialize(spec.reserved ? { reserved: spec.reserved } : {});
    cleanups.push(() => m.finalize());
    session = m.openSession(m.getSlotList(true)[0], 4);
  }
  const mem = new Arena(4096);
  const [info, rand, data, out, len] = [88, 32, 64, 64, 8].map((n) => mem.alloc(n));
  const mech = Buffer.alloc(24);
  mech.writeBigUInt64LE(0x250n); // CKM_SHA256
  const sha = mem.put(mech);
  const [infoB, randB, outB] = [info, rand, out].map((a) => mem.view(a, 1));
  const lenU32 = new Uint32Array(mem.view(len, 8).buffer, mem.view(len, 8).byteOffset, 2);
  const pointers = m['lib'].raw.pointers;
  const rv = side === 'koffi32' ? 'uint32_t' : 'unsigned long';
  const bare = (fn, args) => koffi.decode(pointers[fn], koffi.proto(rv, args));
  // The same closures over either table: only the functions called differ.
  const pick = (t) => ({ C_GetInfo: t.C_GetInfo, C_GenerateRandom: t.C_GenerateRandom, C_DigestInit: t.C_DigestInit, C_Digest: t.C_Digest });
  const bareTable = () => ({
    C_GetInfo: bare('C_GetInfo', ['uintptr_t']),
    C_GenerateRandom: bare('C_GenerateRandom', ['unsigned long', 'uintptr_t', 'unsigned long']),
    C_DigestInit: bare('C_DigestInit', ['unsigned long', 'uintptr_t']),
    C_Digest: bare('C_Digest', ['unsigned long', 'uintptr_t', 'unsigned long', 'uintptr_t', 'uintptr_t']),
  });
  if (side === 'c') {
    const C = nativeLoops();
    const list = m.functionList;
    const loops = { getinfo: (n) => C.getInfo(list, n), random: (n) => C.random(list, session, 32, n), digest: (n) => C.digest(list, session, n) };
    return { native: loops[op] };
  }
  if (side === 'typed') {
    // The typed call with every field read, as the bridge bench's typed cells.
    const slot = name === 'nop' ? 0 : m.getSlotList(true)[0];
    switch (op) {
      case 'getinfo': return () => readInfo(m.getInfo());
      case 'slotinfo': return () => readSlotInfo(m.getSlotInfo(slot));
      case 'tokeninfo': return () => readTokenInfo(m.getTokenInfo(slot));
      case 'random': return () => m.generateRandom(session, 32)[0];
    }
  }
  const closure = (r) => {
    switch (op) {
      case 'getinfo': return () => r.C_GetInfo(info) + infoB[0];
      case 'random': return () => r.C_GenerateRandom(session, rand, 32) + randB[0];
      case 'digest': return () => ((lenU32[0] = 32), r.C_DigestInit(session, sha) + r.C_Digest(session, data, 64, out, len) + outB[0]);
    }
    throw new Error(`unknown case ${which}`);
  };
  if (side === 'rawshared') {
    // A second closure from the same literal over other function objects, called first: the two
    // share V8's feedback, so the measured one's calls are megamorphic (the bridge bench's raw
    // closures over two modules were, before each got its own copy).
    const other = closure(bareTable());
    for (let i = 0; i < 1_000; i++) other();
    return closure(m.raw);
  }
  return closure(side === 'raw' ? m.raw : side === 'rawcopy' ? pick(m.raw) : bareTable());
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
  if (/^(fragile|nop|nss|softhsm)-/.test(which)) return rawCase();
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
if (op.native) {
  // A C loop: one call runs n operations (the warm-up the same in both runs).
  sink += op.native(20_000) + op.native(count);
} else if (process.env.CALLGRIND_LOOP === 'jit') {
  const loop = new Function('op', 'return function (n) { let s = 0; for (let i = 0; i < n; i++) s += op() | 0; return s; }')(op);
  for (let i = 0; i < 20; i++) sink += loop(1_000); // warm-up, the same in both runs
  for (let i = 0; i < count / 1_000; i++) sink += loop(1_000);
} else {
  for (let i = 0; i < 20_000; i++) sink += op(); // warm-up, the same in both runs
  for (let i = 0; i < count; i++) sink += op();
}
for (const c of cleanups.reverse()) c();
if (sink === 0.5) console.log(sink);
