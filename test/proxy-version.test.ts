// The proxy presents one PKCS#11 version: its C_GetInfo says 2.40, so what it shows of its
// modules is what a 2.40 caller sees — as p11-kit-proxy shows it. NSS softokn (loaded by us
// through C_GetInterface, a 3.0 interface) and a 3.0 fixture next to SoftHSM2 and the p11-kit
// trust module: every slot's mechanism list and every mechanism's info, flags included, as
// the real p11-kit-proxy reports them for the same tree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKR, loadModule, openProxy } from '../ts/index.js';
import { createNssDb, NSS_SOFTOKN_MODULE, type NssDb } from './helpers/nss.js';
import { createConfTree, runOracle, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

let hsm: SoftHsm;
let nss: NssDb;
let tree: ConfTree;
let v3Path: string;

beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('version', '0000', '1234');
  nss = createNssDb();
  tree = createConfTree();
  tree.module('Nss', `module: ${NSS_SOFTOKN_MODULE}\nx-init-reserved: ${nss.reservedString}\n`);
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  v3Path = tree.copyFixture('v3-module.so', 'v3.so');
  tree.module('v3', `module: ${v3Path}\n`);
  tree.module('trust', 'module: p11-kit-trust.so\n', 'package');
});

afterAll(() => {
  tree?.cleanup();
  nss?.cleanup();
  hsm?.cleanup();
});

type Mech = [type: number, min: number, max: number, flags: number];
interface OracleSlot {
  id: number;
  rv: number;
  mechs: Mech[];
}

describe('one PKCS#11 version, as p11-kit-proxy', () => {
  it('every mechanism of every slot: the same list and the same info, flags included', async () => {
    const [init, info, mechs] = runOracle(tree, ['initialize', 'info', 'mechs', 'finalize'], hsm.env);
    expect(init).toMatchObject({ rv: 0 });
    const oracle = (mechs!.slots as OracleSlot[]).filter((s) => s.rv === 0);
    expect(oracle.length).toBeGreaterThan(3);

    const proxy = openProxy({ registry: tree.registry });
    try {
      const v = proxy.getInfo().cryptokiVersion;
      expect(info).toMatchObject({ cryptoki: `${v.major}.${v.minor}` });
      expect(proxy.modules.map((m) => m.name).sort()).toEqual(['Nss', 'softhsm', 'trust', 'v3']);
      const ours = (sync: boolean) =>
        Promise.all(
          oracle.map(async ({ id }) => {
            const types = sync ? proxy.getMechanismList(id) : await proxy.async.getMechanismList(id);
            const infos = await Promise.all(types.map(async (t) => (sync ? proxy.getMechanismInfo(id, t) : await proxy.async.getMechanismInfo(id, t))));
            return { id, rv: 0, mechs: types.map((t, i): Mech => [t, infos[i]!.minKeySize, infos[i]!.maxKeySize, infos[i]!.flags]) };
          }),
        );
      const sync = await ours(true);
      expect(sync).toEqual(oracle);
      expect(await ours(false)).toEqual(oracle);
      // The case that leaked: NSS's AES-GCM is encrypt/decrypt only for a 2.40 caller (no CKF_MESSAGE_*).
      const nssSlots = oracle.filter(({ id }) => proxy.slotOwner(id).module === 'Nss');
      const gcm = nssSlots.flatMap((s) => s.mechs).find(([t]) => t === 0x1087);
      expect(gcm?.[3]).toBe(0x300);
    } finally {
      proxy.release();
    }
  });

  it('no 3.0 session calls: C_LoginUser and C_SessionCancel are not offered, even by a 3.0 module', async () => {
    const proxy = openProxy({ registry: tree.registry });
    try {
      const slot = proxy.getSlotList().find((id) => proxy.slotOwner(id).module === 'v3')!;
      const session = proxy.openSession(slot);
      const sync = session as unknown as { loginUser(t: number, pin: string, user: string): void; sessionCancel(flags: number): void };
      expect(() => sync.loginUser(1, '1234', 'alice')).toThrow(expect.objectContaining({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED, fn: 'C_LoginUser' }));
      expect(() => sync.sessionCancel(0)).toThrow(expect.objectContaining({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED, fn: 'C_SessionCancel' }));
      await expect(session.async.loginUser(1, '1234', 'alice')).rejects.toMatchObject({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED });
      session.close();
      // The module itself takes the call: the refusal is the proxy's version, not the module's.
      const direct = loadModule(v3Path);
      const own = direct.openSession(proxy.slotOwner(slot).moduleSlot);
      expect(() => direct.loginUser(own, 1, '1234', 'alice')).not.toThrow();
      direct.closeSession(own);
    } finally {
      proxy.release();
    }
  });
});
