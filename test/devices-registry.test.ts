// The registry and `list-modules` on real devices: a config tree with an `opensc` module (our
// PKCS#15 card in a private pcscd) and a `tpm2` module (libtpm2_pkcs11 on a private swtpm),
// byte for byte against the real `p11-kit list-modules` pointed at the same tree (the
// relocation shim, as test/list-modules-diff.test.ts does); and the machine's own p11-kit
// configuration left exactly as it was by all of it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { startCardRig, type CardRig } from './devices/card-rig.js';
import { OPENSC_MODULE } from './devices/opensc.mjs';
import { havePcscd } from './devices/pcscd.mjs';
import { startSwtpm, tpm2Module, type Swtpm } from './devices/swtpm.js';

const SHIM = join(process.cwd(), 'dist/native/fixtures/p11kit-relocate-shim.so');
const CLI = join(process.cwd(), 'dist/lib/cli.js');
const module = havePcscd() ? tpm2Module() : null;
// The machine as any other process sees it (this one's environment is pointed at the private daemons later).
const machineEnv = { ...process.env, P11_KIT_DEBUG: '' };
const machineBefore = spawnSync('p11-kit', ['list-modules'], { encoding: 'utf8', env: machineEnv, timeout: 60_000 });

let rig: CardRig;
let tpm: Swtpm;
let tree: ConfTree;
beforeAll(async () => {
  if (!module) return;
  rig = await startCardRig({ kind: 'pkcs15', label: 'Registry Card', serial: '0badcafe' });
  tpm = await startSwtpm(module, { label: 'registry tpm', soPin: '11223344', pin: '556677', keyLabel: 'k', keyId: '01' });
  tree = createConfTree();
  tree.module('opensc', `module: ${OPENSC_MODULE}\npriority: 2\n`);
  tree.module('tpm2', `module: ${module}\n`, 'package');
  await rig.card.insert();
});
afterAll(async () => {
  await rig?.close();
  await tpm?.stop();
  tree?.cleanup();
});

describe.skipIf(!module)('registry and list-modules with a smart card and a TPM', { timeout: 120_000 }, () => {
  it('our registry reads the tree: opensc first (priority), then tpm2', () => {
    const reg = loadRegistry(tree.registry);
    expect(reg.modules.map((m) => [m.name, m.path])).toEqual([
      ['opensc', OPENSC_MODULE],
      ['tpm2', module],
    ]);
  });

  it('list-modules is byte-identical to p11-kit 0.24 with the card in and the TPM token made', async () => {
    const env = { ...rig.env, ...tpm.env, P11_KIT_DEBUG: '' };
    const r = tree.registry;
    // The card's insertion may still be on its way through pcscd: compare once both see it.
    const end = Date.now() + 20_000;
    let real = spawnSync('true', { encoding: 'utf8' });
    do {
      if (real.pid) await new Promise((res) => setTimeout(res, 100));
      real = spawnSync('p11-kit', ['list-modules'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...env, LD_PRELOAD: SHIM, P11KIT_SHIM_SYSTEM_CONFIG: r.systemConfig!, P11KIT_SHIM_USER_CONFIG: r.userConfig!,
          P11KIT_SHIM_PACKAGE_MODULES: r.packageModules!, P11KIT_SHIM_SYSTEM_MODULES: r.systemModules!, P11KIT_SHIM_USER_MODULES: r.userModules!,
        },
      });
    } while (!String(real.stdout).includes('token: Registry Card') && Date.now() < end);
    const ours = spawnSync(process.execPath, [
      CLI, 'list-modules', '--program', 'p11-kit', '--system-config', r.systemConfig!, '--user-config', r.userConfig!,
      '--package-modules', r.packageModules!, '--system-modules', r.systemModules!, '--user-modules', r.userModules!,
    ], { encoding: 'utf8', env, timeout: 60_000 });
    expect(real.stdout).toContain('    token: Registry Card\n');
    expect(real.stdout).toContain('    token: registry tpm\n');
    expect(ours.stdout).toBe(real.stdout);
    expect(ours.status, ours.stderr).toBe(real.status);
  });

  it("the machine's own p11-kit configuration is unchanged (libtpm2_pkcs11 is not registered)", () => {
    const now = spawnSync('p11-kit', ['list-modules'], { encoding: 'utf8', env: machineEnv, timeout: 60_000 });
    expect(now.stdout).toBe(machineBefore.stdout);
    expect(now.stdout).not.toContain('tpm2');
    expect(now.stdout).not.toContain('Yubico');
  });
});
