// The benchmark roll-up (`make bench`): runs every bench/*.mjs in its own node process, one after
// another (each compares itself with native C, libp11-kit, pkcs11js or the in-thread path inside
// its own run, mostly in interleaved rounds within that one process: bench/lib/sampling.mjs), collects the rows each hands to bench/report.mjs, and writes
//   bench/RESULTS.md   one markdown table, headed by the machine it ran on
//   bench/results.svg  a bar chart of the ratios (log scale) with the target lines
//   README.md          the table, between <!-- bench:start --> and <!-- bench:end -->
// then prints the table. A bench that fails shows as failed; the exit status is non-zero only
// when every bench failed.
//
//   node bench/all.mjs               every bench, all three files rewritten (about 3 minutes)
//   node bench/all.mjs uri proxy     only these benches; table printed, no file written
//   BENCH_QUICK=1 node bench/all.mjs shorter rounds for bridge, rpc and service (about 1 minute)
//   BENCH_TIMEOUT_S=300              per-bench limit (default 300 s); a bench over it is failed
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(BENCH_DIR, '..');
const NOT_BENCHES = new Set(['all.mjs', 'report.mjs']);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300);
/** The quicker settings each bench reads (bridge, lifecycle, proxy, uri, rpc: BENCH_*; service: ROUNDS, SECONDS). */
const QUICK_ENV = { BENCH_ROUNDS: '3', BENCH_SAMPLE_MS: '10', BENCH_MS: '300', BENCH_WARM_MS: '100', ROUNDS: '2', SECONDS: '0.3' };
const START_MARK = '<!-- bench:start -->';
const END_MARK = '<!-- bench:end -->';

// ---- the machine ---------------------------------------------------------------------------

function tryRun(cmd, args, pick = (s) => s.trim()) {
  try {
    return pick(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch {
    return 'unknown';
  }
}

function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? cpus()[0]?.model ?? 'unknown CPU';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || cpus().length;
  return {
    cpu: model,
    cores,
    memGiB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    p11kit: tryRun('pkg-config', ['--modversion', 'p11-kit-1']),
    softhsm: tryRun('softhsm2-util', ['--version']),
    pkcs11js: packageVersion('pkcs11js'),
    koffi: packageVersion('koffi'),
    start: new Date(),
    loadStart: loadavg()[0],
  };
}

// ---- running the benches -------------------------------------------------------------------

/** Runs one bench with stdout shown as it goes; resolves to its rows, or the reason it failed. */
function runBench(file, env) {
  const rowsFile = join(env.ROLLUP_DIR, `${file}.jsonl`);
  return new Promise((resolve) => {
    const started = performance.now();
    // Own process group, so a timeout also ends what the bench started (p11-kit server, workers).
    const child = spawn(process.execPath, [join(BENCH_DIR, file)], {
      cwd: ROOT,
      env: { ...env.vars, BENCH_JSON: rowsFile },
      stdio: ['ignore', 'inherit', 'pipe'],
      detached: true,
    });
    current = child;
    let stderrTail = '';
    child.stderr.on('data', (d) => {
      process.stderr.write(d);
      stderrTail = (stderrTail + d).slice(-2000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, TIMEOUT_S * 1000);
    // Whatever the bench left running would hold its stderr open: its group ends with it.
    child.on('exit', () => killGroup(child, 'SIGKILL'));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      const seconds = (performance.now() - started) / 1000;
      let rows = [];
      let unreadable = null;
      try {
        if (existsSync(rowsFile)) rows = readFileSync(rowsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      } catch (e) {
        unreadable = `its rows are unreadable (${e.message})`;
      }
      const lastLine = reason(stderrTail);
      let failure = unreadable;
      if (timedOut) failure = `over the ${TIMEOUT_S} s limit`;
      else if (code !== 0) failure = `exit ${code ?? signal}${lastLine ? `: ${lastLine.slice(0, 160)}` : ''}`;
      else if (rows.length === 0) failure = 'reported no rows';
      resolve({ bench: file.replace(/\.mjs$/, ''), rows, failure, seconds });
    });
  });
}

/** The line of a failed bench's stderr that says why: its error, not node's stack or version. */
function reason(stderr) {
  const lines = stderr.split('\n').filter((l) => /\S/.test(l) && !/^\s+at /.test(l) && !/^Node\.js v/.test(l));
  return (lines.findLast((l) => /\b\w*Error\b/.test(l)) ?? lines.pop() ?? '').trim();
}

let current = null;
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current) killGroup(current, 'SIGKILL');
    process.exit(130);
  });
}

