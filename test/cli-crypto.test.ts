// p11kit generate-keypair / sign / verify, run as a user would (the built dist/lib/cli.js) on a
// SoftHSM2 token in a temp dir with a configuration tree in a temp dir. Signatures are checked
// both ways: by `p11kit verify` on the token and by node:crypto from the printed public key.
// PINs come from 0600 files (or a prompt on a real pty), never from the child's command line,
// except in the one test that proves --pin-value is wiped from /proc/PID/cmdline.
import { spawn, spawnSync } from 'node:child_process';
import { constants, createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '73519864';
const TOKEN = 'pkcs11:token=cli%20crypto';
let hsm: SoftHsm;
let tree: ConfTree;
let work: string;
let pinFile: string;
let data: string;

beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('cli crypto', '24680', PIN);
  hsm.initToken('second token', '24680', PIN);
  tree = createConfTree();
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  work = mkdtempSync(join(tmpdir(), 'p11kit-cli-crypto-'));
  pinFile = file('pin.txt', `${PIN}\n`);
  chmodSync(pinFile, 0o600);
  data = file('data.txt', 'the quick brown fox\n'.repeat(5000)); // 100 kB: several parts for token-side hashing
  // The keys the sign and verify tests use (generate-keypair's own tests make more).
  ec = generate('--type', 'ec', '--label', 'ec key');
  rsa = generate('--type', 'rsa', '--label', 'rsa key');
  other = generate('--type', 'ec', '--label', 'other ec key');
});
afterAll(() => {
  tree?.cleanup();
  hsm?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function file(name: string, content: string | Uint8Array): string {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
}

function where(t: ConfTree = tree): string[] {
  const r = t.registry;
  return ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
}

function cli(args: string[], input?: string | Uint8Array) {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  return spawnSync(process.execPath, [CLI, ...args, ...where()], { env: hsm.env, input: bytes, encoding: 'buffer', timeout: 60_000 });
}
const text = (b: Buffer) => b.toString('utf8');

interface Generated {
  token: string;
  type: string;
  label: string;
  id: string;
  privateKey: string;
  publicKey: string;
  publicKeyPem: string;
  curve?: string;
  bits?: number;
}

function generate(...args: string[]): Generated {
  const r = cli(['generate-keypair', TOKEN, '--pin-source', pinFile, '--json', ...args]);
  expect(text(r.stderr)).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(text(r.stdout)) as Generated;
}

const ecUri = `${TOKEN};object=ec%20key`;
const rsaUri = `${TOKEN};object=rsa%20key`;
let ec: Generated;
let rsa: Generated;
let other: Generated;

describe('generate-keypair', () => {
  it('makes an EC P-256 pair and prints its URIs in human form (id: SHA-1 of the EC point)', () => {
    const r = cli(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'ec human', '--pin-source', pinFile]);
    expect(text(r.stderr)).toBe(''); // no progress when stderr is not a terminal
    expect(r.status).toBe(0);
    const lines = text(r.stdout).trimEnd().split('\n');
    expect(lines[0]).toBe('generated: EC P-256 key pair "ec human" on token "cli crypto"');
    const id = /^id: ((?:[0-9a-f]{2}:){19}[0-9a-f]{2})$/.exec(lines[3])?.[1];
    expect(id).toBeDefined();
    const pct = id!.split(':').map((b) => `%${b.toUpperCase()}`).join('');
    expect(lines[1]).toMatch(new RegExp(`^private: pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=cli%20crypto;id=${pct};object=ec%20human;type=private$`));
    expect(lines[2]).toBe(lines[1].replace('private: ', 'public: ').replace('type=private', 'type=public'));

    // The keys are on the token, as list-objects sees them after login.
    const listed = text(cli(['list-objects', `${TOKEN};object=ec%20human`, '--pin-source', pinFile]).stdout);
    expect(listed).toContain('class: private-key');
    expect(listed).toContain('class: public-key');
    expect(listed).toContain(`id: ${id}`);
  });

  it('--json: exactly the documented fields; --id and --curve p384 are honoured', () => {
    const g = generate('--type', 'ec', '--curve', 'p384', '--label', 'ec384', '--id', 'A1:b2:03');
    expect(Object.keys(g).sort()).toEqual(['curve', 'id', 'label', 'privateKey', 'publicKey', 'publicKeyPem', 'token', 'type']);
    expect(g).toMatchObject({ type: 'ec', curve: 'p384', label: 'ec384', id: 'a1b203' });
    expect(g.token).toMatch(/^pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=cli%20crypto$/);
    expect(g.privateKey).toBe(`${g.token};id=%A1%B2%03;object=ec384;type=private`);
    expect(g.publicKey).toBe(`${g.token};id=%A1%B2%03;object=ec384;type=public`);
    expect(createPublicKey(g.publicKeyPem).asymmetricKeyDetails).toEqual({ namedCurve: 'secp384r1' });
  });

  it('makes RSA pairs of the default 2048 bits and of --bits', () => {
    expect(rsa).toMatchObject({ type: 'rsa', bits: 2048, label: 'rsa key' });
    expect(createPublicKey(rsa.publicKeyPem).asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    const small = generate('--type', 'rsa', '--bits', '1024', '--label', 'rsa small');
    expect(createPublicKey(small.publicKeyPem).asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(ec).toMatchObject({ type: 'ec', curve: 'p256', label: 'ec key' });
    expect(createPublicKey(ec.publicKeyPem).asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
  });

  it('bad options fail before any module is touched, with exit code 2', () => {
    const run = (...args: string[]) => cli(['generate-keypair', TOKEN, '--pin-source', pinFile, ...args]);
    const cases: [string[], string][] = [
      [['--type', 'dsa', '--label', 'x'], "--type: ec or rsa, not 'dsa'"],
      [['--type', 'ec', '--curve', 'p521', '--label', 'x'], "unknown curve 'p521'"],
      [['--type', 'ec', '--bits', '2048', '--label', 'x'], '--bits is for RSA keys'],
      [['--type', 'rsa', '--bits', 'many', '--label', 'x'], "--bits: not a key size: 'many'"],
      [['--type', 'ec', '--label', 'x', '--id', 'xyz'], "--id: not hex bytes: 'xyz'"],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(text(r.stderr)).toContain(message);
    }
    const noLabel = run('--type', 'ec');
    expect(noLabel.status).toBe(2);
    expect(text(noLabel.stderr)).toContain("required option '--label <label>' not specified");
    // The token's own limits: SoftHSM makes RSA keys of 512-16384 bits.
    const tooBig = run('--type', 'rsa', '--bits', '20000', '--label', 'x');
    expect(tooBig.status).toBe(2);
    expect(text(tooBig.stderr)).toContain('--bits 20000: token "cli crypto" makes RSA keys of 512-16384 bits');
  });

  it('exit codes: no token 3, several tokens 3, no PIN 4, wrong PIN 4, refused PIN source 4', () => {
    const none = cli(['generate-keypair', 'pkcs11:token=nope', '--type', 'ec', '--label', 'x', '--pin-source', pinFile]);
    expect(none.status).toBe(3);
    expect(text(none.stderr)).toBe('p11kit: no token matches pkcs11:token=nope\n');
    const several = cli(['generate-keypair', 'pkcs11:model=SoftHSM%20v2', '--type', 'ec', '--label', 'x', '--pin-source', pinFile]);
    expect(several.status).toBe(3);
    // Both initialized tokens and SoftHSM's free slot's token match the model.
    // (In SoftHSM's slot order, which follows its token directory's listing: any order here.)
    const [head, ...candidates] = text(several.stderr).trimEnd().split('\n');
    expect(head).toBe('p11kit: 3 tokens match pkcs11:model=SoftHSM%20v2; name one:');
    expect(candidates.map((l) => l.replace(/^ {4}pkcs11:.*token=/, '')).sort()).toEqual(['', 'cli%20crypto', 'second%20token']);
    for (const l of candidates) expect(l).toMatch(/^ {4}pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]*;token=/);
    const noPin = cli(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'x']);
    expect(noPin.status).toBe(4);
    expect(text(noPin.stderr)).toContain('token "cli crypto" needs the user PIN to create keys');
    const wrong = file('wrong-pin.txt', '11112222');
    chmodSync(wrong, 0o600);
    const bad = cli(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'x', '--pin-source', wrong]);
    expect(bad.status).toBe(4);
    expect(text(bad.stderr)).toContain('CKR_PIN_INCORRECT');
    const open = file('open-pin.txt', PIN);
    chmodSync(open, 0o644);
    const refused = cli(['generate-keypair', TOKEN, '--type', 'ec', '--label', 'x', '--pin-source', open]);
    expect(refused.status).toBe(4);
    expect(text(refused.stderr)).toBe(`p11kit: refusing pin source ${open}: group or others may access it (mode 644)\n`);
    for (const r of [none, several, noPin, bad, refused]) expect(text(r.stderr) + text(r.stdout)).not.toContain(PIN);
  });
});

describe('sign and verify', () => {
  const dataBytes = () => readFileSync(data);

  it('EC: the default mechanism is ECDSA over a host SHA-256; node:crypto verifies it, so does verify', () => {
    const r = cli(['sign', ecUri, '--in', data, '--pin-source', pinFile]);
    expect(text(r.stderr)).toBe('');
    expect(r.status).toBe(0);
    const hex = text(r.stdout);
    expect(hex).toMatch(/^[0-9a-f]{128}\n$/);
    const sig = Buffer.from(hex.trim(), 'hex');
    // The printed PEM of the key verifies it; another key's does not.
    expect(nodeVerify('sha256', dataBytes(), { key: ec.publicKeyPem, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(nodeVerify('sha256', dataBytes(), { key: other.publicKeyPem, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
    const pub = cli(['verify', ecUri, '--in', data, '--signature', hex.trim()]);
    expect(text(pub.stdout)).toBe('signature: valid\n');
    expect(pub.status).toBe(0);
    expect(cli(['verify', `${TOKEN};object=other%20ec%20key`, '--in', data, '--signature', hex.trim()]).status).toBe(1);

    const json = cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--json']);
    const out = JSON.parse(text(json.stdout));
    expect(Object.keys(out).sort()).toEqual(['encoding', 'hash', 'hashedBy', 'key', 'mechanism', 'signature']);
    expect(out).toMatchObject({ key: ec.privateKey, mechanism: 'ECDSA', hash: 'sha256', hashedBy: 'host', encoding: 'hex' });
    expect(nodeVerify('sha256', dataBytes(), { key: ec.publicKeyPem, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'hex'))).toBe(true);
  });

  it('verify: exit 0 for a good signature, 1 for a bad one or other data; --json says so', () => {
    const key = ecUri;
    const sig = Buffer.from(text(cli(['sign', key, '--in', data, '--pin-source', pinFile]).stdout).trim(), 'hex');
    const good = cli(['verify', key, '--in', data, '--signature', sig.toString('hex'), '--json']);
    expect(good.status).toBe(0);
    expect(JSON.parse(text(good.stdout))).toEqual({ valid: true, key: ec.publicKey, mechanism: 'ECDSA', hash: 'sha256', hashedBy: 'host' });

    const flipped = Buffer.from(sig);
    flipped[10] ^= 0x01;
    const bad = cli(['verify', key, '--in', data, '--signature', flipped.toString('hex'), '--json']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(text(bad.stdout))).toMatchObject({ valid: false, key: ec.publicKey });
    const other = cli(['verify', key, '--in', '-', '--signature', sig.toString('hex')], 'other data');
    expect(other.status).toBe(1);
    expect(text(other.stdout)).toBe('signature: NOT valid\n');
    const short = cli(['verify', key, '--in', data, '--signature', 'abcd']);
    expect(short.status).toBe(1); // CKR_SIGNATURE_LEN_RANGE is "does not verify", not an error
    // The private key's URI, as generate-keypair printed it, names the public key for verify.
    expect(cli(['verify', ec.privateKey, '--in', data, '--signature', sig.toString('hex')]).status).toBe(0);
  });

  it('signatures to --out in raw (default), hex or base64 are read back by verify; stdin is the default input', () => {
    const key = ecUri;
    const raw = join(work, 'sig.bin');
    expect(cli(['sign', key, '--pin-source', pinFile, '--out', raw], dataBytes()).status).toBe(0);
    expect(statSync(raw).size).toBe(64);
    expect(nodeVerify('sha256', dataBytes(), { key: ec.publicKeyPem, dsaEncoding: 'ieee-p1363' }, readFileSync(raw))).toBe(true);
    const b64 = join(work, 'sig.b64');
    expect(cli(['sign', key, '--in', data, '--pin-source', pinFile, '--out', b64, '--format', 'base64']).status).toBe(0);
    expect(readFileSync(b64, 'utf8')).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
    const hexFile = join(work, 'sig.hex');
    expect(cli(['sign', key, '--in', data, '--pin-source', pinFile, '--out', hexFile, '--format', 'hex']).status).toBe(0);
    for (const f of [raw, b64, hexFile]) {
      const r = cli(['verify', key, '--signature', f], dataBytes());
      expect(r.status, f).toBe(0);
    }
    const stdoutB64 = cli(['sign', key, '--in', data, '--pin-source', pinFile, '--format', 'base64']);
    expect(nodeVerify('sha256', dataBytes(), { key: ec.publicKeyPem, dsaEncoding: 'ieee-p1363' }, Buffer.from(text(stdoutB64.stdout), 'base64'))).toBe(true);
  });

  it('--hash none signs a digest given as input: the same signature verify accepts over the data', () => {
    const key = ecUri;
    const digest = createHash('sha256').update(dataBytes()).digest();
    const r = cli(['sign', key, '--hash', 'none', '--pin-source', pinFile], digest);
    expect(r.status).toBe(0);
    expect(cli(['verify', key, '--in', data, '--signature', text(r.stdout).trim()]).status).toBe(0);
    const sha384 = cli(['sign', key, '--in', data, '--hash', 'sha384', '--pin-source', pinFile]);
    const sig = Buffer.from(text(sha384.stdout).trim(), 'hex');
    expect(nodeVerify('sha384', dataBytes(), { key: ec.publicKeyPem, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(cli(['verify', key, '--in', data, '--signature', sig.toString('hex')]).status).toBe(1); // verify's default hash is sha256
    expect(cli(['verify', key, '--in', data, '--hash', 'sha384', '--signature', sig.toString('hex')]).status).toBe(0);
  });

  it('RSA: host DigestInfo (default) and SHA256-RSA-PKCS on the token give the same bytes; PSS both ways; node:crypto agrees', () => {
    const sign = (...args: string[]) => {
      const r = cli(['sign', rsaUri, '--in', data, '--pin-source', pinFile, ...args]);
      expect(text(r.stderr)).toBe('');
      expect(r.status).toBe(0);
      return Buffer.from(text(r.stdout).trim(), 'hex');
    };
    const host = sign();
    const token = sign('--mechanism', 'SHA256-RSA-PKCS');
    expect(host.length).toBe(256);
    expect(token.equals(host)).toBe(true); // PKCS #1 v1.5 is deterministic: same DigestInfo, same signature
    expect(sign('--mechanism', 'CKM_SHA256_RSA_PKCS').equals(host)).toBe(true);
    expect(nodeVerify('sha256', readFileSync(data), rsa.publicKeyPem, host)).toBe(true);

    const pssOpts = { key: rsa.publicKeyPem, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    const pssHost = sign('--mechanism', 'RSA-PSS');
    const pssToken = sign('--mechanism', 'sha256-rsa-pss');
    expect(pssHost.equals(pssToken)).toBe(false); // salted
    expect(nodeVerify('sha256', readFileSync(data), pssOpts, pssHost)).toBe(true);
    expect(nodeVerify('sha256', readFileSync(data), pssOpts, pssToken)).toBe(true);
    for (const [mech, sig] of [['RSA-PSS', pssToken], ['SHA256-RSA-PKCS-PSS', pssHost], ['RSA-PKCS', host]] as const) {
      expect(cli(['verify', rsaUri, '--in', data, '--mechanism', mech, '--signature', sig.toString('hex')]).status, mech).toBe(0);
    }
    expect(cli(['verify', rsaUri, '--in', data, '--mechanism', 'RSA-PSS', '--signature', host.toString('hex')]).status).toBe(1);
  });

  it('errors never exit 1: usage 2, not found 3, login 4, token 5, files 6, configuration 7', () => {
    const sig = '00'.repeat(64);
    const expectExit = (r: ReturnType<typeof cli>, code: number, message: string | RegExp) => {
      expect(r.status, text(r.stderr)).toBe(code);
      if (typeof message === 'string') expect(text(r.stderr)).toContain(message);
      else expect(text(r.stderr)).toMatch(message);
      expect(text(r.stderr)).not.toContain(PIN);
    };
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--mechanism', 'RSA-PKCS']), 2, 'RSA-PKCS needs an RSA key; this key is EC');
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--mechanism', 'DSA']), 2, "unknown or unsupported mechanism 'DSA'");
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--mechanism', 'ECDSA-SHA256', '--hash', 'sha1']), 2, 'ECDSA-SHA256 hashes with sha256 on the token');
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--format', 'pem']), 2, "--format: hex, base64 or raw, not 'pem'");
    expectExit(cli(['sign', 'pkcs11:id=%G1', '--in', data]), 2, /^p11kit: .*id/);
    expectExit(cli(['verify', ecUri, '--in', data, '--signature', 'not-hex-nor-file']), 2, "--signature: neither a file nor hex: 'not-hex-nor-file'");
    expectExit(cli(['sign', ecUri, '--login']), 2, '--login cannot prompt while the data comes from stdin');
    expectExit(cli(['verify', ecUri, '--in', data]), 2, "required option '--signature <file|hex>' not specified");

    expectExit(cli(['sign', `${TOKEN};object=missing`, '--in', data, '--pin-source', pinFile]), 3, 'no private key matches pkcs11:token=cli%20crypto;object=missing');
    expectExit(cli(['verify', `${TOKEN};object=missing`, '--in', data, '--signature', sig]), 3, 'no public key matches');
    expectExit(cli(['sign', 'pkcs11:token=nope', '--in', data, '--pin-source', pinFile]), 3, 'no token matches pkcs11:token=nope');
    // Both EC P-256 keys have type=private and one token: the label is needed.
    expectExit(cli(['sign', `${TOKEN};type=private`, '--in', data, '--pin-source', pinFile]), 3, /^p11kit: \d+ private keys match pkcs11:token=cli%20crypto;type=private; name one \(id=, object=\):\n( {4}pkcs11:\S+;type=private\n){2,}$/);

    expectExit(cli(['sign', ecUri, '--in', data]), 4, 'no private key matches pkcs11:token=cli%20crypto;object=ec%20key without logging in');
    // A pin-value in the URI is used and never shown again.
    const uriPin = cli(['sign', `${TOKEN};object=missing?pin-value=${PIN}`, '--in', data]);
    expectExit(uriPin, 3, 'no private key matches pkcs11:token=cli%20crypto;object=missing\n');

    // SoftHSM 2.6 has no CKM_ECDSA_SHA256: the module's answer, named.
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--mechanism', 'ECDSA-SHA256']), 5, 'C_SignInit failed in softhsm: CKR_MECHANISM_INVALID');

    expectExit(cli(['sign', ecUri, '--in', join(work, 'no-such-file'), '--pin-source', pinFile]), 6, 'no-such-file');
    expectExit(cli(['verify', ecUri, '--in', join(work, 'no-such-file'), '--signature', sig]), 6, 'no-such-file');
    expectExit(cli(['sign', ecUri, '--in', data, '--pin-source', pinFile, '--out', join(work, 'no-dir', 'sig')]), 6, 'no-dir');

    const broken = createConfTree();
    try {
      broken.module('softhsm', `module: ${SOFTHSM_MODULE}\nthis line has no colon\n`);
      const r = spawnSync(process.execPath, [CLI, 'verify', ecUri, '--in', data, '--signature', sig, ...where(broken)], { env: hsm.env, encoding: 'utf8' });
      expect(r.status).toBe(7);
      expect(r.stderr).toMatch(/^p11kit: error: .*softhsm\.module/);
    } finally {
      broken.cleanup();
    }
  });

  it('--help documents the exit codes', () => {
    for (const cmd of ['sign', 'verify', 'generate-keypair']) {
      const r = cli([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(text(r.stdout)).toContain('Exit codes:\n  0  success; verify: the signature is valid\n  1  verify: the signature is not valid');
    }
    expect(text(spawnSync(process.execPath, [CLI, '--help']).stdout)).toContain('  4  login: no PIN where one is needed');
  });
});

describe('on a terminal', () => {
  /** Runs the CLI on a real pty (util-linux script); `answer` is typed once the prompt shows. */
  function onPty(args: string[], answer?: string): Promise<{ code: number | null; out: string }> {
    const quoted = [process.execPath, CLI, ...args, ...where()].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const p = spawn('script', ['-qec', quoted, '/dev/null'], { env: hsm.env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let typed = false;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (answer !== undefined && !typed && out.includes('PIN for cli crypto: ')) {
        typed = true;
        p.stdin.write(`${answer}\r`);
      }
    });
    return new Promise((resolve) => p.on('close', (code) => resolve({ code, out })));
  }

  it('generate-keypair shows a spinner with the elapsed time on stderr, then clears the line', async () => {
    const r = await onPty(['generate-keypair', TOKEN, '--type', 'rsa', '--label', 'tty rsa', '--pin-source', pinFile]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\r\S generating RSA 2048 key pair on "cli crypto" \d+\.\d s/);
    expect(r.out).toMatch(/\r\x1b\[Kgenerated: RSA 2048 key pair "tty rsa" on token "cli crypto"/);
  });

  it('--login prompts for the PIN without echoing it', async () => {
    const r = await onPty(['sign', ecUri, '--in', data, '--login'], PIN);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^PIN for cli crypto: \r\n[0-9a-f]{128}\r\n$/);
    expect(r.out).not.toContain(PIN);
  });
});

describe('the command line', () => {
  it('--pin-value is wiped from /proc/PID/cmdline once the command starts', async () => {
    // The one PIN on a child's command line here, to prove it does not stay readable there.
    const p = spawn(process.execPath, [CLI, 'sign', ecUri, '--pin-value', PIN, ...where()], { env: hsm.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let cmdline = '';
    for (let i = 0; i < 400; i++) {
      cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0+$/, '');
      if (cmdline === 'p11kit') break; // the command has started: it is waiting for stdin
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(cmdline).toBe('p11kit');
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stdin.end(readFileSync(data));
    const code = await new Promise((r) => p.on('close', r));
    expect(code).toBe(0);
    expect(out).toMatch(/^[0-9a-f]{128}\n$/);
  });
});
