// Docs are tests: every fenced block of README.md runs verbatim in a project that installed
// the packed tarball, against a fresh SoftHSM2 token (user PIN in P11KIT_PIN, as the README
// says). A block not meant to run says `no-run` in its fence; any other fence is refused, so
// a new block can't slip in untested.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, type PackedProject } from './helpers/packed.js';
import { createSoftHsm, type SoftHsm } from './helpers/softhsm.js';

interface Block {
  line: number;
  lang: string;
  flags: string[];
  code: string;
}

/** How each language runs: the file it is written to and the command that runs it. */
const RUNNERS: Record<string, { file: string; argv: (file: string) => string[] }> = {
  js: { file: 'block.mjs', argv: (f) => [process.execPath, f] },
  cjs: { file: 'block.cjs', argv: (f) => [process.execPath, f] },
  sh: { file: 'block.sh', argv: (f) => ['bash', '-euo', 'pipefail', f] },
};
const FLAGS = new Set(['no-run']);
const PIN = '246810';

function readmeBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [lang = '', ...flags] = open[3].trim().split(/\s+/).filter(Boolean);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].trimStart().startsWith(open[2]); i++) body.push(lines[i]);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: the block never closes`);
    blocks.push({ line: start + 1, lang, flags, code: `${body.join('\n')}\n` });
  }
  return blocks;
}

const blocks = readmeBlocks(readFileSync(new URL('../README.md', import.meta.url), 'utf8'));
let project: PackedProject;
let hsm: SoftHsm;

beforeAll(() => {
  project = installPacked();
  hsm = createSoftHsm();
  hsm.initToken('README', '13579246', PIN);
});
afterAll(() => {
  project?.cleanup();
  hsm?.cleanup();
});

describe('README.md', () => {
  it('has runnable blocks, and every fence is one the harness knows', () => {
    const unknown = blocks.filter((b) => !RUNNERS[b.lang] || b.flags.some((f) => !FLAGS.has(f)));
    expect(unknown.map((b) => `README.md:${b.line}: \`\`\`${[b.lang, ...b.flags].join(' ')}`)).toEqual([]);
    expect(blocks.filter((b) => !b.flags.includes('no-run')).length).toBeGreaterThanOrEqual(2);
  });

  it('refuses a fence it does not know', () => {
    const [b] = readmeBlocks('```text\nx\n```\n');
    expect(RUNNERS[b.lang]).toBeUndefined();
    expect(() => readmeBlocks('```js\nnever closed\n')).toThrow(/never closes/);
  });

  it.each(blocks.filter((b) => !b.flags.includes('no-run')).map((b) => [b.line, b] as const))(
    'the block at line %i runs verbatim and exits 0',
    (_line, b) => {
      const runner = RUNNERS[b.lang];
      const file = join(project.dir, runner.file);
      writeFileSync(file, b.code);
      const [cmd, ...args] = runner.argv(file);
      const r = spawnSync(cmd, args, {
        cwd: project.dir,
        env: { ...hsm.env, P11KIT_PIN: PIN, PATH: `${join(project.dir, 'node_modules/.bin')}:${process.env.PATH}` },
        encoding: 'utf8',
        // A block that never ends (a loop nobody stops, a service nobody closes) fails here.
        timeout: 60_000,
      });
      expect(r.error, r.stderr).toBeUndefined();
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );
});
