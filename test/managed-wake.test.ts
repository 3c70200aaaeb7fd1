// The waiter child of an isolated slot-event watch (managed/wake-process.ts) as its parent
// sees it: the real child on a real module that cannot block, and stand-in children that
// misbehave (what a module crashing or scribbling inside the child could make of its output).
// Whatever the child writes, the parent reads bounded, known lines only, reports one failure,
// and leaves no process behind.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModule, type ManagedModule } from '../ts/index.js';
import { WakeProcess, type WakeFailure } from '../ts/managed/wake-process.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';
import { childExists, until } from './devices/wake-children.js';
import { join } from 'node:path';

let hsm: SoftHsm;
let m: ManagedModule;
beforeAll(() => {
  hsm = createSoftHsm();
  m = openModule(SOFTHSM_MODULE);
});
afterAll(() => {
  m?.release();
  hsm?.cleanup();
});

interface Seen {
  ready: number;
  wakes: number;
  failures: WakeFailure[];
}

/** A watch whose child is `node -e script` (fd 3 is its report pipe), or the real child. */
function watch(script?: string): { w: WakeProcess; seen: Seen } {
  const seen: Seen = { ready: 0, wakes: 0, failures: [] };
  const w = new WakeProcess(
    m,
    { ready: () => seen.ready++, wake: () => seen.wakes++, failed: (f) => seen.failures.push(f) },
    script === undefined ? {} : { argv: [process.execPath, '-e', script] },
  );
  return { w, seen };
}

/** The child writes `text` to its report pipe, then idles until killed. */
const writes = (text: string) => `require('fs').writeSync(3, ${JSON.stringify(text)}); setInterval(() => {}, 1000);`;

async function failureOf(script?: string): Promise<WakeFailure> {
  const { w, seen } = watch(script);
  const pid = w.pid!;
  try {
    await until('the watch to fail', () => seen.failures.length > 0, 30_000);
    await until('the child to be reaped', () => !childExists(pid), 30_000);
    expect(seen.failures).toHaveLength(1);
    return seen.failures[0];
  } finally {
    await w.stop();
  }
}

describe('the waiter child, seen from its parent', { timeout: 120_000 }, () => {
  it('the real child on SoftHSM2 (no blocking waits): "unsupported", then it is gone', async () => {
    const f = await failureOf();
    expect(f).toMatchObject({ kind: 'unsupported' });
  });

  it('ready, then a burst of wake-ups: one ready, wake-ups coalesced, nothing failed; stop() reaps it', async () => {
    const { w, seen } = watch(writes('ready\n' + 'event\n'.repeat(200)));
    await until('a wake-up', () => seen.wakes > 0, 30_000);
    expect(seen.ready).toBe(1);
    expect(w.ready).toBe(true);
    expect(seen.wakes).toBeLessThan(200);
    const pid = w.pid!;
    await w.stop();
    expect(childExists(pid)).toBe(false);
    expect(w.ready).toBe(false);
    expect(seen.failures).toEqual([]);
  });

  it('an unknown line ends the watch as a protocol failure, quoting it cleaned', async () => {
    expect(await failureOf(writes('ready\nhello\x1b[2J\n'))).toMatchObject({ kind: 'protocol', message: expect.stringContaining("'hello?[2J'") });
  });

  it('an endless line ends the watch at the bound, not when memory runs out', async () => {
    expect(await failureOf(writes('x'.repeat(100_000)))).toMatchObject({ kind: 'protocol', message: expect.stringContaining('without a line end') });
  });

  it('a flood of wake-ups (more than a card reader can make) ends the watch', async () => {
    const flood = `const fs = require('fs'); const b = 'event\\n'.repeat(500); for (let i = 0; i < 10; i++) fs.writeSync(3, b); setInterval(() => {}, 1000);`;
    expect(await failureOf(flood)).toMatchObject({ kind: 'protocol', message: expect.stringContaining('wake-ups in a second') });
  });

  it("the child's failed call, and its death, are reported with what happened", async () => {
    expect(await failureOf(writes('ready\nerror 48\n'))).toMatchObject({ kind: 'error', rv: 0x30, message: expect.stringContaining('CK_RV 0x30') });
    expect(await failureOf('process.exit(7)')).toMatchObject({ kind: 'exit', message: expect.stringContaining('exit code 7') });
  });
});

// A worker thread that ends without stopping its watch (a proxy or service never released):
// the child was spawned by the worker's event loop, which is gone, so nothing else would wait
// for it and it would stay a zombie of this process until the process exits.
const IN_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { openModule } = await import(workerData.index);
  const { WakeProcess } = await import(workerData.wake);
  const m = openModule(workerData.module);
  const w = new WakeProcess(m, {
    ready() {
      parentPort.postMessage(w.pid);
      if (workerData.end === 'exit') process.exit(0);
      if (workerData.end === 'stopped') { void w.stop(); process.exit(0); }
      w.ref(false); // 'natural': nothing keeps the worker's loop alive, so its script just ends
    },
    wake() {},
    failed(f) { parentPort.postMessage(f.message); },
  }, { argv: [process.execPath, '-e', workerData.child] });
})();
`;

/** Stand-ins: one that ignores its stdin's end (killed by us), one that ends itself on it, as the real child does. */
const STAYS = writes('ready\n');
const LEAVES = `process.stdin.on('end', () => process.kill(process.pid, 'SIGKILL')); process.stdin.resume(); ${writes('ready\n')}`;

describe('a worker thread that ends with its watch still running', { timeout: 120_000 }, () => {
  it.each([
    ['its script runs out', 'natural', STAYS],
    ['its script runs out (the child ends itself on stdin\'s end)', 'natural', LEAVES],
    ['process.exit()', 'exit', STAYS],
    ['process.exit() just after stop()', 'stopped', LEAVES],
  ])('%s: the waiter child is killed and reaped, not left a zombie', async (_, end, child) => {
    const worker = new Worker(IN_WORKER, {
      eval: true,
      workerData: { index: join(process.cwd(), 'dist/lib/index.js'), wake: join(process.cwd(), 'dist/lib/managed/wake-process.js'), module: SOFTHSM_MODULE, end, child },
    });
    const said: unknown[] = [];
    worker.on('message', (v) => said.push(v));
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    await until('the worker to end', () => said.length > 0, 60_000);
    await exited;
    const pid = said[0];
    expect(typeof pid, String(pid)).toBe('number');
    await until(`the waiter child ${pid} to be reaped`, () => !childExists(pid as number), 10_000);
  });
});
