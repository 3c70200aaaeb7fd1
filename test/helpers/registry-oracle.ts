// Runs registry scenarios through the real libp11-kit (test/oracle/registry-oracle.c) and
// through our loadRegistry, as this uid or as an unprivileged one, and brings both answers
// to one comparable shape.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, RegistryError, type Registry, type RegistryOptions } from '../../ts/registry/types.js';
import type { Scenario } from './registry-scenarios.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const ORACLE_PATH = 'dist/native/oracle/registry-oracle';
export const FIXTURE_PATH = 'dist/native/fixtures/mini-module.so';
export const ORACLE = resolve(REPO, ORACLE_PATH);
export const FIXTURE_SO = resolve(REPO, FIXTURE_PATH);
export const BUILT_LIB = resolve(REPO, 'dist/lib/index.js');

/**
 * Who runs a pass: this process's uid, or another uid through setpriv. That uid runs copies
 * of the oracle and of the built library it can read (test/helpers/other-uid.ts), and
 * optionally a setgid copy of node (a setgid process must ignore user config).
 */
export type RunAs =
  | { kind: 'self' }
  | { kind: 'uid'; uid: number; gid: number; oracle: string; lib: string; node?: string };

// p11-kit's public module flags (p11-kit.h).
const UNMANAGED = 1;
const CRITICAL = 2;
const TRUSTED = 4;

export interface OracleModule {
  name: string | null;
  filename: string | null;
  flags: number;
  /** A call through the module was logged: effective log-calls. */
  logs_calls: number;
  options: Record<string, string | null>;
}

export interface OracleResult {
  ok: boolean;
  message: string | null;
  messages: string[];
  globals: Record<string, string | null>;
  modules: OracleModule[];
}

/** What our loader answered, as plain data (it may have crossed a process boundary). */
export type OursRaw =
  | { ok: true; registry: Registry }
  | {
      ok: false;
      /** Thrown as a RegistryError (anything else is a crash). */
      typed: boolean;
      message: string;
      reason?: Registry['diagnostics'][number];
      diagnostics?: Registry['diagnostics'];
    };

/** The comparable shape of one answer. */
export interface Outcome {
  ok: boolean;
  global: Record<string, string | null>;
  modules: {
    name: string | null;
    path: string | null;
    critical: boolean;
    trustPolicy: boolean;
    managed: boolean;
    logCalls: boolean;
    options: Record<string, string | null>;
  }[];
  /** Warnings both sides give in the same words: stray file names, enable-in + disable-in, log-calls unmanaged. */
  warnings: string[];
}

function setprivPrefix(as: RunAs): string[] {
  return as.kind === 'self' ? [] : ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', '--'];
}

