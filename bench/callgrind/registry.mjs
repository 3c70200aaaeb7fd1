// The registry bench's loads, for instruction and syscall counts (bench/RESULTS-NOTES.md,
// "Registry ≥ 1.0×"): the machine's load changes neither. Writes the bench's tree into DIR once
// (kept for the next run), then
//   node bench/callgrind/registry.mjs config|loading DIR ours N      N loads (probe on) after 2 warm-ups
//   node bench/callgrind/registry.mjs config|loading DIR ours-noprobe N
//   node bench/callgrind/registry.mjs config|loading DIR native N    prints the registry-bench command
//                                                                    line for N counted loads
// Run ours twice (N = 2 and N = 12) under
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node --single-threaded --hash-seed=1 --random-seed=1 bench/callgrind/registry.mjs …
// and divide the difference of the totals by 10; the same with the native command (its first load
// is a warm-up too), or `strace -f -c` either side. Callgrind counts user space only, and most of
// libp11-kit's time is in the kernel (five syscalls per file): to compare the two sides, take the
// CPU time instead (`perf stat -e task-clock`, same difference of two runs).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { loadRegistry } from '../../dist/lib/index.js';
import { PROGRAM, writeTree } from '../lib/registry-tree.mjs';

const NATIVE = new URL('../../dist/native/bench/registry-bench', import.meta.url).pathname;
const [workload, dir, side, count] = [process.argv[2], process.argv[3], process.argv[4], Number(process.argv[5] ?? 2)];
if (!['config', 'loading'].includes(workload) || !dir || !['ours', 'ours-noprobe', 'native'].includes(side)) {
  console.error('usage: registry.mjs config|loading DIR ours|ours-noprobe|native N');
  process.exit(2);
}
const root = join(dir, workload);
const saved = join(root, 'locations.json');
if (!existsSync(saved)) writeFileSync(saved, JSON.stringify(writeTree(root, { sharedLibrary: workload === 'config' })));
const { libraries, ...where } = JSON.parse(readFileSync(saved, 'utf8'));

if (side === 'native') {
  const args = [where.systemConfig, where.userConfig, where.packageModules, where.systemModules, where.userModules, PROGRAM, String(count + 1), ...libraries];
  console.log(['env', '-i', `PATH=${process.env.PATH}`, 'P11_KIT_NO_USER_CONFIG=1', NATIVE, ...args].join(' '));
} else {
  const held = libraries.map((l) => koffi.load(l)); // as the bench does: the config libraries stay loaded
  const probe = side === 'ours';
  const load = () => loadRegistry({ ...where, program: PROGRAM, probe, env: { P11_KIT_NO_USER_CONFIG: '1' } }).modules.length;
  let modules = load() + load();
  for (let i = 0; i < count; i++) modules += load();
  if (modules === 0) throw new Error('no module listed');
  for (const h of held) h.unload();
}
