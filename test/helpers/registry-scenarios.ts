// Seeded generator of p11-kit configuration trees for the differential registry tests
// (test/registry-diff.test.ts). A scenario is pure data (ScenarioSpec) until
// materialize() writes it under a root directory; '@ROOT@' in contents and paths
// stands for that root. Every scenario has one focus feature (cycled, so each rule
// of spec §1 and §9 that concerns config is covered) plus random background.
//
// What keeps the outcome independent of readdir and hash order (the oracle's
// answer must be determined): each configured library is a distinct file, at
// most one fatal cause and at most one critical module are planted per
// scenario, and two files of one module name in one directory have disjoint keys.
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { mulberry32 } from './mulberry32.js';

export const ROOT = '@ROOT@';

export type Entry =
  /** `bytes`: the path's characters are raw bytes (a file name that is not UTF-8). */
  | { kind: 'file'; path: string; data: string | Uint8Array; mode?: number; bytes?: boolean }
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  /** A copy of a fixture module (a distinct real .so): mini-module unless `fixture` names another. */
  | { kind: 'lib'; path: string; fixture?: string };

export interface ScenarioLocations {
  systemConfig: string;
  userConfig: string;
  packageModules: string;
  systemModules: string;
  userModules: string;
}

/** The planted fatal cause, when there is exactly one: what a refusal must name. */
export interface FatalHint {
  cause: string;
  file?: string;
  line?: number;
  /** Only fatal for a non-root uid (unreadable files: root reads everything). */
  unprivilegedOnly?: boolean;
}

export interface ScenarioSpec {
  id: number;
  focus: Feature;
  features: Feature[];
  entries: Entry[];
  locations: ScenarioLocations;
  /** HOME, XDG_CONFIG_HOME, P11_KIT_NO_USER_CONFIG; undefined = unset. */
  env: Record<string, string | undefined>;
  program: string;
  /** Every module option key written anywhere, plus the well-known ones and one never written. */
  moduleKeys: string[];
  globalKeys: string[];
  /** Number of independent fatal causes planted (0 or 1). */
  fatal: number;
  fatalHint?: FatalHint;
}

/** A materialized scenario: ROOT replaced by the real directory. */
export type Scenario = ScenarioSpec & { root: string };

export const FEATURES = [
  'plain', 'crlf-whitespace', 'inline-comment', 'duplicate-keys', 'section-header', 'bad-section',
  'pem-block', 'pem-unterminated', 'indented-pem', 'no-colon', 'empty-key', 'odd-keys',
  'stray-names', 'readme-no-colon', 'dirs', 'dangling-symlink', 'valid-symlink', 'unreadable-file',
  'unreadable-system-conf', 'unreadable-user-conf', 'unreadable-dir', 'dir-is-file', 'missing-locations',
  'user-config', 'user-config-invalid', 'global-managed', 'global-log-calls', 'critical-fail',
  'critical-ok', 'enable-in', 'disable-in', 'enable-and-disable', 'proxy-token', 'priority',
  'trust-policy', 'x-init-reserved', 'unknown-keys', 'module-values', 'relative-module', 'remote',
  'xdg-config-home', 'home-expansion', 'no-user-config-env', 'user-overrides-key', 'user-disables-module',
  'booleans', 'nul-byte', 'colons-in-values', 'same-name-in-dir', 'many-modules', 'utf8',
  'no-trailing-newline', 'odd-location-paths', 'config-paths',
] as const;
export type Feature = (typeof FEATURES)[number];

/** Features that plant a fatal cause; they are never combined with each other. */
const FATAL: ReadonlySet<Feature> = new Set<Feature>([
  'config-paths', 'section-header', 'bad-section', 'pem-block', 'pem-unterminated', 'indented-pem', 'no-colon',
  'readme-no-colon', 'dangling-symlink', 'unreadable-system-conf', 'user-config-invalid', 'critical-fail',
]);
const BENIGN = FEATURES.filter((f) => !FATAL.has(f) && f !== 'unreadable-file' && f !== 'unreadable-dir');

export const WELL_KNOWN_MODULE_KEYS = [
  'module', 'critical', 'enable-in', 'disable-in', 'priority', 'trust-policy', 'managed', 'log-calls',
  'x-init-reserved', 'remote',
];
const WELL_KNOWN_GLOBAL_KEYS = ['user-config', 'managed', 'log-calls'];
const NEVER_WRITTEN = 'x-never-written';

const MODULE_DIR = '/usr/lib/x86_64-linux-gnu/pkcs11';
const PROGRAMS = ['firefox', 'chromium', 'test-enable', 'gnome-shell'];

// ---- seeded randomness --------------------------------------------------------------------

export class Rng {
  /** mulberry32: small, fast, and good enough to pick test cases. */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed >>> 0 || 0x9e3779b9);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---- the plan of one scenario ---------------------------------------------------------------

type Scope = 'system' | 'package' | 'user';
const SCOPES: readonly Scope[] = ['system', 'package', 'user'];

