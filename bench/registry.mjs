// Load a generated registry of 1,000 module files through our loadRegistry (the built
// dist/lib: wasm core + koffi probe) and through the native libp11-kit 0.24.1
// (bench/native/registry-bench.c), interleaved round by round in one run. Both workloads enable
// every module for the program (700 names from 1,000 files), and both sides must list the same
// non-zero number of modules:
//   config:  the modules name 10 copies of the fixture library, which each side holds open for
//            the whole run: loading one is a reference-counted dlopen (or a stat), and both sides
//            keep one module per library (10), so the time is reading, lexing, merging and
//            ordering the files;
//   loading: every module names its own copy of the fixture module, so libp11-kit dlopens 700
//            libraries and our probe (koffi) does too.
// Each native process's first load is a warm-up and not counted, and so is our first load after
// each native process (it has just evicted our caches); which of our two runs comes first
// alternates. Prints medians per load and the speed ratio native/ours (target: ours ≥ 1.0×), and
// beside them the CPU time per load (user + system, every thread of the process: ours counts V8's
// helper threads too), which a shared machine's load changes far less than wall time.
import { spawnSync } from 'node:child_process';
import koffi from 'koffi';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistry } from '../dist/lib/index.js';
import { report } from './report.mjs';
import { FILES, PROGRAM, SHARED_LIBRARIES, moduleLibraries, writeTree } from './lib/registry-tree.mjs';

const NATIVE = new URL('../dist/native/bench/registry-bench', import.meta.url).pathname;
const DL_PROCESS = new URL('../dist/native/bench/registry-dl', import.meta.url).pathname;
const DL_LOOPS = new URL('../dist/native/bench/libregistry-loops.so', import.meta.url).pathname;
const ROUNDS = 5;

// ---- the two sides ------------------------------------------------------------------------

function nativeRound(loc, loads) {
  const args = [loc.systemConfig, loc.userConfig, loc.packageModules, loc.systemModules, loc.userModules, PROGRAM, String(loads + 1), ...loc.libraries];
  const r = spawnSync(NATIVE, args, { encoding: 'utf8', env: { PATH: process.env.PATH, P11_KIT_NO_USER_CONFIG: '1' } });
  if (r.status !== 0) throw new Error(`registry-bench failed (${r.status}): ${r.stderr} — run 'make native'`);
  const out = JSON.parse(r.stdout);
  return { ns: out.ns_per_load.slice(1), cpu: out.cpu_ns_per_load.slice(1), modules: out.modules };
}

