// One of many plain worker threads: acquire → calls → release, `cycles` times, through the
// built library (dist/lib), counting every result in shared counters.
import { workerData } from 'node:worker_threads';
import { openRawModule } from './raw-module.mjs';

const { path, reserved, cycles, counters, barrier, libDir, slotWanted, holdMs } = workerData;
const { ModuleLifecycle } = await import(`${libDir}/lifecycle/manager.js`);
const C = { cycles: 0, ok: 1, errors: 2, emptySlots: 3, sessions: 4 };
const count = (k, n = 1) => Atomics.add(counters, C[k], n);

const mod = openRawModule(path, reserved);
const lc = ModuleLifecycle.of(mod);

// Everyone starts the PKCS#11 phase at the same moment.
Atomics.add(barrier, 0, 1);
Atomics.notify(barrier, 0);
while (Atomics.load(barrier, 1) === 0) Atomics.wait(barrier, 1, 0, 50);

// The "hold" variant: each worker holds the module for holdMs, calling all the while, then
// releases — the pattern in which another worker's C_Finalize used to break everyone else.
if (holdMs) {
  const owner = lc.acquire();
  const until = Date.now() + holdMs;
  while (Date.now() < until) {
    const slots = owner.call(() => mod.slotList(), { idempotent: true });
    if (slots.rv !== 0) count('errors');
    else if (slots.slots.length === 0) count('emptySlots');
    else count('ok');
  }
  // Staggered releases: the first finalizers-to-be leave while others still work.
  owner.release();
  count('cycles', cycles);
}

for (let i = 0; i < (holdMs ? 0 : cycles); i++) {
  const owner = lc.acquire();
  try {
    const info = owner.call(() => mod.getInfo(), { idempotent: true });
    const slots = owner.call(() => mod.slotList(), { idempotent: true });
    if (info !== 0 || slots.rv !== 0) count('errors');
    else if (slots.slots.length === 0) count('emptySlots');
    else {
      count('ok');
      if (slotWanted !== undefined && i % 4 === 0) {
        const slot = slots.slots.includes(slotWanted) ? slotWanted : slots.slots[0];
        const s = owner.call(() => mod.openSession(slot));
        if (s.rv === 0) {
          owner.addSession(s.handle);
          if (owner.call(() => mod.generateRandom(s.handle, 16)) !== 0) count('errors');
          count('sessions');
        } else count('errors');
      }
    }
  } catch {
    count('errors');
  } finally {
    owner.release(); // closes the sessions this owner opened
  }
  count('cycles');
}
