// Merge rules of the registry, through the wasm core (and loadRegistry where the file
// system or the load probe matter): spec §1.3–§1.8, the test-conf / test-modules
// checklists of §8 and the config items of §9.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../ts/registry/load.js';
import { RegistryError } from '../ts/registry/types.js';
import { ENV, MOD, PATHS, moduleNameFromFile, runCore, type CoreInput } from './helpers/registry-core.js';
import { FIXTURE_SO } from './helpers/registry-oracle.js';

const MODE = { none: 0, merge: 1, only: 2 };
const names = (input: CoreInput) => runCore(input).modules.map((m) => m.name);

describe('global config (§1.3, §1.6)', () => {
  const system = (mode?: string) => `${mode ? `user-config: ${mode}\n` : ''}key1: system1\nkey2: system2\n`;
  const user = (mode?: string) => `${mode ? `user-config: ${mode}\n` : ''}key2: user2\nkey3: user3\n`;

  it('a missing system file is an empty config, silently, in merge mode', () => {
    const out = runCore({});
    expect(out).toMatchObject({ failed: false, mode: MODE.merge, globals: {}, errors: [], warnings: [] });
  });

  it('merge: user keys win, system keys fill in', () => {
    const out = runCore({ system: system('merge'), user: user() });
    expect(out.mode).toBe(MODE.merge);
    expect(out.globals).toEqual({ key1: 'system1', key2: 'user2', key3: 'user3', 'user-config': 'merge' });
  });

  it('system none: the user file is never read, and cannot re-enable itself', () => {
    const out = runCore({ system: system('none'), user: user('merge') });
    expect(out.asked).toEqual(['systemModules', 'packageModules']);
    expect(out.mode).toBe(MODE.none);
    expect(out.globals).toEqual({ 'user-config': 'none', key1: 'system1', key2: 'system2' });
  });

  it('user only, and its undocumented alias override (§9.2), drop the system keys', () => {
    for (const m of ['only', 'override']) {
      const out = runCore({ system: system(), user: user(m) });
      expect(out.mode).toBe(MODE.only);
      expect(out.globals).toEqual({ 'user-config': m, key2: 'user2', key3: 'user3' });
      expect(out.asked).toEqual(['user', 'userModules']);
    }
  });

  it('system only stays only when the user file is silent', () => {
    const out = runCore({ system: system('only'), user: user() });
    expect(out.mode).toBe(MODE.only);
    expect(out.globals).toEqual({ key2: 'user2', key3: 'user3' });
  });

  it('user none: the system config stands and no user module is read', () => {
    const out = runCore({ system: system(), user: user('none') });
    expect(out.mode).toBe(MODE.none);
    expect(out.globals).toEqual({ key1: 'system1', key2: 'system2' });
    expect(out.asked).toEqual(['user', 'systemModules', 'packageModules']);
  });

  it('an invalid user-config value refuses the load, naming file and line', () => {
    const bad = runCore({ system: 'x: 1\nuser-config: maybe\n' });
    expect(bad.failed).toBe(true);
    expect(bad.errors.map((e) => [e.a, e.num, e.b])).toEqual([[PATHS.system, 2, "invalid mode for 'user-config': maybe"]]);
    const badUser = runCore({ user: '\n\nuser-config: Merge\n' });
    expect(badUser.errors.map((e) => [e.a, e.num, e.b])).toEqual([[PATHS.user, 3, "invalid mode for 'user-config': Merge"]]);
  });

  it('an unreadable user file counts as empty; an unreadable system file refuses', () => {
    for (const io of ['missing', 'denied'] as const) {
      expect(runCore({ system: system(), user: { io } })).toMatchObject({ failed: false, globals: { key1: 'system1' } });
    }
    const sys = runCore({ system: { io: 'denied', text: 'Permission denied' } });
    expect(sys.failed).toBe(true);
    expect(sys.errors[0]).toMatchObject({ a: PATHS.system, b: expect.stringContaining('Permission denied') });
    expect(runCore({ system: system(), user: { io: 'error', text: 'Input/output error' } }).failed).toBe(true);
  });

  it('root, setuid/setgid and P11_KIT_NO_USER_CONFIG all skip user config (§9.1)', () => {
    for (const env of [ENV.root, ENV.setid, ENV.noUserConfig, ENV.root | ENV.noUserConfig]) {
      const out = runCore({ env, system: system('merge'), user: 'user-config: bogus\n', userModules: [['u.module', 'module: /u.so\n']] });
      expect(out.failed).toBe(false);
      expect(out.asked).toEqual(['systemModules', 'packageModules']);
      expect(out.globals).toEqual({ 'user-config': 'merge', key1: 'system1', key2: 'system2' });
      expect(out.modules).toEqual([]);
      expect(out.infos.map((i) => i.b)).toContainEqual(expect.stringMatching(/user configuration ignored/));
    }
  });

  it('a system file saying none needs no reason to skip user config', () => {
    expect(runCore({ env: ENV.root, system: system('none') }).infos).toEqual([]);
  });
});

