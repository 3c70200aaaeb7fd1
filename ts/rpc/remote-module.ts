// A remote module behind the bridge's typed interface: `module.async` has exactly the shape of
// a local Pkcs11Module's `async` (the compiler checks it), with the bridge's value forms —
// strings for text attributes, CkDate for dates, verify() answering true/false, NULL slot
// events as null, CK_UNAVAILABLE_INFORMATION as the bridge's ~0 — so the proxy and callers
// treat a remote module and a local one alike. Host generations and losses come from the client.
import { attributeKind } from '../bridge/attribute-kinds.js';
import { decodeValue, type Attribute as BridgeAttribute, type AttributeResult, type AttributeValue as BridgeValue, type CkDate } from '../bridge/attributes.js';
import type { TokenInfo as BridgeTokenInfo } from '../bridge/info.js';
import { UNAVAILABLE } from '../bridge/layout.js';
import type { Mechanism as BridgeMechanism } from '../bridge/mechanisms.js';
import { MAX_FOUND_OBJECTS, tooManyFound } from '../bridge/op.js';
import type { InitializeOptions, Pkcs11Module } from '../bridge/module.js';
import type { AttributeResults } from '../bridge/ops.js';
import type { ObjectHandle, SessionHandle, SlotId } from '../bridge/handles.js';
import type { Attribute, AttributeValue, ReadAttribute } from './attributes.js';
import { valueKind } from './attributes.js';
import { RpcClient } from './client.js';
import { CKF, CKR } from './constants.js';
import { Pkcs11Error, RpcUnsupportedError, RpcUsageError } from './errors.js';
import type { RemoteOptions } from './host.js';
import type { Mechanism } from './mechanism.js';

/** The typed async calls of a module, local or remote. */
export type ModuleCalls = Pkcs11Module['async'];

/** What the proxy and other callers need of any module: a name and the typed async calls. */
export interface AsyncModule {
  readonly name: string;
  readonly async: ModuleCalls;
}

export interface RemoteModuleOptions extends RemoteOptions {
  /** pReserved for C_Initialize when the caller passes none (a module's `x-init-reserved`). */
  initReserved?: string;
  /** The local module this remote one isolates, if any (for listings). */
  path?: string;
}

type Handle = number | bigint;

/** Numbers the peer gave out as object handles (or pairs, lists of them), typed as such. */
type AsObjects<T> = T extends number ? ObjectHandle : T extends number[] ? ObjectHandle[] : { [K in keyof T]: T[K] extends number ? ObjectHandle : T[K] };
const objects = <T>(p: Promise<T>): Promise<AsObjects<T>> => p as Promise<AsObjects<T>>;
/** Slot ids and session handles the peer gave out, typed as such (casts: the values pass unchanged). */
const slots = (p: Promise<number[]>) => p as Promise<SlotId[]>;
const sessionHandle = (p: Promise<number>) => p as Promise<SessionHandle>;

const le64 = (v: number | bigint) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v), true);
  return out;
};

const dateText = (v: CkDate | Date) =>
  v instanceof Date
    ? `${v.getUTCFullYear()}`.padStart(4, '0') + `${v.getUTCMonth() + 1}`.padStart(2, '0') + `${v.getUTCDate()}`.padStart(2, '0')
    : `${v.year}`.padStart(4, '0') + `${v.month}`.padStart(2, '0') + `${v.day}`.padStart(2, '0');

export class RemoteModule implements AsyncModule {
  readonly client: RpcClient;
  readonly name: string;
  readonly path: string | undefined;
  readonly async: ModuleCalls;
  private readonly initReserved: string | undefined;

  constructor(opts: RemoteModuleOptions) {
    this.client = new RpcClient(opts);
    this.name = this.client.name;
    this.path = opts.path;
    this.initReserved = opts.initReserved;
    this.async = this.calls();
  }

  get generation(): number {
    return this.client.generation;
  }

  /** Lets the host go (without C_Finalize; it finalizes when its input ends). */
  close(): Promise<void> {
    return this.client.close();
  }

  private handle(fn: string, h: Handle): number {
    const n = typeof h === 'bigint' ? Number(h) : h;
    if (!Number.isSafeInteger(n)) throw new RpcUsageError(fn, `handle ${String(h)} is not one this module issued`, this.name);
    return n;
  }

  private unsupported(fn: string, what: string, rv: number = CKR.CKR_FUNCTION_NOT_SUPPORTED): never {
    throw new RpcUnsupportedError(rv, fn, what, this.name);
  }

  // --- values: the bridge's forms to the codec's, and back ---

