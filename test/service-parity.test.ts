// One call surface, two faces: every PKCS#11 call of the in-thread API (ManagedSession,
// ManagedModule) has a service counterpart, and each is exercised through a service worker on
// SoftHSM2 — answered by the module (a value, or the module's own CK_RV), never refused or
// lost on the way. Streams: large data in bounded pieces gives the same bytes as one call.
import { createHash, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BridgeError,
  CKA,
  CKM,
  CKO,
  CKU,
  createPkcs11Worker,
  ManagedModule,
  ManagedSession,
  MODULE_CALL_CLASS,
  openModule,
  Pkcs11Error,
  SESSION_CALL_CLASS,
  type Pkcs11Client,
} from '../ts/index.js';
import { ServiceModule, ServiceSession } from '../ts/service/index.js';
import { SESSION_CALLS } from '../ts/managed/calls.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const PIN = '1234';
const SO_PIN = '12345678';
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');

let hsm: SoftHsm;
let slot: number;
let spareSlot: number;
let p11: Pkcs11Client;
beforeAll(() => {
  hsm = createSoftHsm();
  slot = hsm.initToken('parity', SO_PIN, PIN);
  spareSlot = hsm.initToken('spare', SO_PIN, PIN);
  p11 = createPkcs11Worker();
});
afterAll(async () => {
  await p11.close();
  hsm.cleanup();
});

/** Own methods of a prototype, without the constructor and accessors. */
const methodsOf = (proto: object) =>
  Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(proto, n)!.value === 'function');

/** Where each ManagedModule method lives on the service's face (ServiceModule / Pkcs11Client). */
const MODULE_COUNTERPART: Record<string, string> = {
  openSession: 'openSession',
  sessions: 'sessions',
  closeAllSessions: 'calls.closeAllSessions',
  initToken: 'calls.initToken',
  waitForSlotEvent: 'slotEvents',
  reinitialize: 'reinitialize',
  release: 'close',
  whenReleased: 'close', // the service's close() settles once the module is given back
  getInfo: 'calls.getInfo',
  getSlotList: 'calls.getSlotList',
  getSlotInfo: 'calls.getSlotInfo',
  getTokenInfo: 'calls.getTokenInfo',
  getMechanismList: 'calls.getMechanismList',
  getMechanismInfo: 'calls.getMechanismInfo',
};

