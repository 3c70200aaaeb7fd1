// A reader that stops reading (`p11kit … | head -1`): the CLI drops the rest of its output and
// exits with the status of a writer killed by SIGPIPE, without an unhandled-error stack trace.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist/lib/cli.js');

/** Runs the CLI with its stdout's read end closed before it writes anything. */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('CLI with a reader that went away', () => {
  for (const args of [['--help'], ['uri', 'parse', 'pkcs11:token=a;object=b'], ['uri', 'normalize', '--json', 'pkcs11:token=a']]) {
    it(`p11kit ${args.join(' ')}: status 141, nothing on stderr`, async () => {
      const r = await runWithClosedStdout(args);
      expect(r).toEqual({ code: 141, stderr: '' });
    });
  }
});