/** One logical line of a config file, before rendering. */
type Line =
  | { kind: 'kv'; key: string; value: string }
  /** `bad`: the planted fatal line, whose line number a refusal must name. */
  | { kind: 'raw'; text: string; noStrip?: boolean; bad?: boolean };

interface ConfFile {
  /** Path relative to ROOT. */
  path: string;
  lines: Line[];
  crlf: boolean;
  noise: number;
  trailingNewline: boolean;
  mode?: number;
  /** The path's characters are raw bytes (see Entry). */
  bytes?: boolean;
}

interface ModulePlan {
  name: string;
  files: { scope: Scope; file: ConfFile }[];
}

class Plan {
  readonly files: ConfFile[] = [];
  readonly extra: Entry[] = [];
  readonly modules: ModulePlan[] = [];
  readonly libGroupsUsed = new Set<string>();
  readonly locations: ScenarioLocations;
  readonly env: Record<string, string | undefined> = { HOME: `${ROOT}/home` };
  /**
   * Where module files of each scope are written (relative to ROOT): the configured dirs,
   * with the user dir ~-expanded by the generator itself. Relocating a location to a
   * missing path or to a file leaves these alone, so those files are simply not read.
   */
  readonly dirs: Record<Scope, string> = { system: 'etc/modules', package: 'pkg-modules', user: 'user/modules' };
  systemConf: ConfFile;
  userConf: ConfFile;
  program: string;
  fatal = 0;
  fatalHint?: FatalHint;
  /** The file holding the planted bad line; its path and line are read after rendering. */
  badFile?: ConfFile;
  private libs = 0;
  private names = new Set<string>();

  constructor(readonly rng: Rng) {
    this.locations = {
      systemConfig: `${ROOT}/etc/pkcs11.conf`,
      userConfig: `${ROOT}/user/pkcs11.conf`,
      packageModules: `${ROOT}/pkg-modules`,
      systemModules: `${ROOT}/etc/modules`,
      userModules: `${ROOT}/user/modules`,
    };
    this.program = rng.pick(PROGRAMS);
    this.systemConf = this.newFile(rel(this.locations.systemConfig));
    this.userConf = this.newFile(rel(this.locations.userConfig));
  }

  newFile(path: string, lines: Line[] = []): ConfFile {
    const f: ConfFile = {
      path,
      lines,
      crlf: this.rng.chance(0.15),
      noise: this.rng.chance(0.3) ? this.rng.int(1, 3) : 0,
      trailingNewline: this.rng.chance(0.85),
    };
    this.files.push(f);
    return f;
  }

  dirOf(scope: Scope): string {
    return this.dirs[scope];
  }

  uniqueName(base?: string): string {
    const stems = ['alpha', 'Zeta', 'beta-2', 'm_x', '0num', 'a.b', 'tls', 'Bank', 'card', 'z'];
    for (;;) {
      const n = base ?? `${this.rng.pick(stems)}${this.rng.chance(0.5) ? '' : this.rng.int(1, 99)}`;
      if (!this.names.has(n)) {
        this.names.add(n);
        return n;
      }
      base = undefined;
    }
  }

  /** A `module:` value whose library is not used by any other config in this scenario. */
  lib(kind: LibKind): string | undefined {
    const once = (group: string, value: string, fallback: LibKind = 'good') => {
      if (this.libGroupsUsed.has(group)) return this.lib(fallback);
      this.libGroupsUsed.add(group);
      return value;
    };
    const n = this.libs++;
    switch (kind) {
      case 'good': {
        const path = `${ROOT}/lib/mod${n}.so`;
        this.extra.push({ kind: 'lib', path: rel(path) });
        return this.rng.chance(0.1) ? path.replace('/lib/', '/lib//') : path;
      }
      case 'v3':
      case 'list-fails':
      case 'not-pkcs11': {
        // Other fixtures: a PKCS#11 3.0 module (0.24.1 still asks for C_GetFunctionList), one
        // whose C_GetFunctionList fails, and a shared object without that entry point.
        const fixture = { v3: 'v3-module.so', 'list-fails': 'failing-list-module.so', 'not-pkcs11': 'not-pkcs11.so' }[kind];
        const path = `${ROOT}/lib/${kind}${n}.so`;
        this.extra.push({ kind: 'lib', path: rel(path), fixture });
        return path;
      }
      case 'relative':
        return this.rng.pick<() => string | undefined>([
          () => once('trust', this.rng.pick(['p11-kit-trust.so', './p11-kit-trust.so', 'p11-kit-trust.so/', `${MODULE_DIR}/p11-kit-trust.so/`])),
          () => once('opensc', this.rng.pick(['opensc-pkcs11.so', 'opensc-pkcs11.so//'])),
          () => once('onepin', 'onepin-opensc-pkcs11.so'),
          () => once('client', this.rng.pick(['p11-kit-client.so', './/p11-kit-client.so'])),
        ])();
      case 'relative-missing':
        return this.rng.pick(['no-such-module.so', 'sub/dir/none.so', 'pkcs11//nothing.so']);
      case 'empty':
        return '';
      case 'absent':
        return undefined;
      case 'text': {
        const path = `${ROOT}/lib/text${n}.so`;
        this.extra.push({ kind: 'file', path: rel(path), data: 'not an ELF file\n' });
        return path;
      }
      case 'missing':
        return `${ROOT}/lib/missing${n}.so`;
      case 'no-entry':
        return once('libz', '/usr/lib/x86_64-linux-gnu/libz.so.1');
      case 'proxy':
        return once('proxy', '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so');
    }
  }

