// One run of test/workers/stress-main.mjs (N plain workers cycling openModule → calls → release
// on one module) in its own process, so a crash shows as a signal and a hang as a timeout.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

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