  private value(fn: string, type: number, v: BridgeValue): AttributeValue {
    const kind = valueKind(type);
    if (v instanceof Date || (typeof v === 'object' && v !== null && 'year' in v)) {
      const text = dateText(v as CkDate | Date);
      return kind === 'date' ? text : new TextEncoder().encode(text);
    }
    if (Array.isArray(v) && v.length > 0 && typeof v[0] === 'object') this.unsupported(fn, `nested template in attribute 0x${type.toString(16)}`, CKR.CKR_ATTRIBUTE_TYPE_INVALID);
    // A value whose JS type the codec would not take for this attribute travels as its C bytes.
    if (kind === 'bytes' && typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
    if (kind === 'bytes' && (typeof v === 'number' || typeof v === 'bigint')) return le64(v);
    return v as AttributeValue;
  }

  private template(fn: string, attrs: readonly BridgeAttribute[] = []): Attribute[] {
    if (!Array.isArray(attrs)) throw new RpcUsageError(fn, 'a template must be an array', this.name);
    return attrs.map((a) => ({ type: a.type, value: this.value(fn, a.type, a.value) }));
  }

  private result(type: number, v: ReadAttribute['value']): BridgeValue | undefined {
    if (v === undefined) return undefined;
    // Bytes are decoded by the bridge's rules for the type (text, CK_ULONG, CK_BBOOL, ...).
    if (v instanceof Uint8Array) return decodeValue(attributeKind(type), v);
    // Dates come back as 'YYYYMMDD' text, or '' when the module holds an empty date.
    if (typeof v === 'string') return v.length === 8 ? decodeValue('date', new TextEncoder().encode(v)) : new Uint8Array(0);
    if (v === -1) return UNAVAILABLE;
    return v;
  }

  private mechanism(fn: string, m: BridgeMechanism | number): Mechanism {
    if (typeof m === 'number') return { mechanism: m };
    if (!m || typeof m !== 'object') throw new RpcUsageError(fn, 'a mechanism must be a number or { mechanism, parameter? }', this.name);
    const p = m.parameter;
    if (p === undefined || p === null || p instanceof Uint8Array) return { mechanism: m.mechanism, parameter: p };
    if (typeof p === 'number' || typeof p === 'bigint') return { mechanism: m.mechanism, parameter: le64(p) };
    if ('saltLength' in p) return { mechanism: m.mechanism, parameter: { hashAlg: p.hashAlg, mgf: p.mgf, sLen: p.saltLength } };
    if ('hashAlg' in p) return { mechanism: m.mechanism, parameter: { hashAlg: p.hashAlg, mgf: p.mgf, source: p.source, sourceData: p.sourceData } };
    return this.unsupported(fn, `mechanism 0x${m.mechanism.toString(16)} with a parameter structure holding pointers`, CKR.CKR_MECHANISM_INVALID);
  }

  private tokenInfo(t: Awaited<ReturnType<RpcClient['getTokenInfo']>>): BridgeTokenInfo {
    const u = (v: number) => (v === -1 ? UNAVAILABLE : v);
    return {
      ...t,
      maxSessionCount: u(t.maxSessionCount),
      sessionCount: u(t.sessionCount),
      maxRwSessionCount: u(t.maxRwSessionCount),
      rwSessionCount: u(t.rwSessionCount),
      maxPinLen: u(t.maxPinLen),
      minPinLen: u(t.minPinLen),
      totalPublicMemory: u(t.totalPublicMemory),
      freePublicMemory: u(t.freePublicMemory),
      totalPrivateMemory: u(t.totalPrivateMemory),
      freePrivateMemory: u(t.freePrivateMemory),
    };
  }

  /** A boolean answer: CKR_SIGNATURE_INVALID/LEN_RANGE from the host mean "does not verify". */
  private async verdict(p: Promise<void>): Promise<boolean> {
    try {
      await p;
      return true;
    } catch (err) {
      const rv = (err as Pkcs11Error).rv;
      if (err instanceof Pkcs11Error && err.constructor === Pkcs11Error && (rv === CKR.CKR_SIGNATURE_INVALID || rv === CKR.CKR_SIGNATURE_LEN_RANGE)) return false;
      throw err;
    }
  }

  private calls(): ModuleCalls {
    const c = this.client;
    const h = (fn: string, x: Handle) => this.handle(fn, x);
    return {
      initialize: (o: InitializeOptions = {}) => {
        if (o.nullArgs) return c.initialize();
        const reserved = o.reserved ?? this.initReserved;
        return c.initialize(reserved === undefined || reserved === null ? {} : { reserved });
      },
      finalize: () => c.finalize(),

      getInfo: () => c.getInfo(),
      getSlotList: (tokenPresent = false) => slots(c.getSlotList(tokenPresent)),
      getSlotInfo: (slot) => c.getSlotInfo(h('C_GetSlotInfo', slot)),
      getTokenInfo: async (slot) => this.tokenInfo(await c.getTokenInfo(h('C_GetTokenInfo', slot))),
      getMechanismList: (slot) => c.getMechanismList(h('C_GetMechanismList', slot)),
      getMechanismInfo: (slot, type) => c.getMechanismInfo(h('C_GetMechanismInfo', slot), type),
      initToken: (slot, soPin, label) => c.initToken(h('C_InitToken', slot), soPin ?? null, label),
      initPIN: (s, pin) => c.initPIN(h('C_InitPIN', s), pin ?? null),
      setPIN: (s, oldPin, newPin) => c.setPIN(h('C_SetPIN', s), oldPin ?? null, newPin ?? null),
      waitForSlotEvent: async (flags = 0) => {
        try {
          return (await c.waitForSlotEvent(flags)) as SlotId;
        } catch (err) {
          if (err instanceof Pkcs11Error && err.rv === CKR.CKR_NO_EVENT) return null;
          throw err;
        }
      },

      openSession: (slot, flags = CKF.CKF_SERIAL_SESSION) => sessionHandle(c.openSession(h('C_OpenSession', slot), flags)),
      closeSession: (s) => c.closeSession(h('C_CloseSession', s)),
      closeAllSessions: (slot) => c.closeAllSessions(h('C_CloseAllSessions', slot)),
      getSessionInfo: (s) => c.getSessionInfo(h('C_GetSessionInfo', s)),
      getOperationState: (s) => c.getOperationState(h('C_GetOperationState', s)),
      setOperationState: (s, state, ek = 0, ak = 0) => c.setOperationState(h('C_SetOperationState', s), state, h('C_SetOperationState', ek), h('C_SetOperationState', ak)),
      login: (s, userType, pin) => c.login(h('C_Login', s), userType, pin ?? null),
      logout: (s) => c.logout(h('C_Logout', s)),

      // Handles the peer module gave out are object handles here too.
      createObject: (s, t) => objects(c.createObject(h('C_CreateObject', s), this.template('C_CreateObject', t))),
      copyObject: (s, o, t = []) => objects(c.copyObject(h('C_CopyObject', s), h('C_CopyObject', o), this.template('C_CopyObject', t))),
      destroyObject: (s, o) => c.destroyObject(h('C_DestroyObject', s), h('C_DestroyObject', o)),
      getObjectSize: (s, o) => c.getObjectSize(h('C_GetObjectSize', s), h('C_GetObjectSize', o)),
      setAttributeValue: (s, o, t) => c.setAttributeValue(h('C_SetAttributeValue', s), h('C_SetAttributeValue', o), this.template('C_SetAttributeValue', t)),
      getAttributeValue: async <const T extends readonly number[]>(s: Handle, o: Handle, types: T) => {
        const got = await c.getAttributeValue(h('C_GetAttributeValue', s), h('C_GetAttributeValue', o), types);
        // In the order asked: each result's value is of its type's kind (decoded by this.result).
        return got.attributes.map((a) => ({ type: a.type, value: this.result(a.type, a.value) })) as AttributeResult[] as AttributeResults<T>;
      },
      findObjectsInit: (s, t = []) => c.findObjectsInit(h('C_FindObjectsInit', s), this.template('C_FindObjectsInit', t)),
      findObjects: (s, max = 64) => objects(c.findObjects(h('C_FindObjects', s), max)),
      findObjectsFinal: (s) => c.findObjectsFinal(h('C_FindObjectsFinal', s)),
      findAllObjects: async (s, t = [], batch = 64) => {
        const session = h('C_FindObjectsInit', s);
        await c.findObjectsInit(session, this.template('C_FindObjectsInit', t));
        const all: ObjectHandle[] = [];
        try {
          for (;;) {
            const got = await objects(c.findObjects(session, batch));
            all.push(...got);
            if (got.length < batch) break;
            if (all.length >= MAX_FOUND_OBJECTS) throw tooManyFound(this.name);
          }
        } finally {
          await c.findObjectsFinal(session).catch((err: unknown) => {
            if (!(err instanceof Pkcs11Error && err.rv === CKR.CKR_OPERATION_NOT_INITIALIZED)) throw err;
          });
        }
        return all;
      },

      encryptInit: (s, m, k) => c.encryptInit(h('C_EncryptInit', s), this.mechanism('C_EncryptInit', m), h('C_EncryptInit', k)),
      encrypt: (s, d) => c.encrypt(h('C_Encrypt', s), d),
      encryptUpdate: (s, d) => c.encryptUpdate(h('C_EncryptUpdate', s), d),
      encryptFinal: (s) => c.encryptFinal(h('C_EncryptFinal', s)),
      decryptInit: (s, m, k) => c.decryptInit(h('C_DecryptInit', s), this.mechanism('C_DecryptInit', m), h('C_DecryptInit', k)),
      decrypt: (s, d) => c.decrypt(h('C_Decrypt', s), d),
      decryptUpdate: (s, d) => c.decryptUpdate(h('C_DecryptUpdate', s), d),
      decryptFinal: (s) => c.decryptFinal(h('C_DecryptFinal', s)),
      digestInit: (s, m) => c.digestInit(h('C_DigestInit', s), this.mechanism('C_DigestInit', m)),
      digest: (s, d) => c.digest(h('C_Digest', s), d),
      digestUpdate: (s, d) => c.digestUpdate(h('C_DigestUpdate', s), d),
      digestKey: (s, k) => c.digestKey(h('C_DigestKey', s), h('C_DigestKey', k)),
      digestFinal: (s) => c.digestFinal(h('C_DigestFinal', s)),
      signInit: (s, m, k) => c.signInit(h('C_SignInit', s), this.mechanism('C_SignInit', m), h('C_SignInit', k)),
      sign: (s, d) => c.sign(h('C_Sign', s), d),
      signUpdate: (s, d) => c.signUpdate(h('C_SignUpdate', s), d),
      signFinal: (s) => c.signFinal(h('C_SignFinal', s)),
      signRecoverInit: (s, m, k) => c.signRecoverInit(h('C_SignRecoverInit', s), this.mechanism('C_SignRecoverInit', m), h('C_SignRecoverInit', k)),
      signRecover: (s, d) => c.signRecover(h('C_SignRecover', s), d),
      verifyInit: (s, m, k) => c.verifyInit(h('C_VerifyInit', s), this.mechanism('C_VerifyInit', m), h('C_VerifyInit', k)),
      verify: (s, d, sig) => this.verdict(c.verify(h('C_Verify', s), d, sig)),
      verifyUpdate: (s, d) => c.verifyUpdate(h('C_VerifyUpdate', s), d),
      verifyFinal: (s, sig) => this.verdict(c.verifyFinal(h('C_VerifyFinal', s), sig)),
      verifyRecoverInit: (s, m, k) => c.verifyRecoverInit(h('C_VerifyRecoverInit', s), this.mechanism('C_VerifyRecoverInit', m), h('C_VerifyRecoverInit', k)),
      verifyRecover: (s, d) => c.verifyRecover(h('C_VerifyRecover', s), d),
      digestEncryptUpdate: (s, d) => c.digestEncryptUpdate(h('C_DigestEncryptUpdate', s), d),
      decryptDigestUpdate: (s, d) => c.decryptDigestUpdate(h('C_DecryptDigestUpdate', s), d),
      signEncryptUpdate: (s, d) => c.signEncryptUpdate(h('C_SignEncryptUpdate', s), d),
      decryptVerifyUpdate: (s, d) => c.decryptVerifyUpdate(h('C_DecryptVerifyUpdate', s), d),

      generateKey: (s, m, t) => objects(c.generateKey(h('C_GenerateKey', s), this.mechanism('C_GenerateKey', m), this.template('C_GenerateKey', t))),
      generateKeyPair: (s, m, pub, priv) =>
        objects(c.generateKeyPair(h('C_GenerateKeyPair', s), this.mechanism('C_GenerateKeyPair', m), this.template('C_GenerateKeyPair', pub), this.template('C_GenerateKeyPair', priv))),
      wrapKey: (s, m, wk, k) => c.wrapKey(h('C_WrapKey', s), this.mechanism('C_WrapKey', m), h('C_WrapKey', wk), h('C_WrapKey', k)),
      unwrapKey: (s, m, uk, wrapped, t) => objects(c.unwrapKey(h('C_UnwrapKey', s), this.mechanism('C_UnwrapKey', m), h('C_UnwrapKey', uk), wrapped, this.template('C_UnwrapKey', t))),
      deriveKey: (s, m, bk, t) => objects(c.deriveKey(h('C_DeriveKey', s), this.mechanism('C_DeriveKey', m), h('C_DeriveKey', bk), this.template('C_DeriveKey', t))),
      seedRandom: (s, seed) => c.seedRandom(h('C_SeedRandom', s), seed),
      generateRandom: (s, n) => c.generateRandom(h('C_GenerateRandom', s), n),
      // p11-kit's RPC client answers these legacy calls itself, as here: nothing runs in parallel.
      getFunctionStatus: async () => {
        throw new Pkcs11Error(CKR.CKR_FUNCTION_NOT_PARALLEL, 'C_GetFunctionStatus', this.name);
      },
      cancelFunction: async () => {
        throw new Pkcs11Error(CKR.CKR_FUNCTION_NOT_PARALLEL, 'C_CancelFunction', this.name);
      },
      loginUser: async () => this.unsupported('C_LoginUser', 'PKCS#11 3.0 calls (protocol 0 has none)'),
      sessionCancel: async () => this.unsupported('C_SessionCancel', 'PKCS#11 3.0 calls (protocol 0 has none)'),
    };
  }
}
