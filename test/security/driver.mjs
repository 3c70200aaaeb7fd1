// Runs inside a private mount namespace with its own tmpfs on /dev/shm (see
// security-anchor.test.ts), as root: starts victims, lets uid 65534 plant or probe, and prints
// one JSON report. Usage: node driver.mjs <dist/lib/index.js> <dir with victim/attacker/fixture>
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const [indexJs, dir] = process.argv.slice(2);
const fixture = join(dir, 'fragile-module.so');
const identity = (() => {
  const st = statSync(fixture);
  return `${st.dev}:${st.ino}`;
})();
const AS_NOBODY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'];

/** A victim process and a way to await its next JSON line (undefined after `ms`). */
function startVictim(prefix = [], hold = false) {
  const argv = [...prefix, process.execPath, join(dir, 'victim.mjs'), indexJs, fixture, ...(hold ? ['hold'] : [])];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, FRAGILE_SLEEP_US: '0' } });
  const it = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = (ms = 10000) => Promise.race([
    it.next().then((r) => (r.done ? { eof: true } : JSON.parse(r.value))),
    new Promise((resolve) => setTimeout(() => resolve({ timeout: ms }), ms).unref()),
  ]);
  return { child, next, say: () => child.stdin.write('go\n') };
}

function asNobody(...args) {
  const r = spawnSync(AS_NOBODY[0], [...AS_NOBODY.slice(1), process.execPath, join(dir, 'attacker.mjs'), ...args], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) return { failed: r.status, stderr: r.stderr };
  return JSON.parse(r.stdout);
}

function emptyShm() {
  for (const name of readdirSync('/dev/shm')) rmSync(join('/dev/shm', name), { force: true });
}

const report = { planted: {}, probe: undefined, namespaces: undefined };

for (const form of ['locked-mutex', 'fake-ready', 'fake-holders', 'truncated', 'symlink', 'wrong-owner']) {
  const v = startVictim();
  const who = await v.next();
  const plant = asNobody('plant', form, String(who.pid), who.start, identity);
  const t0 = Date.now();
  v.say();
  const result = await v.next();
  report.planted[form] = { plant, result, ms: Date.now() - t0 };
  v.child.kill('SIGKILL');
  emptyShm();
}

{
  const v = startVictim([], true);
  const who = await v.next();
  v.say();
  const holding = await v.next();
  const probe = asNobody('probe', String(who.pid));
  v.say();
  report.probe = { holding, probe, result: await v.next() };
  v.child.kill('SIGKILL');
}

{
  // Two processes that are both pid 1 in their own PID namespaces, sharing this /dev/shm, plus
  // a region left in /dev/shm by a (live) process of yet another namespace: nobody may touch it.
  const other = '/dev/shm/p11kit-wasm-1-1';
  writeFileSync(other, 'live region of another container');
  const ns = ['unshare', '-p', '-f', '--mount-proc'];
  const a = startVictim(ns, true), b = startVictim(ns, true);
  const whoA = await a.next(), whoB = await b.next();
  a.say();
  b.say();
  const holdA = await a.next(), holdB = await b.next();
  a.say();
  b.say();
  const endA = await a.next(), endB = await b.next();
  report.namespaces = { whoA, whoB, holdA, holdB, endA, endB, otherKept: readdirSync('/dev/shm').includes('p11kit-wasm-1-1') };
  a.child.kill('SIGKILL');
  b.child.kill('SIGKILL');
  emptyShm();
}

console.log(JSON.stringify(report));
process.exit(0);
