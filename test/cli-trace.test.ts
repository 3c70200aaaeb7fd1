// p11kit trace <command…>, end to end through the built CLI on a SoftHSM2 token: every call
// into the module is logged with decoded arguments and results, the command's own output is
// unchanged, and the PIN never appears — not in the trace on stderr, not in a --trace-file,
// whether it came from --pin-source, the URI's pin-source or a no-echo prompt.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '90817263';
const TOKEN = 'pkcs11:token=cli%20trace';
const KEY = `${TOKEN};object=traced`;
let hsm: SoftHsm;
let tree: ConfTree;
let work: string;
let pinFile: string;
let data: string;

beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('cli trace', '13579', PIN);
  tree = createConfTree();
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  work = mkdtempSync(join(tmpdir(), 'p11kit-cli-trace-'));
  pinFile = join(work, 'pin');
  writeFileSync(pinFile, PIN);
  chmodSync(pinFile, 0o600);
  data = join(work, 'data');
  writeFileSync(data, 'traced data\n');
  const g = cli(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'traced', '--pin-source', pinFile]);
  if (g.status !== 0) throw new Error(`generate-keypair failed: ${g.stderr}`);
});
afterAll(() => {
  tree?.cleanup();
  hsm?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function where(): string[] {
  const r = tree.registry;
  return ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args, ...where()], { env: hsm.env, encoding: 'utf8', timeout: 60_000 });
}

/** The PIN in every form a careless trace could print it: text, hex of its bytes, base64. */
function expectNoPin(text: string): void {
  const bytes = Buffer.from(PIN);
  for (const form of [PIN, bytes.toString('hex'), bytes.toString('base64')]) expect(text).not.toContain(form);
}

const traceLines = (text: string) => text.split('\n').filter((l) => l.startsWith('p11kit trace: softhsm: '));

