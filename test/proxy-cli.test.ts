// `p11kit list-tokens` and `list-objects` go through the proxy (built dist/lib/cli.js): a module
// whose C_GetSlotList fails no longer hides the others' tokens (it is named on stderr), unless it
// is critical; objects are found across the modules a URI selects.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKO, CKU, openModule } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '3141';
let hsm: SoftHsm;
let tree: ConfTree;

beforeAll(() => {
  hsm = createSoftHsm();
  const slot = hsm.initToken('cli proxy', '2718', PIN);
  const m = openModule(SOFTHSM_MODULE);
  try {
    const s = m.openSession(slot, { rw: true });
    s.login(CKU.CKU_USER, PIN);
    s.createObject([
      { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_LABEL, value: 'hidden note' },
      { type: CKA.CKA_VALUE, value: Buffer.from('x') },
    ]);
  } finally {
    m.release();
  }
  tree = createConfTree();
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  tree.module('events', `module: ${tree.copyFixture('event-module.so', 'events.so')}\n`);
  tree.module('trust', 'module: p11-kit-trust.so\n', 'package');
});
afterAll(() => {
  tree.cleanup();
  hsm.cleanup();
});

function cli(...args: string[]) {
  const r = tree.registry;
  const where = ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
  return spawnSync(process.execPath, [CLI, ...args, ...where], { env: hsm.env, encoding: 'utf8' });
}

describe('token commands through the proxy', () => {
  it('list-tokens lists every module\'s tokens, with the module\'s own slot number', () => {
    const r = cli('list-tokens');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const tokens = [...r.stdout.matchAll(/^token: (.*)\n {4}uri: .*\n {4}module: (.*)\n {4}slot: (\d+)$/gm)].map((m) => [m[1], m[2], Number(m[3])]);
    expect(tokens).toEqual(
      expect.arrayContaining([
        ['cli proxy', 'softhsm', expect.any(Number)],
        ['event token', 'events', 10],
        ['event token', 'events', 12],
        ['System Trust', 'trust', expect.any(Number)],
      ]),
    );
    expect(cli('list-tokens', '--only-uris', 'pkcs11:model=event').stdout.trim().split('\n')).toHaveLength(2);
  });

  it('a module failing C_GetSlotList is named on stderr and the others are still listed; a critical one fails the command', () => {
    tree.module('broken', `module: ${tree.copyFixture('slotlist-fails-module.so', 'broken.so')}\n`);
    const r = cli('list-tokens', '--only-uris');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('p11kit: broken: C_GetSlotList failed in broken: CKR_DEVICE_ERROR');
    expect(r.stdout).toContain('token=cli%20proxy');
    expect(r.stdout).toContain('token=System%20Trust');

    tree.module('broken', `module: ${join(tree.dir, 'lib/broken.so')}\ncritical: yes\n`);
    const critical = cli('list-tokens');
    expect(critical.status).toBe(7);
    expect(critical.stdout).toBe('');
    expect(critical.stderr).toContain('p11kit: broken: module failed to initialize: C_GetSlotList failed in broken: CKR_DEVICE_ERROR');
    rmSync(join(tree.dir, 'system/broken.module'));
  });

  it('list-objects finds objects across the selected modules, private ones after login', () => {
    const pub = cli('list-objects', 'pkcs11:token=cli%20proxy');
    expect(pub.status).toBe(0);
    expect(pub.stdout).toBe('');
    const priv = cli('list-objects', 'pkcs11:token=cli%20proxy', '--pin-value', PIN);
    expect(priv.status).toBe(0);
    expect(priv.stdout).toMatch(/^Object: #\d+\n {4}uri: pkcs11:.*token=cli%20proxy;object=hidden%20note;type=data\n {4}class: data\n {4}label: hidden note\n$/);
    const certs = cli('list-objects', 'pkcs11:type=cert?module-name=trust');
    expect(certs.status).toBe(0);
    expect(certs.stdout.match(/class: certificate/g)?.length).toBeGreaterThan(10);
    expect(certs.stdout).not.toContain('hidden note');
    const wrong = cli('list-objects', 'pkcs11:token=cli%20proxy', '--pin-value', '0000');
    expect(wrong.status).toBe(4);
    expect(wrong.stderr).toContain('CKR_PIN_INCORRECT');
    expect(wrong.stdout + wrong.stderr).not.toContain('0000');
  });
});
