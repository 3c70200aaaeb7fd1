// The proxy over real modules: SoftHSM2 with two tokens, NSS softokn (x-init-reserved) and the
// p11-kit trust module behind one proxy, read from a config tree. Slot IDs, routed sessions,
// signing on each SoftHSM2 token through proxy handles, URI lookups across modules, a stale
// module among healthy ones, the async forms, release.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKO, CKR, CKU, LifecycleError, Pkcs11Error, ProxyError, openProxy, type ProxyModule, type ProxySession } from '../ts/index.js';
import { createNssDb, NSS_SOFTOKN_MODULE, type NssDb } from './helpers/nss.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { rvOf } from './helpers/rv-of.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const PINS: Record<string, string> = { alpha: '1111', beta: '2222' };

let hsm: SoftHsm;
let nss: NssDb;
let tree: ConfTree;
let proxy: ProxyModule;

beforeAll(() => {
  hsm = createSoftHsm();
  hsm.initToken('alpha', '0000', PINS.alpha);
  hsm.initToken('beta', '0000', PINS.beta);
  nss = createNssDb();
  tree = createConfTree();
  tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
  tree.module('nss', `module: ${NSS_SOFTOKN_MODULE}\nx-init-reserved: ${nss.reservedString}\n`);
  tree.module('trust', 'module: p11-kit-trust.so\n', 'package');
  proxy = openProxy({ registry: tree.registry });
});
afterAll(() => {
  proxy?.release();
  tree.cleanup();
  nss.cleanup();
  hsm.cleanup();
});

function slotOf(label: string): number {
  const [t] = proxy.findTokens(`pkcs11:token=${encodeURIComponent(label)}`);
  if (!t) throw new Error(`no token ${label}`);
  return t.slot;
}

function signingKeys(s: ProxySession, label: string) {
  return s.generateKeyPair(
    CKM.CKM_EC_KEY_PAIR_GEN,
    [{ type: CKA.CKA_EC_PARAMS, value: P256 }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_LABEL, value: label }],
    [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_PRIVATE, value: true }, { type: CKA.CKA_LABEL, value: label }],
  );
}

