// A remote module as async PKCS#11 calls over p11-kit's RPC protocol (version 0, 0.24.1's
// 65 calls). Results are typed; errors are Pkcs11Error subclasses carrying the CK_RV. Output
// buffers are sized by a guess and re-asked once with the size the host reports, as PKCS#11's
// two-call convention allows; session and object handles are this client's (see handles.ts).
import { fixedCapacity, wireKind, type Attribute, type ReadAttribute, type WireAttribute } from './attributes.js';
import type { CallName } from './calls.js';
import { CKF, CKR } from './constants.js';
import { RpcProtocolError, RpcUsageError } from './errors.js';
import { RemoteHost, type InitializeArgs, type RemoteOptions } from './host.js';
import { readInfo, readMechanismInfo, readSessionInfo, readSlotInfo, readTokenInfo } from './info.js';
import type { Info, MechanismInfo, SessionInfo, SlotInfo, TokenInfo } from './info.js';
import type { Mechanism } from './mechanism.js';
import type { RequestBuilder, ResponseParser } from './message.js';

/** A PIN: bytes, a string sent as UTF-8, or null for the protected authentication path. Never logged. */
export type Secret = Uint8Array | string | null;

export interface AttributeReadResult {
  /** CKR_OK, or CKR_ATTRIBUTE_SENSITIVE / CKR_ATTRIBUTE_TYPE_INVALID when some values are missing. */
  rv: number;
  attributes: ReadAttribute[];
}

export interface KeyPair {
  publicKey: number;
  privateKey: number;
}

const utf8 = new TextEncoder();

function secret(fn: string, s: Secret, module: string): Uint8Array | null {
  if (s === null) return null;
  if (s instanceof Uint8Array) return s;
  if (typeof s === 'string') return utf8.encode(s);
  throw new RpcUsageError(fn, 'a PIN must be a string or bytes', module);
}

function data(fn: string, d: Uint8Array, module: string): Uint8Array {
  if (!(d instanceof Uint8Array)) throw new RpcUsageError(fn, 'data must be a Uint8Array', module);
  return d;
}

function count(fn: string, n: number, what: string, module: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new RpcUsageError(fn, `${what} must be an integer from 0 to 2^32-1`, module);
  return n;
}

/** A 32-byte space-padded token label. */
function paddedLabel(fn: string, label: string, module: string): string {
  const bytes = utf8.encode(label);
  if (bytes.length > 32) throw new RpcUsageError(fn, 'a token label is at most 32 bytes', module);
  return label + ' '.repeat(32 - bytes.length);
}

export class RpcClient extends RemoteHost {
  constructor(opts: RemoteOptions) {
    super(opts);
  }

  // ---- output buffers -------------------------------------------------------------------

  /**
   * PKCS#11's two-call convention over RPC: ask with room for `capacity`, then again (twice at
   * most) with the room the host says it needs. `read` gives the reply's value, or null and
   * the room it wanted; a host that wants no more than it had is lying.
   */
  private async sized<T>(
    name: CallName,
    build: (b: RequestBuilder, capacity: number) => void,
    capacity: number,
    read: (p: ResponseParser) => { value: T | null; needed: number },
    unit: string,
  ): Promise<T> {
    for (let round = 0; round < 3; round++) {
      const room = capacity;
      const reply = await this.call(name, (b) => build(b, room), read);
      if (reply.value !== null) return reply.value;
      if (reply.needed <= room) throw new RpcProtocolError(name, `host reported ${reply.needed} ${unit} needed for room for ${room}`, this.name);
      capacity = reply.needed;
    }
    throw new RpcProtocolError(name, `the ${unit} needed kept growing`, this.name);
  }

  /** An `fy` call: a byte buffer sized by a guess first. */
  private output(name: CallName, build: (b: RequestBuilder, capacity: number) => void, guess: number): Promise<Uint8Array> {
    const read = (p: ResponseParser) => {
      const r = p.byteArray();
      return { value: r.data, needed: r.length };
    };
    return this.sized(name, build, Math.max(1, Math.min(guess, 0xffffffff)), read, 'bytes');
  }