  /** A module with its config in one or more scopes; the first file gets the library. */
  addModule(opts: { scopes?: Scope[]; lib?: LibKind; name?: string; options?: Line[] } = {}): ModulePlan {
    const name = this.uniqueName(opts.name);
    const scopes = opts.scopes ?? [this.rng.pick(SCOPES)];
    const m: ModulePlan = { name, files: [] };
    scopes.forEach((scope, i) => {
      const lines: Line[] = [];
      if (i === 0) {
        const value = this.lib(opts.lib ?? (this.rng.chance(0.8) ? 'good' : this.rng.chance(0.7) ? 'relative' : 'v3'));
        if (value !== undefined) lines.push(kv('module', value));
      }
      const file = this.newFile(`${this.dirOf(scope)}/${fileNameFor(name)}`, lines);
      m.files.push({ scope, file });
    });
    for (const line of opts.options ?? this.randomOptions()) this.rng.pick(m.files).file.lines.push(line);
    this.modules.push(m);
    return m;
  }

  randomOptions(): Line[] {
    const out: Line[] = [];
    const r = this.rng;
    if (r.chance(0.3)) out.push(kv('priority', r.pick(PRIORITIES)));
    if (r.chance(0.2)) out.push(kv('trust-policy', r.pick(['yes', 'no'])));
    if (r.chance(0.15)) out.push(kv('managed', r.pick(['yes', 'no'])));
    if (r.chance(0.1)) out.push(kv('log-calls', r.pick(['yes', 'no'])));
    if (r.chance(0.15)) out.push(kv('x-init-reserved', r.pick(['', 'verbose=yes', 'a b c'])));
    if (r.chance(0.3)) out.push(kv(`x-${r.pick(['setting', 'lookup', 'note'])}`, r.pick(['one', 'two words', ''])));
    if (r.chance(0.15)) out.push(kv('enable-in', this.programList(true)));
    else if (r.chance(0.15)) out.push(kv('disable-in', this.programList(true)));
    return out;
  }

  /** A program list with delimiters of every kind; may or may not name this program. */
  programList(mayName: boolean): string {
    const r = this.rng;
    const tokens = r.shuffle([
      ...(mayName && r.chance(0.6) ? [this.program] : []),
      ...Array.from({ length: r.int(0, 3) }, () =>
        r.pick(['other-prog', `${this.program}-bin`, this.program.slice(0, 4), this.program.toUpperCase(), 'p11-kit-proxy']),
      ),
    ]);
    const delims = [',', ', ', ' ', '\t', ',,', ' , '];
    return tokens.map((t, i) => (i ? r.pick(delims) : '') + t).join('');
  }

  /** Plants a bad line in a random config file (or a new module file). */
  plantBadLine(cause: string, text: string, noStrip = false): void {
    const targets = [this.systemConf, this.userConf, ...this.modules.flatMap((m) => m.files.map((f) => f.file))];
    const file = this.rng.pick(targets);
    const at = this.rng.int(0, file.lines.length);
    file.lines.splice(at, 0, { kind: 'raw', text, noStrip, bad: true });
    this.badFile = file;
    this.setFatal({ cause }, file === this.userConf || file.path.startsWith(`${this.dirs.user}/`));
  }

  setFatal(hint: FatalHint, userOnly = false): void {
    this.fatal++;
    this.fatalHint = { ...hint, ...(userOnly ? { unprivilegedOnly: true } : {}) };
  }
}

type LibKind =
  | 'good' | 'v3' | 'relative' | 'relative-missing' | 'empty' | 'absent' | 'text' | 'missing' | 'no-entry' | 'proxy'
  | 'list-fails' | 'not-pkcs11';
const FAILING_LIBS: LibKind[] = ['relative-missing', 'empty', 'text', 'missing', 'no-entry', 'proxy', 'list-fails', 'not-pkcs11'];

const PRIORITIES = [
  '5', ' 7', '+3', '-2', '5x', 'abc', '', '2147483648', '99999999999999999999', '-2147483649', '0x10', '-0',
  '1e3', '10', '010', '3 4', '\u0663',
];

