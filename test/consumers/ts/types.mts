// Types that catch mistakes: every line under @ts-expect-error must fail to compile (tsc
// reports an unused directive otherwise), and the lines without one must compile.
import { CKA, CKG, CKM, CKO, CKR, openProxyAsync, asObjectHandle, asSessionHandle, asSlotId, type SessionHandle, type SlotId, vendorMechanismType, type Mechanism, Pkcs11Error, createPkcs11Worker, ecKeyPair, ecParams, openModule, parseUri, vendorAttributeType, type Attribute, type RemoteModule, type RvCode, type ServiceModule, type ServiceSession } from 'p11kit-wasm';

// @ts-expect-error parseUri takes a string
parseUri(1);

ecParams('P-256');
// @ts-expect-error only the named curves
ecParams('P-999');
// @ts-expect-error a key-pair template takes a curve name, not its OID bytes
ecKeyPair(ecParams('P-256'));

// Attribute values typed by attribute.
export const template: Attribute[] = [
  { type: CKA.CKA_SIGN, value: true },
  { type: CKA.CKA_LABEL, value: 'key' },
  { type: CKA.CKA_ID, value: Uint8Array.of(1) },
  { type: CKA.CKA_MODULUS_BITS, value: 2048 },
  { type: CKA.CKA_START_DATE, value: { year: 2026, month: 1, day: 31 } },
  { type: CKA.CKA_ALLOWED_MECHANISMS, value: [0x1041] },
  { type: CKA.CKA_WRAP_TEMPLATE, value: [{ type: CKA.CKA_EXTRACTABLE, value: false }] },
  { type: vendorAttributeType(0x80000001), value: 'a vendor decides' },
];
// @ts-expect-error CKA_SIGN takes a boolean
export const notBool: Attribute = { type: CKA.CKA_SIGN, value: 'yes' };
// @ts-expect-error CKA_LABEL takes a string
export const notString: Attribute = { type: CKA.CKA_LABEL, value: 7 };
// @ts-expect-error CKA_ID takes bytes
export const notBytes: Attribute = { type: CKA.CKA_ID, value: 'abc' };
// @ts-expect-error CKA_START_DATE takes a date
export const notDate: Attribute = { type: CKA.CKA_START_DATE, value: true };
// @ts-expect-error a nested template holds attributes typed the same way
export const nested: Attribute = { type: CKA.CKA_WRAP_TEMPLATE, value: [{ type: CKA.CKA_SIGN, value: 1 }] };
// @ts-expect-error an unlisted type says it is one
export const unlisted: Attribute = { type: 0x80000001, value: 'x' };

// ... and in results, by the types asked for.
const hsm = openModule('softhsm2');
const [slot] = hsm.getSlotList(true);
const session = hsm.openSession(slot);
const [label, sign, id] = session.getAttributeValue(asObjectHandle(1), [CKA.CKA_LABEL, CKA.CKA_SIGN, CKA.CKA_ID]);
export const labelText: string | undefined = label.value;
export const canSign: boolean | undefined = sign.value;
export const idBytes: Uint8Array | undefined = id.value;
// @ts-expect-error a label is a string, not a number
export const labelNumber: number | undefined = label.value;

// CKR codes are names, not any string.
export function isWrongPin(err: Pkcs11Error): boolean {
  const code: RvCode = err.code;
  // @ts-expect-error misspelt: no such CKR name
  if (code === 'CKR_PIN_INCORECT') return true;
  return code === 'CKR_PIN_INCORRECT' || err.rv === CKR.CKR_PIN_INCORRECT;
}

// One name per concept: the service's module is a ServiceModule; RemoteModule is the RPC client's.
export async function serviceTypes(): Promise<ServiceSession> {
  const p11 = createPkcs11Worker();
  const mod: ServiceModule = await p11.openModule('softhsm2');
  // @ts-expect-error not the RPC client's RemoteModule
  const rpc: RemoteModule = await p11.openModule('softhsm2');
  void rpc;
  const [{ slot }] = await mod.slots();
  for (const s of await mod.slots(false)) await mod.mechanisms(s.slot);
  // @ts-expect-error a service slot is one the service listed, not a plain number
  await mod.openSession(0);
  return mod.openSession(slot);
}

