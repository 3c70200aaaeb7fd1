// Loading: identity per shared object, typed load errors naming path and reason, the p11-kit
// proxy refusal, PKCS#11 3.0 interfaces; and the real Debian modules other than SoftHSM2:
// NSS softokn (with its reserved init string), p11-kit's trust module, OpenSC with no reader.
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModule, ModuleLoadError, Pkcs11Error, CKR, CKM, CKA, CKU, CKF_TOKEN, CKF_MISC } from '../ts/bridge/index.js';
import { createNssDb, NSS_SOFTOKN_MODULE } from './helpers/nss.js';

const FIXTURES = `${process.cwd()}/dist/native/fixtures`;
const MODULE_DIR = '/usr/lib/x86_64-linux-gnu/pkcs11';
const scratch = mkdtempSync(join(tmpdir(), 'p11kit-bridge-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function loadError(path: string, opts = {}): ModuleLoadError {
  try {
    loadModule(path, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ModuleLoadError);
    return e as ModuleLoadError;
  }
  throw new Error(`${path} loaded`);
}

describe('loading', () => {
  it('gives one object per shared object, however it is reached', () => {
    const link = join(scratch, 'link-to-mini.so');
    symlinkSync(`${FIXTURES}/mini-module.so`, link);
    const a = loadModule(`${FIXTURES}/mini-module.so`);
    expect(loadModule(link)).toBe(a);
    expect(loadModule('mini-module.so', { modulePath: FIXTURES })).toBe(a);
    // A copy is a different shared object, as p11-kit treats it.
    const copy = join(scratch, 'copy-of-mini.so');
    copyFileSync(`${FIXTURES}/mini-module.so`, copy);
    const b = loadModule(copy);
    expect(b).not.toBe(a);
    expect(b.identity).not.toBe(a.identity);
  });

  it('looks a bare file name up in the module directory', () => {
    const trust = loadModule('p11-kit-trust.so');
    expect(trust.path).toBe(`${MODULE_DIR}/p11-kit-trust.so`);
  });

  it('resolves a path with a slash against the current directory, as Node does', () => {
    const here = process.cwd();
    try {
      process.chdir(FIXTURES);
      expect(loadModule('./mini-module.so').path).toBe(`${FIXTURES}/mini-module.so`);
      process.chdir(join(FIXTURES, '..'));
      expect(loadModule('fixtures/mini-module.so').path).toBe(`${FIXTURES}/mini-module.so`);
      // Not the module directory, even where the name exists there.
      process.chdir(scratch);
      const missing = loadError('./p11-kit-trust.so');
      expect(missing.path).toBe(join(scratch, 'p11-kit-trust.so'));
    } finally {
      process.chdir(here);
    }
  });

  it('names the path and the reason when a library cannot be used', () => {
    const missing = loadError('/nonexistent/libnothing.so');
    expect(missing.reason).toBe('not-found');
    expect(missing.path).toBe('/nonexistent/libnothing.so');
    expect(missing.message).toContain('/nonexistent/libnothing.so');

    const notElf = join(scratch, 'not-a-library.so');
    copyFileSync(`${process.cwd()}/package.json`, notElf);
    const bad = loadError(notElf);
    expect(bad.reason).toBe('load-failed');
    expect(bad.message).toMatch(/not-a-library\.so.*(invalid ELF|too short|file)/);

    const noEntry = loadError(`${FIXTURES}/not-pkcs11.so`);
    expect(noEntry.reason).toBe('no-entry-point');
    expect(noEntry.message).toContain('C_GetFunctionList');

    const failing = loadError(`${FIXTURES}/failing-list-module.so`);
    expect(failing.reason).toBe('get-function-list-failed');
    expect(failing.rv).toBe(CKR.CKR_HOST_MEMORY);
    expect(failing.message).toContain('CKR_HOST_MEMORY');
  });

  it('refuses p11-kit-proxy as a registered module, as p11-kit does', () => {
    const proxy = loadError('/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so');
    expect(proxy.reason).toBe('proxy-refused');
    expect(proxy.message).toContain('refusing to load the p11-kit-proxy.so module as a registered module');
  });
});

describe('a PKCS#11 3.0 module (fixture)', () => {
  const m = loadModule(`${FIXTURES}/v3-module.so`);

  it('is reached through C_GetInterface("PKCS 11") with the 3.0 function list', () => {
    expect(m.iface).toEqual({ name: 'PKCS 11', version: { major: 3, minor: 0 }, flags: 0 });
    expect(m.listVersion).toEqual({ major: 3, minor: 0 });
    expect(m.has('C_LoginUser')).toBe(true);
    expect(m.has('C_MessageVerifyFinal')).toBe(true);
  });

  it('runs C_LoginUser, C_SessionCancel and message-based encryption', async () => {
    m.initialize();
    try {
      expect(m.getInfo().cryptokiVersion).toEqual({ major: 3, minor: 0 });
      const s = m.openSession(42);
      expect(() => m.loginUser(s, CKU.CKU_USER, '9999', 'alice')).toThrow(expect.objectContaining({ rv: CKR.CKR_PIN_INCORRECT, fn: 'C_LoginUser' }));
      m.loginUser(s, CKU.CKU_USER, '1234', 'alice');
      expect(m.getSessionInfo(s).state).toBe(1); // CKS_RO_USER_FUNCTIONS
      m.sessionCancel(s, 0x1234);
      expect(m.getSessionInfo(s).deviceError).toBe(0x1234);
      await m.async.sessionCancel(s, 0x42);
      expect(m.getSessionInfo(s).deviceError).toBe(0x42);

      // Message functions are raw calls: the caller owns the memory (Buffers here, through rawBuffers).
      const mech = new BigUint64Array([BigInt(CKM.CKM_AES_GCM), 0n, 0n]);
      expect(m.rawBuffers.C_MessageEncryptInit(s, mech, 1)).toBe(CKR.CKR_OK);
      const plain = Buffer.from('message api');
      const out = Buffer.alloc(plain.length);
      const len = new BigUint64Array([BigInt(out.length)]);
      expect(m.rawBuffers.C_EncryptMessage(s, null, 0, null, 0, plain, plain.length, out, len)).toBe(CKR.CKR_OK);
      expect(Number(len[0])).toBe(plain.length);
      expect([...out]).toEqual([...plain].map((b) => b ^ 0x5a));
      expect(await m.callAsync('C_EncryptMessage', s, null, 0, null, 0, plain, plain.length, out, len)).toBe(CKR.CKR_OK);
      expect(m.raw.C_DecryptMessage(s, 0, 0, 0, 0, 0, 0, 0, 0)).toBe(CKR.CKR_FUNCTION_NOT_SUPPORTED);
    } finally {
      m.finalize();
    }
  });
});

describe('NSS softokn', () => {
  const db = createNssDb();
  afterAll(() => db.cleanup());
  const m = loadModule(NSS_SOFTOKN_MODULE);

  it('refuses C_Initialize without its configuration, accepts it in pReserved', () => {
    expect(m.iface?.name).toBe('PKCS 11');
    expect(m.listVersion.major).toBe(3);
    expect(m.iface!.flags & CKF_MISC.CKF_INTERFACE_FORK_SAFE).toBe(CKF_MISC.CKF_INTERFACE_FORK_SAFE);
    expect(() => m.initialize({ nullArgs: true })).toThrow(expect.objectContaining({ rv: CKR.CKR_ARGUMENTS_BAD }));
    m.initialize({ reserved: db.reservedString });
  });

  it('reports info and slots, generates an EC key pair and signs', () => {
    const info = m.getInfo();
    expect(info.manufacturerID).toBe('Mozilla Foundation');
    expect(info.cryptokiVersion.major).toBe(3);
    const slots = m.getSlotList(true);
    expect(slots.length).toBe(2);
    const tokens = slots.map((s) => m.getTokenInfo(s));
    const keySlot = slots[tokens.findIndex((t) => t.flags & CKF_TOKEN.CKF_LOGIN_REQUIRED || t.label.startsWith('NSS Certificate'))];
    expect(m.getSlotInfo(keySlot).slotDescription.length).toBeGreaterThan(0);
    const s = m.openSession(keySlot, 6);
    try {
      m.login(s, CKU.CKU_USER, '');
    } catch (e) {
      expect((e as Pkcs11Error).rv).toBe(CKR.CKR_USER_ALREADY_LOGGED_IN);
    }
    const { publicKey, privateKey } = m.generateKeyPair(
      s,
      CKM.CKM_EC_KEY_PAIR_GEN,
      [{ type: CKA.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: CKA.CKA_VERIFY, value: true }],
      [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_PRIVATE, value: true }],
    );
    m.signInit(s, CKM.CKM_ECDSA_SHA256, privateKey);
    const sig = m.sign(s, Buffer.from('nss'));
    expect(sig.length).toBe(64);
    m.verifyInit(s, CKM.CKM_ECDSA_SHA256, publicKey);
    expect(m.verify(s, Buffer.from('nss'), sig)).toBe(true);
    m.closeSession(s);
    m.finalize();
  });
});

describe("p11-kit's trust module and OpenSC", () => {
  it('trust: loads with its reserved string, lists its System Trust token', () => {
    const m = loadModule('p11-kit-trust.so');
    m.initialize({ reserved: '' });
    try {
      expect(m.getInfo().libraryDescription).toBe('PKCS#11 Kit Trust Module');
      const slots = m.getSlotList(true);
      expect(slots.length).toBeGreaterThanOrEqual(1);
      const labels = slots.map((s) => m.getTokenInfo(s).label);
      expect(labels).toContain('System Trust');
      expect(m.getMechanismList(slots[0])).toEqual([]);
    } finally {
      m.finalize();
    }
  });

  it('OpenSC with zero readers: info, empty token list, no crash', async () => {
    const m = loadModule('opensc-pkcs11.so');
    m.initialize();
    try {
      expect(m.getInfo().manufacturerID).toBe('OpenSC Project');
      expect(m.getSlotList(true)).toEqual([]);
      const all = m.getSlotList(false);
      for (const slot of all) expect(typeof m.getSlotInfo(slot).slotDescription).toBe('string');
      expect(await m.async.waitForSlotEvent(1)).toBeNull(); // CKF_DONT_BLOCK: no event
    } finally {
      m.finalize();
    }
  });
});