// The loading workload's control: the dynamic loading part of p11-kit's load, in C
// (bench/native/loops/registry-loops.c), run in a C process and in this process.
let dlInProcess;
function dlControlRound(libs, loads) {
  const r = spawnSync(DL_PROCESS, [String(loads + 1), ...libs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`registry-dl failed (${r.status}): ${r.stderr} — run 'make native'`);
  dlInProcess ??= koffi.load(DL_LOOPS).func('double registry_dl_round(int n, const char **paths)');
  const here = [];
  const hereCpu = [];
  for (let i = -1; i < loads; i++) {
    const c0 = process.cpuUsage();
    const ns = dlInProcess(libs.length, libs);
    const c1 = process.cpuUsage(c0);
    if (ns < 0) throw new Error('registry_dl_round: a library did not load');
    if (i >= 0) {
      here.push(ns);
      hereCpu.push((c1.user + c1.system) * 1000);
    }
  }
  const out = JSON.parse(r.stdout);
  return { cProcess: out.ns_per_round.slice(1), cProcessCpu: out.cpu_ns_per_round.slice(1), here, hereCpu };
}

function oursRound(loc, loads, probe) {
  const ns = [];
  const cpu = [];
  let modules = -1;
  // As on the native side, the first load of a round is a warm-up: the other side's process
  // has just run and evicted our caches.
  for (let i = -1; i < loads; i++) {
    const { libraries, ...where } = loc;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const reg = loadRegistry({ ...where, program: PROGRAM, probe, env: { P11_KIT_NO_USER_CONFIG: '1' } });
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    if (i >= 0) {
      ns.push(Number(t1 - t0));
      cpu.push((c1.user + c1.system) * 1000);
    }
    modules = reg.modules.length;
  }
  return { ns, cpu, modules };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (ns) => `${(ns / 1e6).toFixed(2).padStart(8)} ms`;

// ---- run ----------------------------------------------------------------------------------

const base = mkdtempSync(join(tmpdir(), 'p11kit-regbench-'));
try {
  const workloads = [
    { name: `config (${SHARED_LIBRARIES} libraries held open)`, loc: writeTree(join(base, 'config'), { sharedLibrary: true }), loads: 10, probes: [true, false] },
    { name: 'loading (700 libraries)', loc: writeTree(join(base, 'loading'), { sharedLibrary: false }), loads: 3, probes: [true, false], control: true },
  ];
  // The config workload's libraries stay loaded in this process too (koffi keeps them while referenced).
  const held = workloads[0].loc.libraries.map((l) => koffi.load(l));
  console.log(`registry: ${FILES} module files (700 names), ${ROUNDS} interleaved rounds; median time per full load`);
  let worst = Infinity;
  const rows = [];
  for (const w of workloads) {
    const samples = { native: [], ...Object.fromEntries(w.probes.map((p) => [`ours-probe-${p}`, []])) };
    const cpu = { native: [], ...Object.fromEntries(w.probes.map((p) => [`ours-probe-${p}`, []])) };
    const control = { cProcess: [], cProcessCpu: [], here: [], hereCpu: [] };
    let expected;
    for (const p of w.probes) oursRound(w.loc, 2, p); // warm up the JIT and the wasm core
    for (let r = 0; r < ROUNDS; r++) {
      const n = nativeRound(w.loc, w.loads);
      samples.native.push(...n.ns);
      cpu.native.push(...n.cpu);
      expected = n.modules;
      // Which of our two runs follows the native process alternates round by round.
      for (const p of r % 2 ? [...w.probes].reverse() : w.probes) {
        const o = oursRound(w.loc, w.loads, p);
        const likeForLike = p || !w.probes.includes(true);
        if (likeForLike && (o.modules !== n.modules || n.modules < SHARED_LIBRARIES)) throw new Error(`${w.name}: libp11-kit loaded ${n.modules} modules, ours ${o.modules}`);
        samples[`ours-probe-${p}`].push(...o.ns);
        cpu[`ours-probe-${p}`].push(...o.cpu);
      }
      if (w.control) {
        const c = dlControlRound(moduleLibraries(w.loc), w.loads);
        for (const k of Object.keys(control)) control[k].push(...c[k]);
      }
    }
    const native = median(samples.native);
    const nativeCpu = median(cpu.native);
    console.log(`\n  ${w.name}: libp11-kit lists ${expected} modules`);
    console.log(`    libp11-kit (p11_kit_modules_load + release) ${ms(native)}                       cpu ${ms(nativeCpu)}`);
    for (const p of w.probes) {
      const ours = median(samples[`ours-probe-${p}`]);
      const ratio = native / ours;
      const cpuRatio = nativeCpu / median(cpu[`ours-probe-${p}`]);
      // The probe-off run does less than libp11-kit when libraries are loaded: informative only.
      if (p || !w.probes.includes(true)) worst = Math.min(worst, ratio);
      console.log(`    ours, loadRegistry probe ${p ? 'on ' : 'off'}            ${ms(ours)}   speed ${ratio.toFixed(2)}× native   cpu ${ms(median(cpu[`ours-probe-${p}`]))}   ${cpuRatio.toFixed(2)}×`);
      const likeForLike = p || !w.probes.includes(true);
      const cpuNote = `CPU time ${cpuRatio.toFixed(2)}×`;
      rows.push({ bench: 'registry', case: `${w.name}, probe ${p ? 'on' : 'off'}`, ours: ours / 1e6, reference: native / 1e6, referenceName: 'libp11-kit', unit: 'ms', ...(likeForLike ? { target: 1, detail: cpuNote } : { detail: `no dlopen: less work than libp11-kit; ${cpuNote}` }) });
    }
    if (w.control) {
      const [c, h, cc, hc] = [control.cProcess, control.here, control.cProcessCpu, control.hereCpu].map(median);
      console.log(`    control, the same C (dlopen, C_GetFunctionList, dlclose × 700):`);
      console.log(`      in a C process                            ${ms(c)}                       cpu ${ms(cc)}`);
      console.log(`      in this process                           ${ms(h)}   speed ${(c / h).toFixed(2)}×        cpu ${ms(hc)}   ${(cc / hc).toFixed(2)}×`);
    }
  }
  console.log(`\n  target: ours ≥ 1.0× native speed — ${worst >= 1 ? 'met' : 'NOT met'} (worst like-for-like ${worst.toFixed(2)}×)`);
  report(rows);
  for (const h of held) h.unload();
} finally {
  rmSync(base, { recursive: true, force: true });
}
