// The typed and raw bridge against a real SoftHSM2 token store in a temp dir: the full flow
// from C_InitToken to destroying objects, sync and async.
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';
import { loadModule } from '../ts/bridge/modules.js';
import type { Pkcs11Module } from '../ts/bridge/module.js';
import { CKA } from '../ts/bridge/cka.js';
import { CKM } from '../ts/bridge/ckm.js';
import { CKO, CKK, CKU, CKG } from '../ts/bridge/ck-enums.js';
import { CKF_SESSION, CKF_TOKEN, CKF_MECHANISM } from '../ts/bridge/ckf.js';
import { CKR } from '../ts/bridge/ckr.js';
import { Pkcs11Error } from '../ts/bridge/errors.js';
import { Arena } from '../ts/bridge/memory.js';

const SO_PIN = '5678';
const USER_PIN = '1234';
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const RW = CKF_SESSION.CKF_RW_SESSION | CKF_SESSION.CKF_SERIAL_SESSION;

let hsm: SoftHsm;
let m: Pkcs11Module;
let slot: number;
let session: number;

beforeAll(() => {
  hsm = createSoftHsm();
  m = loadModule(SOFTHSM_MODULE);
  m.initialize();
});

afterAll(() => {
  try {
    m.finalize();
  } finally {
    hsm.cleanup();
  }
});

