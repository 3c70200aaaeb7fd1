// Hostile configuration inputs: a config path that is /dev/zero or a FIFO (nobody writing) is
// read as empty, as p11-kit 0.24 reads /dev/zero (on a FIFO p11-kit waits forever; we do not),
// an oversized file is refused with a named error; all in bounded time and memory.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CONFIG_BYTES } from '../ts/registry/load.js';
import { ORACLE } from './helpers/registry-oracle.js';

const INDEX = join(process.cwd(), 'dist/lib/index.js');
const work = mkdtempSync(join(tmpdir(), 'p11kit-security-inputs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const dir = (name: string) => {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
};
const fifo = (path: string) => spawnSync('mkfifo', [path]).status === 0 || (() => { throw new Error('mkfifo'); })();

/** loadRegistry in a fresh process: its answer, wall time and peak memory. */
function load(systemConfig: string, systemModules: string) {
  const script = `
    const { loadRegistry } = await import(${JSON.stringify(INDEX)});
    let out;
    try {
      const r = loadRegistry({ systemConfig: ${JSON.stringify(systemConfig)}, userConfig: '/nonexistent', packageModules: '/nonexistent',
        systemModules: ${JSON.stringify(systemModules)}, userModules: '/nonexistent', program: 'x', probe: false });
      out = { global: r.global, modules: r.modules.map((m) => m.name), diagnostics: r.diagnostics.map((d) => d.message) };
    } catch (e) { out = { error: e.message }; }
    out.maxRssMb = process.resourceUsage().maxRSS / 1024;
    console.log(JSON.stringify(out));`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { ...JSON.parse(r.stdout || '{}'), ms: Date.now() - t0, stderr: r.stderr };
}

describe('security: configuration files that are not regular files, or too large', () => {
  it('/dev/zero as the system config reads as empty, as in p11-kit 0.24 (oracle)', () => {
    const ours = load('/dev/zero', dir('empty'));
    expect(ours).toMatchObject({ global: {}, modules: [] });
    expect(ours.ms).toBeLessThan(5000);
    expect(ours.maxRssMb).toBeLessThan(300);
    const oracle = spawnSync(ORACLE, ['--system-conf', '/dev/zero', '--user-conf', '/nonexistent', '--package-modules', '/nonexistent',
      '--system-modules', dir('empty'), '--user-modules', '/nonexistent', '--progname', 'x'], { encoding: 'utf8', timeout: 10_000 });
    expect(JSON.parse(oracle.stdout)).toMatchObject({ ok: true, globals: {}, modules: [] });
  });

  it('a FIFO nobody writes, as the system config and among module configs, does not block and reads as empty', () => {
    const conf = join(work, 'conf-fifo');
    fifo(conf);
    const modules = dir('fifo-modules');
    fifo(join(modules, 'hostile.module'));
    writeFileSync(join(modules, 'zero.module'), '');
    const ours = load(conf, modules);
    expect(ours).toMatchObject({ global: {}, modules: [] });
    expect(ours.ms).toBeLessThan(5000);
    expect(ours.maxRssMb).toBeLessThan(300);
  });

  it('entries readdir does not call regular (links to a FIFO, /dev/zero, a directory, a big file) are checked before reading', () => {
    const modules = dir('linked-modules');
    const store = dir('linked-store');
    fifo(join(store, 'fifo'));
    mkdirSync(join(store, 'sub'));
    writeFileSync(join(store, 'real.conf'), 'module: /x/real.so\n');
    symlinkSync(join(store, 'fifo'), join(modules, 'fifo.module'));
    symlinkSync('/dev/zero', join(modules, 'zero.module'));
    symlinkSync(join(store, 'sub'), join(modules, 'dir.module'));
    symlinkSync(join(store, 'real.conf'), join(modules, 'real.module'));
    const ours = load(join(work, 'missing.conf'), modules);
    expect(ours).toMatchObject({ global: {}, modules: ['real'] });
    expect(ours.ms).toBeLessThan(5000);
    expect(ours.maxRssMb).toBeLessThan(300);

    const huge = join(store, 'huge.conf');
    writeFileSync(huge, '');
    truncateSync(huge, 8 * 1024 * 1024 * 1024);
    symlinkSync(huge, join(modules, 'huge.module'));
    const refused = load(join(work, 'missing.conf'), modules);
    expect(refused.error).toMatch(/linked-modules\/huge\.module: couldn't read config file: File too large/);
    expect(refused.maxRssMb).toBeLessThan(300);
    symlinkSync(join(store, 'gone'), join(modules, 'gone.module'));
    rmSync(join(modules, 'huge.module'));
    expect(load(join(work, 'missing.conf'), modules).error).toMatch(/linked-modules\/gone\.module: couldn't stat path: No such file or directory/);
  });

  it('a directory as the system config refuses the load, naming it', () => {
    expect(load(dir('conf-is-dir'), dir('empty')).error).toMatch(/conf-is-dir.*Is a directory/);
  });

  it(`a config larger than ${MAX_CONFIG_BYTES} bytes is refused with the file named, without reading it`, () => {
    const big = join(work, 'big.conf');
    writeFileSync(big, '');
    truncateSync(big, 8 * 1024 * 1024 * 1024); // sparse: 8 GiB that cost nothing to plant
    const ours = load(big, dir('empty'));
    expect(JSON.stringify(ours)).toMatch(/big\.conf.*File too large|File too large.*big\.conf/);
    expect(ours.ms).toBeLessThan(5000);
    expect(ours.maxRssMb).toBeLessThan(300);
  });

  it('a module config readdir calls regular is read without a stat, yet over the cap it is refused with the file named', () => {
    const modules = dir('big-modules');
    writeFileSync(join(modules, 'fine.module'), 'module: /x/fine.so\n');
    writeFileSync(join(modules, 'huge.module'), '');
    truncateSync(join(modules, 'huge.module'), 8 * 1024 * 1024 * 1024);
    const ours = load(join(work, 'missing.conf'), modules);
    expect(ours.error).toMatch(/big-modules\/huge\.module: couldn't read config file: File too large/);
    expect(ours.ms).toBeLessThan(15_000); // generous: a shared machine; reading it all would take far longer
    expect(ours.maxRssMb).toBeLessThan(300);
  });

  it(`a module config of exactly ${MAX_CONFIG_BYTES} bytes loads; one byte more is refused`, () => {
    const sized = (n: number) => {
      const head = 'module: /x/edge.so\nx-filler: ';
      return `${head}${'f'.repeat(n - head.length - 1)}\n`;
    };
    const exact = dir('exact-modules');
    writeFileSync(join(exact, 'edge.module'), sized(MAX_CONFIG_BYTES));
    expect(load(join(work, 'missing.conf'), exact)).toMatchObject({ modules: ['edge'] });
    const over = dir('over-modules');
    writeFileSync(join(over, 'edge.module'), sized(MAX_CONFIG_BYTES + 1));
    expect(load(join(work, 'missing.conf'), over).error).toMatch(/over-modules\/edge\.module: couldn't read config file: File too large/);
  });

  it('JSON on stdin (uri format -) is capped: an endless stream is refused, not buffered', () => {
    const r = spawnSync(process.execPath, [join(process.cwd(), 'dist/lib/cli.js'), 'uri', 'format', '-'], {
      input: Buffer.alloc(3 * 1024 * 1024, 0x20), encoding: 'utf8', timeout: 30_000,
    });
    expect(r.status).toBe(6); // the exit-code table: an input that could not be read
    expect(r.stderr).toMatch(/stdin: more than 1048576 bytes/);
  });
});
