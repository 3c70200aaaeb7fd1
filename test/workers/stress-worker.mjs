// One of many plain worker threads using the built library (dist/lib) the way an application
// does: openModule → calls (and sometimes a session) → release, `cycles` times; or, in the
// "hold" variant, one owner calling for holdMs. Every result is counted in shared counters.
import { workerData } from 'node:worker_threads';

const { path, reserved, cycles, counters, barrier, libDir, withSessions, holdMs, asyncCalls, seed = 1 } = workerData;
let rand = seed;
const random = () => ((rand = (rand * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const { openModule, loadModule } = await import(`${libDir}/index.js`);
// The library is loaded before the start line: koffi aborts the whole process if a worker is
// terminated while it is building the module's function objects (see README, limits).
loadModule(path);
const C = { cycles: 0, ok: 1, errors: 2, emptySlots: 3, sessions: 4 };
const count = (k, n = 1) => Atomics.add(counters, C[k], n);

// Everyone starts the PKCS#11 phase at the same moment.
Atomics.add(barrier, 0, 1);
Atomics.notify(barrier, 0);
while (Atomics.load(barrier, 1) === 0) Atomics.wait(barrier, 1, 0, 50);

function work(m, i) {
  m.getInfo();
  const slots = m.getSlotList(true);
  if (slots.length === 0) return count('emptySlots');
  count('ok');
  if (withSessions && i % 4 === 0) {
    const s = m.openSession(slots[0]);
    if (s.generateRandom(16).length !== 16) count('errors');
    count('sessions'); // left open on purpose: the owner's release closes it
  }
}

/**
 * The async variant: every other cycle's calls are async, and half of those cycles release the
 * owner while its calls are still in flight (they must complete; the release waits for them).
 */
async function workAsync(m, i) {
  const info = m.async.getInfo();
  const slots = m.async.getSlotList(true);
  const early = random() < 0.5;
  if (early) m.release();
  const [, list] = await Promise.all([info, slots]);
  if (list.length === 0) return count('emptySlots');
  count('ok');
  if (!early && withSessions && i % 4 === 1) {
    const s = await m.async.openSession(list[0]);
    const r = s.async.generateRandom(16);
    m.release(); // with the session's call in flight
    if ((await r).length !== 16) count('errors');
    count('sessions');
  }
}

if (asyncCalls) {
  for (let i = 0; i < cycles; i++) {
    let m;
    try {
      m = openModule(path, { initReserved: reserved });
      if (i % 2) await workAsync(m, i);
      else work(m, i);
    } catch (e) {
      if (process.env.STRESS_DEBUG) console.error(String(e?.stack ?? e));
      count('errors');
    } finally {
      m?.release();
    }
    count('cycles');
  }
} else if (holdMs) {
  const m = openModule(path, { initReserved: reserved });
  const until = Date.now() + holdMs;
  for (let i = 0; Date.now() < until; i++) {
    try {
      work(m, i);
    } catch {
      count('errors');
    }
  }
  m.release();
  count('cycles', cycles);
} else {
  for (let i = 0; i < cycles; i++) {
    let m;
    try {
      m = openModule(path, { initReserved: reserved });
      work(m, i);
    } catch (e) {
      if (process.env.STRESS_DEBUG) console.error(String(e?.stack ?? e));
      count('errors');
    } finally {
      m?.release();
    }
    count('cycles');
  }
}