describe('proxy over SoftHSM2, NSS softokn and p11-kit trust', () => {
  it('serves the three modules in registry order, with slot IDs from 17 that stay the same', () => {
    expect(proxy.modules.map((m) => m.name)).toEqual(['nss', 'softhsm', 'trust']);
    expect(proxy.failures).toEqual([]);
    const all = proxy.getSlotList();
    expect(all[0]).toBe(17);
    expect(all).toEqual(all.map((_, i) => 17 + i));
    // Module order, then each module's own order.
    const owners = all.map((s) => proxy.slotOwner(s).module);
    expect(owners).toEqual([...owners].sort((a, b) => ['nss', 'softhsm', 'trust'].indexOf(a) - ['nss', 'softhsm', 'trust'].indexOf(b)));
    expect(owners.filter((o) => o === 'softhsm')).toHaveLength(3); // alpha, beta, the free slot
    expect(proxy.getSlotList()).toEqual(all);
    const present = proxy.getSlotList(true);
    expect(present.every((s) => all.includes(s))).toBe(true);
    const labels = present.map((s) => proxy.getTokenInfo(s).label);
    expect(labels).toEqual(expect.arrayContaining(['alpha', 'beta', 'NSS Generic Crypto Services', 'NSS Certificate DB', 'System Trust']));
    // The same answers as the module's own, through the proxy's IDs.
    for (const s of all) {
      const { module, moduleSlot } = proxy.slotOwner(s);
      expect(proxy.getSlotInfo(s).slotDescription).toBe(proxy.module(module)!.getSlotInfo(moduleSlot).slotDescription);
    }
  });

  it("has a C_GetInfo of its own, and answers PKCS#11 errors for IDs it doesn't know", () => {
    expect(proxy.getInfo()).toEqual({
      cryptokiVersion: { major: 2, minor: 40 },
      manufacturerID: 'PKCS#11 Kit',
      flags: 0,
      libraryDescription: 'PKCS#11 Kit Proxy Module',
      libraryVersion: { major: 1, minor: 1 },
    });
    expect(rvOf(() => proxy.getSlotInfo(16))).toBe(CKR.CKR_SLOT_ID_INVALID);
    expect(rvOf(() => proxy.getTokenInfo(99999))).toBe(CKR.CKR_SLOT_ID_INVALID);
    expect(rvOf(() => proxy.openSession(0))).toBe(CKR.CKR_SLOT_ID_INVALID);
    expect(rvOf(() => proxy.session(12345))).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    expect(() => proxy.getSlotInfo(16)).toThrow(Pkcs11Error);
  });

  it('routes sessions by proxy handle to the module that owns the slot', () => {
    const a = proxy.openSession(slotOf('alpha'));
    const n = proxy.openSession(slotOf('NSS Certificate DB'));
    const b = proxy.openSession(slotOf('beta'));
    expect(b.handle).toBe(n.handle + 1);
    expect(n.handle).toBe(a.handle + 1);
    expect([a.module, n.module, b.module]).toEqual(['softhsm', 'nss', 'softhsm']);
    expect(proxy.session(b.handle)).toBe(b);
    // The session info names the proxy's slot, not the module's.
    expect(a.getSessionInfo().slotID).toBe(slotOf('alpha'));
    expect(b.getSessionInfo().slotID).toBe(slotOf('beta'));
    expect(proxy.slotOwner(slotOf('beta')).moduleSlot).toBe(b.inner.slot);
    expect(n.generateRandom(8)).toHaveLength(8);
    proxy.closeSession(a.handle);
    expect(a.open).toBe(false);
    expect(rvOf(() => a.generateRandom(4))).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    expect(rvOf(() => proxy.session(a.handle))).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    proxy.closeAllSessions(slotOf('beta'));
    expect(b.open).toBe(false);
    expect(n.open).toBe(true);
    n.close();
    expect(proxy.sessions()).toEqual([]);
  });

  it('signs on each SoftHSM2 token through proxy handles; each key lives on its own token', async () => {
    const digest = createHash('sha256').update('proxy').digest();
    const sigs: Record<string, { sig: Uint8Array; pub: number; session: ProxySession }> = {};
    for (const label of ['alpha', 'beta']) {
      const s = proxy.openSession(`pkcs11:token=${label}`, { rw: true });
      expect(s.slot).toBe(slotOf(label));
      s.login(CKU.CKU_USER, PINS[label]);
      const { publicKey, privateKey } = signingKeys(s, `${label} key`);
      s.signInit(CKM.CKM_ECDSA, privateKey);
      sigs[label] = { sig: s.sign(digest), pub: publicKey, session: s };
    }
    // Each signature verifies with its own token's key, not with the other token's.
    for (const [label, other] of [['alpha', 'beta'], ['beta', 'alpha']]) {
      const s = sigs[label].session;
      s.verifyInit(CKM.CKM_ECDSA, sigs[label].pub);
      expect(s.verify(digest, sigs[label].sig)).toBe(true);
      s.verifyInit(CKM.CKM_ECDSA, sigs[label].pub);
      expect(s.verify(digest, sigs[other].sig)).toBe(false);
    }
    for (const x of [sigs.alpha.session, sigs.beta.session]) x.close();
    // The async lanes route the same way (handles are found again: SoftHSM2 drops them with the last session).
    const s = await proxy.async.openSession(slotOf('beta'));
    try {
      await s.async.login(CKU.CKU_USER, PINS.beta);
      const [key] = await s.async.findAllObjects([{ type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]);
      const [pub] = await s.async.findAllObjects([{ type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY }]);
      await s.async.signInit(CKM.CKM_ECDSA, key);
      const sig = await s.async.sign(digest);
      await s.async.verifyInit(CKM.CKM_ECDSA, pub);
      expect(await s.async.verify(digest, sig)).toBe(true);
      expect((await s.async.getSessionInfo()).slotID).toBe(slotOf('beta'));
    } finally {
      s.close();
    }
  });

  it('finds tokens by URI across modules', () => {
    const all = proxy.findTokens('pkcs11:');
    expect(all.map((t) => t.slot)).toEqual(proxy.getSlotList(true));
    // SoftHSM2's free slot holds an uninitialized token with an empty label.
    expect(proxy.findTokens('pkcs11:manufacturer=SoftHSM%20project').map((t) => t.token.label).sort()).toEqual(['', 'alpha', 'beta']);
    expect(proxy.findTokens('pkcs11:?module-name=nss').map((t) => t.token.label)).toEqual(['NSS Generic Crypto Services', 'NSS Certificate DB']);
    expect(proxy.findTokens(`pkcs11:?module-path=${encodeURIComponent(SOFTHSM_MODULE)}`)).toHaveLength(3);
    expect(proxy.findTokens('pkcs11:library-manufacturer=Mozilla%20Foundation').every((t) => t.module === 'nss')).toBe(true);
    expect(proxy.findTokens('pkcs11:library-manufacturer=Mozilla%20Foundation')).toHaveLength(2);
    expect(proxy.findTokens('pkcs11:model=p11-kit-trust').map((t) => t.module)).toEqual(['trust']);
    const beta = slotOf('beta');
    expect(proxy.findTokens(`pkcs11:slot-id=${beta}`).map((t) => t.token.label)).toEqual(['beta']);
    expect(proxy.findTokens('pkcs11:token=beta?module-name=nss')).toEqual([]);
    expect(proxy.findTokens('pkcs11:token=alpha;x-unknown=1')).toEqual([]); // unrecognized path attribute
    expect(() => proxy.openSession('pkcs11:token=nobody')).toThrow(ProxyError);
  });

  it('finds objects by URI across modules, logging in per token', async () => {
    const certs = await proxy.findObjects('pkcs11:type=cert');
    expect(certs.length).toBeGreaterThan(10);
    expect(new Set(certs.map((o) => o.module))).toEqual(new Set(['trust']));
    // Private keys: none without login; with per-token PINs, each token's own key.
    expect(await proxy.findObjects('pkcs11:manufacturer=SoftHSM%20project;type=private')).toEqual([]);
    const asked: string[] = [];
    const keys = await proxy.findObjects('pkcs11:manufacturer=SoftHSM%20project;type=private', {
      pin: (t) => (asked.push(t.token.label), PINS[t.token.label]),
    });
    // The free slot's uninitialized token takes no session: reported and skipped, never asked for a PIN.
    expect(asked.sort()).toEqual(['alpha', 'beta']);
    expect(proxy.failures.at(-1)).toMatchObject({ module: 'softhsm', stage: 'lookup' });
    expect(keys.map((k) => [k.token.label, k.attributes.find((a) => a.type === CKA.CKA_LABEL)?.value]).sort()).toEqual([
      ['alpha', 'alpha key'],
      ['beta', 'beta key'],
    ]);
    expect(await proxy.findObjects('pkcs11:object=beta%20key;type=public')).toHaveLength(1);
    await expect(proxy.findObjects('pkcs11:token=alpha;type=private', { pin: '9999' })).rejects.toMatchObject({ rv: CKR.CKR_PIN_INCORRECT });
  });

  it('keeps serving the other modules while one is stale (generation change), and takes it back with the same IDs', () => {
    const before = proxy.getSlotList();
    const nssSession = proxy.openSession(slotOf('NSS Certificate DB'));
    const hsmSession = proxy.openSession(slotOf('alpha'));
    const alpha = slotOf('alpha');
    const softhsm = proxy.module('softhsm')!;
    const failuresBefore = proxy.failures.length;
    softhsm.lifecycle.generationChange('host-lost');
    try {
      expect(proxy.modules.find((m) => m.name === 'softhsm')!.usable).toBe(false);
      const during = proxy.getSlotList();
      expect(during).toEqual(before.filter((s) => proxy.slotOwner(s).module !== 'softhsm'));
      const failure = proxy.failures[failuresBefore];
      expect(failure).toMatchObject({ module: 'softhsm', stage: 'slot-list', dropped: false });
      expect(failure.error).toBeInstanceOf(LifecycleError);
      // Its slots and sessions answer the typed lifecycle error; the others work.
      expect(() => proxy.getTokenInfo(alpha)).toThrow(LifecycleError);
      expect(() => hsmSession.generateRandom(4)).toThrow(LifecycleError);
      expect(nssSession.generateRandom(4)).toHaveLength(4);
      expect(proxy.findTokens('pkcs11:').map((t) => t.module)).not.toContain('softhsm');
    } finally {
      proxy.reinitialize('softhsm');
    }
    expect(proxy.getSlotList()).toEqual(before);
    expect(proxy.getTokenInfo(alpha).label).toBe('alpha');
    expect(hsmSession.open).toBe(false);
    hsmSession.close();
    nssSession.close();
  });

  it('lists slots with the async form too, asking the modules in parallel', async () => {
    expect(await proxy.async.getSlotList()).toEqual(proxy.getSlotList());
    expect(await proxy.async.getSlotList(true)).toEqual(proxy.getSlotList(true));
    expect((await proxy.async.getTokenInfo(slotOf('beta'))).label).toBe('beta');
    await expect(proxy.async.getSlotInfo(3)).rejects.toMatchObject({ rv: CKR.CKR_SLOT_ID_INVALID });
    const mechs = await proxy.async.getMechanismList(slotOf('alpha'));
    expect(mechs).toContain(CKM.CKM_ECDSA);
    expect(proxy.getMechanismInfo(slotOf('alpha'), CKM.CKM_ECDSA).flags).toBeGreaterThan(0);
  });

  it('a second proxy has its own handles; release closes its sessions and finalizes modules nobody else holds', () => {
    const other = openProxy({ registry: tree.registry });
    const s = other.openSession(other.findTokens('pkcs11:token=alpha')[0].slot);
    expect(s.handle).toBe(17);
    expect(other.getSlotList()).toEqual(proxy.getSlotList());
    // NSS softokn: the stale test above made SoftHSM2's lifecycle re-enter an initialized module.
    const lifecycle = other.module('nss')!.lifecycle;
    other.release();
    expect(s.open).toBe(false);
    expect(rvOf(() => other.getSlotList())).toBe(CKR.CKR_CRYPTOKI_NOT_INITIALIZED);
    expect(lifecycle.state.phase).toBe('ready'); // the first proxy still holds it
    const finalizes = lifecycle.callCounts.finalize;
    proxy.release();
    expect(lifecycle.callCounts.finalize).toBe(finalizes + 1);
    expect(lifecycle.state.phase).toBe('uninitialized');
  });
});