// Mechanism parameters typed by mechanism.
const pss = { hashAlg: CKM.CKM_SHA256, mgf: CKG.CKG_MGF1_SHA256, saltLength: 32 };
export const mechanisms: Mechanism[] = [
  { mechanism: CKM.CKM_ECDSA },
  { mechanism: CKM.CKM_SHA256_RSA_PKCS_PSS, parameter: pss },
  { mechanism: CKM.CKM_AES_GCM, parameter: { iv: new Uint8Array(12), tagBits: 128 } },
  { mechanism: CKM.CKM_AES_CBC_PAD, parameter: new Uint8Array(16) },
  { mechanism: vendorMechanismType(0x80000042), parameter: pss },
];
// @ts-expect-error GCM takes CK_GCM_PARAMS, not PSS parameters
export const gcmWithPss: Mechanism = { mechanism: CKM.CKM_AES_GCM, parameter: pss };
// @ts-expect-error PSS parameters need the salt length
export const pssShort: Mechanism = { mechanism: CKM.CKM_RSA_PKCS_PSS, parameter: { hashAlg: CKM.CKM_SHA256, mgf: CKG.CKG_MGF1_SHA256 } };
// @ts-expect-error an IV is bytes for CBC, not a structure
export const cbcWithStruct: Mechanism = { mechanism: CKM.CKM_AES_CBC_PAD, parameter: { iv: new Uint8Array(16), tagBits: 128 } };

// Object handles are what a module gave out, not any number.
const [found] = session.findAllObjects([{ type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]);
session.signInit({ mechanism: CKM.CKM_ECDSA }, found);
session.destroyObject(asObjectHandle(5));
// @ts-expect-error a CKO_ constant is not an object handle
session.signInit({ mechanism: CKM.CKM_ECDSA }, CKO.CKO_PRIVATE_KEY);
// @ts-expect-error nor is a plain number
session.getAttributeValue(3, [CKA.CKA_LABEL]);

// Slot ids and session handles too: what getSlotList, a slot event or openSession gave out
// (asSlotId / asSessionHandle for one read elsewhere), not a constant or a count.
export function slotsAndSessions(): void {
  for (const id of hsm.getSlotList(false)) hsm.getTokenInfo(id);
  const event: SlotId | null = hsm.waitForSlotEvent(1);
  if (event !== null) hsm.getSlotInfo(event);
  hsm.openSession(asSlotId(Number(process.env.SLOT)), { rw: true }).close();
  hsm.closeAllSessions(slot);
  // @ts-expect-error a plain number is not a slot id
  hsm.openSession(0);
  // @ts-expect-error nor is a CKO_ constant
  hsm.getSlotInfo(CKO.CKO_CERTIFICATE);
  // @ts-expect-error nor a mechanism
  hsm.getMechanismList(CKM.CKM_ECDSA);
  // @ts-expect-error a slot id is not an object handle
  session.destroyObject(slot);

  // The bridge's typed layer: a session is the handle its openSession returned.
  const bridge = hsm.module;
  const h: SessionHandle = bridge.openSession(slot);
  bridge.getSessionInfo(h);
  bridge.findAllObjects(h, [{ type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]);
  bridge.closeSession(asSessionHandle(BigInt(h)));
  // @ts-expect-error a plain number is not a session handle
  bridge.getSessionInfo(1);
  // @ts-expect-error nor is a CKA_ constant
  bridge.closeSession(CKA.CKA_LABEL);
  // @ts-expect-error nor a slot id
  bridge.logout(slot);
  // The raw fast path stays unbranded: CK_ULONGs in, CK_RV out.
  bridge.raw.C_CloseSession(1);
}

// The proxy's slots are SlotIds as well (its own ids, from 17), and so is a token it found.
export async function proxySlots(): Promise<void> {
  const proxy = await openProxyAsync();
  const [first] = await proxy.async.getSlotList(true);
  await proxy.async.getTokenInfo(first);
  const [token] = await proxy.async.findTokens('pkcs11:token=signing');
  (await proxy.async.openSession(token.slot)).close();
  await proxy.async.openSession('pkcs11:token=signing');
  // @ts-expect-error a plain number is not a proxy slot
  await proxy.async.getTokenInfo(17);
  // @ts-expect-error nor a module's own slot id taken as a number
  proxy.slotOwner(token.moduleSlot + 1);
}