// ---- formatting ----------------------------------------------------------------------------

const TIME_UNITS = ['ns', 'µs', 'ms', 's'];
const sig3 = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** A figure in its unit, scaled up (ns → µs …, ops/s → k/M) so it reads in at most 4 digits. */
function figure(v, unit) {
  if (unit === 'ops/s') return v >= 1e6 ? `${sig3(v / 1e6)} M/s` : v >= 1e4 ? `${sig3(v / 1e3)} k/s` : `${sig3(v)}/s`;
  let i = TIME_UNITS.indexOf(unit);
  if (i < 0) return `${sig3(v)} ${unit}`;
  while (v >= 1e4 && i < TIME_UNITS.length - 1) (v /= 1e3), i++;
  return `${sig3(v)} ${TIME_UNITS[i]}`;
}

const ratioText = (r) => `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
const targetText = (row) => (row.target === undefined ? '—' : typeof row.target === 'number' ? `≥ ${row.target}×` : row.target);
function metText(row) {
  if (row.target === undefined) return row.detail ?? '—';
  return `${row.met ? 'yes' : '**no**'}${row.detail ? ` (${row.detail})` : ''}`;
}

function machineLine(m, seconds) {
  const when = m.start.toISOString().replace('T', ' ').slice(0, 16);
  return (
    `${m.cpu}, ${m.cores} cores, ${m.memGiB.toFixed(1)} GiB RAM, Linux ${m.kernel}, Node ${m.node}; ` +
    `p11-kit ${m.p11kit}, SoftHSM ${m.softhsm}, pkcs11js ${m.pkcs11js}, koffi ${m.koffi}. ` +
    `Run ${when} UTC, ${Math.round(seconds)} s in all; load average at start ${m.loadStart.toFixed(2)}, at end ${m.loadEnd.toFixed(2)}` +
    (m.loadStart > 1 ? ' — a shared machine, busy with other work: read the ratios, not the absolute figures.' : '.')
  );
}

function markdownTable(results) {
  const cell = (s) => String(s).replace(/\|/g, '\\|');
  const lines = ['| bench | case | ours | reference | ratio | target | met |', '|---|---|---:|---:|---:|---|---|'];
  for (const r of results) {
    for (const row of r.rows) {
      lines.push(
        `| ${[r.bench, row.case, figure(row.ours, row.unit), `${figure(row.reference, row.unit)} (${row.referenceName})`, ratioText(row.ratio), targetText(row), metText(row)].map(cell).join(' | ')} |`,
      );
    }
    if (r.failure) lines.push(`| ${cell(r.bench)} | **failed**: ${cell(r.failure)} | — | — | — | — | — |`);
  }
  return lines.join('\n');
}

const HOW_TO_READ =
  'ratio = our speed ÷ the reference’s, both measured in the same run (> 1× means ours is faster; ' +
  'benches that sample in interleaved rounds take the median of per-round ratios, which can differ from the quotient of the two medians shown); ' +
  'target = the issue’s target for that row, or where a measurement showed it out of reach the one bench/RESULTS-NOTES.md proposes (said in the row), met = whether this run met it.';

function resultsMarkdown(results, m, seconds) {
  return [
    '# Benchmark results',
    '',
    `Written by \`make bench\` (bench/all.mjs); every bench ran in its own node process, side by side with its reference. ${HOW_TO_READ}`,
    '',
    `Machine: ${machineLine(m, seconds)}`,
    '',
    markdownTable(results),
    '',
    '![ratios of our speed to the reference’s](results.svg)',
    '',
  ].join('\n');
}

// ---- the chart -----------------------------------------------------------------------------

const xml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = { met: '#2e7d32', missed: '#c62828', none: '#78909c' };

