// Differential suite: the same generated configuration trees go through the real
// libp11-kit 0.24.1 (test/oracle/registry-oracle.c) and through our loadRegistry, as root
// (user config must be ignored), as uid 65534 (user config must be read), and as uid
// 65534 running setgid copies of the oracle and of node (ignored again). Every
// answer must match: refused or not, module names in order, resolved paths, flags,
// every option value, the globals, and the warnings given in p11-kit's own words.
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../ts/registry/load.js';
import {
  FIXTURE_PATH,
  FIXTURE_SO,
  ORACLE,
  ORACLE_PATH,
  answer,
  causeOf,
  oracleOutcome,
  oursOutcome,
  refusalText,
  runOracle,
  runOursAs,
  type OracleResult,
  type OursRaw,
  type RunAs,
} from './helpers/registry-oracle.js';
import { BUILT_LIBRARY, shareWithOtherUids } from './helpers/other-uid.js';
import { FEATURES, buildScenarios, materialize, type Scenario } from './helpers/registry-scenarios.js';

// Seeded: a failure names its scenario; REGISTRY_DIFF_SEED replays or explores other seeds.
const SEED = Number(process.env.REGISTRY_DIFF_SEED ?? 0x11c0de);
const COUNT = FEATURES.length * 3;
const specs = buildScenarios(SEED, COUNT);

// What uid 65534 runs (copies it can read, and setgid copies with group daemon, gid 1) is
// made in beforeAll.
const NOBODY = { kind: 'uid', uid: 65534, gid: 65534, oracle: '', lib: '' } satisfies RunAs;
const SETGID = { kind: 'uid', uid: 65534, gid: 65534, oracle: '', lib: '', node: '' } satisfies RunAs;
const passes = [
  { label: 'as root', as: { kind: 'self' } as RunAs, ours: (s: Scenario[]) => s.map((x) => answer(loadRegistry, x)) },
  { label: 'as uid 65534', as: NOBODY, ours: (s: Scenario[]) => runOursAs(s, NOBODY) },
  { label: 'as uid 65534, setgid', as: SETGID, ours: (s: Scenario[]) => runOursAs(s, SETGID) },
];

/** A setgid copy of a program, runnable by anyone; the real and effective gids then differ. */
function setgidCopy(from: string, to: string): string {
  copyFileSync(from, to);
  chownSync(to, 0, 1);
  chmodSync(to, 0o2755);
  return to;
}

let base = '';
let scenarios: Scenario[] = [];
const results = new Map<string, { oracle: OracleResult[]; ours: OursRaw[] }>();

