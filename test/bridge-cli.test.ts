// The token commands of the CLI (built dist/lib/cli.js) on a SoftHSM2 token made for the test:
// list-tokens, list-mechanisms, list-objects with and without login, PIN sources.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, SOFTHSM_MODULE } from './helpers/softhsm.js';
import { loadModule, CKA, CKM, CKU, CKF_SESSION } from '../ts/bridge/index.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '246810';
const hsm = createSoftHsm();
const work = mkdtempSync(join(tmpdir(), 'p11kit-tokcli-'));
const tree = join(work, 'conf');
let where: string[];

beforeAll(() => {
  hsm.initToken('cli token', '13579', PIN);
  const m = loadModule(SOFTHSM_MODULE);
  m.initialize();
  try {
    const slot = m.getSlotList(true).find((s) => m.getTokenInfo(s).label === 'cli token')!;
    const s = m.openSession(slot, CKF_SESSION.CKF_RW_SESSION);
    m.login(s, CKU.CKU_USER, PIN);
    m.generateKeyPair(
      s,
      CKM.CKM_EC_KEY_PAIR_GEN,
      [{ type: CKA.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_LABEL, value: 'signing key' }, { type: CKA.CKA_ID, value: Buffer.from([0xa1, 0x02]) }],
      [{ type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_PRIVATE, value: true }, { type: CKA.CKA_LABEL, value: 'signing key' }, { type: CKA.CKA_ID, value: Buffer.from([0xa1, 0x02]) }, { type: CKA.CKA_SIGN, value: true }],
    );
    m.closeSession(s);
  } finally {
    m.finalize();
  }
  for (const d of ['system', 'package', 'user']) mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, 'pkcs11.conf'), '');
  writeFileSync(join(tree, 'system/softhsm.module'), `module: ${SOFTHSM_MODULE}\n`);
  writeFileSync(join(tree, 'package/trust.module'), 'module: p11-kit-trust.so\nx-init-reserved:\n');
  where = ['--system-config', join(tree, 'pkcs11.conf'), '--system-modules', join(tree, 'system'), '--package-modules', join(tree, 'package'),
    '--user-config', join(tree, 'user.conf'), '--user-modules', join(tree, 'user')];
});
afterAll(() => {
  hsm.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, ...where], { env: hsm.env, encoding: 'utf8' });
const cliWithInput = (input: string, ...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args, ...where], { env: hsm.env, encoding: 'utf8', input });
const TOKEN = 'pkcs11:token=cli%20token';

describe('token commands', () => {
  it('list-tokens shows every token with its URI; filters by URI', () => {
    const all = cli('list-tokens');
    expect(all.status).toBe(0);
    expect(all.stdout).toMatch(/^token: cli token\n    uri: pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=cli%20token\n    module: softhsm\n/m);
    expect(all.stdout).toContain('token: System Trust\n');
    expect(all.stdout).toContain('    flags:\n           rng\n           login-required\n           user-pin-initialized\n');
    const one = cli('list-tokens', '--only-uris', TOKEN);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    expect(one.stdout).toMatch(/token=cli%20token\n$/);
    expect(cli('list-tokens', 'pkcs11:token=nothing%20here').stdout).toBe('');
    expect(cli('list-tokens', 'not-a-uri').status).toBe(2);
  });

  it('list-mechanisms lists the token mechanisms with their uses', () => {
    const r = cli('list-mechanisms', TOKEN);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^pkcs11:model=SoftHSM%20v2;.*token=cli%20token\n/);
    expect(r.stdout).toMatch(/\n    CKM_SHA256: digest\n/);
    expect(r.stdout).toMatch(/\n    CKM_EC_KEY_PAIR_GEN: key-size=\d+-\d+ generate-key-pair/);
  });

  it('list-objects shows public objects, and private ones after login', () => {
    const pub = cli('list-objects', TOKEN);
    expect(pub.status).toBe(0);
    expect(pub.stdout).toContain('    class: public-key\n    label: signing key\n    id: a1:02\n    key-type: ec\n');
    expect(pub.stdout).not.toContain('private-key');
    const priv = cli('list-objects', TOKEN, '--pin-value', PIN);
    expect(priv.stdout).toContain('    class: private-key\n');
    expect(priv.stdout).toMatch(/uri: pkcs11:model=.*;token=cli%20token;id=%A1%02;object=signing%20key;type=private\n/);
    const filtered = cli('list-objects', `${TOKEN};type=public`, '--pin-value', PIN);
    expect(filtered.stdout).not.toContain('private-key');
    expect(filtered.stdout).toContain('public-key');
  });

  it('reads the PIN from a private file, refuses one others may read, never prints it', () => {
    const good = join(work, 'pin.txt');
    writeFileSync(good, `${PIN}\n`);
    chmodSync(good, 0o600);
    expect(cli('list-objects', TOKEN, '--pin-source', good).stdout).toContain('private-key');
    const uriPin = cli('list-objects', `${TOKEN}?pin-source=${encodeURIComponent(good)}`);
    expect(uriPin.stdout).toContain('private-key');

    const open = join(work, 'pin-open.txt');
    writeFileSync(open, PIN);
    chmodSync(open, 0o644);
    const refused = cli('list-objects', TOKEN, '--pin-source', open);
    expect(refused.status).toBe(4);
    expect(refused.stderr).toContain(`refusing pin source ${open}: group or others may access it (mode 644)`);

    const prompted = cliWithInput(`${PIN}\n`, 'list-objects', TOKEN, '--login');
    expect(prompted.stderr).toContain('PIN for cli token: ');
    expect(prompted.stdout).toContain('private-key');

    const wrong = cli('list-objects', TOKEN, '--pin-value', '999999');
    expect(wrong.status).toBe(4);
    expect(wrong.stderr).toContain('CKR_PIN_INCORRECT');
    for (const r of [refused, wrong]) expect(r.stdout + r.stderr).not.toContain(PIN);
    expect(prompted.stdout + prompted.stderr).not.toContain(PIN);
    expect(wrong.stdout + wrong.stderr).not.toContain('999999');
  });
});
