// CK_MECHANISM with its parameter. Parameters are bytes, a CK_ULONG, or one of the typed
// structures below; which structure an object parameter means is decided by the mechanism.
import { CKM } from './ckm.js';
import { BridgeError } from './errors.js';
import { L } from './layout.js';
import { Arena } from './memory.js';

const PSS_MECHANISMS = [
  'RSA_PKCS_PSS', 'SHA1_RSA_PKCS_PSS', 'SHA224_RSA_PKCS_PSS', 'SHA256_RSA_PKCS_PSS', 'SHA384_RSA_PKCS_PSS',
  'SHA512_RSA_PKCS_PSS', 'SHA3_224_RSA_PKCS_PSS', 'SHA3_256_RSA_PKCS_PSS', 'SHA3_384_RSA_PKCS_PSS', 'SHA3_512_RSA_PKCS_PSS',
] as const;

/** CK_RSA_PKCS_PSS_PARAMS */
export interface RsaPssParams {
  hashAlg: number;
  mgf: number;
  saltLength: number;
}

/** CK_RSA_PKCS_OAEP_PARAMS; source defaults to CKZ_DATA_SPECIFIED. */
export interface RsaOaepParams {
  hashAlg: number;
  mgf: number;
  source?: number;
  sourceData?: Uint8Array;
}

/** CK_ECDH1_DERIVE_PARAMS */
export interface Ecdh1DeriveParams {
  kdf: number;
  sharedData?: Uint8Array;
  publicData: Uint8Array;
}

/** CK_GCM_PARAMS (2.40 layout, with ulIvBits; defaults to the IV length in bits). */
export interface GcmParams {
  iv: Uint8Array;
  ivBits?: number;
  aad?: Uint8Array;
  tagBits: number;
}

export type MechanismParameter = Uint8Array | number | bigint | RsaPssParams | RsaOaepParams | Ecdh1DeriveParams | GcmParams | null;

/** Any mechanism, as the encoder takes it (its parameter's structure decided at run time). */
export interface RawMechanism {
  mechanism: number;
  parameter?: MechanismParameter;
}

type Ckm = typeof CKM;
type CkmOf<N extends string> = Ckm[Extract<`CKM_${N}`, keyof Ckm>];
type PssMechanism = CkmOf<(typeof PSS_MECHANISMS)[number]>;
/** The parameter a mechanism takes: a structure for the ones listed, else bytes or a number (or none). */
export type MechanismParameterOf<M extends number> = M extends PssMechanism ? RsaPssParams
  : M extends Ckm['CKM_RSA_PKCS_OAEP'] ? RsaOaepParams
  : M extends Ckm['CKM_ECDH1_DERIVE'] | Ckm['CKM_ECDH1_COFACTOR_DERIVE'] ? Ecdh1DeriveParams
  : M extends Ckm['CKM_AES_GCM'] ? GcmParams
  : Uint8Array | number | bigint | null;

declare const vendorBrand: unique symbol;
/** A mechanism type outside the standard table; made by vendorMechanismType(). */
export type VendorMechanismType = number & { readonly [vendorBrand]: true };
export const vendorMechanismType = (type: number): VendorMechanismType => type as VendorMechanismType;

type KnownMechanism = { [K in keyof Ckm]: { mechanism: Ckm[K]; parameter?: MechanismParameterOf<Ckm[K]> } }[keyof Ckm];

/**
 * CK_MECHANISM. With a CKM constant, the parameter must be the one that mechanism takes
 * (`{ mechanism: CKM.CKM_AES_GCM, parameter: pssParams }` does not compile).
 */
export type Mechanism = KnownMechanism | { mechanism: VendorMechanismType; parameter?: MechanismParameter };

type StructKind = 'pss' | 'oaep' | 'ecdh1' | 'gcm';

const STRUCT_KIND = new Map<number, StructKind>([
  ...PSS_MECHANISMS.map((n) => [CKM[`CKM_${n}`], 'pss'] as [number, StructKind]),
  [CKM.CKM_RSA_PKCS_OAEP, 'oaep'],
  [CKM.CKM_ECDH1_DERIVE, 'ecdh1'],
  [CKM.CKM_ECDH1_COFACTOR_DERIVE, 'ecdh1'],
  [CKM.CKM_AES_GCM, 'gcm'],
]);

function bad(mech: number, why: string): BridgeError {
  return new BridgeError('BAD_ARGUMENT', `mechanism 0x${mech.toString(16)}: ${why}`);
}

function need(mech: number, o: Record<string, unknown>, fields: string[]): void {
  for (const f of fields) if (o[f] === undefined) throw bad(mech, `parameter needs '${f}'`);
}