describe('p11kit trace', () => {
  it('trace list-tokens: the same listing on stdout, every call on stderr with decoded arguments, results and durations', () => {
    const plain = cli(['list-tokens']);
    const traced = cli(['trace', 'list-tokens']);
    expect(traced.status).toBe(0);
    expect(traced.stdout).toBe(plain.stdout);
    expect(plain.stderr).toBe('');
    const lines = traceLines(traced.stderr);
    expect(lines.length).toBe(traced.stderr.trimEnd().split('\n').length); // nothing else on stderr
    expect(lines[0]).toMatch(/^p11kit trace: softhsm: C_Initialize\(options=\{reserved: none\}\) = CKR_OK \[\d+\.\d µs\]$/);
    // list-tokens goes through the proxy's async calls (remote modules are async-only).
    expect(lines).toContainEqual(expect.stringMatching(/C_GetSlotList\(tokenPresent=false\) async = CKR_OK \[[\d.]+ µs\] -> \[\d+(, \d+)*\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/C_GetTokenInfo\(slot=\d+\) async = CKR_OK \[[\d.]+ µs\] -> \{label: "cli trace", .*flags: \d+/));
    expect(lines.at(-1)).toMatch(/C_Finalize\(\) = CKR_OK/);
  });

  it('trace list-mechanisms (modules loaded outside the proxy) names mechanisms and flags', () => {
    const r = cli(['trace', 'list-mechanisms', TOKEN]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('CKM_ECDSA:');
    expect(r.stderr).toMatch(/C_GetMechanismInfo\(slot=\d+, type=CKM_ECDSA\) = CKR_OK/);
  });

  it('trace sign with --pin-source: C_Login shows pin=<redacted>, the signing calls are decoded, the PIN is nowhere', () => {
    const r = cli(['trace', 'sign', KEY, '--in', data, '--pin-source', pinFile]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{128}\n$/);
    expect(r.stderr).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\) async = CKR_OK/);
    expect(r.stderr).toMatch(/C_FindAllObjects\(session=\d+, template=\[CKA_LABEL="traced", CKA_CLASS=CKO_PRIVATE_KEY\]\) async = CKR_OK/);
    expect(r.stderr).toMatch(/C_SignInit\(session=\d+, mechanism=CKM_ECDSA, key=\d+\) async = CKR_OK/);
    expect(r.stderr).toMatch(/C_Sign\(session=\d+, data=<32 bytes, redacted>\) async = CKR_OK \[[\d.]+ µs\] -> <64 bytes /);
    expectNoPin(r.stderr);
    expectNoPin(r.stdout);
  });

  it('a wrong PIN is traced as CKR_PIN_INCORRECT, still redacted, and the command exits 4', () => {
    const wrong = join(work, 'wrong-pin');
    writeFileSync(wrong, '55554444');
    chmodSync(wrong, 0o600);
    const r = cli(['trace', 'list-objects', TOKEN, '--pin-source', wrong]);
    expect(r.stderr).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\) async = CKR_PIN_INCORRECT/);
    expect(r.stderr).not.toContain('55554444');
    const sign = cli(['trace', 'sign', KEY, '--in', data, '--pin-source', wrong]);
    expect(sign.status).toBe(4);
    expect(sign.stderr).not.toContain('55554444');
  });

  it('--trace-file: the trace goes to a 0600 file, stderr keeps only the command\'s own messages; a URI pin-source is redacted too', () => {
    const file = join(work, 'trace.log');
    writeFileSync(file, 'old content\n');
    chmodSync(file, 0o644);
    const uri = `${KEY}?pin-source=${encodeURIComponent(pinFile)}`;
    const r = cli(['trace', '--trace-file', file, 'sign', uri, '--in', data]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const log = readFileSync(file, 'utf8');
    expect(log).not.toContain('old content');
    expect(log).toMatch(/^p11kit trace: softhsm: C_Initialize/);
    expect(log).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\)/);
    expectNoPin(log);
  });

  it('trace generate-keypair: the templates are decoded, the PIN is not', () => {
    const r = cli(['trace', 'generate-keypair', TOKEN, '--type', 'ec', '--label', 'made traced', '--id', '0a0b', '--pin-source', pinFile, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ label: 'made traced', id: '0a0b' });
    expect(r.stderr).toMatch(
      /C_GenerateKeyPair\(session=\d+, mechanism=CKM_EC_KEY_PAIR_GEN, publicTemplate=\[CKA_TOKEN=true, CKA_LABEL="made traced", CKA_ID=<2 bytes 0a0b>, CKA_EC_PARAMS=<10 bytes 06082a8648ce3d030107>, CKA_VERIFY=true\], privateTemplate=\[.*CKA_SENSITIVE=true.*\]\) async = CKR_OK/,
    );
    expectNoPin(r.stderr);
  });

  it('a PIN typed at the no-echo prompt stays out of the trace and off the terminal', async () => {
    const args = [process.execPath, CLI, 'trace', 'sign', KEY, '--in', data, '--login', ...where()];
    const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const p = spawn('script', ['-qec', quoted, '/dev/null'], { env: hsm.env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let typed = false;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (!typed && out.includes('PIN for cli trace: ')) {
        typed = true;
        p.stdin.write(`${PIN}\r`);
      }
    });
    const code = await new Promise((resolve) => p.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\) async = CKR_OK/);
    expect(out).toMatch(/\r\n[0-9a-f]{128}\r\n/);
    expectNoPin(out);
  });

  it('passes the command\'s exit code and usage errors through; needs a command', () => {
    const sig = cli(['sign', KEY, '--in', data, '--pin-source', pinFile]).stdout.trim();
    const flipped = sig.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const bad = cli(['trace', 'verify', KEY, '--in', data, '--signature', flipped]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe('signature: NOT valid\n');
    expect(bad.stderr).toMatch(/C_Verify\(session=\d+, data=<32 bytes, redacted>, signature=<64 bytes [0-9a-f]+…>\) async = CKR_SIGNATURE_INVALID \[[\d.]+ µs\] -> false$/m);
    const good = cli(['trace', 'verify', KEY, '--in', data, '--signature', sig, '--json']);
    expect(good.status).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ valid: true });

    const unknown = cli(['trace', 'no-such-command']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'no-such-command'");
    const none = spawnSync(process.execPath, [CLI, 'trace'], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain("missing required argument 'command'");
    const help = spawnSync(process.execPath, [CLI, 'trace', 'sign', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: p11kit trace sign [options] <key-uri>');
  });
});