describe('module file names (§1.5)', () => {
  it.each([
    ['one.module', 'one', true],
    ['a.b.module', 'a.b', true],
    ['a_b-c.module', 'a_b-c', true],
    ['0num.module', '0num', true],
    ['x.module.module', 'x.module', true],
    ['README', 'README', false],
    ['foo.conf', 'foo.conf', false],
    ['.hidden.module', '.hidden.module', false],
    ['x.module~', 'x.module~', false],
    ['x.module.dpkg-old', 'x.module.dpkg-old', false],
    ['_x.module', '_x.module', false],
    ['-x.module', '-x.module', false],
    ['.module', '.module', false],
    ['a b.module', 'a b.module', false],
    ['café.module', 'café.module', false],
    ['UP.MODULE', 'UP.MODULE', false],
    ['plain', 'plain', false],
  ])('%s → %s (clean: %s)', (file, name, clean) => {
    expect(moduleNameFromFile(file)).toEqual([name, clean]);
  });

  it('never writes past a small output buffer', () => {
    expect(moduleNameFromFile('abcdefgh.module', 4)).toEqual(['abc', true]);
    expect(moduleNameFromFile('README', 1)).toEqual(['', false]);
    expect(moduleNameFromFile('one.module', 0)[1]).toBe(true);
  });

  it('a stray file is still a module, named after the whole file name, with a warning (§9.3)', () => {
    const out = runCore({ systemModules: [['README', 'module: /r.so\n'], ['two.badname', 'module: /two.so\n']] });
    expect(out.modules.map((m) => m.name).sort()).toEqual(['README', 'two.badname']);
    expect(out.warnings.map((w) => w.b)).toEqual([
      `invalid config filename, will be ignored in the future: ${PATHS.systemModules}/README`,
      `invalid config filename, will be ignored in the future: ${PATHS.systemModules}/two.badname`,
    ]);
  });

  it('a stray file without key: value syntax refuses everything, naming file and line (§9.3)', () => {
    const out = runCore({ packageModules: [['ok.module', 'module: /ok.so\n'], ['README', 'This directory holds\nmodule configs\n']] });
    expect(out.failed).toBe(true);
    expect(out.modules).toEqual([]);
    expect(out.errors.map((e) => [e.a, e.num, e.b])).toEqual([[`${PATHS.packageModules}/README`, 1, 'invalid field line: no colon']]);
  });

  it('directories are skipped; an entry that cannot be stat()ed refuses everything', () => {
    expect(names({ systemModules: [['sub.module', { io: 'isDir' }], ['a.module', 'module: /a.so\n']] })).toEqual(['a']);
    for (const scope of ['systemModules', 'packageModules', 'userModules'] as const) {
      const out = runCore({ [scope]: [['gone.module', { io: 'statFailed', text: 'No such file or directory' }]] });
      expect(out.failed).toBe(true);
      expect(out.errors[0]).toMatchObject({ a: `${PATHS[scope]}/gone.module`, b: expect.stringContaining("couldn't stat") });
    }
  });
});