  /** An `fu` call returning a list of CK_ULONGs (an empty list needs no second call). */
  private ulongs(name: CallName, build: (b: RequestBuilder, capacity: number) => void, guess: number): Promise<number[]> {
    const read = (p: ResponseParser) => {
      const r = p.ulongArray();
      return { value: r.values ?? (r.count === 0 ? [] : null), needed: r.count };
    };
    return this.sized(name, build, guess, read, 'entries');
  }

  private session(fn: string, h: number): number {
    return this.handles.session(fn, h);
  }

  private key(fn: string, h: number): number {
    return this.handles.object(fn, h, CKR.CKR_KEY_HANDLE_INVALID);
  }

  /** A call whose reply is one new object's handle (`what` names it in errors): this client's handle for it. */
  private async newObject(fn: CallName, build: (b: RequestBuilder) => void, what: string): Promise<number> {
    return this.handles.addObject(await this.call(fn, build, (p) => p.ulong(what)));
  }

  // ---- general purpose, slots and tokens ------------------------------------------------

  override initialize(args?: InitializeArgs): Promise<void> {
    return super.initialize(args);
  }

  getInfo(): Promise<Info> {
    return this.call('C_GetInfo', () => undefined, readInfo);
  }

  getSlotList(tokenPresent: boolean): Promise<number[]> {
    return this.ulongs('C_GetSlotList', (b, cap) => b.byte(tokenPresent ? 1 : 0).ulongBuffer(cap), 32);
  }

  getSlotInfo(slot: number): Promise<SlotInfo> {
    return this.call('C_GetSlotInfo', (b) => b.ulong(slot, 'slot'), readSlotInfo);
  }

  getTokenInfo(slot: number): Promise<TokenInfo> {
    return this.call('C_GetTokenInfo', (b) => b.ulong(slot, 'slot'), readTokenInfo);
  }

  getMechanismList(slot: number): Promise<number[]> {
    return this.ulongs('C_GetMechanismList', (b, cap) => b.ulong(slot, 'slot').ulongBuffer(cap), 128);
  }

  getMechanismInfo(slot: number, type: number): Promise<MechanismInfo> {
    return this.call('C_GetMechanismInfo', (b) => b.ulong(slot, 'slot').ulong(type, 'mechanism'), readMechanismInfo);
  }

  initToken(slot: number, soPin: Secret, label: string): Promise<void> {
    const fn = 'C_InitToken';
    return this.call(fn, (b) => b.ulong(slot, 'slot').bytesOrNull(secret(fn, soPin, this.name)).zeroString(paddedLabel(fn, label, this.name)), () => undefined);
  }

  /** A blocking wait (no CKF_DONT_BLOCK) may rightly last for ever: it has no call deadline. */
  waitForSlotEvent(flags = 0): Promise<number> {
    const blocking = (flags & CKF.CKF_DONT_BLOCK) === 0;
    return this.call('C_WaitForSlotEvent', (b) => b.ulong(flags, 'flags'), (p) => p.ulong('slot'), blocking ? 0 : undefined);
  }

  // ---- sessions --------------------------------------------------------------------------

  async openSession(slot: number, flags: number): Promise<number> {
    const remote = await this.call('C_OpenSession', (b) => b.ulong(slot, 'slot').ulong(flags, 'flags'), (p) => p.ulong('session'));
    return this.handles.addSession(remote, slot);
  }

  async closeSession(session: number): Promise<void> {
    await this.call('C_CloseSession', (b) => b.ulong(this.session('C_CloseSession', session)), () => undefined);
    this.handles.closeSession(session);
  }

  async closeAllSessions(slot: number): Promise<void> {
    await this.call('C_CloseAllSessions', (b) => b.ulong(slot, 'slot'), () => undefined);
    this.handles.closeSlotSessions(slot);
  }

  getSessionInfo(session: number): Promise<SessionInfo> {
    return this.call('C_GetSessionInfo', (b) => b.ulong(this.session('C_GetSessionInfo', session)), readSessionInfo);
  }

