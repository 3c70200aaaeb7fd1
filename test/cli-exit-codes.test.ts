// One exit-code table (ts/cli/exit-codes.ts), obeyed by every command: each command is walked
// through each situation that applies to it, on a SoftHSM2 token behind a configuration tree
// in a temp dir (the profile commands where SoftHSM2 refuses CKO_PROFILE: on the profile
// fixture's tokens, test/fixtures/profile-module.c). A command the table does not list fails the test, so a new command has to say
// how it obeys the table. Plus the conventions around it: --version, -v/-q on either side of
// the command, usage errors in two lines, the login hint.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addProfileModule, createConfTree, treeArgs, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '51627384';
const TOKEN = 'pkcs11:token=exit%20codes';
const KEY = `${TOKEN};object=key`;
const NOPE = 'pkcs11:token=no%20such%20token';

type Situation = 'ok' | 'usage' | 'not found' | 'wrong PIN' | 'token error' | 'file' | 'config refused';
/** The table: what each situation exits with. */
const CODE: Record<Situation, number> = { ok: 0, usage: 2, 'not found': 3, 'wrong PIN': 4, 'token error': 5, file: 6, 'config refused': 7 };
/** p11-kit's own commands exit as p11-kit 0.24 does on a refused configuration. */
const P11KIT_COMPAT: Record<string, Partial<Record<Situation, number>>> = { 'print-config': { 'config refused': 1 }, 'list-modules': { 'config refused': 1 } };

/** Commands whose success this table cannot show, and the suite that does. */
const NO_OK_ROW: Record<string, string> = {
  server: 'serves until a signal; started, used and stopped in test/server-interop.test.ts',
};

let hsm: SoftHsm;
let tree: ConfTree;
let broken: ConfTree;
/** test/fixtures/profile-module.c's tokens, which take the CKO_PROFILE objects SoftHSM2 refuses. */
let profiles: ConfTree;
let work: string;
let pinFile: string;
let wrongPin: string;
let data: string;
let signature: string;
let secret16: string;