describe('parity: the in-thread API and the service', () => {
  it('every in-thread call has a service counterpart (and a grant class)', async () => {
    const m = await p11.openModule(SOFTHSM_MODULE);
    const s = await m.openSession(slot);
    const sessionMethods = methodsOf(ManagedSession.prototype).filter((n) => n !== 'close');
    expect(sessionMethods.length).toBeGreaterThanOrEqual(SESSION_CALLS.length);
    for (const name of sessionMethods) {
      expect(typeof (s.calls as unknown as Record<string, unknown>)[name], `ServiceSession.calls.${name}`).toBe('function');
      expect(SESSION_CALL_CLASS, name).toHaveProperty(name);
    }
    expect(typeof ServiceSession.prototype.close).toBe('function');
    // Its private helpers (TypeScript's private is not visible at run time).
    const internal = ['openSessionAsync', 'adopt'];
    for (const name of methodsOf(ManagedModule.prototype).filter((n) => !internal.includes(n))) {
      const where = MODULE_COUNTERPART[name];
      expect(where, `ManagedModule.${name} has no service counterpart`).toBeDefined();
      const [head, tail] = where.split('.');
      const target = tail ? (m as unknown as Record<string, Record<string, unknown>>)[head][tail] : (ServiceModule.prototype as unknown as Record<string, unknown>)[head];
      expect(typeof target, where).toBe('function');
      if (head === 'calls') expect(MODULE_CALL_CLASS, name).toHaveProperty(tail);
    }
    await m.close();
  });

  it('each session and module call, exercised through the service on SoftHSM2', async () => {
    const m = await p11.openModule(SOFTHSM_MODULE);
    const s = await m.openSession(slot, { rw: true, pin: PIN });
    const local = openModule(SOFTHSM_MODULE);
    const used = new Set<string>();
    const outcomes: Record<string, unknown> = {};
    const t = s.calls as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const c = new Proxy({} as Record<string, (...a: unknown[]) => Promise<unknown>>, {
      get: (_, name: string) => (...args: unknown[]) => {
        used.add(name);
        return t[name](...args).then(
          (v) => (outcomes[name] = v),
          (e: unknown) => {
            // A module's answer, or the bridge saying the module lacks the function: fine. Refusals or lost calls are not.
            if (!(e instanceof Pkcs11Error) && !(e instanceof BridgeError)) throw e;
            outcomes[name] ??= e;
            return e;
          },
        );
      },
    });
    const ok = async <T>(p: Promise<unknown>) => {
      const v = await p;
      if (v instanceof Error) throw v;
      return v as T;
    };

    expect(await ok(c.getSessionInfo())).toMatchObject({ slotID: slot });
    await ok(c.logout());
    await ok(c.login(CKU.CKU_USER, PIN));
    await c.loginUser(CKU.CKU_USER, PIN, 'user');
    await c.sessionCancel(0);
    const state = await c.getOperationState();
    await c.setOperationState(state instanceof Uint8Array ? state : new Uint8Array(8), 0, 0);
    await c.initPIN(PIN); // as user: the module says no (CKR_USER_NOT_LOGGED_IN): still its answer
    await ok(c.setPIN(PIN, PIN));

    const aes = await ok<number>(c.generateKey(CKM.CKM_AES_KEY_GEN, [
      { type: CKA.CKA_VALUE_LEN, value: 32 }, { type: CKA.CKA_ENCRYPT, value: true }, { type: CKA.CKA_DECRYPT, value: true },
      { type: CKA.CKA_WRAP, value: true }, { type: CKA.CKA_UNWRAP, value: true }, { type: CKA.CKA_EXTRACTABLE, value: true },
    ]));
    const data = await ok<number>(c.createObject([{ type: CKA.CKA_CLASS, value: CKO.CKO_DATA }, { type: CKA.CKA_LABEL, value: 'parity' }, { type: CKA.CKA_VALUE, value: new Uint8Array([1, 2, 3]) }]));
    const copy = await ok<number>(c.copyObject(data, [{ type: CKA.CKA_LABEL, value: 'copy' }]));
    await c.getObjectSize(copy);
    await ok(c.setAttributeValue(copy, [{ type: CKA.CKA_LABEL, value: 'renamed' }]));
    expect(await ok(c.getAttributeValue(copy, [CKA.CKA_LABEL]))).toEqual([{ type: CKA.CKA_LABEL, value: 'renamed' }]);
    await ok(c.findObjectsInit([{ type: CKA.CKA_LABEL, value: 'renamed' }]));
    expect(await ok(c.findObjects(10))).toEqual([copy]);
    await ok(c.findObjectsFinal());
    expect(await ok(c.findAllObjects([{ type: CKA.CKA_LABEL, value: 'parity' }]))).toEqual([data]);
    await ok(c.destroyObject(copy));

    const iv = { mechanism: CKM.CKM_AES_CBC_PAD, parameter: new Uint8Array(16) };
    const plain = randomBytes(100);
    await ok(c.encryptInit(iv, aes));
    const one = await ok<Uint8Array>(c.encrypt(plain));
    await ok(c.encryptInit(iv, aes));
    const parts = [await ok<Uint8Array>(c.encryptUpdate(plain.subarray(0, 37))), await ok<Uint8Array>(c.encryptUpdate(plain.subarray(37))), await ok<Uint8Array>(c.encryptFinal())];
    expect(Buffer.concat(parts)).toEqual(Buffer.from(one));
    await ok(c.decryptInit(iv, aes));
    expect(Buffer.from(await ok<Uint8Array>(c.decrypt(one)))).toEqual(plain);
    await ok(c.decryptInit(iv, aes));
    expect(Buffer.concat([await ok<Uint8Array>(c.decryptUpdate(one.subarray(0, 50))), await ok<Uint8Array>(c.decryptUpdate(one.subarray(50))), await ok<Uint8Array>(c.decryptFinal())])).toEqual(plain);

    const sha = createHash('sha256').update(plain).digest();
    await ok(c.digestInit(CKM.CKM_SHA256));
    expect(Buffer.from(await ok<Uint8Array>(c.digest(plain)))).toEqual(sha);
    await ok(c.digestInit(CKM.CKM_SHA256));
    await ok(c.digestUpdate(plain));
    await c.digestKey(aes);
    await c.digestFinal();

    const kp = await ok<{ publicKey: number; privateKey: number }>(c.generateKeyPair(
      CKM.CKM_EC_KEY_PAIR_GEN,
      [{ type: CKA.CKA_EC_PARAMS, value: P256_OID }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_DERIVE, value: true }],
      [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_DERIVE, value: true }],
    ));
    await ok(c.signInit(CKM.CKM_ECDSA, kp.privateKey));
    const sig = await ok<Uint8Array>(c.sign(sha));
    const rsa = await ok<{ publicKey: number; privateKey: number }>(c.generateKeyPair(
      CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
      [{ type: CKA.CKA_MODULUS_BITS, value: 2048 }, { type: CKA.CKA_VERIFY, value: true }],
      [{ type: CKA.CKA_SIGN, value: true }],
    ));
    await ok(c.signInit(CKM.CKM_SHA256_RSA_PKCS, rsa.privateKey));
    await ok(c.signUpdate(plain.subarray(0, 10)));
    await ok(c.signUpdate(plain.subarray(10)));
    const sig2 = await ok<Uint8Array>(c.signFinal());
    await ok(c.verifyInit(CKM.CKM_ECDSA, kp.publicKey));
    expect(await ok(c.verify(sha, sig))).toBe(true);
    await ok(c.verifyInit(CKM.CKM_SHA256_RSA_PKCS, rsa.publicKey));
    await ok(c.verifyUpdate(plain));
    expect(await ok(c.verifyFinal(sig2))).toBe(true);
    await c.signRecoverInit(CKM.CKM_ECDSA, kp.privateKey);
    await c.signRecover(sha);
    await c.verifyRecoverInit(CKM.CKM_ECDSA, kp.publicKey);
    await c.verifyRecover(sig);
    for (const dual of ['digestEncryptUpdate', 'decryptDigestUpdate', 'signEncryptUpdate', 'decryptVerifyUpdate']) await c[dual](plain);

    const other = await ok<number>(c.generateKey(CKM.CKM_AES_KEY_GEN, [{ type: CKA.CKA_VALUE_LEN, value: 16 }, { type: CKA.CKA_EXTRACTABLE, value: true }]));
    const wrapped = await ok<Uint8Array>(c.wrapKey(CKM.CKM_AES_KEY_WRAP, aes, other));
    await ok(c.unwrapKey(CKM.CKM_AES_KEY_WRAP, aes, wrapped, [{ type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY }, { type: CKA.CKA_KEY_TYPE, value: 0x1f }]));
    const [point] = await ok<{ value: Uint8Array }[]>(c.getAttributeValue(kp.publicKey, [CKA.CKA_EC_POINT]));
    const ecdhParams = new Uint8Array(4 + 4 + 4 + 4 + point.value.length); // a mechanism parameter the bridge may not encode: its answer is enough
    await c.deriveKey({ mechanism: CKM.CKM_ECDH1_DERIVE, parameter: ecdhParams }, kp.privateKey, [{ type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY }]);
    await c.seedRandom(new Uint8Array(16));
    expect(await ok<Uint8Array>(c.generateRandom(24))).toHaveLength(24);
    await c.getFunctionStatus();
    await c.cancelFunction();

    expect([...SESSION_CALLS].filter((n) => !used.has(n))).toEqual([]);

    // Module-level calls, against the in-thread answers.
    expect((await m.calls.getInfo()).manufacturerID).toBe(local.getInfo().manufacturerID);
    expect(await m.calls.getSlotList(true)).toEqual(local.getSlotList(true));
    expect((await m.calls.getSlotInfo(slot)).slotDescription).toBe(local.getSlotInfo(slot).slotDescription);
    expect((await m.calls.getTokenInfo(slot)).label).toBe('parity');
    expect(await m.calls.getMechanismList(slot)).toEqual(local.getMechanismList(slot));
    expect((await m.calls.getMechanismInfo(slot, CKM.CKM_ECDSA)).flags).toBe(local.getMechanismInfo(slot, CKM.CKM_ECDSA).flags);
    await m.calls.initToken(spareSlot, SO_PIN, 'renamed');
    expect(local.getTokenInfo(spareSlot).label).toBe('renamed');
    expect((await m.sessions()).map((x) => x.id)).toEqual([s.id]);
    await m.calls.closeAllSessions(slot);
    expect(await m.sessions()).toEqual([]);
    await expect(s.generateRandom(1)).rejects.toMatchObject({ code: 'CKR_SESSION_HANDLE_INVALID' });
    local.release();
    await m.close();
  });
});