describe('module configs (§1.6)', () => {
  // In the spirit of p11-kit's own fixtures: one module in both dirs, a stray name, a user-only module.
  const tree = (systemConf: string): CoreInput => ({
    system: systemConf,
    systemModules: [
      ['one.module', 'module: /lib/one.so\nsetting: system1\ntrust-policy: yes\nnumber: 18\n'],
      ['two.badname', 'module: /lib/two.so\nsetting: system2\n'],
    ],
    userModules: [
      ['one.module', 'setting: user1\nnumber: 33\n'],
      ['three.module', 'module: /lib/three.so\n'],
    ],
  });

  it('merge: user keys over system keys, module inherited from the system file', () => {
    const out = runCore(tree(''));
    expect(out.modules.map((m) => m.name)).toEqual(['one', 'three', 'two.badname']);
    expect(out.modules[0].options).toEqual({ setting: 'user1', number: '33', module: '/lib/one.so', 'trust-policy': 'yes' });
    expect(out.modules[0].flags & MOD.trustPolicy).toBeTruthy();
  });

  it('none: system values only, no user-only module', () => {
    const out = runCore(tree('user-config: none\n'));
    expect(out.modules.map((m) => m.name)).toEqual(['one', 'two.badname']);
    expect(out.modules[0].options.setting).toBe('system1');
  });

  it('only: the system dir is not read at all, so one has no module and is skipped', () => {
    const out = runCore(tree('user-config: only\n'));
    expect(out.modules.map((m) => m.name)).toEqual(['three']);
    expect(out.warnings).toEqual([]);
    expect(out.infos.map((i) => i.b)).toContainEqual(expect.stringMatching(/'one' has no 'module' option/));
  });

  it('a missing user dir in merge mode is like none', () => {
    const { userModules: _, ...noUser } = tree('');
    expect(names(noUser)).toEqual(['one', 'two.badname']);
  });

  it('per key: user > system > package, and the first file read in a dir wins', () => {
    const out = runCore({
      packageModules: [['m.module', 'module: /pkg.so\na: package\nb: package\nc: package\n']],
      systemModules: [['m.module', 'module: /sys.so\na: system\nb: system\n'], ['m', 'b: stray-later\nd: stray\n']],
      userModules: [['m.module', 'a: user\n']],
    });
    expect(out.modules[0].options).toEqual({ a: 'user', module: '/sys.so', b: 'system', d: 'stray', c: 'package' });
  });

  it('a user file with an empty module: switches a system module off (left to the load probe)', () => {
    const out = runCore({ systemModules: [['m.module', 'module: /m.so\n']], userModules: [['m.module', 'module:\n']] });
    expect(out.modules[0].options.module).toBe('');
  });

  it('user dir: unreadable files and an unlistable dir are forgiven, syntax errors are not', () => {
    expect(names({ userModules: [['a.module', { io: 'denied' }], ['b.module', 'module: /b.so\n']] })).toEqual(['b']);
    expect(runCore({ userModules: { io: 'denied', text: 'Permission denied' } }).failed).toBe(false);
    const bad = runCore({ userModules: [['a.module', 'module: /a.so\n[x]\n']] });
    expect(bad.errors.map((e) => [e.a, e.num, e.b])).toEqual([[`${PATHS.userModules}/a.module`, 2, 'unexpected section header']]);
  });

  it('system and package dirs: an unreadable file or unlistable dir refuses everything', () => {
    for (const scope of ['systemModules', 'packageModules'] as const) {
      const file = runCore({ [scope]: [['a.module', { io: 'denied', text: 'Permission denied' }]] });
      expect(file.failed).toBe(true);
      expect(file.errors[0]).toMatchObject({ a: `${PATHS[scope]}/a.module`, b: expect.stringContaining('Permission denied') });
      const dir = runCore({ [scope]: { io: 'denied', text: 'Permission denied' } });
      expect(dir.failed).toBe(true);
      expect(dir.errors[0]).toMatchObject({ a: PATHS[scope] });
      expect(names({ [scope]: { io: 'missing' } })).toEqual([]);
    }
  });

  it('after a refusal nothing is listed, and only the one error is reported', () => {
    const out = runCore({ systemModules: [['a.module', 'broken\n'], ['b.module', 'also broken\n']], packageModules: [['c.module', 'module: /c.so\n']] });
    expect(out.failed).toBe(true);
    expect(out.modules).toEqual([]);
    expect(out.errors).toHaveLength(1);
    expect(out.records.at(-1)).toMatchObject({ tag: 'S', num: 1 });
  });

  it('records the line each option came from', () => {
    const out = runCore({ systemModules: [['m.module', '# c\nmodule: /m.so\n\nx-a: 1\nx-a: 2\n']] });
    expect(out.modules[0].lines).toEqual({ module: 2, 'x-a': 5 });
  });
});

