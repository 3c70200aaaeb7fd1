// The process-wide anchor under attack by another local user (uid 65534), in a private mount
// namespace with its own /dev/shm so that nothing else on the machine is disturbed.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const here = (p: string) => new URL(p, import.meta.url).pathname;
const INDEX = here('../dist/lib/index.js');

/** A world-readable directory with what uid 65534 (and the victims) run: the checkout may be private. */
function publicCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-wasm-security-'));
  chmodSync(dir, 0o755);
  for (const [from, to] of [['security/victim.mjs', 'victim.mjs'], ['security/attacker.mjs', 'attacker.mjs'], ['../dist/native/fixtures/fragile-module.so', 'fragile-module.so']]) {
    copyFileSync(here(from!), join(dir, to!));
    chmodSync(join(dir, to!), 0o755);
  }
  return dir;
}

describe('security: the lifecycle anchor against another local user', () => {
  const dir = publicCopy();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$0" "$@"', process.execPath, here('security/driver.mjs'), INDEX, dir],
  { encoding: 'utf8', timeout: 180_000 });
  const report = JSON.parse(run.stdout || '{}');

  it('runs (as root, with unshare and setpriv)', () => {
    expect(run.stderr).not.toMatch(/Error/);
    expect(report.planted).toBeDefined();
  });

  for (const form of ['locked-mutex', 'fake-ready', 'fake-holders', 'truncated', 'symlink', 'wrong-owner']) {
    it(`a planted region (${form}) is never used: one real C_Initialize and one C_Finalize, within 5 s`, () => {
      const { plant, result, ms } = report.planted[form];
      expect(plant.planted).toBeGreaterThan(0); // the attacker did get its files in
      expect(result).toEqual({ slots: 1, during: { initialized: 1, finalized: 0 }, after: { initialized: 1, finalized: 1 } });
      expect(ms).toBeLessThan(5000);
    });
  }

  it('another user can neither list, open nor see the mapping of our region', () => {
    const { holding, probe, result } = report.probe;
    expect(holding).toMatchObject({ holding: true, initialized: 1 });
    expect(probe.fds).toEqual({ ok: false, code: 'EACCES' });
    expect(probe.opened).toEqual([]);
    expect(probe.maps.ok).toBe(false);
    expect(probe.shm).toEqual({ ok: true, value: [] }); // nothing of ours in /dev/shm
    expect(result.after).toEqual({ initialized: 1, finalized: 1 });
  });

  it('two pid-1 processes sharing /dev/shm each keep their own state; a region of another namespace survives', () => {
    const ns = report.namespaces;
    expect([ns.whoA.pid, ns.whoB.pid]).toEqual([1, 1]);
    expect(ns.holdA).toMatchObject({ holding: true, initialized: 1, finalized: 0 });
    expect(ns.holdB).toMatchObject({ holding: true, initialized: 1, finalized: 0 });
    expect(ns.endA.after).toEqual({ initialized: 1, finalized: 1 });
    expect(ns.endB.after).toEqual({ initialized: 1, finalized: 1 });
    expect(ns.otherKept).toBe(true);
  });
});

describe('security: the lifecycle anchor inside its own process', () => {
  const FRAGILE = here('../dist/native/fixtures/fragile-module.so');
  /** Runs `body` in a fresh node process (koffi, libc and the fixture at hand) and returns its JSON line. */
  function inFreshProcess(body: string) {
    const script = `
      import koffi from 'koffi';
      import fs from 'node:fs';
      const libc = koffi.load('libc.so.6');
      const stats = (lib) => { const out = new Array(8).fill(0); lib.func('void fragile_stats(_Out_ unsigned long *out)')(out); return { initialized: Number(out[0]), finalized: Number(out[1]) }; };
      ${body}`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here('..'), encoding: 'utf8', timeout: 120_000, env: { ...process.env, FRAGILE_SLEEP_US: '0' } });
    if (!r.stdout) return { status: r.status, signal: r.signal, error: r.error?.message, stderr: r.stderr };
    return JSON.parse(r.stdout);
  }

  it('a descriptor that only looks like our region (same name, wrong size, unsealed) is ignored', () => {
    const out = inFreshProcess(`
      const memfd = libc.func('int memfd_create(const char *name, unsigned int flags)');
      const decoy = memfd('p11kit-wasm-anchor-' + process.pid, 1);
      fs.ftruncateSync(decoy, 4096);
      fs.fchmodSync(decoy, 0o600);
      const { openModule } = await import(${JSON.stringify(INDEX)});
      const m = openModule(${JSON.stringify(FRAGILE)});
      m.getSlotList(false);
      m.release();
      console.log(JSON.stringify(stats(koffi.load(${JSON.stringify(FRAGILE)}))));`);
    expect(out).toEqual({ initialized: 1, finalized: 1 });
  });

  it('a creation lock held forever is an error naming the problem after 5 s, not a hang', () => {
    const out = inFreshProcess(`
      const flock = libc.func('int flock(int fd, int op)');
      const held = fs.openSync('/proc/self/environ', 'r');
      if (flock(held, 2) !== 0) throw new Error('flock');
      const { openModule } = await import(${JSON.stringify(INDEX)});
      const t0 = Date.now();
      try {
        openModule(${JSON.stringify(FRAGILE)});
        console.log(JSON.stringify({ opened: true }));
      } catch (e) {
        console.log(JSON.stringify({ message: e.message, ms: Date.now() - t0, ...stats(koffi.load(${JSON.stringify(FRAGILE)})) }));
      }`);
    // One assertion over the whole answer, so a failure shows all of it (a CI run once saw another one).
    expect(out).toMatchObject({
      message: expect.stringMatching(/lifecycle region: another isolate of this process held its creation lock for more than 5 s/),
      ms: expect.any(Number),
      initialized: 0,
      finalized: 0,
    });
    expect(out.ms).toBeGreaterThanOrEqual(4900);
    expect(out.ms).toBeLessThan(30_000);
  });
});