describe('streams through the service', () => {
  it('sign/verify/digest/encrypt/decrypt a large input in pieces: the same bytes as in one go', async () => {
    const m = await p11.openModule(SOFTHSM_MODULE);
    const s = await m.openSession(slot, { rw: true, pin: PIN });
    const kp = await s.generateKeyPair(
      CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
      [{ type: CKA.CKA_MODULUS_BITS, value: 2048 }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_PUBLIC_EXPONENT, value: new Uint8Array([1, 0, 1]) }],
      [{ type: CKA.CKA_SIGN, value: true }],
    );
    const aes = await s.generateKey(CKM.CKM_AES_KEY_GEN, [{ type: CKA.CKA_VALUE_LEN, value: 32 }, { type: CKA.CKA_ENCRYPT, value: true }, { type: CKA.CKA_DECRYPT, value: true }]);
    const size = 24 * 1024 * 1024 + 13;
    const seed = randomBytes(1 << 16);
    // A Node stream of odd-sized chunks, generated as read.
    const source = () =>
      Readable.from(
        (function* () {
          for (let at = 0; at < size; ) {
            const n = Math.min(size - at, 70_001);
            const chunk = Buffer.alloc(n);
            for (let k = 0; k < n; k += seed.length) seed.copy(chunk, k, 0, Math.min(seed.length, n - k));
            at += n;
            yield chunk;
          }
        })(),
      );
    const hash = createHash('sha256');
    for await (const chunk of source()) hash.update(chunk);
    const expected = hash.digest();

    expect(Buffer.from(await s.digestStream(CKM.CKM_SHA256, source()))).toEqual(expected);
    const sig = await s.signStream(CKM.CKM_SHA256_RSA_PKCS, kp.privateKey, source(), { chunkSize: 1 << 20 });
    expect(await s.verifyStream(CKM.CKM_SHA256_RSA_PKCS, kp.publicKey, source(), sig)).toBe(true);
    expect(await s.verifyStream(CKM.CKM_SHA256_RSA_PKCS, kp.publicKey, source(), sig.map((b, i) => (i === 5 ? b ^ 1 : b)))).toBe(false);
    // node:crypto agrees with the token's signature over the streamed input.
    const [n, e] = await s.getAttributes(kp.publicKey, [CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT]);
    const b64 = (v: unknown) => Buffer.from(v as Uint8Array).toString('base64url');
    const key = createPublicKey({ key: { kty: 'RSA', n: b64(n.value), e: b64(e.value) }, format: 'jwk' });
    const whole = Buffer.concat(await Readable.from(source()).toArray());
    expect(nodeVerify('sha256', whole, key, sig)).toBe(true);

    // Encrypt in pieces, decrypt in pieces (a web ReadableStream this time): the plaintext comes back.
    const mech = { mechanism: CKM.CKM_AES_CBC_PAD, parameter: new Uint8Array(16).fill(3) };
    const cipher: Buffer[] = [];
    for await (const part of s.encryptStream(mech, aes, source())) cipher.push(Buffer.from(part));
    const back = createHash('sha256');
    const web = Readable.toWeb(Readable.from(cipher)) as unknown as ReadableStream<Uint8Array>;
    for await (const part of s.decryptStream(mech, aes, web)) back.update(part);
    expect(back.digest()).toEqual(expected);

    // A source that fails half-way: the error arrives, the operation is ended, the session goes on.
    const failing = async function* () {
      yield new Uint8Array(1000);
      throw new RangeError('source broke');
    };
    await expect(s.signStream(CKM.CKM_SHA256_RSA_PKCS, kp.privateKey, failing())).rejects.toThrow('source broke');
    expect(Buffer.from(await s.digestStream(CKM.CKM_SHA256, new Uint8Array([1, 2, 3])))).toEqual(createHash('sha256').update(Buffer.from([1, 2, 3])).digest());
    await m.close();
  });
});

describe('errors and disposal', () => {
  it("an error from the service carries the caller's own call site", async () => {
    const m = await p11.openModule(SOFTHSM_MODULE);
    const s = await m.openSession(slot);
    const err = (await s.sign(CKM.CKM_ECDSA, 0x4242, new Uint8Array(32)).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Pkcs11Error);
    const [, caller] = err.stack!.split('--- called from ---');
    expect(caller).toContain('service-parity.test.ts');
    const unknown = (await p11.openModule('nosuchmodule').catch((e: unknown) => e)) as Error;
    expect(unknown).toMatchObject({ name: 'UnknownModuleError', module: 'nosuchmodule' });
    expect(unknown.message).toContain('softhsm2');
    expect(unknown.stack!.split('--- called from ---')[1]).toContain('service-parity.test.ts');
    await m.close();
  });
});
