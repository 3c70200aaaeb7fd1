// The managed API (bridge + process-wide lifecycle) on a real SoftHSM2 token.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKU, LifecycleError, openModule, UnknownModuleError, type ManagedModule } from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');

describe('managed modules on SoftHSM2', () => {
  let hsm: SoftHsm;
  let slot: number;
  beforeAll(() => {
    hsm = createSoftHsm();
    slot = hsm.initToken('managed', '12345678', '1234');
  });
  afterAll(() => hsm.cleanup());

  it('two owners share one C_Initialize; the last release makes the one C_Finalize', () => {
    const a = openModule(SOFTHSM_MODULE);
    const before = a.lifecycle.callCounts;
    const b = openModule(SOFTHSM_MODULE);
    expect(a.lifecycle).toBe(b.lifecycle);
    expect(b.getSlotList(true)).toContain(slot);
    expect(a.getTokenInfo(slot).label).toBe('managed');
    a.release();
    expect(b.getInfo().manufacturerID).toBe('SoftHSM');
    b.release();
    const after = b.lifecycle.callCounts;
    expect(after.finalize - before.finalize).toBe(1);
    expect(b.state.phase).toBe('uninitialized');
    expect(() => b.getInfo()).toThrow(LifecycleError);
  });

  it('login, EC P-256 key pair, sign and verify through managed sessions', () => {
    const m = openModule(SOFTHSM_MODULE);
    try {
      const s = m.openSession(slot, { rw: true });
      s.login(CKU.CKU_USER, '1234');
      const { publicKey, privateKey } = s.generateKeyPair(
        CKM.CKM_EC_KEY_PAIR_GEN,
        [{ type: CKA.CKA_EC_PARAMS, value: P256_OID }, { type: CKA.CKA_VERIFY, value: true }],
        [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_SENSITIVE, value: true }],
      );
      const hash = createHash('sha256').update('managed').digest();
      s.signInit(CKM.CKM_ECDSA, privateKey);
      const sig = s.sign(hash);
      s.verifyInit(CKM.CKM_ECDSA, publicKey);
      expect(s.verify(hash, sig)).toBe(true);
      expect(s.generateRandom(16).length).toBe(16);
    } finally {
      m.release();
    }
  });

  it("owners are isolated: one owner's release and closeAllSessions leave the other's sessions open", async () => {
    const a = openModule(SOFTHSM_MODULE);
    const b = openModule(SOFTHSM_MODULE);
    const sa = a.openSession(slot);
    const sb = b.openSession(slot);
    const sb2 = await b.async.openSession(slot);
    a.closeAllSessions(slot);
    expect(sa.open).toBe(false);
    expect(sb.getSessionInfo().slotID).toBe(slot);
    a.release();
    expect((await sb2.async.generateRandom(8)).length).toBe(8);
    expect(b.sessions()).toHaveLength(2);
    b.release();
    expect(sb.open).toBe(false);
  });

  it('explicit policy: after a foreign C_Finalize, typed errors until reinitialize()', () => {
    const m: ManagedModule = openModule(SOFTHSM_MODULE, { policy: 'explicit' });
    const s = m.openSession(slot);
    m.module.finalize(); // behind the lifecycle's back, through the raw bridge
    expect(() => m.getSlotList()).toThrow(/finalized by someone else/);
    expect(() => s.generateRandom(8)).toThrow(LifecycleError);
    m.reinitialize();
    expect(() => s.generateRandom(8)).toThrow(/earlier generation/);
    expect(m.openSession(slot).generateRandom(8).length).toBe(8);
    m.release();
  });

  const demoRegistry = {
    systemConfig: '/nonexistent/pkcs11.conf',
    systemModules: new URL('../demo/config/modules', import.meta.url).pathname,
    packageModules: '/nonexistent',
    userConfig: '/nonexistent/user.conf',
    userModules: '/nonexistent',
  };

  it('opens a configured module by name through the registry', () => {
    const m = openModule('softhsm2', { registry: demoRegistry });
    expect(m.entry?.settings.critical).toBe(true);
    expect(m.getTokenInfo(slot).label).toBe('managed');
    m.release();
  });

  it('an unknown name is an UnknownModuleError listing the configured names, as through the service', () => {
    const err = (() => {
      try {
        openModule('nosuchmodule', { registry: demoRegistry });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnknownModuleError);
    expect(err).toMatchObject({ name: 'UnknownModuleError', module: 'nosuchmodule' });
    expect((err as UnknownModuleError).available).toContain('softhsm2');
    expect((err as Error).message).toMatch(/no module named 'nosuchmodule' is configured for this program; configured: .*softhsm2/);
  });
});