function p11kit(args: string[], opts: { tree?: ConfTree | null; input?: string } = {}) {
  const t = opts.tree === undefined ? tree : opts.tree;
  const r = spawnSync(process.execPath, [CLI, ...args, ...(t ? treeArgs(t) : [])], { env: hsm.env, input: opts.input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function secretFile(name: string, content: string): string {
  const path = join(work, name);
  writeFileSync(path, content);
  chmodSync(path, 0o600);
  return path;
}

interface Row {
  command: string;
  situation: Situation;
  args: () => string[];
  /** Commands that read no configuration take no registry options. */
  registry?: false;
  /** Run on the profile fixture's tree instead of SoftHSM2's. */
  profiles?: true;
  input?: string;
}

const pin = () => ['--pin-source', pinFile];
const rows: Row[] = [
  { command: 'print-config', situation: 'ok', args: () => ['print-config'] },
  { command: 'print-config', situation: 'usage', args: () => ['print-config', '--bogus'] },
  { command: 'print-config', situation: 'config refused', args: () => ['print-config'] },

  { command: 'list-modules', situation: 'ok', args: () => ['list-modules'] },
  { command: 'list-modules', situation: 'usage', args: () => ['list-modules', 'extra-argument'] },
  { command: 'list-modules', situation: 'config refused', args: () => ['list-modules'] },

  { command: 'list-tokens', situation: 'ok', args: () => ['list-tokens', TOKEN] },
  { command: 'list-tokens', situation: 'usage', args: () => ['list-tokens', 'not-a-uri'] },
  { command: 'list-tokens', situation: 'not found', args: () => ['list-tokens', NOPE] },
  { command: 'list-tokens', situation: 'config refused', args: () => ['list-tokens'] },

  { command: 'list-mechanisms', situation: 'ok', args: () => ['list-mechanisms', TOKEN] },
  { command: 'list-mechanisms', situation: 'usage', args: () => ['list-mechanisms'] },
  { command: 'list-mechanisms', situation: 'not found', args: () => ['list-mechanisms', NOPE] },
  { command: 'list-mechanisms', situation: 'config refused', args: () => ['list-mechanisms', TOKEN] },

  { command: 'list-objects', situation: 'ok', args: () => ['list-objects', TOKEN, ...pin()] },
  { command: 'list-objects', situation: 'usage', args: () => ['list-objects', 'pkcs11:id=%G1'] },
  { command: 'list-objects', situation: 'not found', args: () => ['list-objects', NOPE] },
  { command: 'list-objects', situation: 'not found', args: () => ['list-objects', `${TOKEN};object=nothing`, ...pin()] },
  { command: 'list-objects', situation: 'wrong PIN', args: () => ['list-objects', TOKEN, '--pin-source', wrongPin] },
  { command: 'list-objects', situation: 'config refused', args: () => ['list-objects', TOKEN] },

  { command: 'uri parse', situation: 'ok', registry: false, args: () => ['uri', 'parse', TOKEN] },
  { command: 'uri parse', situation: 'usage', registry: false, args: () => ['uri', 'parse', 'pkcs11:token=%zz'] },
  { command: 'uri format', situation: 'ok', registry: false, args: () => ['uri', 'format', '{"token":"A"}'] },
  { command: 'uri format', situation: 'usage', registry: false, args: () => ['uri', 'format', '{token:1}'] },
  { command: 'uri normalize', situation: 'ok', registry: false, args: () => ['uri', 'normalize', TOKEN] },
  { command: 'uri normalize', situation: 'usage', registry: false, args: () => ['uri', 'normalize'] },

  { command: 'generate-keypair', situation: 'ok', args: () => ['generate-keypair', TOKEN, '--type', 'ec', '--label', 'another', ...pin()] },
  { command: 'generate-keypair', situation: 'usage', args: () => ['generate-keypair', TOKEN, '--type', 'dsa', '--label', 'x', ...pin()] },
  { command: 'generate-keypair', situation: 'not found', args: () => ['generate-keypair', NOPE, '--type', 'ec', '--label', 'x', ...pin()] },
  { command: 'generate-keypair', situation: 'wrong PIN', args: () => ['generate-keypair', TOKEN, '--type', 'ec', '--label', 'x', '--pin-source', wrongPin] },
  { command: 'generate-keypair', situation: 'config refused', args: () => ['generate-keypair', TOKEN, '--type', 'ec', '--label', 'x', ...pin()] },

  { command: 'sign', situation: 'ok', args: () => ['sign', KEY, '--in', data, ...pin()] },
  { command: 'sign', situation: 'usage', args: () => ['sign', KEY, '--in', data, '--format', 'pem', ...pin()] },
  { command: 'sign', situation: 'not found', args: () => ['sign', `${TOKEN};object=nothing`, '--in', data, ...pin()] },
  { command: 'sign', situation: 'wrong PIN', args: () => ['sign', KEY, '--in', data, '--pin-source', wrongPin] },
  { command: 'sign', situation: 'token error', args: () => ['sign', KEY, '--in', data, '--mechanism', 'ECDSA-SHA256', ...pin()] },
  { command: 'sign', situation: 'file', args: () => ['sign', KEY, '--in', data, '--out', join(work, 'no-dir', 'sig'), ...pin()] },
  { command: 'sign', situation: 'config refused', args: () => ['sign', KEY, '--in', data, ...pin()] },

  { command: 'verify', situation: 'ok', args: () => ['verify', KEY, '--in', data, '--signature', signature] },
  { command: 'verify', situation: 'usage', args: () => ['verify', KEY, '--in', data] },
  { command: 'verify', situation: 'not found', args: () => ['verify', `${TOKEN};object=nothing`, '--in', data, '--signature', signature] },
  { command: 'verify', situation: 'token error', args: () => ['verify', KEY, '--in', data, '--mechanism', 'ECDSA-SHA256', '--signature', signature] },
  { command: 'verify', situation: 'file', args: () => ['verify', KEY, '--in', join(work, 'no-such-file'), '--signature', signature] },
  { command: 'verify', situation: 'config refused', args: () => ['verify', KEY, '--in', data, '--signature', signature] },

  { command: 'import-object', situation: 'ok', args: () => ['import-object', TOKEN, '--file', secret16, '--secret', 'aes', '--label', 'imported', ...pin()] },
  { command: 'import-object', situation: 'usage', args: () => ['import-object', TOKEN, '--file', secret16, '--secret', 'aes', '--id', 'zz', ...pin()] },
  { command: 'import-object', situation: 'not found', args: () => ['import-object', NOPE, '--file', secret16, '--secret', 'aes', ...pin()] },
  { command: 'import-object', situation: 'wrong PIN', args: () => ['import-object', TOKEN, '--file', secret16, '--secret', 'aes', '--pin-source', wrongPin] },
  { command: 'import-object', situation: 'file', args: () => ['import-object', TOKEN, '--file', join(work, 'no-such-file'), ...pin()] },
  { command: 'import-object', situation: 'config refused', args: () => ['import-object', TOKEN, '--file', secret16, '--secret', 'aes', ...pin()] },

  { command: 'export-object', situation: 'ok', args: () => ['export-object', `${KEY};type=public`] },
  { command: 'export-object', situation: 'usage', args: () => ['export-object', 'not-a-uri'] },
  { command: 'export-object', situation: 'not found', args: () => ['export-object', `${TOKEN};object=nothing`] },
  { command: 'export-object', situation: 'token error', args: () => ['export-object', `${TOKEN};object=imported`, ...pin()] },
  { command: 'export-object', situation: 'config refused', args: () => ['export-object', `${KEY};type=public`] },

  { command: 'delete-object', situation: 'ok', args: () => ['delete-object', `${TOKEN};object=doomed;type=public`, ...pin()] },
  { command: 'delete-object', situation: 'usage', args: () => ['delete-object', 'not-a-uri'] },
  { command: 'delete-object', situation: 'not found', args: () => ['delete-object', `${TOKEN};object=nothing`, ...pin()] },
  { command: 'delete-object', situation: 'wrong PIN', args: () => ['delete-object', `${TOKEN};object=doomed;type=private`, '--pin-source', wrongPin] },
  { command: 'delete-object', situation: 'config refused', args: () => ['delete-object', `${TOKEN};object=doomed;type=private`, ...pin()] },

  { command: 'list-profiles', situation: 'ok', args: () => ['list-profiles', TOKEN] },
  { command: 'list-profiles', situation: 'usage', args: () => ['list-profiles', 'not-a-uri'] },
  { command: 'list-profiles', situation: 'not found', args: () => ['list-profiles', NOPE] },
  { command: 'list-profiles', situation: 'config refused', args: () => ['list-profiles', TOKEN] },

  { command: 'add-profile', situation: 'ok', profiles: true, args: () => ['add-profile', 'pkcs11:token=first', '--profile', 'baseline-provider'] },
  { command: 'add-profile', situation: 'not found', profiles: true, args: () => ['add-profile', 'pkcs11:token=sealed', '--profile', 'baseline-provider'] },
  { command: 'add-profile', situation: 'usage', args: () => ['add-profile', TOKEN, '--profile', 'no-such-profile', ...pin()] },
  { command: 'add-profile', situation: 'token error', args: () => ['add-profile', TOKEN, '--profile', 'baseline-provider', ...pin()] },
  { command: 'add-profile', situation: 'wrong PIN', args: () => ['add-profile', TOKEN, '--profile', 'baseline-provider', '--pin-source', wrongPin] },
  { command: 'add-profile', situation: 'config refused', args: () => ['add-profile', TOKEN, '--profile', 'baseline-provider', ...pin()] },

  { command: 'delete-profile', situation: 'ok', args: () => ['delete-profile', TOKEN, '--profile', 'baseline-provider', ...pin()] },
  { command: 'delete-profile', situation: 'not found', profiles: true, args: () => ['delete-profile', 'pkcs11:token=sealed', '--profile', 'public-certificates-token'] },
  { command: 'delete-profile', situation: 'usage', args: () => ['delete-profile', TOKEN, '--profile', 'no-such-profile', ...pin()] },
  { command: 'delete-profile', situation: 'config refused', args: () => ['delete-profile', TOKEN, '--profile', 'baseline-provider', ...pin()] },

  { command: 'server', situation: 'usage', args: () => ['server', '--mode', '9z'] },
  { command: 'server', situation: 'config refused', args: () => ['server'] },

  { command: 'trace', situation: 'ok', args: () => ['trace', '--trace-file', join(work, 'trace.log'), 'list-tokens', TOKEN] },
  { command: 'trace', situation: 'usage', registry: false, args: () => ['trace'] },
  { command: 'trace', situation: 'not found', args: () => ['trace', '--trace-file', join(work, 'trace.log'), 'list-tokens', NOPE] },
  { command: 'trace', situation: 'wrong PIN', args: () => ['trace', '--trace-file', join(work, 'trace.log'), 'list-objects', TOKEN, '--pin-source', wrongPin] },
  { command: 'trace', situation: 'file', args: () => ['trace', '--trace-file', join(work, 'no-dir', 'trace.log'), 'list-tokens'] },
  { command: 'trace', situation: 'config refused', args: () => ['trace', '--trace-file', join(work, 'trace.log'), 'list-tokens'] },
];

beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('exit codes', '97531', PIN);
  tree = createConfTree();
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  broken = createConfTree();
  broken.module('softhsm', `module: ${SOFTHSM_MODULE}\nthis line has no colon\n`);
  profiles = createConfTree();
  addProfileModule(profiles, join(profiles.dir, 'profiles.store'));
  work = mkdtempSync(join(tmpdir(), 'p11kit-exit-codes-'));
  pinFile = secretFile('pin', `${PIN}\n`);
  wrongPin = secretFile('wrong-pin', '00000000\n');
  data = join(work, 'data');
  writeFileSync(data, 'exit codes\n');
  const made = p11kit(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'key', ...pin()]);
  if (made.status !== 0) throw new Error(made.stderr);
  signature = p11kit(['sign', KEY, '--in', data, ...pin()]).stdout.trim();
  secret16 = join(work, 'secret16');
  writeFileSync(secret16, new Uint8Array(16).fill(7));
  const doomed = p11kit(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'doomed', ...pin()]);
  if (doomed.status !== 0) throw new Error(doomed.stderr);
});
afterAll(() => {
  tree?.cleanup();
  broken?.cleanup();
  profiles?.cleanup();
  hsm?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the exit-code table', () => {
  it('covers every command the CLI has, each with success and a usage error', () => {
    const help = p11kit(['--help'], { tree: null }).stdout;
    const listed = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    const uriHelp = p11kit(['uri', '--help'], { tree: null }).stdout;
    const uriSubs = [...uriHelp.slice(uriHelp.indexOf('Commands:')).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => `uri ${m[1]}`).filter((c) => c !== 'uri help');
    const commands = [...listed.filter((c) => c !== 'uri'), ...uriSubs];
    expect(commands.length).toBeGreaterThanOrEqual(12);
    for (const c of commands) {
      const must = c in NO_OK_ROW ? ['usage'] : ['ok', 'usage'];
      expect(rows.filter((r) => r.command === c).map((r) => r.situation), c).toEqual(expect.arrayContaining(must));
      if (rows.some((r) => r.command === c && r.registry !== false && r.situation === 'ok')) {
        expect(rows.some((r) => r.command === c && r.situation === 'config refused'), `${c} reads the configuration`).toBe(true);
      }
    }
  });

  it.each(rows.map((r) => [r.command, r.situation, r] as const))('%s, %s', (command, situation, row) => {
    const r = p11kit(row.args(), { tree: row.registry === false ? null : situation === 'config refused' ? broken : row.profiles ? profiles : tree, input: row.input });
    const want = P11KIT_COMPAT[command]?.[situation] ?? CODE[situation];
    expect(r.status, `${command} ${situation}\n${r.stderr}`).toBe(want);
    if (want === 0) return;
    // A failure says what went wrong, on stderr, once; never a stack trace, never the PIN.
    expect(r.stderr).toMatch(/\S/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toContain(PIN);
    expect(r.stderr).not.toContain('p11kit: p11kit-wasm:');
    if (situation === 'usage') {
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
    }
    if (situation === 'not found') expect(r.stdout).toBe('');
  });
});

describe('conventions', () => {
  it('--version prints the package version', () => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    const r = p11kit(['--version'], { tree: null });
    expect([r.status, r.stdout]).toEqual([0, `${version}\n`]);
  });

  it('-v and -q work before or after the command, as with p11-kit', () => {
    tree.module('stray', 'module: nothing.so\n');
    writeFileSync(join(tree.registry.systemModules!, 'not-a-module.txt'), 'module: x.so\n');
    const after = p11kit(['print-config', '-v']);
    const before = p11kit(['-v', 'print-config']);
    expect(after.stderr).toMatch(/invalid config filename/);
    expect(before.stderr).toBe(after.stderr);
    expect(before.stdout).toBe(after.stdout);
    expect(p11kit(['print-config']).stderr).toBe('');
    for (const args of [['-q', 'print-config', '-v'], ['print-config', '-v', '-q'], ['-v', '-q', 'print-config']]) expect(p11kit(args).stderr, args.join(' ')).toBe('');
    // Commands that never had -v take it too.
    expect(p11kit(['uri', 'parse', '-v', TOKEN], { tree: null }).status).toBe(0);
    expect(p11kit(['-q', 'uri', 'parse', TOKEN], { tree: null }).status).toBe(0);
    rmSync(join(tree.registry.systemModules!, 'not-a-module.txt'));
    rmSync(join(tree.registry.systemModules!, 'stray.module'));
  });

  it('usage errors point at --help instead of printing it', () => {
    const r = p11kit(['sign', '--no-such-flag'], { tree: null });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("error: unknown option '--no-such-flag'\n(see 'p11kit sign --help')\n");
  });

  it('list-objects that shows nothing for want of a login says so (and -q keeps quiet)', () => {
    const r = p11kit(['list-objects', `${TOKEN};type=private`]);
    expect(r.status).toBe(3); // the URI names objects, and none is visible
    expect(r.stderr).toContain('p11kit: hint: private objects are listed only after login');
    const token = p11kit(['list-objects', `${TOKEN};type=private`, '-q']);
    expect(token.stderr).not.toContain('hint');
    const logged = p11kit(['list-objects', `${TOKEN};type=private`, ...pin()]);
    expect(logged.status).toBe(0);
    expect(logged.stdout).toContain('class: private-key');
    expect(logged.stderr).toBe('');
  });
});
