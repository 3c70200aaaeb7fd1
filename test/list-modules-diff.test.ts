// `p11kit list-modules` against the real `p11-kit list-modules` (0.24.1), byte for byte on
// stdout, with the same exit status: on this machine's own configuration, and on generated
// configuration trees of real modules (SoftHSM2 with a token, NSS softokn with and without its
// reserved string, p11-kit-trust, OpenSC) and fixtures. The real tool is pointed at a tree by an
// LD_PRELOAD shim (test/fixtures/p11kit-relocate-shim.c) calling p11_kit_override_system_files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mulberry32 } from './helpers/mulberry32.js';
import { createSoftHsm, SOFTHSM_MODULE } from './helpers/softhsm.js';
import { createNssDb, NSS_SOFTOKN_MODULE } from './helpers/nss.js';

const ROOT = process.cwd();
const FIXTURES = join(ROOT, 'dist/native/fixtures');
const SHIM = join(FIXTURES, 'p11kit-relocate-shim.so');
const CLI = join(ROOT, 'dist/lib/cli.js');
const work = mkdtempSync(join(tmpdir(), 'p11kit-listdiff-'));
const hsm = createSoftHsm({ setEnv: false });
hsm.initToken('diff token', '5678', '1234');
const nss = createNssDb();
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  hsm.cleanup();
  nss.cleanup();
});

const env = { ...process.env, SOFTHSM2_CONF: hsm.conf, P11_KIT_DEBUG: '' };

/** Distinct shared objects for fixture modules (p11-kit identifies modules by library). */
const minis = ['m1', 'm2', 'm3'].map((n) => {
  const path = join(work, `${n}.so`);
  copyFileSync(join(FIXTURES, 'mini-module.so'), path);
  return path;
});

/** What a module file may say besides its name and placement. */
const POOL: string[] = [
  ...minis.map((p) => `module: ${p}\n`),
  `module: ${join(FIXTURES, 'v3-module.so')}\n`,
  `module: ${join(FIXTURES, 'blocking-module.so')}\n`, // C_GetSlotList unsupported: an info error on stderr
  `module: ${SOFTHSM_MODULE}\n`,
  'module: p11-kit-trust.so\nx-init-reserved:\n',
  'module: opensc-pkcs11.so\n',
  `module: ${NSS_SOFTOKN_MODULE}\nx-init-reserved: ${nss.reservedString}\n`,
  `module: ${join(work, 'does-not-exist.so')}\n`,
];
const NAMES = ['alpha', 'Beta', 'gamma', 'Zeta', 'delta', 'epsilon', 'eta', 'theta', 'iota', 'kappa'];
const EXTRAS = ['', '', 'priority: 1\n', 'priority: 5\n', 'priority: -2\n', 'enable-in: p11-kit\n', 'disable-in: p11-kit\n', 'enable-in: someone-else\n'];

interface Tree {
  dir: string;
  files: Record<string, string>;
}

function writeTree(name: string, files: Record<string, string>): Tree {
  const dir = join(work, name);
  for (const sub of ['system', 'package', 'user']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'pkcs11.conf'), files['pkcs11.conf'] ?? '');
  for (const [path, text] of Object.entries(files)) if (path !== 'pkcs11.conf') writeFileSync(join(dir, path), text);
  return { dir, files };
}

function generatedTree(seed: number): Tree {
  const next = mulberry32(seed);
  const pick = <T,>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const names = [...NAMES].sort(() => next() - 0.5);
  const files: Record<string, string> = {};
  POOL.forEach((body, i) => {
    if (next() < 0.35) return;
    files[`${next() < 0.5 ? 'system' : 'package'}/${names[i]}.module`] = body + pick(EXTRAS);
  });
  return writeTree(`seed-${seed}`, files);
}

function realTool(tree?: Tree) {
  const extra = tree
    ? {
        LD_PRELOAD: SHIM,
        P11KIT_SHIM_SYSTEM_CONFIG: join(tree.dir, 'pkcs11.conf'),
        P11KIT_SHIM_USER_CONFIG: join(tree.dir, 'user.conf'),
        P11KIT_SHIM_PACKAGE_MODULES: join(tree.dir, 'package'),
        P11KIT_SHIM_SYSTEM_MODULES: join(tree.dir, 'system'),
        P11KIT_SHIM_USER_MODULES: join(tree.dir, 'user'),
      }
    : {};
  return spawnSync('p11-kit', ['list-modules'], { env: { ...env, ...extra }, encoding: 'utf8' });
}

