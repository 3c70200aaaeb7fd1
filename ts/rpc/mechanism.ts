// CK_MECHANISM on the wire as p11-kit 0.24.1 reads it: u32 type, then the parameter. Two
// mechanisms have a structured parameter there — CKM_RSA_PKCS_PSS (three u64) and
// CKM_RSA_PKCS_OAEP (three u64 and the label as a byte array); every other parameter is a byte
// array (NULL when absent) the host hands to the module verbatim as pParameter. So flat
// parameters (IVs, the SHA*-RSA-PSS structs laid out as the host's C struct) travel, and structs
// holding pointers (GCM, ECDH derive, ...) cannot. [verified against p11-kit remote 0.24.1: a
// request the host misreads makes it exit, so what cannot travel is refused here, unsent]
import { CKM, CKR, CKZ_DATA_SPECIFIED } from './constants.js';
import { REMOTE, RpcUnsupportedError, RpcUsageError } from './errors.js';
import { WireWriter, ulongToBig } from './wire.js';

export interface PssParams {
  hashAlg: number;
  mgf: number;
  sLen: number;
}

export interface OaepParams {
  hashAlg: number;
  mgf: number;
  /** CKZ_DATA_SPECIFIED (the only source PKCS#11 defines) by default. */
  source?: number;
  /** The OAEP label, if any. */
  sourceData?: Uint8Array | null;
}

export interface Mechanism {
  mechanism: number;
  /** Flat parameter bytes (an IV, ...), a PSS or OAEP parameter object, or nothing. */
  parameter?: Uint8Array | PssParams | OaepParams | null;
}

/** The hashed RSA-PSS variants, whose CK_RSA_PKCS_PSS_PARAMS travel as raw C bytes. */
const RAW_PSS = new Set<number>(
  (['SHA1', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'SHA3_224', 'SHA3_256', 'SHA3_384', 'SHA3_512'] as const).map((h) => CKM[`CKM_${h}_RSA_PKCS_PSS`]),
);
const PSS = CKM.CKM_RSA_PKCS_PSS;
const OAEP = CKM.CKM_RSA_PKCS_OAEP;

/**
 * Mechanisms whose parameter struct holds pointers, which the host cannot rebuild from bytes:
 * GCM, CCM, ChaCha20-Poly1305, ECDH/ECMQV/X9.42 derivation, EdDSA, key-derivation-string
 * mechanisms, SSL/TLS derivation, PBE/PBKDF2, SP800-108 KDFs, OAEP key-wrap sets, CMS/KIP.
 */
export const POINTER_PARAMS: ReadonlySet<number> = new Set([
  0x1087, 0x1088, 0x4021, 0x1050, 0x1051, 0x1052, 0x1053, 0x1054, 0x1057, 0x32, 0x33, 0x34, 0x362, 0x363,
  0x364, 0x371, 0x372, 0x373, 0x375, 0x376, 0x377, 0x378, 0x3e0, 0x3e1, 0x3e2, 0x3e3, 0x3e4, 0x3e5, 0x3b0,
  0x3ac, 0x3ad, 0x3ae, 0x1100, 0x1101, 0x1102, 0x1103, 0x1104, 0x1105, 0x401, 0x500, 0x510, 0x511, 0x512,
  0x1203, 0x1204, ...Array.from({ length: 12 }, (_, i) => 0x3a0 + i),
]);

const hex = (n: number) => `0x${n.toString(16)}`;

/** The bytes of a C struct of CK_ULONGs on an LP64 little-endian host. */
function ulongStruct(fn: string, values: number[], what: string, module = REMOTE): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigUint64(i * 8, ulongToBig(fn, v, what, module), true));
  return out;
}

function pssObject(fn: string, type: number, parameter: Mechanism['parameter'], module: string): PssParams {
  if (!parameter || parameter instanceof Uint8Array || typeof parameter !== 'object') {
    throw new RpcUsageError(fn, `mechanism ${hex(type)} needs its parameter as { hashAlg, mgf, sLen }`, module);
  }
  return parameter as PssParams;
}

function oaepObject(fn: string, parameter: Mechanism['parameter'], module: string): OaepParams {
  if (!parameter || parameter instanceof Uint8Array || typeof parameter !== 'object') {
    throw new RpcUsageError(fn, 'CKM_RSA_PKCS_OAEP needs its parameter as { hashAlg, mgf, source?, sourceData? }', module);
  }
  return parameter as OaepParams;
}

/** The byte-array parameter of every mechanism but the two structured ones. */
function rawParameter(fn: string, mech: Mechanism, module: string): Uint8Array | null {
  const { mechanism: type, parameter } = mech;
  if (RAW_PSS.has(type)) {
    const p = pssObject(fn, type, parameter, module);
    return ulongStruct(fn, [p.hashAlg, p.mgf, p.sLen], 'RSA-PSS parameter', module);
  }
  if (parameter === undefined || parameter === null) return null;
  if (!(parameter instanceof Uint8Array)) throw new RpcUnsupportedError(CKR.CKR_MECHANISM_INVALID, fn, `mechanism ${hex(type)} with a structured parameter`, module);
  if (POINTER_PARAMS.has(type)) {
    throw new RpcUnsupportedError(CKR.CKR_MECHANISM_INVALID, fn, `mechanism ${hex(type)} (its parameter struct holds pointers)`, module);
  }
  return parameter;
}

export function writeMechanism(w: WireWriter, mech: Mechanism): void {
  const { fn, module } = w;
  if (!mech || typeof mech !== 'object') throw new RpcUsageError(fn, 'a mechanism must be { mechanism, parameter? }', module);
  const type = mech.mechanism;
  if (!Number.isInteger(type) || type < 0) throw new RpcUsageError(fn, `mechanism type ${String(type)} is not a CK_MECHANISM_TYPE`, module);
  if (type > 0xffffffff) throw new RpcUnsupportedError(CKR.CKR_MECHANISM_INVALID, fn, `mechanism type ${type} wider than 32 bits`, module);
  w.u32(type);
  if (type === PSS) {
    const p = pssObject(fn, type, mech.parameter, module);
    w.u64(p.hashAlg, 'hashAlg').u64(p.mgf, 'mgf').u64(p.sLen, 'sLen');
  } else if (type === OAEP) {
    const p = oaepObject(fn, mech.parameter, module);
    const label = p.sourceData ?? null;
    if (label !== null && !(label instanceof Uint8Array)) throw new RpcUsageError(fn, 'OAEP sourceData must be bytes', module);
    w.u64(p.hashAlg, 'hashAlg').u64(p.mgf, 'mgf').u64(p.source ?? CKZ_DATA_SPECIFIED, 'source').byteArray(label && label.length ? label : null);
  } else {
    w.byteArray(rawParameter(fn, mech, module));
  }
}