function chartSvg(results, m) {
  // Label column as wide as the longest label (about 6 px a character at 11 px), within bounds.
  const CHAR_PX = 6;
  const MAX_CHARS = 95;
  const labelOf = (row) => `${row.case} vs ${row.referenceName}`;
  const longest = Math.min(MAX_CHARS, Math.max(40, ...results.flatMap((r) => r.rows.map((row) => labelOf(row).length))));
  const LABEL_RIGHT = 10 + longest * CHAR_PX;
  const PX0 = LABEL_RIGHT + 14, PX1 = PX0 + 470, W = PX1 + 70, ROW = 18, GROUP = 24, TOP = 70;
  const rowTarget = (row) => (typeof row.target === 'number' ? row.target : row.targetRatio);
  const values = results.flatMap((r) => r.rows.flatMap((row) => [row.ratio, rowTarget(row)].filter((v) => v > 0)));
  const lo = Math.max(1e-3, 10 ** Math.floor(Math.log10(Math.min(0.5, ...values))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(2, ...values)));
  const x = (r) => PX0 + ((Math.log10(Math.min(hi, Math.max(lo, r))) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (PX1 - PX0);

  const body = [];
  let y = TOP;
  for (const r of results) {
    y += GROUP;
    body.push(`<text x="10" y="${y - 6}" class="group">${xml(r.bench)}</text>`);
    for (const row of r.rows) {
      const kind = row.target === undefined ? 'none' : row.met ? 'met' : 'missed';
      const [a, b] = [x(1), x(row.ratio)].sort((p, q) => p - q);
      const tip = `${row.case}: ours ${figure(row.ours, row.unit)}, ${row.referenceName} ${figure(row.reference, row.unit)}, ${ratioText(row.ratio)}`;
      const label = labelOf(row).length > MAX_CHARS ? `${row.case.slice(0, MAX_CHARS - row.referenceName.length - 5)}…` : row.case;
      body.push(`<text x="${LABEL_RIGHT}" y="${y + 10}" class="label">${xml(label)} <tspan class="ref">vs ${xml(row.referenceName)}</tspan></text>`);
      body.push(`<rect x="${a.toFixed(1)}" y="${y}" width="${Math.max(1, b - a).toFixed(1)}" height="12" fill="${COLORS[kind]}"><title>${xml(tip)}</title></rect>`);
      const t = rowTarget(row);
      if (t > 0) body.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${y - 3}" y2="${y + 15}" class="target"/>`);
      // A dot at the bar's end keeps the verdict's colour visible when the ratio is close to 1×.
      body.push(`<circle cx="${x(row.ratio).toFixed(1)}" cy="${y + 6}" r="3.5" fill="${COLORS[kind]}"/>`);
      body.push(`<text x="${PX1 + 8}" y="${y + 10}" class="value" fill="${kind === 'missed' ? COLORS.missed : '#000'}">${ratioText(row.ratio)}${kind === 'missed' ? ' ✗' : ''}</text>`);
      y += ROW;
    }
    if (r.failure) {
      body.push(`<text x="${PX0}" y="${y + 10}" class="value failed">failed: ${xml(r.failure.slice(0, Math.floor((W - PX0) / CHAR_PX) - 10))}</text>`);
      y += ROW;
    }
  }
  const bottom = y + 8;

  const grid = [];
  const decadePx = (PX1 - PX0) / Math.log10(hi / lo);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > hi * 1.0001) break;
      const gx = x(v).toFixed(1);
      grid.push(`<line x1="${gx}" x2="${gx}" y1="${TOP}" y2="${bottom}" class="${v === 1 ? 'one' : 'grid'}"/>`);
      // 2× and 5× are named only when a decade is wide enough for three labels.
      if (k === 1 || decadePx >= 120) grid.push(`<text x="${gx}" y="${TOP - 6}" class="tick">${+v.toPrecision(1)}×</text>`);
    }
  }

  const legendY = bottom + 26;
  const legend = [
    ['met', 'target met'],
    ['missed', 'target missed'],
    ['none', 'no target (informative)'],
  ].map(([k, text], i) => `<rect x="${PX0 + i * 130}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[k]}"/><text x="${PX0 + i * 130 + 18}" y="${legendY}" class="legend">${text}</text>`);
  const tx = PX0 + 3 * 130 + 40;
  legend.push(`<line x1="${tx}" x2="${tx}" y1="${legendY - 12}" y2="${legendY + 3}" class="target"/><text x="${tx + 8}" y="${legendY}" class="legend">target</text>`);

  const H = legendY + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 15px; font-weight: bold; }
  .sub { font-size: 11px; fill: #444; }
  .group { font-size: 13px; font-weight: bold; }
  .label { font-size: 11px; text-anchor: end; }
  .ref { fill: #666; }
  .failed { fill: #c62828; font-style: italic; }
  .value, .legend { font-size: 11px; }
  .tick { font-size: 10px; text-anchor: middle; fill: #555; }
  .grid { stroke: #e3e3e3; }
  .one { stroke: #333; stroke-width: 1.2; }
  .target { stroke: #111; stroke-width: 2; stroke-dasharray: 3 2; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" class="title">p11kit-wasm benchmarks: our speed ÷ the reference’s (log scale, right of 1× = ours faster)</text>
<text x="10" y="38" class="sub">${xml(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.start.toISOString().slice(0, 10)}, load average at start ${m.loadStart.toFixed(2)}${m.loadStart > 1 ? ' (shared machine)' : ''}`)}</text>
${grid.join('\n')}
${body.join('\n')}
${legend.join('\n')}
</svg>
`;
}

// ---- README --------------------------------------------------------------------------------

function updateReadme(results, m, seconds) {
  const file = join(ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(START_MARK);
  const b = text.indexOf(END_MARK);
  if (a < 0 || b < a) {
    console.error(`README.md has no ${START_MARK} … ${END_MARK} section: not updated`);
    return;
  }
  const section = ['', `Last run — ${machineLine(m, seconds)}`, '', `${HOW_TO_READ}`, '', markdownTable(results), '', '![ratios of our speed to the reference’s](bench/results.svg)', ''].join('\n');
  writeFileSync(file, text.slice(0, a + START_MARK.length) + section + text.slice(b));
}

// ---- main ----------------------------------------------------------------------------------

const all = readdirSync(BENCH_DIR).filter((f) => f.endsWith('.mjs') && !NOT_BENCHES.has(f)).sort();
const wanted = process.argv.slice(2).map((n) => n.replace(/\.mjs$/, ''));
const unknown = wanted.filter((n) => !all.includes(`${n}.mjs`));
if (unknown.length) {
  console.error(`unknown bench: ${unknown.join(', ')} (have: ${all.map((f) => f.replace(/\.mjs$/, '')).join(', ')})`);
  process.exit(2);
}
const chosen = wanted.length ? all.filter((f) => wanted.includes(f.replace(/\.mjs$/, ''))) : all;

const m = machine();
const dir = mkdtempSync(join(tmpdir(), 'p11kit-bench-rollup-'));
const quick = process.env.BENCH_QUICK === '1';
const vars = { ...(quick ? QUICK_ENV : {}), ...process.env };
const results = [];
try {
  for (const file of chosen) {
    console.log(`\n== ${file}${quick ? ' (quick)' : ''}`);
    const r = await runBench(file, { ROLLUP_DIR: dir, vars });
    console.log(`== ${file}: ${r.failure ? `FAILED (${r.failure})` : `${r.rows.length} rows`} in ${r.seconds.toFixed(0)} s`);
    results.push(r);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const seconds = (Date.now() - m.start.getTime()) / 1000;
m.loadEnd = loadavg()[0];

if (!wanted.length) {
  writeFileSync(join(BENCH_DIR, 'RESULTS.md'), resultsMarkdown(results, m, seconds));
  writeFileSync(join(BENCH_DIR, 'results.svg'), chartSvg(results, m));
  updateReadme(results, m, seconds);
}
console.log(`\nMachine: ${machineLine(m, seconds)}\n${HOW_TO_READ}\n`);
console.log(markdownTable(results));
console.log(wanted.length ? '\n(a subset: no file written)' : '\nwritten: bench/RESULTS.md, bench/results.svg, README.md (Benchmarks table)');
if (results.every((r) => r.failure)) process.exit(1);