function ours(tree?: Tree) {
  const where = tree
    ? [
        '--system-config', join(tree.dir, 'pkcs11.conf'), '--user-config', join(tree.dir, 'user.conf'),
        '--package-modules', join(tree.dir, 'package'), '--system-modules', join(tree.dir, 'system'),
        '--user-modules', join(tree.dir, 'user'),
      ]
    : [];
  return spawnSync(process.execPath, [CLI, 'list-modules', '--program', 'p11-kit', ...where], { env, encoding: 'utf8' });
}

function same(tree?: Tree): { stdout: string } {
  const want = realTool(tree);
  const got = ours(tree);
  const label = tree ? JSON.stringify(tree.files, null, 1) : 'machine config';
  expect(got.stdout, label).toBe(want.stdout);
  expect(got.status, `${label}\n${got.stderr}`).toBe(want.status);
  return want;
}

describe('list-modules, byte for byte against p11-kit 0.24.1', () => {
  it("on this machine's own configuration", () => {
    const { stdout } = same();
    expect(stdout).toContain('    library-description: PKCS#11 Kit Trust Module\n');
  });

  it('with tokens of every kind: SoftHSM2 (initialized and free slots), NSS softokn, trust, a 3.0 module', () => {
    const tree = writeTree('all', {
      'system/softhsm.module': `module: ${SOFTHSM_MODULE}\n`,
      'system/nss.module': `module: ${NSS_SOFTOKN_MODULE}\nx-init-reserved: ${nss.reservedString}\npriority: 2\n`,
      'package/trust.module': 'module: p11-kit-trust.so\nx-init-reserved:\n',
      'package/v3.module': `module: ${join(FIXTURES, 'v3-module.so')}\n`,
      'package/opensc.module': 'module: opensc-pkcs11.so\n',
    });
    const { stdout } = same(tree);
    expect(stdout).toContain('    token: diff token\n');
    expect(stdout).toContain('    token: \n'); // SoftHSM's free slot
    expect(stdout).toContain('               so-pin-to-be-changed\n');
    expect(stdout).toContain('    library-manufacturer: Mozilla Foundation\n');
  });

  it('lists a remote: module (p11-kit remote hosting SoftHSM2) with its library and tokens, like p11-kit', () => {
    const tree = writeTree('remote', {
      'system/hsm.module': `remote: |p11-kit remote ${SOFTHSM_MODULE}\n`,
      'system/mini.module': `module: ${minis[0]}\npriority: 1\n`,
    });
    const { stdout } = same(tree);
    expect(stdout).toContain('hsm: (null)\n    library-description: Implementation of PKCS11\n');
    expect(stdout).toContain('    token: diff token\n');
  });

  it('drops a module whose C_Initialize fails, and fails entirely when that module is critical', () => {
    const plain = writeTree('nss-no-args', {
      'system/nss.module': `module: ${NSS_SOFTOKN_MODULE}\n`,
      'system/mini.module': `module: ${minis[0]}\n`,
    });
    expect(same(plain).stdout).toBe(`mini: ${minis[0]}\n    library-description: mini fixture module\n    library-manufacturer: p11kit-wasm tests\n    library-version: 1.2\n`);
    const critical = writeTree('nss-critical', {
      'system/nss.module': `module: ${NSS_SOFTOKN_MODULE}\ncritical: yes\n`,
      'system/mini.module': `module: ${minis[0]}\n`,
    });
    const r = same(critical);
    expect(r.stdout).toBe('');
    expect(ours(critical).status).toBe(1);
  });

  it('on 12 generated trees (names, priorities, enable-in/disable-in, missing libraries)', () => {
    let modulesSeen = 0;
    for (let seed = 1; seed <= 12; seed++) modulesSeen += same(generatedTree(seed * 7919)).stdout.split('\n').filter((l) => /^\S/.test(l)).length;
    expect(modulesSeen).toBeGreaterThan(20);
  });
});
