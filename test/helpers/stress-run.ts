// One run of test/workers/stress-main.mjs (N plain workers cycling openModule → calls → release
// on one module) in its own process, so a crash shows as a signal and a hang as a timeout.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

export interface StressReport {
  counters: { cycles: number; ok: number; errors: number; emptySlots: number; sessions: number };
  terminated: number;
  workerErrors: number;
  leftInitialized: boolean | string;
  state: { phase: string; holders: number };
  callCounts: { initialize: number; finalize: number };
  /** What the fragile fixture saw from inside the module. */
  fixture?: { initialized: number; finalized: number; overlaps: number; notInitialized: number };
}

export interface StressRun {
  exit: number | null;
  signal: NodeJS.Signals | null;
  hung: boolean;
  report?: StressReport;
  stderr: string;
}

export function runStress(opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env, limitMs = 150_000): Promise<StressRun> {
  const root = process.cwd();
  const args = JSON.stringify({ workers: 16, cycles: 10, libDir: join(root, 'dist/lib'), ...opts });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'test/workers/stress-main.mjs'), args], { env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-8000)));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('exit', (exit, signal) => {
      clearTimeout(timer);
      let report: StressReport | undefined;
      try {
        report = JSON.parse(out.trim().split('\n').pop() ?? '') as StressReport;
      } catch {
        report = undefined;
      }
      resolve({ exit, signal, hung, report, stderr: err });
    });
  });
}

/**
 * A run that ended cleanly: no hang, crash or error, and everything reclaimed — nobody holds the
 * module, and the module itself says it was left finalized. `terminated`: workers were killed.
 */
export function expectCleanRun(r: StressRun, { terminated = false, cycles = 200 }: { terminated?: boolean; cycles?: number } = {}): void {
  expect(r.hung, 'hung').toBe(false);
  expect(r.signal, `crashed: ${r.stderr}`).toBeNull();
  expect(r.exit, r.stderr).toBe(0);
  const rep = r.report!;
  expect(rep.workerErrors).toBe(0);
  expect(rep.counters.errors).toBe(0);
  expect(rep.counters.emptySlots, 'wrong (empty) slot lists').toBe(0);
  if (!terminated) expect(rep.counters.cycles).toBe(16 * cycles);
  expect(rep.counters.ok).toBeGreaterThan(0);
  expect(rep.state).toMatchObject({ phase: 'uninitialized', holders: 0 });
  expect(rep.leftInitialized, 'module left initialized').toBe(false);
  expect(rep.callCounts.initialize).toBeGreaterThan(0);
  // A worker killed right after its C_Initialize returned cannot count it; the fixture can.
  if (!terminated) expect(rep.callCounts.finalize).toBe(rep.callCounts.initialize);
  if (rep.fixture) {
    expect(rep.fixture.overlaps, 'overlapping C_Initialize/C_Finalize').toBe(0);
    if (!terminated) expect(rep.fixture.initialized).toBe(rep.callCounts.initialize);
    expect(rep.fixture.finalized).toBe(rep.fixture.initialized);
  }
}