function spawn(as: RunAs, argv: string[], input: string): string {
  const [cmd, ...args] = [...setprivPrefix(as), ...argv];
  const r = spawnSync(cmd, args, {
    input,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    // A clean environment: each scenario sets exactly what it means to.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    cwd: '/',
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv[0]} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const escapeField = (s: string) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');

export function oracleArgs(s: Scenario): string[] {
  const l = s.locations;
  const args = [
    '--system-conf', l.systemConfig, '--user-conf', l.userConfig, '--package-modules', l.packageModules,
    '--system-modules', l.systemModules, '--user-modules', l.userModules, '--progname', s.program,
  ];
  for (const k of s.moduleKeys) args.push('--key', k);
  for (const k of s.globalKeys) args.push('--global-key', k);
  for (const [name, value] of Object.entries(s.env)) {
    if (value === undefined) args.push('--unset', name);
    else args.push('--env', `${name}=${value}`);
  }
  return args;
}

export function runOracle(scenarios: Scenario[], as: RunAs): OracleResult[] {
  const input = scenarios.map((s) => oracleArgs(s).map(escapeField).join('\t')).join('\n') + '\n';
  const oracle = as.kind === 'uid' ? as.oracle : ORACLE;
  const lines = spawn(as, [oracle, '--batch'], input).trim().split('\n');
  if (lines.length !== scenarios.length) throw new Error(`oracle answered ${lines.length} of ${scenarios.length} scenarios`);
  return lines.map((l) => JSON.parse(l) as OracleResult);
}

export function loadOptions(s: Scenario): RegistryOptions {
  return { ...s.locations, program: s.program, env: { ...s.env } };
}

/** Our answer for one scenario, never throwing: a crash is an answer too (an untyped one). */
export function answer(load: (o: RegistryOptions) => Registry, s: Scenario): OursRaw {
  try {
    return { ok: true, registry: load(loadOptions(s)) };
  } catch (err) {
    if (err instanceof RegistryError) {
      return { ok: false, typed: true, message: err.message, reason: err.reason, diagnostics: err.diagnostics };
    }
    return { ok: false, typed: false, message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
}

// The same `answer` logic, in a child process that imports the built library.
const CHILD = `
import { readFileSync } from 'node:fs';
const { loadRegistry } = await import(process.argv[1]);
const scenarios = JSON.parse(readFileSync(0, 'utf8'));
const out = scenarios.map((o) => {
  try { return { ok: true, registry: loadRegistry(o) }; }
  catch (e) {
    const typed = e?.name === 'RegistryError';
    return { ok: false, typed, message: String(e?.message ?? e), ...(typed ? { reason: e.reason, diagnostics: e.diagnostics } : {}) };
  }
});
process.stdout.write(JSON.stringify(out));
`;

export function runOursAs(scenarios: Scenario[], as: RunAs): OursRaw[] {
  const lib = as.kind === 'uid' ? as.lib : BUILT_LIB;
  if (!existsSync(lib)) throw new Error(`${lib} is missing: run 'make ts' first`);
  const node = (as.kind === 'uid' && as.node) || process.execPath;
  const out = spawn(as, [node, '--input-type=module', '-e', CHILD, lib], JSON.stringify(scenarios.map(loadOptions)));
  return JSON.parse(out) as OursRaw[];
}

// ---- one comparable shape --------------------------------------------------------------------

const WARNING_WORDS = [/^invalid config filename/, /has both enable-in and disable-in/, /only supported for managed modules/];
const sameWordsWarnings = (msgs: string[]) =>
  [...new Set(msgs.filter((m) => WARNING_WORDS.some((re) => re.test(m))))].sort();

function pick(keys: string[], get: (k: string) => string | null | undefined): Record<string, string | null> {
  return Object.fromEntries(keys.map((k) => [k, get(k) ?? null]));
}

export function oracleOutcome(o: OracleResult): Outcome {
  return {
    ok: o.ok,
    global: o.ok ? o.globals : {},
    modules: o.modules.map((m) => ({
      name: m.name,
      path: m.filename,
      critical: (m.flags & CRITICAL) !== 0,
      trustPolicy: (m.flags & TRUSTED) !== 0,
      managed: (m.flags & UNMANAGED) === 0,
      logCalls: m.logs_calls === 1,
      options: m.options,
    })),
    warnings: o.ok ? sameWordsWarnings(o.messages.map((m) => m.replace(/^p11-kit: /, ''))) : [],
  };
}

/**
 * Ours in the same shape. Options are read for the scenario's key list; a key we hold
 * that is not in the list shows up under its own name with a marker value, so an
 * invented key can never hide.
 */
export function oursOutcome(r: OursRaw, s: Scenario): Outcome {
  if (!r.ok) return { ok: false, global: {}, modules: [], warnings: [] };
  const reg = r.registry;
  const extra = (o: Record<string, string>, keys: string[]) =>
    Object.fromEntries(Object.keys(o).filter((k) => !keys.includes(k)).map((k) => [k, `<unexpected key>${o[k]}`]));
  return {
    ok: true,
    global: { ...pick(s.globalKeys, (k) => reg.global[k]), ...extra(reg.global, s.globalKeys) },
    modules: reg.modules.map((m) => ({
      name: m.name,
      path: m.path ?? null,
      critical: m.settings.critical,
      trustPolicy: m.settings.trustPolicy,
      managed: m.settings.managed,
      logCalls: m.settings.logCalls,
      options: { ...pick(s.moduleKeys, (k) => m.options[k]), ...extra(m.options, s.moduleKeys) },
    })),
    warnings: sameWordsWarnings(reg.diagnostics.filter((d) => d.level === 'warning').map((d) => d.message)),
  };
}

// ---- why a load was refused ------------------------------------------------------------------

const CAUSES: [string, RegExp][] = [
  ['no-colon', /no colon/],
  ['bad-section', /missing braces/],
  ['section', /unexpected section header/],
  ['pem-unterminated', /no ending line/],
  ['pem', /unexpected pem block/],
  ['stat', /couldn't stat/],
  ['mode', /invalid mode for 'user-config'/],
  ['critical', /marked as critical/],
  ['denied', /Permission denied/],
  ['isdir', /Is a directory/],
];

export function causeOf(message: string): string {
  return CAUSES.find(([, re]) => re.test(message))?.[0] ?? `other: ${message}`;
}

/** Our refusal as one line: "file:line: reason". */
export function refusalText(r: OursRaw): string {
  if (r.ok) return '';
  return r.reason ? formatDiagnostic({ ...r.reason, level: 'error' }) : r.message;
}