// Accepted and refused alike: p11-kit checks these when it builds the RPC client, at load time.
const REMOTES = [
  '|/bin/false', "|a 'b", '|   /bin/false', '|', "|''", "| ''", '|a\\', '|x\\\\', "|'a\\'",
  'unix:path=/nonexistent-p11', 'unix:path=/a%20b', 'unix:path=/a%2f', 'unix:path=/a%zz', 'unix:path=/a%2',
  'unix:path=relative/sock', 'unix:path=%2Ftmp', 'unix:path=', 'UNIX:path=/x',
  'vsock:cid=3;port=9', 'vsock:port=9;cid=3', 'vsock:cid=3;port=9;', 'vsock:cid=3;port=9;;', 'vsock:port=9',
  'vsock:cid=3', 'vsock:cid=0x3;port=010', 'vsock:cid=08;port=1', 'vsock:cid=0x;port=1', 'vsock:cid= +3;port=1',
  'vsock:cid=4294967295;port=1', 'vsock:cid=4294967294;port=4294967295', 'vsock:cid=3;port=-1', 'vsock:cid=-0;port=1',
  'vsock:cid=3 ;port=9', 'vsock:cid=3;cid=4;port=1', 'vsock:', 'bogus:thing',
];

function kv(key: string, value: string): Line {
  return { kind: 'kv', key, value };
}

function rel(path: string): string {
  return path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path;
}

function fileNameFor(name: string): string {
  // Names made by uniqueName are clean; stray names are used as the whole file name.
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) && !STRAY_NAMES.includes(name) ? `${name}.module` : name;
}

const STRAY_NAMES = [
  'README', 'foo.conf', '.hidden.module', 'x.module~', 'y.module.dpkg-old', 'plain', '_under.module',
  'sp ace.module', '.module', '-dash.module', 'UP.MODULE', 'café.module', 'double.module.module', 'tab\tname.module',
];

// ---- features -------------------------------------------------------------------------------

