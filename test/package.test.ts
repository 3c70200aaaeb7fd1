// The package as users get it: packed, installed into a fresh project, and used from ESM,
// CommonJS and strict TypeScript (node16 and bundler resolution, with negative type tests).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, type PackedProject } from './helpers/packed.js';
import { SOFTHSM_MODULE, createSoftHsm, type SoftHsm } from './helpers/softhsm.js';

const CONSUMERS = new URL('./consumers/', import.meta.url).pathname;
let project: PackedProject;
let hsm: SoftHsm;

beforeAll(() => {
  project = installPacked();
  cpSync(CONSUMERS, project.dir, { recursive: true });
  mkdirSync(join(project.dir, 'empty'));
  hsm = createSoftHsm();
  hsm.initToken('Consumer', '87654321', '123456');
});
afterAll(() => {
  project?.cleanup();
  hsm?.cleanup();
});

function run(file: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [file, ...args], {
    cwd: project.dir,
    env: { ...hsm.env, P11KIT_MODULE: SOFTHSM_MODULE },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the tarball', () => {
  it('holds the library (with CommonJS declarations), the wasm core, the license and the readme, and nothing else', () => {
    const top = new Set(project.files.map((f) => f.split('/').slice(0, f.startsWith('dist/') ? 2 : 1).join('/')));
    expect([...top].sort()).toEqual(['LICENSE', 'README.md', 'dist/cjs-types', 'dist/lib', 'dist/p11kit.wasm', 'package.json']);
    // Source maps would point at ts/ sources that are not shipped.
    expect(project.files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(project.files.filter((f) => /(^|\/)(test|fixtures|native)\//.test(f))).toEqual([]);
    expect(readFileSync(join(project.dir, 'node_modules/p11kit-wasm/LICENSE'), 'utf8')).toMatch(/BSD 3-Clause[\s\S]*the p11kit-wasm authors/);
  });

  it('declares what it runs on', () => {
    expect(project.manifest.os).toEqual(['linux']);
    expect(project.manifest.license).toBe('BSD-3-Clause');
    // require() of an ES module without a flag: Node 20.19 and later.
    expect((project.manifest.engines as Record<string, string>).node).toBe('>=20.19');
  });
});

describe('consumers of the installed package', () => {
  it.each(['esm.mjs', 'cjs.cjs'])('%s: imports, opens a module, lists its slots', (file) => {
    const r = run(file);
    expect(r.out).toContain(`${file.split('.')[0]} ok`);
    expect(r.status).toBe(0);
  });

  it.each(['light.mjs', 'light.cjs'])('%s: p11kit-wasm/uri and p11kit-wasm/registry load no native code', (file) => {
    const r = run(file, join(project.dir, 'empty'));
    expect(r.out).toContain('light ok');
    expect(r.status).toBe(0);
  });

  it.each(['tsconfig.node16.json', 'tsconfig.bundler.json'])('strict TypeScript with %s compiles, and every @ts-expect-error is an error', (config) => {
    const tsc = join(project.dir, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join('ts', config)], { cwd: project.dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('a program that forgets the service close() still exits when done', () => {
    const r = run('forgotten-close.mjs');
    expect(r.out).toContain('forgot close, 16 random bytes');
    expect(r.status).toBe(0);
  });

  it('runs the CLI from node_modules/.bin', () => {
    const out = execFileSync(join(project.dir, 'node_modules/.bin/p11kit'), ['--help'], { cwd: project.dir, encoding: 'utf8' });
    expect(out).toContain('list-modules');
  });
});
