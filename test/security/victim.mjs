// The process under attack: it prints who it is, waits for "go" (the attacker plants meanwhile),
// then opens the counting fixture through openModule, uses it, releases it and reports the
// fixture's own C_Initialize/C_Finalize counts. With "hold", it waits for a second line before
// releasing (so that others can probe it, or another namespace can run at the same time).
// Usage: node victim.mjs <dist/lib/index.js> <fixture.so> [hold]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const [indexJs, fixture, mode] = process.argv.slice(2);
// This copy lives outside the checkout: koffi comes from beside the library under test.
const koffi = createRequire(indexJs)('koffi');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const stat = readFileSync('/proc/self/stat', 'utf8');
const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
console.log(JSON.stringify({ pid: process.pid, start }));
await lines.next();

const { openModule } = await import(indexJs);
const lib = koffi.load(fixture);
const stats = () => {
  const out = new Array(8).fill(0);
  lib.func('void fragile_stats(_Out_ unsigned long *out)')(out);
  return { initialized: Number(out[0]), finalized: Number(out[1]) };
};
try {
  const m = openModule(fixture);
  const slots = m.getSlotList(false).length;
  if (mode === 'hold') {
    console.log(JSON.stringify({ holding: true, ...stats() }));
    await lines.next();
  }
  const during = stats();
  m.release();
  console.log(JSON.stringify({ slots, during, after: stats() }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e), after: stats() }));
}
process.exit(0);