function applyFeature(p: Plan, f: Feature): void {
  const r = p.rng;
  const anyModule = () => (p.modules.length ? r.pick(p.modules) : p.addModule());
  const anyFile = () => r.pick(anyModule().files).file;
  switch (f) {
    case 'plain':
      break;
    case 'crlf-whitespace':
      for (const file of p.files) {
        file.crlf = r.chance(0.7);
        file.noise = 3;
      }
      break;
    case 'inline-comment':
      anyFile().lines.push(kv('x-comment', 'this is # not a comment'));
      anyFile().lines.push({ kind: 'raw', text: '   # indented comment: with colon' });
      p.systemConf.lines.push(kv('x-hash', '# value'));
      break;
    case 'duplicate-keys':
      // A decoy before the first occurrence: the value written last must win.
      for (const file of [anyFile(), p.systemConf, p.userConf]) {
        const keys = file.lines.flatMap((l) => (l.kind === 'kv' && l.key !== 'user-config' ? [l.key] : []));
        const key = keys.length ? r.pick(keys) : 'x-dup';
        const first = file.lines.findIndex((l) => l.kind === 'kv' && l.key === key);
        file.lines.splice(first < 0 ? file.lines.length : r.int(0, first), 0, kv(key, 'decoy-first'));
        if (first < 0) file.lines.push(kv(key, 'last-wins'));
      }
      break;
    case 'section-header':
      p.plantBadLine('section', r.pick(['[section]', '  [global]  ', '[]']));
      break;
    case 'bad-section':
      p.plantBadLine('bad-section', r.pick(['[section', '[', '  [a b']));
      break;
    case 'pem-block':
      p.plantBadLine('pem', '-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n-----END CERTIFICATE-----', true);
      break;
    case 'pem-unterminated':
      p.plantBadLine('pem-unterminated', '-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA', true);
      break;
    case 'indented-pem':
      // Not at the start of the raw line: not a PEM block, so a line without a colon.
      p.plantBadLine('no-colon', ' -----BEGIN CERTIFICATE-----', true);
      break;
    case 'no-colon':
      p.plantBadLine('no-colon', r.pick(['just some words', 'module /no/colon.so', 'x-key = value']));
      break;
    case 'empty-key':
      anyFile().lines.push(kv('', 'empty key'));
      p.systemConf.lines.push(kv('', r.pick(['', 'global empty key'])));
      anyFile().lines.push(kv('x-empty-value', ''));
      break;
    case 'odd-keys':
      anyFile().lines.push(kv('Module', '/case/sensitive.so'));
      anyFile().lines.push(kv('x spaced key', 'inner  spaces  kept'));
      p.systemConf.lines.push(kv('Managed', 'no'));
      break;
    case 'stray-names':
      for (let i = r.int(1, 3); i > 0; i--) p.addModule({ name: r.pick(STRAY_NAMES) });
      break;
    case 'readme-no-colon': {
      const scope = r.pick(SCOPES);
      const file = p.newFile(`${p.dirOf(scope)}/${r.pick(['README', 'NOTES.txt', 'x.module~'])}`, [
        { kind: 'raw', text: 'This directory holds PKCS#11 module configs', bad: true },
      ]);
      p.badFile = file;
      p.setFatal({ cause: 'no-colon' }, scope === 'user');
      break;
    }
    case 'dirs':
      for (const scope of SCOPES) {
        p.extra.push({ kind: 'dir', path: `${p.dirOf(scope)}/sub.module` });
        p.extra.push({ kind: 'file', path: `${p.dirOf(scope)}/sub.module/inner.module`, data: 'no colon here\n' });
        p.extra.push({ kind: 'dir', path: `${p.dirOf(scope)}/plain-dir` });
      }
      break;
    case 'dangling-symlink': {
      const scope = r.pick(SCOPES);
      const path = `${p.dirOf(scope)}/${r.pick(['gone.module', 'gone'])}`;
      p.extra.push({ kind: 'symlink', path, target: `${ROOT}/nowhere/gone.module` });
      p.setFatal({ cause: 'stat', file: `${ROOT}/${path}` }, scope === 'user');
      break;
    }
    case 'valid-symlink': {
      const name = p.uniqueName();
      const scope = r.pick(SCOPES);
      const store = p.newFile(`store/${name}.conf`, [kv('module', p.lib('good')!), kv('x-via', 'symlink')]);
      p.extra.push({ kind: 'symlink', path: `${p.dirOf(scope)}/${name}.module`, target: `${ROOT}/${store.path}` });
      p.extra.push({ kind: 'dir', path: 'store/a-dir' });
      p.extra.push({ kind: 'symlink', path: `${p.dirOf(scope)}/linked-dir.module`, target: `${ROOT}/store/a-dir` });
      break;
    }
    case 'unreadable-file': {
      const m = p.addModule();
      const { scope, file } = m.files[0];
      file.mode = 0o000;
      // Root reads it anyway; an unprivileged user is refused, which p11-kit forgives only in the user dir.
      if (scope !== 'user') p.setFatal({ cause: 'denied', file: `${ROOT}/${file.path}`, unprivilegedOnly: true });
      break;
    }
    case 'unreadable-system-conf':
      p.systemConf.mode = 0o000;
      p.systemConf.lines.push(kv('x-secret', 'unreadable'));
      p.setFatal({ cause: 'denied', file: p.locations.systemConfig, unprivilegedOnly: true });
      break;
    case 'unreadable-user-conf':
      p.userConf.mode = 0o000;
      p.userConf.lines.push(kv('user-config', 'only'), kv('x-user', 'hidden'));
      break;
    case 'unreadable-dir': {
      const scope = r.pick(SCOPES);
      p.addModule({ scopes: [scope] });
      p.extra.push({ kind: 'dir', path: p.dirOf(scope), mode: 0o000 });
      if (scope !== 'user') p.setFatal({ cause: 'denied', file: `${ROOT}/${p.dirOf(scope)}`, unprivilegedOnly: true });
      break;
    }
    case 'dir-is-file': {
      const key = r.pick(['systemModules', 'packageModules', 'userModules'] as const);
      const path = `${ROOT}/not-a-dir-${key}`;
      p.extra.push({ kind: 'file', path: rel(path), data: 'module: /x.so\n' });
      p.locations[key] = path;
      break;
    }
    case 'missing-locations': {
      const key = r.pick(['systemConfig', 'userConfig', 'systemModules', 'packageModules', 'userModules'] as const);
      p.locations[key] = `${ROOT}/does-not-exist/${key}`;
      break;
    }
    case 'user-config': {
      const modes = ['none', 'merge', 'only', 'override'];
      if (r.chance(0.8)) p.systemConf.lines.push(kv('user-config', r.pick(modes)));
      if (r.chance(0.7)) p.userConf.lines.push(kv('user-config', r.pick(modes)));
      p.systemConf.lines.push(kv('key1', 'system1'), kv('key2', 'system2'));
      p.userConf.lines.push(kv('key2', 'user2'), kv('key3', 'user3'));
      p.addModule({ scopes: ['system', 'user'] });
      p.addModule({ scopes: ['user'] });
      break;
    }
    case 'user-config-invalid': {
      const inUser = r.chance(0.5);
      const file = inUser ? p.userConf : p.systemConf;
      file.lines.push(kv('user-config', r.pick(['maybe', 'Merge', 'yes', ''])));
      p.setFatal({ cause: 'mode' }, inUser);
      break;
    }
    case 'global-managed':
      p.systemConf.lines.push(kv('managed', r.pick(['yes', 'no', 'true'])));
      if (r.chance(0.5)) p.userConf.lines.push(kv('managed', r.pick(['yes', 'no'])));
      for (const m of p.modules) m.files[0].file.lines.push(kv('managed', r.pick(['yes', 'no', '1'])));
      break;
    case 'global-log-calls':
      p.systemConf.lines.push(kv('log-calls', r.pick(['yes', 'no', 'on'])));
      for (const m of p.modules) m.files[0].file.lines.push(kv('log-calls', r.pick(['yes', 'no'])));
      break;
    case 'critical-fail': {
      const m = p.addModule({ lib: r.pick(FAILING_LIBS), options: [kv('critical', 'yes')] });
      p.setFatal({ cause: 'critical' }, m.files[0].scope === 'user');
      break;
    }
    case 'critical-ok':
      // Critical modules whose libraries load: nothing fails, the flag shows.
      for (const scope of ['system', 'package'] as const) p.addModule({ scopes: [scope], lib: 'good', options: [kv('critical', 'yes')] });
      p.addModule({ lib: 'good', options: [kv('critical', r.pick(['true', 'no', 'Yes']))] });
      break;
    case 'enable-in':
      for (let i = r.int(1, 3); i > 0; i--) p.addModule({ options: [kv('enable-in', p.programList(true))] });
      break;
    case 'disable-in':
      for (let i = r.int(1, 3); i > 0; i--) p.addModule({ options: [kv('disable-in', p.programList(true))] });
      break;
    case 'enable-and-disable':
      p.addModule({ options: [kv('enable-in', p.programList(true)), kv('disable-in', p.programList(true))] });
      p.addModule({ options: [kv('disable-in', p.program), kv('enable-in', p.program)] });
      break;
    case 'proxy-token':
      if (r.chance(0.25)) p.program = 'p11-kit-proxy';
      p.addModule({ options: [kv('enable-in', 'p11-kit-proxy')] });
      p.addModule({ options: [kv('enable-in', `${p.program}, p11-kit-proxy`)] });
      p.addModule({ options: [kv('disable-in', 'p11-kit-proxy')] });
      p.addModule({ options: [kv('disable-in', 'p11-kit-proxy-suffix, x-p11-kit-proxy')] });
      break;
    case 'priority':
      for (let i = r.int(3, 6); i > 0; i--) p.addModule({ options: [kv('priority', r.pick(PRIORITIES))] });
      break;
    case 'trust-policy':
      for (const v of ['yes', 'no', 'Yes']) p.addModule({ options: [kv('trust-policy', v)] });
      break;
    case 'x-init-reserved':
      p.addModule({ options: [kv('x-init-reserved', '')] });
      p.addModule({ options: [kv('x-init-reserved', 'verbose=yes extra')] });
      break;
    case 'unknown-keys':
      anyFile().lines.push(kv('x-trust-lookup', 'pkcs11:library-description=PKCS%2311%20Kit'), kv('whatever', 'kept'));
      p.systemConf.lines.push(kv('x-global-custom', 'kept'), kv('strange key', 'v'));
      break;
    case 'module-values':
      for (const lib of r.shuffle([...FAILING_LIBS, 'absent', 'v3'] as LibKind[]).slice(0, r.int(2, 6))) p.addModule({ lib });
      break;
    case 'relative-module':
      for (let i = r.int(1, 3); i > 0; i--) p.addModule({ lib: r.pick(['relative', 'relative', 'relative-missing'] as const) });
      break;
    case 'remote': {
      if (r.chance(0.5)) p.addModule({ lib: 'absent', options: [kv('remote', r.pick(REMOTES)), kv('managed', 'no')] });
      if (p.fatal === 0 && r.chance(0.3)) {
        p.fatal++; // refused or not, the only possible fatal cause here
        p.addModule({ lib: 'absent', options: [kv('remote', r.pick(REMOTES)), kv('critical', 'yes')] });
      }
      const m = p.addModule({ lib: r.pick(['absent', 'good'] as const) });
      m.files[0].file.lines.push(kv('remote', r.pick(REMOTES)));
      break;
    }
    case 'xdg-config-home':
    case 'home-expansion': {
      const xdg = f === 'xdg-config-home';
      const xdgValue = r.pick([`${ROOT}/xdg`, '']);
      p.env.XDG_CONFIG_HOME = xdg ? xdgValue : r.chance(0.5) ? `${ROOT}/xdg` : undefined;
      const base = xdg ? '~/.config/pkcs11' : r.pick(['~/.config/pkcs11', '~/p11', '~']);
      p.locations.userConfig = `${base}/pkcs11.conf`;
      p.locations.userModules = `${base}/modules`;
      p.userConf.path = rel(expand(p.locations.userConfig, p.env));
      p.dirs.user = rel(expand(p.locations.userModules, p.env));
      p.userConf.lines.push(kv('x-found-user-conf', base));
      p.addModule({ scopes: ['user'], options: [kv('x-found', 'user module via ~')] });
      break;
    }
    case 'no-user-config-env':
      p.env.P11_KIT_NO_USER_CONFIG = r.pick(['', '1']);
      p.userConf.lines.push(kv('x-user-only', 'set'));
      p.addModule({ scopes: ['user'] });
      break;
    case 'user-overrides-key': {
      const m = p.addModule({ scopes: ['system', 'user'], options: [] });
      m.files[0].file.lines.push(kv('x-setting', 'system'), kv('priority', '1'));
      m.files[1].file.lines.push(kv('x-setting', 'user'));
      if (r.chance(0.5)) p.addModule({ scopes: ['package', 'system', 'user'] });
      break;
    }
    case 'user-disables-module': {
      const m = p.addModule({ scopes: ['system', 'user'], options: [kv('x-note', 'disabled by user')] });
      m.files[1].file.lines.push(kv('module', ''));
      break;
    }
    case 'booleans':
      p.addModule({ options: [kv('trust-policy', r.pick(['true', '1', 'YES', 'yes '])), kv('managed', r.pick(['!!!', 'no', 'No']))] });
      p.addModule({ options: [kv('critical', r.pick(['True', 'no', '']))] });
      break;
    case 'nul-byte':
      anyFile().lines.push(kv('x-nul', 'before\0after'));
      anyFile().lines.push(kv('x-\0hidden', 'key cut at NUL'));
      break;
    case 'colons-in-values':
      anyFile().lines.push(kv('x-url', 'http://host:8080/a:b'));
      p.systemConf.lines.push({ kind: 'raw', text: 'x-nospace:value:more' });
      break;
    case 'same-name-in-dir': {
      // foo.module and foo in one directory are one module; their keys are disjoint, so readdir order does not matter.
      const scope = r.pick(SCOPES);
      const name = p.uniqueName();
      p.newFile(`${p.dirOf(scope)}/${name}.module`, [kv('module', p.lib('good')!), kv('x-from', 'suffixed')]);
      p.newFile(`${p.dirOf(scope)}/${name}`, [kv('x-other', 'stray'), kv('priority', '2')]);
      break;
    }
    case 'many-modules':
      for (let i = r.int(8, 16); i > 0; i--) p.addModule({ options: r.chance(0.5) ? [kv('priority', String(r.int(-2, 3)))] : [] });
      break;
    case 'utf8':
      p.addModule({ name: 'café.module', options: [kv('x-text', 'naïve ✓')] });
      p.addModule({ options: [kv('x-ünïcode-key', 'zürich')] });
      // Not UTF-8 at all: Latin-1 é. p11-kit takes file names as bytes.
      p.newFile(`${p.dirOf(r.pick(SCOPES))}/caf\xe9-${p.uniqueName()}.module`, [kv('module', p.lib('good')!)]).bytes = true;
      break;
    case 'config-paths':
      // A config path that is a directory refuses the load (EISDIR); one under a file is missing (ENOTDIR).
      switch (r.int(0, 2)) {
        case 0:
          p.locations.systemConfig = `${ROOT}/etc`;
          p.setFatal({ cause: 'isdir', file: `${ROOT}/etc` });
          break;
        case 1:
          p.locations.userConfig = '~';
          p.setFatal({ cause: 'isdir', file: `${ROOT}/home` }, true);
          break;
        default:
          p.locations.userConfig = `${p.locations.systemConfig}/not-here.conf`;
          p.locations.systemModules = `${p.locations.systemConfig}/modules`;
      }
      break;
    case 'odd-location-paths':
      // Doubled and trailing separators in the configured dirs: p11-kit joins without collapsing inner ones.
      p.locations.systemModules = `${ROOT}//${p.dirs.system}/`;
      p.locations.packageModules = `${ROOT}/${p.dirs.package}//`;
      break;
    case 'no-trailing-newline':
      for (const file of p.files) file.trailingNewline = false;
      break;
  }
}