describe('module options (§1.4)', () => {
  const one = (text: string, extra: CoreInput = {}) => runCore({ ...extra, systemModules: [['m.module', `module: /m.so\n${text}`]] });

  it('booleans accept exactly yes and no; anything else is the default, with a warning (§9.5)', () => {
    expect(one('critical: yes\n').modules[0].flags & MOD.critical).toBeTruthy();
    for (const v of ['true', 'Yes', '1', '']) {
      const out = one(`critical: ${v}\ntrust-policy: ${v}\n`);
      expect(out.modules[0].flags & (MOD.critical | MOD.trustPolicy)).toBe(0);
      if (v) expect(out.warnings.map((w) => w.b)).toContainEqual(expect.stringContaining(`invalid setting '${v}'`));
    }
    expect(one('managed: !!!\n').modules[0].flags & MOD.managed).toBeTruthy();
  });

  it('global managed and log-calls override every module (§9.6)', () => {
    const flags = (text: string, global: string) => one(text, { system: global }).modules[0].flags;
    expect(flags('', '') & MOD.managed).toBeTruthy();
    expect(flags('managed: no\n', '') & MOD.managed).toBe(0);
    expect(flags('managed: yes\n', 'managed: no\n') & MOD.managed).toBe(0);
    expect(flags('managed: no\n', 'managed: yes\n') & MOD.managed).toBeTruthy();
    expect(flags('log-calls: yes\n', '') & MOD.logCalls).toBeTruthy();
    expect(flags('log-calls: yes\n', 'log-calls: no\n') & MOD.logCalls).toBe(0);
    expect(flags('', 'log-calls: yes\n') & MOD.logCalls).toBeTruthy();
  });

  it('log-calls is ignored for an unmanaged module, flagged so that a warning follows if it loads', () => {
    const out = one('managed: no\nlog-calls: yes\n');
    expect(out.modules[0].flags & (MOD.logCalls | MOD.managed)).toBe(0);
    expect(out.modules[0].flags & MOD.logUnmanaged).toBeTruthy();
    expect(one('log-calls: yes\n').modules[0].flags & MOD.logUnmanaged).toBe(0);
  });

  it('priority is C atoi()', () => {
    const cases: [string, number][] = [
      ['5', 5], [' 7', 7], ['+3', 3], ['-2', -2], ['5x', 5], ['abc', 0], ['', 0], ['0x10', 0], ['010', 10],
      ['1e3', 1], ['3 4', 3], ['- 5', 0], ['\t9', 9],
      // glibc: strtol saturates at the 64-bit long, then the result is cut to int.
      ['2147483648', -2147483648], ['-2147483649', 2147483647], ['4294967301', 5],
      ['99999999999999999999', -1], ['-99999999999999999999', 0],
    ];
    for (const [value, expected] of cases) expect([value, one(`priority: ${value}\n`).modules[0].priority]).toEqual([value, expected]);
  });

  it('load order: priority descending, then names by bytes (Zeta before alpha)', () => {
    const m = (n: string, p?: number) => [`${n}.module`, `module: /${n}.so\n${p === undefined ? '' : `priority: ${p}\n`}`] as [string, string];
    expect(names({ systemModules: [m('alpha'), m('Zeta'), m('low', -1), m('high', 9), m('beta', 0), m('0num')] })).toEqual([
      'high', '0num', 'Zeta', 'alpha', 'beta', 'low',
    ]);
  });

  it('missing module: skips the module; remote: needs none', () => {
    const out = runCore({ systemModules: [['a.module', 'x-only: 1\n'], ['r.module', 'remote: |/bin/false\n']] });
    expect(out.modules.map((m) => [m.name, m.flags & MOD.remote])).toEqual([['r', MOD.remote]]);
  });

  it('keeps x-init-reserved (empty is not absent) and unknown keys as written', () => {
    const out = one('x-init-reserved:\nx-trust-lookup: pkcs11:foo\nwhatever key: v\n');
    expect(out.modules[0].options).toEqual({ module: '/m.so', 'x-init-reserved': '', 'x-trust-lookup': 'pkcs11:foo', 'whatever key': 'v' });
  });
});

