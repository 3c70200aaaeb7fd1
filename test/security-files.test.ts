// Output files in a shared directory (a sticky, world-writable one like /tmp) against another
// local user (uid 65534) who prepared the name first: --trace-file and sign --out never write
// through a symlink, into a FIFO, or into a file someone else created.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeOutputFile } from '../ts/cli/output-file.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const work = mkdtempSync(join(tmpdir(), 'p11kit-security-files-'));
chmodSync(work, 0o755);
const shared = join(work, 'shared');
mkdirSync(shared);
chmodSync(shared, 0o1777);
const secret = join(work, 'root-only');
writeFileSync(secret, 'root only\n', { mode: 0o600 });
afterAll(() => rmSync(work, { recursive: true, force: true }));

function asNobody(...argv: string[]): void {
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} as 65534: ${r.stderr}`);
}

function traceTo(file: string) {
  return spawnSync(process.execPath, [CLI, 'trace', '--trace-file', file, 'uri', 'normalize', 'pkcs11:token=a'], { encoding: 'utf8', timeout: 20_000 });
}

describe('security: --trace-file and sign --out against a prepared name', () => {
  it('a planted symlink is refused and its target untouched (mode and content)', () => {
    const file = join(shared, 'trace-link');
    asNobody('ln', '-s', secret, file);
    const r = traceTo(file);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/trace-link: is a symbolic link; refusing to write it/);
    expect(readFileSync(secret, 'utf8')).toBe('root only\n');
    expect(statSync(secret).mode & 0o777).toBe(0o600);
  });

  it('a file another user created is refused: nothing written into it for them to read', () => {
    const file = join(shared, 'trace-foreign');
    asNobody('sh', '-c', `umask 0; : > ${file}`);
    const r = traceTo(file);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/belongs to another user \(uid 65534\)/);
    expect(statSync(file).size).toBe(0);
  });

  it('a FIFO is refused at once (no wait for a reader)', () => {
    const file = join(shared, 'trace-fifo');
    asNobody('mkfifo', '-m', '666', file);
    const r = traceTo(file);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/is not a regular file/);
  });

  it('a new file is created 0600; an existing file of ours is emptied, reused and made 0600', () => {
    const fresh = join(work, 'trace-new');
    expect(traceTo(fresh).status).toBe(0);
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    const old = join(work, 'trace-old');
    writeFileSync(old, 'x'.repeat(100_000), { mode: 0o644 });
    expect(traceTo(old).status).toBe(0);
    expect(statSync(old).mode & 0o777).toBe(0o600);
    expect(readFileSync(old, 'utf8')).not.toContain('xxxx');
  });

  it('sign --out writes through the same rules (symlink, foreign file refused; own file replaced)', () => {
    const link = join(shared, 'sig-link');
    asNobody('ln', '-s', secret, link);
    expect(() => writeOutputFile(link, Buffer.from('sig'))).toThrow(/symbolic link/);
    const foreign = join(shared, 'sig-foreign');
    asNobody('sh', '-c', `umask 0; : > ${foreign}`);
    expect(() => writeOutputFile(foreign, Buffer.from('sig'))).toThrow(/another user/);
    expect(readFileSync(secret, 'utf8')).toBe('root only\n');
    expect(lstatSync(foreign).size).toBe(0);
    const own = join(work, 'sig-own');
    writeFileSync(own, 'a much longer old signature');
    writeOutputFile(own, Buffer.from('sig'));
    expect(readFileSync(own, 'utf8')).toBe('sig');
  });
});