/** The generator's own ~ expansion, only to know where to write the user files. */
function expand(path: string, env: Record<string, string | undefined>): string {
  if (path !== '~' && !path.startsWith('~/')) return path;
  const rest = path.slice(1);
  if (env.XDG_CONFIG_HOME && (rest === '/.config' || rest.startsWith('/.config/'))) {
    return env.XDG_CONFIG_HOME + rest.slice('/.config'.length);
  }
  return env.HOME + rest;
}

// ---- rendering ------------------------------------------------------------------------------

const SPACES = [' ', '\t', '  ', '\v', '\f', ' \t '];

function render(file: ConfFile, rng: Rng): { text: string; badLine?: number } {
  const out: string[] = [];
  const ws = () => (file.noise && rng.chance(0.2 * file.noise) ? rng.pick(SPACES) : '');
  let badLine: number | undefined;
  file.lines.forEach((line, i) => {
    if (file.noise && rng.chance(0.1 * file.noise)) out.push(rng.pick(['', '# a comment', '   ', '\t# tab comment: x']));
    if (line.kind === 'raw' && line.bad) badLine = out.length + 1;
    if (line.kind === 'raw') out.push(line.noStrip ? line.text : `${ws()}${line.text}${ws()}`);
    else out.push(`${ws()}${line.key}${ws()}:${rng.chance(0.8) ? ' ' : ''}${ws()}${line.value}${line.value ? ws() : ''}`);
  });
  const eol = file.crlf ? '\r\n' : '\n';
  // Lines of a planted PEM block carry their own \n: count them as lines too.
  const text = out.map((l) => l.replace(/\n/g, eol)).join(eol) + (file.trailingNewline || !out.length ? eol : '');
  return { text: out.length ? text : rng.chance(0.5) ? '' : eol, badLine };
}

