// The server's answer to each call of protocol version 0: read the arguments, run the call on
// the client's own proxy session (or on a served slot), write the reply (shapes.ts holds the
// shapes most calls share).
import { CKF_SESSION } from '../bridge/ckf.js';
import { CKR } from '../bridge/ckr.js';
import { Pkcs11Error } from '../bridge/errors.js';
import { asObjectHandle } from '../bridge/handles.js';
import type { CallName } from '../rpc/calls.js';
import { HANDSHAKE_MAGIC } from './magic.js';
import { ReplyWriter } from './reply.js';
import { Refusal } from './request.js';
import { answer, empty, feed, final, init, produce, transform, type Handler } from './shapes.js';

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}


const HANDLERS: Partial<Record<CallName, Handler>> = {
  async C_Initialize(req, client) {
    const magic = req.bytes('handshake');
    req.byte();
    req.bytes('reserved');
    req.done();
    if (!sameBytes(magic, HANDSHAKE_MAGIC)) throw new Refusal(CKR.CKR_DEVICE_ERROR, 'wrong C_Initialize handshake');
    client.initialized = true;
    return empty(req);
  },
  async C_Finalize(req, client) {
    req.done();
    await client.end(); // its sessions closed, its login given up
    client.initialized = false;
    return empty(req);
  },
  async C_GetInfo(req, client) {
    req.done();
    const i = client.proxy.getInfo();
    return new ReplyWriter(req.spec).version(i.cryptokiVersion).spaceString(i.manufacturerID, 32).ulong(i.flags).spaceString(i.libraryDescription, 32).version(i.libraryVersion).finish();
  },
  async C_GetSlotList(req, client) {
    const present = req.byte() !== 0;
    const cap = req.capacity('fu');
    req.done();
    return new ReplyWriter(req.spec).ulongs(await client.served.slots(present), cap).finish();
  },
  async C_GetSlotInfo(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    req.done();
    const i = await client.proxy.async.getSlotInfo(slot);
    return new ReplyWriter(req.spec).spaceString(i.slotDescription, 64).spaceString(i.manufacturerID, 32).ulong(i.flags).version(i.hardwareVersion).version(i.firmwareVersion).finish();
  },
  async C_GetTokenInfo(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    req.done();
    const t = await client.proxy.async.getTokenInfo(slot);
    const w = new ReplyWriter(req.spec).spaceString(t.label, 32).spaceString(t.manufacturerID, 32).spaceString(t.model, 16).spaceString(t.serialNumber, 16);
    for (const n of [t.flags, t.maxSessionCount, t.sessionCount, t.maxRwSessionCount, t.rwSessionCount, t.maxPinLen, t.minPinLen, t.totalPublicMemory, t.freePublicMemory, t.totalPrivateMemory, t.freePrivateMemory]) w.ulong(n);
    return w.version(t.hardwareVersion).version(t.firmwareVersion).spaceString(t.utcTime, 16).finish();
  },
  async C_GetMechanismList(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    const cap = req.capacity('fu');
    req.done();
    return new ReplyWriter(req.spec).ulongs(await client.proxy.async.getMechanismList(slot), cap).finish();
  },
  async C_GetMechanismInfo(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    const type = req.ulong('mechanism');
    req.done();
    const m = await client.proxy.async.getMechanismInfo(slot, type);
    return new ReplyWriter(req.spec).ulong(m.minKeySize).ulong(m.maxKeySize).ulong(m.flags).finish();
  },
  async C_OpenSession(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    const flags = req.ulong('flags');
    req.done();
    if (!(flags & CKF_SESSION.CKF_SERIAL_SESSION)) throw new Refusal(CKR.CKR_SESSION_PARALLEL_NOT_SUPPORTED, 'parallel session');
    const s = await client.openSession(slot, (flags & CKF_SESSION.CKF_RW_SESSION) !== 0);
    return new ReplyWriter(req.spec).ulong(s.handle).finish();
  },
  async C_CloseSession(req, client) {
    const h = req.ulong('session');
    req.done();
    await client.closeSession(h);
    return empty(req);
  },
  async C_CloseAllSessions(req, client) {
    const slot = await client.served.slot(req.ulong('slot'));
    req.done();
    await client.closeAll(slot);
    return empty(req);
  },
  async C_GetSessionInfo(req, client) {
    const h = req.ulong('session');
    req.done();
    const i = await client.session(h).async.getSessionInfo();
    return new ReplyWriter(req.spec).ulong(i.slotID).ulong(i.state).ulong(i.flags).ulong(i.deviceError).finish();
  },
  C_InitPIN: feed,
  async C_SetPIN(req, client) {
    const h = req.ulong('session');
    const oldPin = req.bytes('old PIN');
    const newPin = req.bytes('new PIN');
    req.done();
    await client.session(h).async.setPIN(oldPin, newPin);
    return empty(req);
  },
  C_GetOperationState: final,
  async C_SetOperationState(req, client) {
    const h = req.ulong('session');
    const state = req.bytes('state') ?? new Uint8Array(0);
    const enc = req.ulong('encryption key');
    const auth = req.ulong('authentication key');
    req.done();
    await client.session(h).async.setOperationState(state, enc, auth);
    return empty(req);
  },
  async C_Login(req, client) {
    const h = req.ulong('session');
    const userType = req.ulong('user type');
    const pin = req.bytes('PIN');
    req.done();
    const s = client.session(h);
    // Counted before the module answers: a login on its way holds the token's login as much as
    // one that has returned, so another client's logout in the meantime does not end it.
    client.loggedIn(s.slot);
    try {
      await s.async.login(userType, pin);
    } catch (err) {
      // Another client's login is this one's too (one login per process): it stays counted.
      if (err instanceof Pkcs11Error && err.rv === CKR.CKR_USER_ALREADY_LOGGED_IN) throw err;
      if (client.logoutReaches(s.slot)) await s.async.logout().catch(() => undefined);
      throw err;
    }
    return empty(req);
  },
  async C_Logout(req, client) {
    const h = req.ulong('session');
    req.done();
    const s = client.session(h);
    if (client.logoutReaches(s.slot)) await s.async.logout();
    return empty(req);
  },
  async C_CreateObject(req, client) {
    const h = req.ulong('session');
    const t = req.template();
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.createObject(t)).finish();
  },
  async C_CopyObject(req, client) {
    const h = req.ulong('session');
    const o = asObjectHandle(req.ulong('object'));
    const t = req.template();
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.copyObject(o, t)).finish();
  },
  async C_DestroyObject(req, client) {
    const h = req.ulong('session');
    const o = asObjectHandle(req.ulong('object'));
    req.done();
    await client.session(h).async.destroyObject(o);
    return empty(req);
  },
  async C_GetObjectSize(req, client) {
    const h = req.ulong('session');
    const o = asObjectHandle(req.ulong('object'));
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.getObjectSize(o)).finish();
  },
  async C_GetAttributeValue(req, client) {
    const h = req.ulong('session');
    const o = asObjectHandle(req.ulong('object'));
    const asks = req.attributeAsks();
    req.done();
    const results = await client.session(h).async.getAttributeValue(o, asks.map((a) => a.type));
    let rv: number = CKR.CKR_OK;
    const answers = results.map((r, i) => {
      const a = answer(r, asks[i]!.capacity);
      // PKCS#11 gives precedence to neither; p11-kit passes the module's, which is one of them.
      if (rv === CKR.CKR_OK) rv = a.rv;
      return a.answer;
    });
    return new ReplyWriter(req.spec).attributes(answers).ulong(rv).finish();
  },
  async C_SetAttributeValue(req, client) {
    const h = req.ulong('session');
    const o = asObjectHandle(req.ulong('object'));
    const t = req.template();
    req.done();
    await client.session(h).async.setAttributeValue(o, t);
    return empty(req);
  },
  async C_FindObjectsInit(req, client) {
    const h = req.ulong('session');
    const t = req.template();
    req.done();
    await client.session(h).async.findObjectsInit(t);
    return empty(req);
  },
  async C_FindObjects(req, client) {
    const h = req.ulong('session');
    const max = Math.min(req.capacity('fu'), client.limits.maxOutput / 8);
    req.done();
    const found = max === 0 ? [] : await client.session(h).async.findObjects(max);
    return new ReplyWriter(req.spec).ulongs(found, Math.max(max, 1)).finish();
  },
  async C_FindObjectsFinal(req, client) {
    const h = req.ulong('session');
    req.done();
    await client.session(h).async.findObjectsFinal();
    return empty(req);
  },
  C_EncryptInit: init,
  C_Encrypt: transform,
  C_EncryptUpdate: transform,
  C_EncryptFinal: final,
  C_DecryptInit: init,
  C_Decrypt: transform,
  C_DecryptUpdate: transform,
  C_DecryptFinal: final,
  C_DigestInit: init,
  C_Digest: transform,
  C_DigestUpdate: feed,
  async C_DigestKey(req, client) {
    const h = req.ulong('session');
    const key = asObjectHandle(req.ulong('key'));
    req.done();
    await client.session(h).async.digestKey(key);
    return empty(req);
  },
  C_DigestFinal: final,
  C_SignInit: init,
  C_Sign: transform,
  C_SignUpdate: feed,
  C_SignFinal: final,
  C_SignRecoverInit: init,
  C_SignRecover: transform,
  C_VerifyInit: init,
  async C_Verify(req, client) {
    const h = req.ulong('session');
    const data = req.bytes('data') ?? new Uint8Array(0);
    const sig = req.bytes('signature') ?? new Uint8Array(0);
    req.done();
    if (!(await client.session(h).async.verify(data, sig))) throw new Refusal(CKR.CKR_SIGNATURE_INVALID, 'signature does not verify');
    return empty(req);
  },
  C_VerifyUpdate: feed,
  async C_VerifyFinal(req, client) {
    const h = req.ulong('session');
    const sig = req.bytes('signature') ?? new Uint8Array(0);
    req.done();
    if (!(await client.session(h).async.verifyFinal(sig))) throw new Refusal(CKR.CKR_SIGNATURE_INVALID, 'signature does not verify');
    return empty(req);
  },
  C_VerifyRecoverInit: init,
  C_VerifyRecover: transform,
  C_DigestEncryptUpdate: transform,
  C_DecryptDigestUpdate: transform,
  C_SignEncryptUpdate: transform,
  C_DecryptVerifyUpdate: transform,
  async C_GenerateKey(req, client) {
    const h = req.ulong('session');
    const mech = req.mechanism();
    const t = req.template();
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.generateKey(mech, t)).finish();
  },
  async C_GenerateKeyPair(req, client) {
    const h = req.ulong('session');
    const mech = req.mechanism();
    const pub = req.template();
    const priv = req.template();
    req.done();
    const kp = await client.session(h).async.generateKeyPair(mech, pub, priv);
    return new ReplyWriter(req.spec).ulong(kp.publicKey).ulong(kp.privateKey).finish();
  },
  async C_WrapKey(req, client) {
    const h = req.ulong('session');
    const mech = req.mechanism();
    const wrapping = asObjectHandle(req.ulong('wrapping key'));
    const key = asObjectHandle(req.ulong('key'));
    const cap = req.capacity('fy');
    req.done();
    return produce(req, client, h, cap, (s) => s.async.wrapKey(mech, wrapping, key));
  },
  async C_UnwrapKey(req, client) {
    const h = req.ulong('session');
    const mech = req.mechanism();
    const unwrapping = asObjectHandle(req.ulong('unwrapping key'));
    const wrapped = req.bytes('wrapped key') ?? new Uint8Array(0);
    const t = req.template();
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.unwrapKey(mech, unwrapping, wrapped, t)).finish();
  },
  async C_DeriveKey(req, client) {
    const h = req.ulong('session');
    const mech = req.mechanism();
    const base = asObjectHandle(req.ulong('base key'));
    const t = req.template();
    req.done();
    return new ReplyWriter(req.spec).ulong(await client.session(h).async.deriveKey(mech, base, t)).finish();
  },
  C_SeedRandom: feed,
  async C_GenerateRandom(req, client) {
    const h = req.ulong('session');
    const n = req.capacity('fy');
    req.done();
    if (n > client.limits.maxOutput) throw new Refusal(CKR.CKR_ARGUMENTS_BAD, `${n} random bytes exceed the limit of ${client.limits.maxOutput}`);
    const bytes = n === 0 ? new Uint8Array(0) : await client.session(h).async.generateRandom(n);
    return new ReplyWriter(req.spec).output(bytes, Math.max(n, 1)).finish();
  },
};

/** Calls this server answers with CKR_FUNCTION_NOT_SUPPORTED: a served token is not re-initialised, and a blocking wait would stall the client's connection. */
export const REFUSED_CALLS: readonly CallName[] = ['C_InitToken', 'C_WaitForSlotEvent'];

export function handlerFor(name: CallName): Handler | undefined {
  return HANDLERS[name];
}
