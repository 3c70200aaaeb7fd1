// The registry commands of the CLI, run as a user would: the built dist/lib/cli.js.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const MINI = join(root, 'dist/native/fixtures/mini-module.so');
const work = mkdtempSync(join(tmpdir(), 'p11kit-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string[] {
  const dir = join(work, name);
  for (const sub of ['system', 'package', 'user']) mkdirSync(join(dir, sub), { recursive: true });
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return [
    '--system-config', join(dir, 'pkcs11.conf'), '--system-modules', join(dir, 'system'),
    '--package-modules', join(dir, 'package'), '--user-config', join(dir, 'user.conf'),
    '--user-modules', join(dir, 'user'), '--program', 'p11kit-test',
  ];
}

const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'dist/lib/cli.js'), ...args], { encoding: 'utf8' });

describe('p11kit print-config / list-modules', () => {
  const a = join(work, 'a.so');
  const b = join(work, 'b.so');
  copyFileSync(MINI, a);
  copyFileSync(MINI, b);

  it('print-config --json prints exactly the merged globals and the modules in load order', () => {
    const args = tree('ok', {
      'pkcs11.conf': 'x-global: g\n',
      'system/alpha.module': `module: ${a}\npriority: 1\nx-note: # not a comment\n`,
      'package/beta.module': `module: ${b}\npriority: 5\n`,
      'system/gamma.module': 'x-only: no module key here\n',
      'package/off.module': `module: ${b}\nenable-in: someone-else\n`,
    });
    const r = cli('print-config', '--json', ...args);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      `${JSON.stringify({
        global: { 'x-global': 'g' },
        modules: [
          { name: 'beta', options: { module: b, priority: '5' } },
          { name: 'alpha', options: { module: a, priority: '1', 'x-note': '# not a comment' } },
        ],
      })}\n`,
    );
    // p11-kit 0.24's layout: name and raw module value, then the library's own info (no slots here).
    const lib = '    library-description: mini fixture module\n    library-manufacturer: p11kit-wasm tests\n    library-version: 1.2\n';
    const list = cli('list-modules', ...args);
    expect(list.stdout).toBe(`beta: ${b}\n${lib}alpha: ${a}\n${lib}`);
  });

  it('a refused configuration: diagnostic with file and line on stderr, exit 1, nothing on stdout', () => {
    const args = tree('bad', { 'system/broken.module': `module: ${a}\nthis line has no colon\n` });
    const r = cli('print-config', '--json', ...args);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${join(work, 'bad/system/broken.module')}:2: invalid field line: no colon`);
  });

  it('a critical module that does not load fails the whole load', () => {
    const args = tree('critical', { 'system/x.module': `module: ${join(work, 'missing.so')}\ncritical: yes\n` });
    const r = cli('list-modules', ...args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/aborting initialization because module 'x' was marked as critical/);
  });

  it('usage errors exit 2', () => {
    expect(cli('list-modules', '--no-such-flag').status).toBe(2);
    expect(cli('no-such-command').status).toBe(2);
  });
});
