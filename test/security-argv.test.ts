// --pin-value leaves /proc/PID/cmdline as early as Node allows: the p11kit executable
// (dist/lib/cli-entry.js) overwrites its argv before loading anything, so the PIN is exposed
// for hardly longer than in a bare script that does nothing but overwrite its argv first.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ENTRY = join(process.cwd(), 'dist/lib/cli-entry.js');
const PIN = 'SECRET-PIN-4271';
const work = mkdtempSync(join(tmpdir(), 'p11kit-security-argv-'));
const BARE = join(work, 'bare.mjs');
writeFileSync(BARE, "process.title = 'p11kit';\nsetTimeout(() => {}, 3000);\n");
// The CLI must still be running when the poller looks (a loaded machine may not look for a while):
// its one module spends 3 s in C_Initialize, well after the argv was overwritten.
writeFileSync(join(work, 'slow.module'), `module: ${join(process.cwd(), 'dist/native/fixtures/fragile-module.so')}\n`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Milliseconds from spawn until the PIN is gone from the child's cmdline while the child still runs. */
function exposure(argv: string[]): { ms: number; wiped: boolean } {
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, { stdio: 'ignore', env: { ...process.env, FRAGILE_SLEEP_US: '3000000' } });
  try {
    for (;;) {
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'latin1');
      } catch {
        return { ms: performance.now() - t0, wiped: false }; // gone before we saw it wiped
      }
      if (!cmdline) return { ms: performance.now() - t0, wiped: false }; // exited (a zombie's cmdline is empty)
      if (!cmdline.includes(PIN)) return { ms: performance.now() - t0, wiped: cmdline.startsWith('p11kit') };
      if (performance.now() - t0 > 20_000) throw new Error('the PIN stayed in cmdline for 20 s');
    }
  } finally {
    child.kill('SIGKILL');
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('security: the PIN on the command line', () => {
  it('leaves /proc/PID/cmdline within 1.5x of what a bare Node script needs (both measured here, interleaved)', () => {
    const ours: number[] = [], bare: number[] = [];
    const registry = ['--system-config', '/dev/null', '--system-modules', work, '--package-modules', work, '--user-config', '/dev/null', '--user-modules', work];
    for (let i = 0; i < 5; i++) {
      const o = exposure([ENTRY, 'list-objects', 'pkcs11:token=none', '--pin-value', PIN, ...registry]);
      const b = exposure([BARE, '--pin-value', PIN]);
      expect(o.wiped, 'the CLI overwrote its argv while running').toBe(true);
      expect(b.wiped).toBe(true);
      ours.push(o.ms);
      bare.push(b.ms);
    }
    // Generous: a loaded 2-core machine varies a lot between runs.
    expect(median(ours), `ours ${ours.map(Math.round)} ms, bare ${bare.map(Math.round)} ms`).toBeLessThan(1.5 * median(bare) + 100);
  });
});