// ---- building a scenario --------------------------------------------------------------------

export function buildScenario(seed: number, id: number): ScenarioSpec {
  const rng = new Rng((seed ^ Math.imul(id + 1, 0x9e3779b1)) >>> 0);
  const focus = FEATURES[id % FEATURES.length];
  const features: Feature[] = [focus];
  for (let i = rng.int(0, 2); i > 0; i--) {
    const extra = rng.pick(BENIGN);
    if (!features.includes(extra)) features.push(extra);
  }

  const p = new Plan(rng);
  if (rng.chance(0.5)) p.systemConf.lines.push(kv('x-global', rng.pick(['sys', 'with space', ''])));
  if (rng.chance(0.4)) p.userConf.lines.push(kv('x-global', 'user'), kv('x-user-global', 'u'));
  for (let i = rng.int(1, 5); i > 0; i--) p.addModule({ scopes: rng.chance(0.2) ? rng.shuffle([...SCOPES]).slice(0, 2) : undefined });
  for (const f of features) applyFeature(p, f);

  // The default module dirs exist even when empty; relocated ones exist only if something is in them.
  const entries: Entry[] = ['home', 'etc/modules', 'pkg-modules', 'user/modules'].map((path) => ({ kind: 'dir', path }));
  for (const file of p.files) {
    if (!file.lines.length && file !== p.systemConf && file !== p.userConf) continue;
    const { text, badLine } = render(file, rng);
    if (file === p.badFile && p.fatalHint) Object.assign(p.fatalHint, { file: `${ROOT}/${file.path}`, line: badLine });
    entries.push({ kind: 'file', path: file.path, data: text, mode: file.mode, bytes: file.bytes });
  }
  entries.push(...p.extra);

  const moduleKeys = new Set([...WELL_KNOWN_MODULE_KEYS, NEVER_WRITTEN]);
  const globalKeys = new Set([...WELL_KNOWN_GLOBAL_KEYS, NEVER_WRITTEN]);
  for (const file of p.files) {
    const keys = file === p.systemConf || file === p.userConf ? globalKeys : moduleKeys;
    for (const line of file.lines) {
      if (line.kind === 'kv') keys.add(line.key.split('\0')[0]);
      else if (line.text.includes(':')) keys.add(line.text.slice(0, line.text.indexOf(':')).trim());
    }
  }
  return {
    id,
    focus,
    features,
    entries,
    locations: p.locations,
    env: p.env,
    program: p.program,
    moduleKeys: [...moduleKeys],
    globalKeys: [...globalKeys],
    fatal: p.fatal,
    fatalHint: p.fatalHint,
  };
}