/** Writes the parameter structure; returns [pParameter, ulParameterLen]. */
function encodeStruct(mem: Arena, mech: number, kind: StructKind, p: Record<string, unknown>): [number, number] {
  const bytesOf = (b: unknown) => (b instanceof Uint8Array ? b : undefined);
  switch (kind) {
    case 'pss': {
      need(mech, p, ['hashAlg', 'mgf', 'saltLength']);
      const o = L.pssParams;
      const at = mem.alloc(o.size);
      mem.setUlong(at + o.hashAlg, p.hashAlg as number);
      mem.setUlong(at + o.mgf, p.mgf as number);
      mem.setUlong(at + o.sLen, p.saltLength as number);
      return [at, o.size];
    }
    case 'oaep': {
      need(mech, p, ['hashAlg', 'mgf']);
      const o = L.oaepParams;
      const at = mem.alloc(o.size);
      const data = bytesOf(p.sourceData);
      mem.setUlong(at + o.hashAlg, p.hashAlg as number);
      mem.setUlong(at + o.mgf, p.mgf as number);
      mem.setUlong(at + o.source, (p.source as number | undefined) ?? 1); // CKZ_DATA_SPECIFIED, the only defined source
      if (data) {
        mem.setPtr(at + o.pSourceData, mem.put(data));
        mem.setUlong(at + o.ulSourceDataLen, data.length);
      }
      return [at, o.size];
    }
    case 'ecdh1': {
      need(mech, p, ['kdf', 'publicData']);
      const o = L.ecdh1Params;
      const at = mem.alloc(o.size);
      const pub = bytesOf(p.publicData);
      const shared = bytesOf(p.sharedData);
      if (!pub) throw bad(mech, 'publicData must be bytes');
      mem.setUlong(at + o.kdf, p.kdf as number);
      if (shared) {
        mem.setUlong(at + o.ulSharedDataLen, shared.length);
        mem.setPtr(at + o.pSharedData, mem.put(shared));
      }
      mem.setUlong(at + o.ulPublicDataLen, pub.length);
      mem.setPtr(at + o.pPublicData, mem.put(pub));
      return [at, o.size];
    }
    case 'gcm': {
      need(mech, p, ['iv', 'tagBits']);
      const o = L.gcmParams;
      const at = mem.alloc(o.size);
      const iv = bytesOf(p.iv);
      const aad = bytesOf(p.aad);
      if (!iv) throw bad(mech, 'iv must be bytes');
      mem.setPtr(at + o.pIv, mem.put(iv));
      mem.setUlong(at + o.ulIvLen, iv.length);
      mem.setUlong(at + o.ulIvBits, (p.ivBits as number | undefined) ?? iv.length * 8);
      if (aad) {
        mem.setPtr(at + o.pAAD, mem.put(aad));
        mem.setUlong(at + o.ulAADLen, aad.length);
      }
      mem.setUlong(at + o.ulTagBits, p.tagBits as number);
      return [at, o.size];
    }
  }
}

/**
 * CK_MECHANISMs without parameter, built once per type and never freed: they are immutable, so
 * every call (on any thread) can point at the same one. Bounded, in case of a caller that
 * cycles through vendor types.
 */
const bare = new Map<number, number>();
const bareMemory = new Arena(64 * L.mechanism.size);

function bareMechanism(mech: number): number {
  let at = bare.get(mech);
  if (at === undefined && bare.size < 256) {
    at = bareMemory.alloc(L.mechanism.size);
    bareMemory.setUlong(at + L.mechanism.mechanism, mech);
    bare.set(mech, at);
  }
  return at ?? -1;
}

/** Writes a CK_MECHANISM (and its parameter); returns its address. A bare number is a mechanism without parameter. */
export function encodeMechanism(mem: Arena, m: Mechanism | number): number {
  const mech = typeof m === 'number' ? m : m?.mechanism;
  if (typeof mech !== 'number') throw new BridgeError('BAD_ARGUMENT', 'a mechanism needs a numeric type');
  const param = typeof m === 'number' ? null : m.parameter ?? null;
  if (param === null && Number.isInteger(mech) && mech >= 0) {
    const at = bareMechanism(mech);
    if (at >= 0) return at;
  }
  const o = L.mechanism;
  const at = mem.alloc(o.size);
  mem.setUlong(at + o.mechanism, mech);
  let p = 0;
  let len = 0;
  if (param instanceof Uint8Array) [p, len] = [mem.put(param), param.length];
  else if (typeof param === 'number' || typeof param === 'bigint') {
    p = mem.alloc(L.ulong);
    mem.setUlong(p, param);
    len = L.ulong;
  } else if (param !== null) {
    const kind = STRUCT_KIND.get(mech);
    if (!kind || typeof param !== 'object') throw bad(mech, 'no typed parameter structure is known for it; pass bytes');
    [p, len] = encodeStruct(mem, mech, kind, param as unknown as Record<string, unknown>);
  }
  mem.setPtr(at + o.pParameter, p);
  mem.setUlong(at + o.ulParameterLen, len);
  return at;
}