describe('SoftHSM2 through the bridge', () => {
  it('loads once per shared object and reports library info', () => {
    expect(loadModule('/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so')).toBe(m);
    const info = m.getInfo();
    expect(info.manufacturerID).toBe('SoftHSM');
    expect(info.libraryDescription).toBe('Implementation of PKCS11');
    expect(info.cryptokiVersion.major).toBe(2);
    expect(info.libraryVersion).toEqual({ major: 2, minor: 6 });
    expect(JSON.parse(JSON.stringify(info)).manufacturerID).toBe('SoftHSM');
    expect(m.listVersion.major).toBe(2);
    expect(m.iface).toBeUndefined();
  });

  it('initializes a token on the free slot, then its user PIN', () => {
    const slots = m.getSlotList(true);
    expect(slots.length).toBe(1);
    const free = slots[0];
    const before = m.getTokenInfo(free);
    expect(before.flags & CKF_TOKEN.CKF_TOKEN_INITIALIZED).toBe(0);
    m.initToken(free, SO_PIN, 'bridge test');
    // SoftHSM moves an initialized token to a new slot ID and adds a free slot.
    const after = m.getSlotList(true);
    const found = after.find((s) => m.getTokenInfo(s).label === 'bridge test');
    expect(found).toBeDefined();
    slot = found!;
    const so = m.openSession(slot, RW);
    m.login(so, CKU.CKU_SO, SO_PIN);
    m.initPIN(so, USER_PIN);
    m.logout(so);
    m.closeSession(so);
    const token = m.getTokenInfo(slot);
    expect(token.flags & CKF_TOKEN.CKF_USER_PIN_INITIALIZED).toBeTruthy();
    expect(token.model).toBe('SoftHSM v2');
    expect(typeof token.totalPublicMemory === 'bigint' || typeof token.totalPublicMemory === 'number').toBe(true);
    const slotInfo = m.getSlotInfo(slot);
    expect(slotInfo.manufacturerID).toBe('SoftHSM project');
  });

  it('logs in (wrong PIN is a typed error with the rv) and reports the session', () => {
    session = m.openSession(slot, RW);
    const wrong = (() => {
      try {
        m.login(session, CKU.CKU_USER, '0000');
      } catch (e) {
        return e;
      }
    })();
    expect(wrong).toBeInstanceOf(Pkcs11Error);
    expect((wrong as Pkcs11Error).rv).toBe(CKR.CKR_PIN_INCORRECT);
    expect((wrong as Pkcs11Error).code).toBe('CKR_PIN_INCORRECT');
    expect((wrong as Pkcs11Error).fn).toBe('C_Login');
    expect((wrong as Pkcs11Error).module).toBe('libsofthsm2.so');
    expect((wrong as Error).message).not.toContain('0000');
    m.login(session, CKU.CKU_USER, USER_PIN);
    const info = m.getSessionInfo(session);
    expect(info.slotID).toBe(slot);
    expect(info.flags & CKF_SESSION.CKF_RW_SESSION).toBeTruthy();
    expect(info.state).toBe(3); // CKS_RW_USER_FUNCTIONS
  });

  it('lists mechanisms with their info', () => {
    const mechs = m.getMechanismList(slot);
    expect(mechs).toContain(CKM.CKM_ECDSA);
    expect(mechs).toContain(CKM.CKM_SHA256);
    const info = m.getMechanismInfo(slot, CKM.CKM_RSA_PKCS_KEY_PAIR_GEN);
    expect(info.flags & CKF_MECHANISM.CKF_GENERATE_KEY_PAIR).toBeTruthy();
    expect(Number(info.maxKeySize)).toBeGreaterThanOrEqual(4096);
  });

  it('digests like node:crypto', () => {
    const data = Buffer.from('the quick brown fox');
    m.digestInit(session, CKM.CKM_SHA256);
    const d = m.digest(session, data);
    expect(Buffer.from(d).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    m.digestInit(session, { mechanism: CKM.CKM_SHA512 });
    m.digestUpdate(session, data.subarray(0, 5));
    m.digestUpdate(session, data.subarray(5));
    expect(Buffer.from(m.digestFinal(session)).toString('hex')).toBe(createHash('sha512').update(data).digest('hex'));
    // Large inputs go to the module in place (sync) or copied (async): same answer.
    const big = Buffer.alloc(100_000, 7);
    m.digestInit(session, CKM.CKM_SHA256);
    expect(Buffer.from(m.digest(session, big)).toString('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('generates random bytes', () => {
    const r = m.generateRandom(session, 32);
    expect(r.length).toBe(32);
    expect(Buffer.from(r).equals(Buffer.from(m.generateRandom(session, 32)))).toBe(false);
    m.seedRandom(session, Buffer.from('seed'));
  });

  it('generates an EC P-256 key pair, signs, and the signature verifies (module and node:crypto)', () => {
    const { publicKey, privateKey } = m.generateKeyPair(
      session,
      CKM.CKM_EC_KEY_PAIR_GEN,
      [
        { type: CKA.CKA_EC_PARAMS, value: P256_OID },
        { type: CKA.CKA_VERIFY, value: true },
        { type: CKA.CKA_LABEL, value: 'ec pub' },
        { type: CKA.CKA_TOKEN, value: true },
      ],
      [
        { type: CKA.CKA_SIGN, value: true },
        { type: CKA.CKA_LABEL, value: 'ec priv' },
        { type: CKA.CKA_ID, value: Buffer.from([1, 2, 3]) },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_SENSITIVE, value: true },
      ],
    );
    const data = Buffer.from('message to sign');
    const hash = createHash('sha256').update(data).digest();
    m.signInit(session, CKM.CKM_ECDSA, privateKey);
    const sig = m.sign(session, hash);
    expect(sig.length).toBe(64);
    m.verifyInit(session, CKM.CKM_ECDSA, publicKey);
    expect(m.verify(session, hash, sig)).toBe(true);
    m.verifyInit(session, CKM.CKM_ECDSA, publicKey);
    expect(m.verify(session, createHash('sha256').update('tampered').digest(), sig)).toBe(false);

    const [point] = m.getAttributeValue(session, publicKey, [CKA.CKA_EC_POINT]);
    const raw = Buffer.from(point.value as Uint8Array).subarray(2); // DER OCTET STRING header
    const jwk = { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') };
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    expect(nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);

    const attrs = m.getAttributeValue(session, privateKey, [CKA.CKA_CLASS, CKA.CKA_KEY_TYPE, CKA.CKA_LABEL, CKA.CKA_ID, CKA.CKA_SIGN, CKA.CKA_VALUE, CKA.CKA_START_DATE]);
    expect(attrs.map((a) => a.value)).toEqual([CKO.CKO_PRIVATE_KEY, CKK.CKK_EC, 'ec priv', new Uint8Array([1, 2, 3]), true, undefined, new Uint8Array(0)]);
  });

  it('generates RSA keys: PKCS#1, PSS and OAEP round trips', () => {
    const { publicKey, privateKey } = m.generateKeyPair(
      session,
      CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
      [
        { type: CKA.CKA_MODULUS_BITS, value: 2048 },
        { type: CKA.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: CKA.CKA_ENCRYPT, value: true },
        { type: CKA.CKA_VERIFY, value: true },
      ],
      [
        { type: CKA.CKA_DECRYPT, value: true },
        { type: CKA.CKA_SIGN, value: true },
      ],
    );
    const [bits] = m.getAttributeValue(session, publicKey, [CKA.CKA_MODULUS_BITS]);
    expect(bits.value).toBe(2048);
    const data = Buffer.from('rsa data');

    m.signInit(session, CKM.CKM_SHA256_RSA_PKCS, privateKey);
    const sig = m.sign(session, data);
    expect(sig.length).toBe(256);
    m.verifyInit(session, CKM.CKM_SHA256_RSA_PKCS, publicKey);
    expect(m.verify(session, data, sig)).toBe(true);

    const pss = { mechanism: CKM.CKM_SHA256_RSA_PKCS_PSS, parameter: { hashAlg: CKM.CKM_SHA256, mgf: CKG.CKG_MGF1_SHA256, saltLength: 32 } };
    m.signInit(session, pss, privateKey);
    m.signUpdate(session, data);
    const pssSig = m.signFinal(session);
    m.verifyInit(session, pss, publicKey);
    m.verifyUpdate(session, data);
    expect(m.verifyFinal(session, pssSig)).toBe(true);

    const oaep = { mechanism: CKM.CKM_RSA_PKCS_OAEP, parameter: { hashAlg: CKM.CKM_SHA_1, mgf: CKG.CKG_MGF1_SHA1 } };
    m.encryptInit(session, oaep, publicKey);
    const ct = m.encrypt(session, data);
    expect(ct.length).toBe(256);
    m.decryptInit(session, oaep, privateKey);
    expect(Buffer.from(m.decrypt(session, ct)).toString()).toBe('rsa data');
  });

  it('AES-GCM and AES-CBC encrypt/decrypt, wrap/unwrap', () => {
    const aes = m.generateKey(session, CKM.CKM_AES_KEY_GEN, [
      { type: CKA.CKA_VALUE_LEN, value: 32 },
      { type: CKA.CKA_ENCRYPT, value: true },
      { type: CKA.CKA_DECRYPT, value: true },
      { type: CKA.CKA_WRAP, value: true },
      { type: CKA.CKA_UNWRAP, value: true },
      { type: CKA.CKA_EXTRACTABLE, value: true },
    ]);
    const gcm = { mechanism: CKM.CKM_AES_GCM, parameter: { iv: Buffer.alloc(12, 7), aad: Buffer.from('hdr'), tagBits: 128 } };
    const plain = Buffer.from('sixteen byte msg and a bit more');
    m.encryptInit(session, gcm, aes);
    const ct = m.encrypt(session, plain);
    expect(ct.length).toBe(plain.length + 16);
    m.decryptInit(session, gcm, aes);
    expect(Buffer.from(m.decrypt(session, ct)).equals(plain)).toBe(true);

    const cbc = { mechanism: CKM.CKM_AES_CBC_PAD, parameter: Buffer.alloc(16, 1) };
    m.encryptInit(session, cbc, aes);
    const part1 = m.encryptUpdate(session, plain.subarray(0, 10));
    const part2 = m.encryptUpdate(session, plain.subarray(10));
    const last = m.encryptFinal(session);
    expect(part1.length).toBe(0); // a zero-length output still needs a real pointer, or the call is a length query
    const cbcCt = Buffer.concat([part1, part2, last]);
    expect(cbcCt.length).toBe(32);
    m.decryptInit(session, cbc, aes);
    expect(Buffer.from(m.decrypt(session, cbcCt)).equals(plain)).toBe(true);

    const secret = m.generateKey(session, CKM.CKM_GENERIC_SECRET_KEY_GEN, [
      { type: CKA.CKA_VALUE_LEN, value: 32 },
      { type: CKA.CKA_EXTRACTABLE, value: true },
      { type: CKA.CKA_SENSITIVE, value: false },
    ]);
    const wrapped = m.wrapKey(session, CKM.CKM_AES_KEY_WRAP, aes, secret);
    expect(wrapped.length).toBe(40);
    const back = m.unwrapKey(session, CKM.CKM_AES_KEY_WRAP, aes, wrapped, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
      { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_GENERIC_SECRET },
      { type: CKA.CKA_SENSITIVE, value: false },
      { type: CKA.CKA_EXTRACTABLE, value: true },
    ]);
    const [a, b] = [secret, back].map((h) => m.getAttributeValue(session, h, [CKA.CKA_VALUE])[0].value as Uint8Array);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('ECDH1 derive agrees between two key pairs', () => {
    const pair = () =>
      m.generateKeyPair(session, CKM.CKM_EC_KEY_PAIR_GEN, [{ type: CKA.CKA_EC_PARAMS, value: P256_OID }], [{ type: CKA.CKA_DERIVE, value: true }]);
    const alice = pair();
    const bob = pair();
    const point = (h: number) => m.getAttributeValue(session, h, [CKA.CKA_EC_POINT])[0].value as Uint8Array;
    const derive = (priv: number, peerPub: number) => {
      const key = m.deriveKey(
        session,
        { mechanism: CKM.CKM_ECDH1_DERIVE, parameter: { kdf: 1, publicData: Buffer.from(point(peerPub)).subarray(2) } },
        priv,
        [
          { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
          { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_GENERIC_SECRET },
          { type: CKA.CKA_VALUE_LEN, value: 32 },
          { type: CKA.CKA_SENSITIVE, value: false },
          { type: CKA.CKA_EXTRACTABLE, value: true },
        ],
      );
      return Buffer.from(m.getAttributeValue(session, key, [CKA.CKA_VALUE])[0].value as Uint8Array);
    };
    const k1 = derive(alice.privateKey, bob.publicKey);
    expect(k1.length).toBe(32);
    expect(k1.equals(derive(bob.privateKey, alice.publicKey))).toBe(true);
  });

  it('creates, finds, copies, modifies and destroys objects', () => {
    const data = m.createObject(session, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
      { type: CKA.CKA_TOKEN, value: false },
      { type: CKA.CKA_LABEL, value: 'note' },
      { type: CKA.CKA_APPLICATION, value: 'bridge-test' },
      { type: CKA.CKA_VALUE, value: Buffer.from('hello') },
    ]);
    const cert = m.createObject(session, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_CERTIFICATE },
      { type: CKA.CKA_CERTIFICATE_TYPE, value: 0 },
      { type: CKA.CKA_TOKEN, value: false },
      { type: CKA.CKA_SUBJECT, value: Buffer.from('3000', 'hex') },
      { type: CKA.CKA_VALUE, value: Buffer.from('3000', 'hex') },
      { type: CKA.CKA_START_DATE, value: { year: 2024, month: 2, day: 29 } },
      { type: CKA.CKA_END_DATE, value: '20341231' },
    ]);
    expect(m.getAttributeValue(session, cert, [CKA.CKA_START_DATE, CKA.CKA_END_DATE]).map((a) => a.value)).toEqual([
      { year: 2024, month: 2, day: 29 },
      { year: 2034, month: 12, day: 31 },
    ]);
    m.destroyObject(session, cert);
    expect(Number(m.getObjectSize(session, data))).toBeGreaterThan(0);
    const copy = m.copyObject(session, data, [{ type: CKA.CKA_LABEL, value: 'note copy' }]);
    m.setAttributeValue(session, data, [{ type: CKA.CKA_LABEL, value: 'note renamed' }]);
    const found = m.findAllObjects(session, [{ type: CKA.CKA_APPLICATION, value: 'bridge-test' }]);
    expect(found.sort()).toEqual([data, copy].sort());
    const labels = found.map((h) => m.getAttributeValue(session, h, [CKA.CKA_LABEL])[0].value).sort();
    expect(labels).toEqual(['note copy', 'note renamed']);
    // Small batches exercise the FindObjects loop.
    const keys = m.findAllObjects(session, [{ type: CKA.CKA_TOKEN, value: true }], 1);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    m.destroyObject(session, copy);
    m.destroyObject(session, data);
    expect(m.findAllObjects(session, [{ type: CKA.CKA_APPLICATION, value: 'bridge-test' }])).toEqual([]);
    const gone = (() => {
      try {
        m.getAttributeValue(session, data, [CKA.CKA_LABEL]);
      } catch (e) {
        return e as Pkcs11Error;
      }
    })();
    expect(gone?.rv).toBe(CKR.CKR_OBJECT_HANDLE_INVALID);
  });

  it('reads nested templates and mechanism arrays', () => {
    const key = m.generateKey(session, CKM.CKM_AES_KEY_GEN, [
      { type: CKA.CKA_VALUE_LEN, value: 16 },
      { type: CKA.CKA_WRAP, value: true },
      { type: CKA.CKA_WRAP_TEMPLATE, value: [{ type: CKA.CKA_EXTRACTABLE, value: true }, { type: CKA.CKA_LABEL, value: 'inner' }] },
      { type: CKA.CKA_ALLOWED_MECHANISMS, value: [CKM.CKM_AES_KEY_WRAP, CKM.CKM_AES_CBC] },
    ]);
    const [tpl, mechs] = m.getAttributeValue(session, key, [CKA.CKA_WRAP_TEMPLATE, CKA.CKA_ALLOWED_MECHANISMS]);
    expect((mechs.value as number[]).sort()).toEqual([CKM.CKM_AES_KEY_WRAP, CKM.CKM_AES_CBC].sort());
    expect((tpl.value as { type: number }[]).sort((x, y) => x.type - y.type)).toEqual([
      { type: CKA.CKA_LABEL, value: 'inner' },
      { type: CKA.CKA_EXTRACTABLE, value: true },
    ]);
  });

  it('reports what SoftHSM does not implement as typed errors', () => {
    m.digestInit(session, CKM.CKM_SHA256);
    m.digestUpdate(session, Buffer.from('abc'));
    expect(() => m.getOperationState(session)).toThrow(expect.objectContaining({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED, fn: 'C_GetOperationState' }));
    expect(() => m.getFunctionStatus(session)).toThrow(expect.objectContaining({ rv: CKR.CKR_FUNCTION_NOT_PARALLEL }));
    m.digestFinal(session);
  });

  it('runs every typed call asynchronously too', async () => {
    const info = await m.async.getInfo();
    expect(info.manufacturerID).toBe('SoftHSM');
    expect(await m.async.getSlotList(true)).toEqual(m.getSlotList(true));
    const s = await m.async.openSession(slot, RW);
    const r = await m.async.generateRandom(s, 16);
    expect(r.length).toBe(16);
    await m.async.digestInit(s, CKM.CKM_SHA256);
    const d = await m.async.digest(s, Buffer.from('abc'));
    expect(Buffer.from(d).toString('hex')).toBe(createHash('sha256').update('abc').digest('hex'));
    const big = Buffer.alloc(100_000, 9);
    await m.async.digestInit(s, CKM.CKM_SHA256);
    expect(Buffer.from(await m.async.digest(s, big)).toString('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    const pair = await m.async.generateKeyPair(s, CKM.CKM_EC_KEY_PAIR_GEN, [{ type: CKA.CKA_EC_PARAMS, value: P256_OID }], [{ type: CKA.CKA_SIGN, value: true }]);
    await m.async.signInit(s, CKM.CKM_ECDSA, pair.privateKey);
    const sigs = await Promise.all([m.async.sign(s, Buffer.alloc(32, 1))]);
    expect(sigs[0].length).toBe(64);
    await expect(m.async.login(s, CKU.CKU_USER, '0000')).rejects.toMatchObject({ rv: CKR.CKR_USER_ALREADY_LOGGED_IN });
    await m.async.closeSession(s);
    expect(await m.callAsync('C_GetInfo', 0)).toBe(CKR.CKR_ARGUMENTS_BAD);
  });

  it('offers C_Initialize/C_Finalize returning the CK_RV, for the lifecycle layer', () => {
    expect(m.initializeRv()).toBe(CKR.CKR_CRYPTOKI_ALREADY_INITIALIZED);
  });

  it('results own exactly their bytes: no view of shared memory leaves the bridge', () => {
    const r = m.generateRandom(session, 200);
    expect(r.buffer.byteLength).toBe(200);
    // The reused memory the fast random call goes through keeps none of the bytes it handed out.
    const scratch = (m as unknown as { fast: { randomView: Uint8Array } }).fast.randomView;
    for (const n of [1, 5, 32, 33, 255, 256]) {
      const bytes = m.generateRandom(session, n);
      if (n >= 5) expect(bytes.some((b) => b !== 0)).toBe(true); // 2^-40 to fail by chance
      expect(scratch.every((b) => b === 0)).toBe(true);
    }
    m.digestInit(session, CKM.CKM_SHA256);
    const d = m.digest(session, Buffer.alloc(100, 1));
    expect(d.buffer.byteLength).toBe(32);
    // Info objects decode lazily from private bytes: a structured clone carries none of them.
    const info = m.getTokenInfo(slot);
    expect(JSON.stringify(structuredClone(info))).toBe('{}');
    expect(structuredClone(info.toJSON()).label).toBe('bridge test');
  });

  it('raw calls return CK_RVs and fill caller memory: Arena addresses, or Buffers through rawBuffers', () => {
    const mem = new Arena(64);
    const at = mem.alloc(32);
    expect(m.raw.C_GenerateRandom(session, at, 32)).toBe(CKR.CKR_OK);
    expect(mem.view(at, 32).some((b) => b !== 0)).toBe(true);
    const buf = new Uint8Array(32);
    expect(m.rawBuffers.C_GenerateRandom(session, buf, 32)).toBe(CKR.CKR_OK);
    expect(buf.some((b) => b !== 0)).toBe(true);
    expect(m.call('C_GenerateRandom', session, Buffer.alloc(8), 8)).toBe(CKR.CKR_OK);
    expect(m.raw.C_CloseSession(0xdead)).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    expect(m.raw.C_GetInfo(0)).toBe(CKR.CKR_ARGUMENTS_BAD);
  });
});