export function buildScenarios(seed: number, count: number): ScenarioSpec[] {
  return Array.from({ length: count }, (_, id) => buildScenario(seed, id));
}

// ---- writing a scenario ---------------------------------------------------------------------

const sub = (s: string, root: string) => s.split(ROOT).join(root);

/**
 * Writes the scenario under root (which must exist). Everything is left readable by
 * any uid except what the scenario makes unreadable on purpose, so the same tree
 * serves the root and the unprivileged runs. `fixtureSo` is the module copied per 'lib';
 * other fixtures a 'lib' entry names are taken from the same directory.
 */
export function materialize(spec: ScenarioSpec, root: string, fixtureSo: string): Scenario {
  const modes: [string, number][] = [];
  const mkdir = (dir: string) => mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const e of spec.entries) {
    const path = join(root, e.path);
    switch (e.kind) {
      case 'dir':
        mkdir(path);
        if (e.mode !== undefined) modes.push([path, e.mode]);
        break;
      case 'file': {
        mkdir(dirname(path));
        const data = typeof e.data === 'string' ? Buffer.from(sub(e.data, root)) : e.data;
        const at = e.bytes ? Buffer.concat([Buffer.from(`${root}/`), Buffer.from(e.path, 'latin1')]) : path;
        writeFileSync(at, data, { mode: 0o644 });
        if (e.mode !== undefined) modes.push([path, e.mode]);
        break;
      }
      case 'symlink':
        mkdir(dirname(path));
        symlinkSync(sub(e.target, root), path);
        break;
      case 'lib':
        mkdir(dirname(path));
        copyFileSync(e.fixture ? join(dirname(fixtureSo), e.fixture) : fixtureSo, path);
        chmodSync(path, 0o644);
        break;
    }
  }
  // Unreadable things last, so their contents could be written first.
  for (const [path, mode] of modes) chmodSync(path, mode);
  const locations = Object.fromEntries(
    Object.entries(spec.locations).map(([k, v]) => [k, sub(v, root)]),
  ) as unknown as ScenarioLocations;
  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, v === undefined ? v : sub(v, root)]));
  const fatalHint = spec.fatalHint && {
    ...spec.fatalHint,
    ...(spec.fatalHint.file ? { file: sub(spec.fatalHint.file, root) } : {}),
  };
  return { ...spec, root, locations, env, fatalHint };
}