describe('enable-in / disable-in (§1.7)', () => {
  const loads = (opts: string, program?: string, fromProxy = false) =>
    runCore({ program, fromProxy, systemModules: [['m.module', `module: /m.so\n${opts}\n`]] }).modules.length === 1;

  it('matches whole tokens separated by commas and blanks, case-sensitively', () => {
    const list = 'enable-in: chrome,, firefox-bin , firefox';
    expect(loads(list, 'firefox')).toBe(true);
    expect(loads(list, 'firefox-bin')).toBe(true);
    expect(loads(list, 'fire')).toBe(false);
    expect(loads(list, 'Firefox')).toBe(false);
    expect(loads('enable-in: a\tb', 'b')).toBe(true);
    expect(loads('disable-in: firefox', 'firefox')).toBe(false);
    expect(loads('disable-in: firefox', 'firefox-bin')).toBe(true);
  });

  it('without a program name, enable-in never matches and disable-in never excludes', () => {
    expect(loads('enable-in: firefox')).toBe(false);
    expect(loads('enable-in: firefox', '')).toBe(false);
    expect(loads('disable-in: firefox')).toBe(true);
  });

  it('enable-in: p11-kit-proxy alone never loads, not even from the proxy (§9.7)', () => {
    expect(loads('enable-in: p11-kit-proxy', 'firefox', true)).toBe(false);
    expect(loads('enable-in: p11-kit-proxy', 'firefox', false)).toBe(false);
    expect(loads('enable-in: firefox, p11-kit-proxy', 'other', true)).toBe(false);
    expect(loads('enable-in: firefox, p11-kit-proxy', 'firefox', true)).toBe(true);
  });

  it('disable-in: p11-kit-proxy hides the module from the proxy only; prefixes do not match', () => {
    expect(loads('disable-in: p11-kit-proxy', 'firefox', false)).toBe(true);
    expect(loads('disable-in: p11-kit-proxy', 'firefox', true)).toBe(false);
    expect(loads('disable-in: p11-kit-proxy-suffix, x-p11-kit-proxy', 'firefox', true)).toBe(true);
  });

  it('with both options disable-in is ignored, with a warning (§9.8)', () => {
    const out = runCore({ program: 'firefox', systemModules: [['m.module', 'module: /m.so\nenable-in: firefox\ndisable-in: firefox\n']] });
    expect(out.modules.map((m) => m.name)).toEqual(['m']);
    expect(out.warnings.map((w) => w.b)).toEqual(["module 'm' has both enable-in and disable-in options"]);
  });
});

describe('loadRegistry over real files', () => {
  const base = mkdtempSync(join(tmpdir(), 'p11kit-regmerge-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const tree = (name: string, modules: Record<string, string>) => {
    const root = join(base, name);
    mkdirSync(join(root, 'modules'), { recursive: true });
    for (const [file, text] of Object.entries(modules)) writeFileSync(join(root, 'modules', file), text.replaceAll('@', root));
    return {
      systemConfig: join(root, 'none.conf'), userConfig: join(root, 'none.conf'), systemModules: join(root, 'modules'),
      packageModules: join(root, 'none'), userModules: join(root, 'none'), program: 'test', env: {},
    };
  };

  it('two configs of one library are one module (§9.10); which name wins is not determined', () => {
    const opts = tree('dup', { 'a.module': 'module: @/lib.so\n', 'b.module': 'module: @/lib.so\nx: 1\n' });
    copyFileSync(FIXTURE_SO, join(opts.systemModules, '..', 'lib.so'));
    const reg = loadRegistry(opts);
    expect(reg.modules).toHaveLength(1);
    expect(['a', 'b']).toContain(reg.modules[0].name);
  });

  it('refuses with a RegistryError naming file:line and the reason', () => {
    const opts = tree('bad', { 'a.module': 'module: /x.so\n\n[section]\n' });
    const err = (() => {
      try {
        loadRegistry(opts);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).message).toBe(`${opts.systemModules}/a.module:3: unexpected section header`);
  });

  it('warns about log-calls on an unmanaged module only once the module has loaded, as p11-kit does', () => {
    const opts = tree('logcalls', {
      'ok.module': 'module: @/ok.so\nmanaged: no\nlog-calls: yes\n',
      'gone.module': 'module: @/gone.so\nmanaged: no\nlog-calls: yes\n',
      'remote.module': 'remote: |/bin/false\nmanaged: no\nlog-calls: yes\n',
      'off.module': 'module: @/ok.so\nmanaged: no\nlog-calls: yes\nenable-in: other\n',
    });
    copyFileSync(FIXTURE_SO, join(opts.systemModules, '..', 'ok.so'));
    const reg = loadRegistry(opts);
    // The remote one loads (no library to probe), warns, and is then left out as unmanaged.
    expect(reg.modules.map((m) => m.name)).toEqual(['ok']);
    const warned = reg.diagnostics.filter((d) => /only supported for managed modules/.test(d.message)).map((d) => d.message);
    expect(warned.sort()).toEqual([
      "the 'log-calls' option for module 'ok' is only supported for managed modules",
      "the 'log-calls' option for module 'remote' is only supported for managed modules",
    ]);
  });

  it('reads the files afresh on every call (p11-kit caches until every module is released, §9.11)', () => {
    const opts = tree('fresh', { 'a.module': 'module: @/a.so\n' });
    copyFileSync(FIXTURE_SO, join(opts.systemModules, '..', 'a.so'));
    expect(loadRegistry(opts).modules.map((m) => m.name)).toEqual(['a']);
    writeFileSync(join(opts.systemModules, 'a.module'), 'module: /nonexistent.so\n');
    expect(loadRegistry(opts).modules).toEqual([]);
  });
});