  initPIN(session: number, pin: Secret): Promise<void> {
    const fn = 'C_InitPIN';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).bytesOrNull(secret(fn, pin, this.name)), () => undefined);
  }

  setPIN(session: number, oldPin: Secret, newPin: Secret): Promise<void> {
    const fn = 'C_SetPIN';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).bytesOrNull(secret(fn, oldPin, this.name)).bytesOrNull(secret(fn, newPin, this.name)), () => undefined);
  }

  getOperationState(session: number): Promise<Uint8Array> {
    const fn = 'C_GetOperationState';
    return this.output(fn, (b, cap) => b.ulong(this.session(fn, session)).byteBuffer(cap), 1024);
  }

  setOperationState(session: number, state: Uint8Array, encryptionKey = 0, authenticationKey = 0): Promise<void> {
    const fn = 'C_SetOperationState';
    const optionalKey = (h: number) => (h === 0 ? 0 : this.key(fn, h));
    return this.call(
      fn,
      (b) => b.ulong(this.session(fn, session)).bytes(data(fn, state, this.name)).ulong(optionalKey(encryptionKey)).ulong(optionalKey(authenticationKey)),
      () => undefined,
    );
  }

  login(session: number, userType: number, pin: Secret): Promise<void> {
    const fn = 'C_Login';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).ulong(userType, 'user type').bytesOrNull(secret(fn, pin, this.name)), () => undefined);
  }

  logout(session: number): Promise<void> {
    return this.call('C_Logout', (b) => b.ulong(this.session('C_Logout', session)), () => undefined);
  }

  // ---- objects ---------------------------------------------------------------------------

  async createObject(session: number, template: readonly Attribute[]): Promise<number> {
    const fn = 'C_CreateObject';
    return this.newObject(fn, (b) => b.ulong(this.session(fn, session)).template(template), 'object');
  }

  async copyObject(session: number, object: number, template: readonly Attribute[]): Promise<number> {
    const fn = 'C_CopyObject';
    return this.newObject(fn, (b) => b.ulong(this.session(fn, session)).ulong(this.handles.object(fn, object)).template(template), 'object');
  }

  async destroyObject(session: number, object: number): Promise<void> {
    const fn = 'C_DestroyObject';
    await this.call(fn, (b) => b.ulong(this.session(fn, session)).ulong(this.handles.object(fn, object)), () => undefined);
    this.handles.forgetObject(object);
  }

  getObjectSize(session: number, object: number): Promise<number> {
    const fn = 'C_GetObjectSize';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).ulong(this.handles.object(fn, object)), (p) => p.ulong('size'));
  }

  /**
   * C_GetAttributeValue for the given types, in order. Fixed-size values are fetched at once;
   * byte arrays are sized first and fetched in a second round trip.
   */
  async getAttributeValue(session: number, object: number, types: readonly number[]): Promise<AttributeReadResult> {
    const fn = 'C_GetAttributeValue';
    if (!Array.isArray(types)) throw new RpcUsageError(fn, 'attribute types must be an array', this.name);
    const slots = types.map((type) => ({ type, capacity: fixedCapacity(fn, type, this.name) }));
    const found: (WireAttribute | undefined)[] = new Array(types.length).fill(undefined);
    let rv: number = CKR.CKR_OK;
    for (let round = 0; round < 4; round++) {
      const ask = slots.map((s, i) => ({ ...s, i })).filter((s) => found[s.i] === undefined);
      if (ask.length === 0) break;
      const reply = await this.call(
        fn,
        (b) => b.ulong(this.session(fn, session)).ulong(this.handles.object(fn, object)).attributeBuffer(ask),
        (p) => ({ attrs: p.attributes(ask.map((s) => s.type)), rv: p.ulong('rv') }),
      );
      if (reply.rv !== CKR.CKR_OK && reply.rv !== CKR.CKR_BUFFER_TOO_SMALL && rv === CKR.CKR_OK) rv = reply.rv;
      ask.forEach((s, k) => {
        const a = reply.attrs[k]!;
        const slot = slots[s.i]!;
        if (!a.valid) {
          // Too small (only the guessed-size mechanism lists can be): double and ask again.
          if (reply.rv === CKR.CKR_BUFFER_TOO_SMALL && wireKind(slot.type) === 'mechanisms' && round < 3) slot.capacity *= 2;
          else found[s.i] = a;
        } else if (a.value !== undefined) {
          found[s.i] = a;
        } else if (a.length === 0 || round === 3) {
          found[s.i] = { ...a, value: new Uint8Array(0) };
        } else {
          slot.capacity = a.length;
        }
      });
    }
    const attributes = types.map((type, i) => ({ type, value: found[i]?.valid ? found[i]!.value : undefined }));
    if (rv === CKR.CKR_OK && attributes.some((a) => a.value === undefined)) rv = CKR.CKR_ATTRIBUTE_TYPE_INVALID;
    return { rv, attributes };
  }

  setAttributeValue(session: number, object: number, template: readonly Attribute[]): Promise<void> {
    const fn = 'C_SetAttributeValue';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).ulong(this.handles.object(fn, object)).template(template), () => undefined);
  }

  findObjectsInit(session: number, template: readonly Attribute[]): Promise<void> {
    const fn = 'C_FindObjectsInit';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).template(template), () => undefined);
  }

  async findObjects(session: number, maxObjects = 64): Promise<number[]> {
    const fn = 'C_FindObjects';
    const max = count(fn, maxObjects, 'maxObjects', this.name);
    const reply = await this.call(fn, (b) => b.ulong(this.session(fn, session)).ulongBuffer(max), (p) => p.ulongArray());
    if (!reply.values) {
      if (reply.count === 0) return [];
      throw new RpcProtocolError(fn, 'no object handles in the reply', this.name);
    }
    if (reply.values.length > max) throw new RpcProtocolError(fn, `${reply.values.length} handles for room for ${max}`, this.name);
    return reply.values.map((h) => this.handles.addObject(h));
  }

  findObjectsFinal(session: number): Promise<void> {
    return this.call('C_FindObjectsFinal', (b) => b.ulong(this.session('C_FindObjectsFinal', session)), () => undefined);
  }

  // ---- cryptographic operations ------------------------------------------------------------

  private init(fn: 'C_EncryptInit' | 'C_DecryptInit' | 'C_SignInit' | 'C_SignRecoverInit' | 'C_VerifyInit' | 'C_VerifyRecoverInit', session: number, mech: Mechanism, key: number): Promise<void> {
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).mechanism(mech).ulong(this.key(fn, key)), () => undefined);
  }

  /** The `uayfy` shape: session, input, output buffer. */
  private transform(fn: CallName, session: number, input: Uint8Array, guess: number): Promise<Uint8Array> {
    const d = data(fn, input, this.name);
    return this.output(fn, (b, cap) => b.ulong(this.session(fn, session)).bytes(d).byteBuffer(cap), guess);
  }

  /** The `ufy` shape: session, output buffer. */
  private final(fn: CallName, session: number, guess: number): Promise<Uint8Array> {
    return this.output(fn, (b, cap) => b.ulong(this.session(fn, session)).byteBuffer(cap), guess);
  }

  /** The `uay` shape with no output. */
  private feed(fn: CallName, session: number, input: Uint8Array): Promise<void> {
    const d = data(fn, input, this.name);
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).bytes(d), () => undefined);
  }

  encryptInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_EncryptInit', session, mech, key);
  }
  encrypt(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_Encrypt', session, input, input.length + 64);
  }
  encryptUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_EncryptUpdate', session, input, input.length + 64);
  }
  encryptFinal(session: number): Promise<Uint8Array> {
    return this.final('C_EncryptFinal', session, 64);
  }

  decryptInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_DecryptInit', session, mech, key);
  }
  decrypt(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_Decrypt', session, input, input.length + 64);
  }
  decryptUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_DecryptUpdate', session, input, input.length + 64);
  }
  decryptFinal(session: number): Promise<Uint8Array> {
    return this.final('C_DecryptFinal', session, 64);
  }

  digestInit(session: number, mech: Mechanism): Promise<void> {
    const fn = 'C_DigestInit';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).mechanism(mech), () => undefined);
  }
  digest(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_Digest', session, input, 64);
  }
  digestUpdate(session: number, input: Uint8Array): Promise<void> {
    return this.feed('C_DigestUpdate', session, input);
  }
  digestKey(session: number, key: number): Promise<void> {
    const fn = 'C_DigestKey';
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).ulong(this.key(fn, key)), () => undefined);
  }
  digestFinal(session: number): Promise<Uint8Array> {
    return this.final('C_DigestFinal', session, 64);
  }

  signInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_SignInit', session, mech, key);
  }
  sign(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_Sign', session, input, 512);
  }
  signUpdate(session: number, input: Uint8Array): Promise<void> {
    return this.feed('C_SignUpdate', session, input);
  }
  signFinal(session: number): Promise<Uint8Array> {
    return this.final('C_SignFinal', session, 512);
  }
  signRecoverInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_SignRecoverInit', session, mech, key);
  }
  signRecover(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_SignRecover', session, input, 512);
  }

  verifyInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_VerifyInit', session, mech, key);
  }
  /** Resolves when the signature verifies; rejects with CKR_SIGNATURE_INVALID when it does not. */
  verify(session: number, input: Uint8Array, signature: Uint8Array): Promise<void> {
    const fn = 'C_Verify';
    const d = data(fn, input, this.name);
    const s = data(fn, signature, this.name);
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).bytes(d).bytes(s), () => undefined);
  }
  verifyUpdate(session: number, input: Uint8Array): Promise<void> {
    return this.feed('C_VerifyUpdate', session, input);
  }
  verifyFinal(session: number, signature: Uint8Array): Promise<void> {
    return this.feed('C_VerifyFinal', session, signature);
  }
  verifyRecoverInit(session: number, mech: Mechanism, key: number): Promise<void> {
    return this.init('C_VerifyRecoverInit', session, mech, key);
  }
  verifyRecover(session: number, signature: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_VerifyRecover', session, signature, signature.length + 64);
  }

  digestEncryptUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_DigestEncryptUpdate', session, input, input.length + 64);
  }
  decryptDigestUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_DecryptDigestUpdate', session, input, input.length + 64);
  }
  signEncryptUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_SignEncryptUpdate', session, input, input.length + 64);
  }
  decryptVerifyUpdate(session: number, input: Uint8Array): Promise<Uint8Array> {
    return this.transform('C_DecryptVerifyUpdate', session, input, input.length + 64);
  }

  // ---- keys and random numbers -----------------------------------------------------------

  async generateKey(session: number, mech: Mechanism, template: readonly Attribute[]): Promise<number> {
    const fn = 'C_GenerateKey';
    return this.newObject(fn, (b) => b.ulong(this.session(fn, session)).mechanism(mech).template(template), 'key');
  }

  async generateKeyPair(session: number, mech: Mechanism, publicTemplate: readonly Attribute[], privateTemplate: readonly Attribute[]): Promise<KeyPair> {
    const fn = 'C_GenerateKeyPair';
    const [pub, priv] = await this.call(
      fn,
      (b) => b.ulong(this.session(fn, session)).mechanism(mech).template(publicTemplate).template(privateTemplate),
      (p) => [p.ulong('public key'), p.ulong('private key')] as const,
    );
    return { publicKey: this.handles.addObject(pub), privateKey: this.handles.addObject(priv) };
  }

  wrapKey(session: number, mech: Mechanism, wrappingKey: number, key: number): Promise<Uint8Array> {
    const fn = 'C_WrapKey';
    return this.output(fn, (b, cap) => b.ulong(this.session(fn, session)).mechanism(mech).ulong(this.key(fn, wrappingKey)).ulong(this.key(fn, key)).byteBuffer(cap), 1024);
  }

  async unwrapKey(session: number, mech: Mechanism, unwrappingKey: number, wrapped: Uint8Array, template: readonly Attribute[]): Promise<number> {
    const fn = 'C_UnwrapKey';
    const w = data(fn, wrapped, this.name);
    return this.newObject(fn, (b) => b.ulong(this.session(fn, session)).mechanism(mech).ulong(this.key(fn, unwrappingKey)).bytes(w).template(template), 'key');
  }

  async deriveKey(session: number, mech: Mechanism, baseKey: number, template: readonly Attribute[]): Promise<number> {
    const fn = 'C_DeriveKey';
    return this.newObject(fn, (b) => b.ulong(this.session(fn, session)).mechanism(mech).ulong(this.key(fn, baseKey)).template(template), 'key');
  }

  seedRandom(session: number, seed: Uint8Array): Promise<void> {
    return this.feed('C_SeedRandom', session, seed);
  }

  generateRandom(session: number, length: number): Promise<Uint8Array> {
    const fn = 'C_GenerateRandom';
    const n = count(fn, length, 'length', this.name);
    return this.call(fn, (b) => b.ulong(this.session(fn, session)).byteBuffer(n), (p) => {
      const reply = p.byteArray();
      if (reply.length !== n || (n > 0 && !reply.data)) throw new RpcProtocolError(fn, `${reply.length} random bytes for ${n} asked`, this.name);
      return reply.data ?? new Uint8Array(0);
    });
  }
}
