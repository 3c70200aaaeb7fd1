// --json on the listing commands: the shapes machines read.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '97531';

describe('--json listings', () => {
  let hsm: SoftHsm;
  let tree: ConfTree;
  let where: string[];
  beforeAll(() => {
    hsm = createSoftHsm();
    hsm.initToken('json token', '24680', PIN);
    tree = createConfTree();
    tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
    const r = tree.registry;
    where = ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
    const made = cli('generate-keypair', 'pkcs11:token=json%20token', '--type', 'ec', '--label', 'json key', '--pin-value', PIN);
    if (made.status !== 0) throw new Error(made.stderr);
  });
  afterAll(() => {
    tree?.cleanup();
    hsm?.cleanup();
  });

  function cli(...args: string[]) {
    return spawnSync(process.execPath, [CLI, ...args, ...where], { encoding: 'utf8', env: hsm.env });
  }
  const json = (...args: string[]) => {
    const r = cli(...args, '--json');
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  it('list-modules --json: registry entry, library info and tokens', () => {
    const { modules } = json('list-modules');
    expect(modules).toHaveLength(1);
    expect(modules[0]).toMatchObject({ name: 'softhsm', module: SOFTHSM_MODULE, library: { manufacturer: 'SoftHSM', description: 'Implementation of PKCS11' } });
    expect(modules[0].tokens.map((t: { label: string }) => t.label)).toContain('json token');
  });

  it('list-tokens --json: fields, flag names and URI of each token', () => {
    const { tokens } = json('list-tokens', 'pkcs11:token=json%20token');
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ module: 'softhsm', label: 'json token', model: 'SoftHSM v2' });
    expect(tokens[0].flags).toEqual(expect.arrayContaining(['rng', 'login-required', 'token-initialized']));
    expect(tokens[0].uri).toMatch(/^pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=json%20token$/);
  });

  it('list-tokens reaches remote: modules too (p11-kit remote hosting the same SoftHSM2 store)', () => {
    const remote = createConfTree();
    try {
      remote.module('local', `module: ${SOFTHSM_MODULE}\n`);
      remote.module('hosted', `remote: |p11-kit remote ${SOFTHSM_MODULE}\n`);
      const r = remote.registry;
      const args = ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
      const out = spawnSync(process.execPath, [CLI, 'list-tokens', 'pkcs11:token=json%20token', '--json', ...args], { encoding: 'utf8', env: hsm.env });
      expect(out.status, out.stderr).toBe(0);
      const { tokens } = JSON.parse(out.stdout);
      expect(tokens.map((t: { module: string }) => t.module).sort()).toEqual(['hosted', 'local']);
      expect(new Set(tokens.map((t: { serialNumber: string }) => t.serialNumber)).size).toBe(1);
    } finally {
      remote.cleanup();
    }
  });

  it('list-mechanisms --json: names, key sizes and flags', () => {
    const { tokens } = json('list-mechanisms', 'pkcs11:token=json%20token');
    const ecdsa = tokens[0].mechanisms.find((m: { name: string }) => m.name === 'CKM_ECDSA');
    expect(ecdsa).toMatchObject({ type: 0x1041 });
    expect(ecdsa.flags).toEqual(expect.arrayContaining(['CKF_SIGN', 'CKF_VERIFY']));
  });

  it('list-objects --json: the key pair, private half after login', () => {
    const pub = json('list-objects', 'pkcs11:token=json%20token');
    expect(pub.objects.map((o: { class: string }) => o.class)).toEqual(['public-key']);
    const all = json('list-objects', 'pkcs11:token=json%20token', '--pin-value', PIN);
    expect(all.objects.map((o: { class: string }) => o.class).sort()).toEqual(['private-key', 'public-key']);
    expect(all.objects[0]).toMatchObject({ label: 'json key', keyType: 'ec' });
    expect(all.objects[0].uri).toContain('object=json%20key');
  });
});