beforeAll(() => {
  for (const f of [ORACLE, FIXTURE_SO]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'make native'`);
  // Both passes need root: one as root, one dropping to another uid with setpriv.
  if (process.getuid?.() !== 0) throw new Error('the differential registry suite must run as root (it also runs as uid 65534 via setpriv)');
  base = mkdtempSync(join(tmpdir(), 'p11kit-regdiff-'));
  chmodSync(base, 0o755);
  // The fixture's siblings too: some scenarios plant other fixture modules.
  const shared = shareWithOtherUids(join(base, 'repo'), [ORACLE_PATH, dirname(FIXTURE_PATH), ...BUILT_LIBRARY]);
  NOBODY.oracle = shared(ORACLE_PATH);
  SETGID.oracle = setgidCopy(ORACLE, join(base, 'registry-oracle-setgid'));
  NOBODY.lib = SETGID.lib = shared('dist/lib/index.js');
  SETGID.node = setgidCopy(process.execPath, join(base, 'node-setgid'));
  scenarios = specs.map((spec) => {
    const root = join(base, `s${spec.id}`);
    mkdirSync(root, { mode: 0o755 });
    return materialize(spec, root, shared(FIXTURE_PATH));
  });
});

afterAll(() => {
  if (base && !process.env.REGISTRY_DIFF_KEEP) rmSync(base, { recursive: true, force: true });
});

describe.each(passes)('registry vs libp11-kit $label', (pass) => {
  let oracle: OracleResult[] = [];
  let ours: OursRaw[] = [];
  beforeAll(() => {
    oracle = runOracle(scenarios, pass.as);
    ours = pass.ours(scenarios);
    results.set(pass.label, { oracle, ours });
  });

  it.each(specs.map((s) => [s.id, s.features.join(' + ')] as const))('scenario %i: %s', (id) => {
    const s = scenarios[id];
    const o = oracle[id];
    const r = ours[id];
    const context = [
      `scenario ${id} (seed ${SEED}), tree ${s.root} (REGISTRY_DIFF_KEEP=1 keeps it)`,
      `  libp11-kit: ${o.ok ? 'loaded' : `refused: ${o.message}`}`,
      `  ours:       ${r.ok ? 'loaded' : `refused: ${refusalText(r)}`}`,
    ].join('\n');

    // Bad configuration is a typed RegistryError, never a crash.
    if (!r.ok) expect(r.typed, `${context}\n  untyped: ${r.message}`).toBe(true);
    expect(oursOutcome(r, s), context).toEqual(oracleOutcome(o));

    // A refusal gives the same reason as p11-kit's, naming the planted file and line.
    if (!o.ok && !r.ok && s.fatal <= 1) {
      expect(causeOf(refusalText(r)), context).toBe(causeOf(o.message ?? ''));
      const hint = s.fatalHint;
      // Where libp11-kit names a file, we name the same one, byte for byte (separators included).
      if (r.reason?.file && o.message?.includes('/')) expect(o.message, context).toContain(r.reason.file);
      if (hint && causeOf(o.message ?? '') === hint.cause) {
        const plain = (path?: string) => path?.replace(/\/+/g, '/').replace(/\/$/, '');
        if (hint.file) expect(plain(r.reason?.file), context).toBe(plain(hint.file));
        if (hint.line) expect(r.reason?.line, context).toBe(hint.line);
      }
    }
  });

  it('exercises loads and refusals alike', () => {
    const loaded = oracle.filter((o) => o.ok && o.modules.length > 0).length;
    const refused = oracle.filter((o) => !o.ok).length;
    expect(loaded).toBeGreaterThan(COUNT * 0.4);
    expect(refused).toBeGreaterThan(COUNT * 0.06);
    // Refusals for the planted reason, whose file (and line) ours must name.
    const planted = specs.filter((s) => !oracle[s.id].ok && causeOf(oracle[s.id].message ?? '') === s.fatalHint?.cause);
    expect(planted.length).toBeGreaterThan(COUNT * 0.05);
    expect(planted.filter((s) => s.fatalHint?.line).length).toBeGreaterThan(COUNT * 0.03);
    // Effective settings that only show in the flags and in the call logger.
    const listed = oracle.flatMap((o) => o.modules);
    for (const flag of [1, 2, 4]) expect(listed.filter((m) => m.flags & flag).length).toBeGreaterThan(2);
    expect(listed.filter((m) => m.logs_calls === 1).length).toBeGreaterThan(2);
  });
});

describe('root, an unprivileged uid and a setgid process', () => {
  // Where libp11-kit itself answers differently for two kinds of process, so do we; and
  // it does differ often, so the user-config rules really are exercised.
  it.each([
    ['as root', 'as uid 65534'],
    ['as uid 65534, setgid', 'as uid 65534'],
  ])('%s and %s see different registries where user configuration exists', (a, b) => {
    const one = results.get(a);
    const two = results.get(b);
    expect(one && two).toBeTruthy();
    const key = (o: OracleResult) => JSON.stringify(oracleOutcome(o));
    const differs = specs.filter((s) => key(one!.oracle[s.id]) !== key(two!.oracle[s.id]));
    expect(differs.length).toBeGreaterThan(COUNT * 0.15);
    for (const s of differs) {
      expect(JSON.stringify(oursOutcome(one!.ours[s.id], scenarios[s.id]))).not.toBe(
        JSON.stringify(oursOutcome(two!.ours[s.id], scenarios[s.id])),
      );
    }
  });
});
