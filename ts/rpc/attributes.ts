// Attributes on the wire (spec §7.2): u32 type, validity byte, u32 length, then a value whose
// encoding depends on the type, by a table both sides share. The table here is 0.24.1's:
// types it does not list travel as byte arrays of their raw C value, so a CK_BBOOL such as
// CKA_DESTROYABLE goes as one byte in a byte array, and a CK_ULONG as 8 little-endian bytes
// (the LP64 little-endian hosts Debian ships; p11-kit itself just copies the C value).
import { CKA, CKR } from './constants.js';
import { REMOTE, RpcProtocolError, RpcUnsupportedError, RpcUsageError } from './errors.js';

/** Who is asking, for error messages: a function and a module name (a WireWriter is one). */
interface Ctx {
  fn: string;
  module: string;
}
import { WireReader, WireWriter, ulongToBig } from './wire.js';

/** How 0.24.1 encodes a value on the wire. */
export type WireKind = 'byte' | 'ulong' | 'template' | 'mechanisms' | 'date' | 'bytes';
/** What the value is in PKCS#11 terms, and so in JavaScript. */
export type ValueKind = 'bool' | 'ulong' | 'template' | 'mechanisms' | 'date' | 'bytes';

/**
 * A value as callers give and get it: CK_BBOOL → boolean, CK_ULONG → number (-1 for ~0),
 * CK_DATE → 'YYYYMMDD', mechanism lists → number[], everything else → bytes
 * (a string is accepted for bytes and sent as UTF-8).
 */
export type AttributeValue = boolean | number | bigint | Uint8Array | string | readonly number[];

export interface Attribute {
  type: number;
  value: AttributeValue;
}

/** One result of C_GetAttributeValue: value undefined when the token reported it unavailable. */
export interface ReadAttribute {
  type: number;
  value: boolean | number | Uint8Array | string | number[] | undefined;
}

const BYTE_TYPES = [
  CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_TRUSTED, CKA.CKA_SENSITIVE, CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT,
  CKA.CKA_WRAP, CKA.CKA_UNWRAP, CKA.CKA_SIGN, CKA.CKA_SIGN_RECOVER, CKA.CKA_VERIFY, CKA.CKA_VERIFY_RECOVER,
  CKA.CKA_DERIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_LOCAL, CKA.CKA_NEVER_EXTRACTABLE, CKA.CKA_ALWAYS_SENSITIVE,
  CKA.CKA_MODIFIABLE, CKA.CKA_COPYABLE, CKA.CKA_SECONDARY_AUTH, CKA.CKA_ALWAYS_AUTHENTICATE,
  CKA.CKA_WRAP_WITH_TRUSTED, CKA.CKA_RESET_ON_INIT, CKA.CKA_HAS_RESET, CKA.CKA_COLOR,
];
const ULONG_TYPES = [
  CKA.CKA_CLASS, CKA.CKA_CERTIFICATE_TYPE, CKA.CKA_CERTIFICATE_CATEGORY, CKA.CKA_JAVA_MIDP_SECURITY_DOMAIN,
  CKA.CKA_KEY_TYPE, CKA.CKA_MODULUS_BITS, CKA.CKA_PRIME_BITS, CKA.CKA_SUBPRIME_BITS, CKA.CKA_VALUE_BITS,
  CKA.CKA_VALUE_LEN, CKA.CKA_KEY_GEN_MECHANISM, CKA.CKA_AUTH_PIN_FLAGS, CKA.CKA_HW_FEATURE_TYPE,
  CKA.CKA_PIXEL_X, CKA.CKA_PIXEL_Y, CKA.CKA_RESOLUTION, CKA.CKA_CHAR_ROWS, CKA.CKA_CHAR_COLUMNS,
  CKA.CKA_BITS_PER_PIXEL, CKA.CKA_MECHANISM_TYPE,
];

const WIRE = new Map<number, WireKind>([
  ...BYTE_TYPES.map((t) => [t, 'byte'] as const),
  ...ULONG_TYPES.map((t) => [t, 'ulong'] as const),
  [CKA.CKA_WRAP_TEMPLATE, 'template'],
  [CKA.CKA_UNWRAP_TEMPLATE, 'template'],
  [CKA.CKA_ALLOWED_MECHANISMS, 'mechanisms'],
  [CKA.CKA_START_DATE, 'date'],
  [CKA.CKA_END_DATE, 'date'],
]);

/** Types 0.24.1 carries as raw bytes whose C type we still know. */
const EXTRA_KINDS = new Map<number, ValueKind>([
  [CKA.CKA_DESTROYABLE, 'bool'],
  [CKA.CKA_NAME_HASH_ALGORITHM, 'ulong'],
  [CKA.CKA_PROFILE_ID, 'ulong'],
  [CKA.CKA_DERIVE_TEMPLATE, 'template'],
]);

export function wireKind(type: number): WireKind {
  return WIRE.get(type) ?? 'bytes';
}

export function valueKind(type: number): ValueKind {
  const wire = WIRE.get(type);
  if (wire === 'byte') return 'bool';
  if (wire) return wire;
  return EXTRA_KINDS.get(type) ?? 'bytes';
}

const hex = (n: number) => `0x${n.toString(16)}`;
const utf8 = new TextEncoder();
const latin1 = new TextDecoder('latin1');

function checkType(fn: string, type: number, module: string): void {
  if (!Number.isInteger(type) || type < 0) throw new RpcUsageError(fn, `attribute type ${String(type)} is not a CK_ATTRIBUTE_TYPE`, module);
  if (type > 0xffffffff) throw new RpcUnsupportedError(CKR.CKR_ATTRIBUTE_TYPE_INVALID, fn, `attribute type ${type} wider than 32 bits`, module);
}

function asBool({ fn, module }: Ctx, type: number, v: AttributeValue): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  throw new RpcUsageError(fn, `attribute ${hex(type)} is a CK_BBOOL; got ${describeValue(v)}`, module);
}

function asUlong({ fn, module }: Ctx, type: number, v: AttributeValue): bigint {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new RpcUsageError(fn, `attribute ${hex(type)} is a CK_ULONG; got ${describeValue(v)}`, module);
  return ulongToBig(fn, v, `attribute ${hex(type)}`, module);
}

function asBytes({ fn, module }: Ctx, type: number, v: AttributeValue): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return utf8.encode(v);
  throw new RpcUsageError(fn, `attribute ${hex(type)} is a byte array; got ${describeValue(v)}`, module);
}

function asDate({ fn, module }: Ctx, type: number, v: AttributeValue): Uint8Array {
  const bytes = typeof v === 'string' ? utf8.encode(v) : v instanceof Uint8Array ? v : undefined;
  if (!bytes) throw new RpcUsageError(fn, `attribute ${hex(type)} is a CK_DATE ('YYYYMMDD'); got ${describeValue(v)}`, module);
  if (bytes.length === 0) throw new RpcUnsupportedError(CKR.CKR_ATTRIBUTE_VALUE_INVALID, fn, `an empty CK_DATE (attribute ${hex(type)})`, module);
  if (bytes.length !== 8) throw new RpcUsageError(fn, `attribute ${hex(type)} is a CK_DATE of 8 characters; got ${bytes.length}`, module);
  return bytes;
}

function asMechanisms({ fn, module }: Ctx, type: number, v: AttributeValue): bigint[] {
  if (!Array.isArray(v)) throw new RpcUsageError(fn, `attribute ${hex(type)} is a list of mechanism types; got ${describeValue(v)}`, module);
  return v.map((m: number) => ulongToBig(fn, m, `mechanism in attribute ${hex(type)}`, module));
}

function describeValue(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/** The raw C bytes of a value that 0.24.1 carries as a plain byte array. */
function rawBytes(ctx: Ctx, type: number, v: AttributeValue): Uint8Array {
  const { fn, module } = ctx;
  switch (valueKind(type)) {
    case 'bool':
      return Uint8Array.of(asBool(ctx, type, v) ? 1 : 0);
    case 'ulong': {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, asUlong(ctx, type, v), true);
      return out;
    }
    case 'template':
      throw new RpcUnsupportedError(CKR.CKR_ATTRIBUTE_TYPE_INVALID, fn, `attribute-array attribute ${hex(type)}`, module);
    default:
      return asBytes(ctx, type, v);
  }
}

/** One attribute of an `aA` array. */
export function writeAttribute(w: WireWriter, attr: Attribute): void {
  const { fn, module } = w;
  const { type, value } = attr;
  checkType(fn, type, module);
  w.u32(type).byte(1);
  switch (wireKind(type)) {
    case 'byte':
      w.u32(1).byte(asBool(w, type, value) ? 1 : 0);
      return;
    case 'ulong':
      w.u32(8).u64(asUlong(w, type, value));
      return;
    case 'date':
      w.u32(8).byteArray(asDate(w, type, value));
      return;
    case 'mechanisms': {
      const mechs = asMechanisms(w, type, value);
      w.u32(mechs.length * 8).u32(mechs.length);
      for (const m of mechs) w.u64(m);
      return;
    }
    case 'template':
      // 0.24.1's server decodes nested templates into uninitialised memory: never send one.
      throw new RpcUnsupportedError(CKR.CKR_ATTRIBUTE_TYPE_INVALID, fn, `attribute-array attribute ${hex(type)} (CKA_WRAP/UNWRAP_TEMPLATE)`, module);
    case 'bytes': {
      const bytes = rawBytes(w, type, value);
      w.u32(bytes.length).byteArray(bytes);
      return;
    }
  }
}

export function writeTemplate(w: WireWriter, template: readonly Attribute[]): void {
  if (!Array.isArray(template)) throw new RpcUsageError(w.fn, 'a template must be an array of { type, value }', w.module);
  w.u32(template.length);
  for (const attr of template) {
    if (!attr || typeof attr !== 'object') throw new RpcUsageError(w.fn, 'a template entry must be { type, value }', w.module);
    writeAttribute(w, attr);
  }
}

/**
 * What to ask for in an `fA` buffer, per type: the exact size for fixed-size values, 0 (a size
 * query) for byte arrays. Templates are refused: 0.24.1's server dereferences NULL answering them.
 */
export function fixedCapacity(fn: string, type: number, module = REMOTE): number {
  checkType(fn, type, module);
  switch (wireKind(type)) {
    case 'byte':
      return 1;
    case 'ulong':
    case 'date':
      return 8;
    case 'mechanisms':
      return 8 * 32;
    case 'template':
      throw new RpcUnsupportedError(CKR.CKR_ATTRIBUTE_TYPE_INVALID, fn, `reading attribute-array attribute ${hex(type)}`, module);
    case 'bytes': {
      const kind = valueKind(type);
      return kind === 'bool' ? 1 : kind === 'ulong' ? 8 : 0;
    }
  }
}

/** One attribute as a reply carries it. `value` undefined with `valid` = a size-only answer. */
export interface WireAttribute {
  type: number;
  valid: boolean;
  length: number;
  value?: ReadAttribute['value'];
}

export function readAttribute(r: WireReader): WireAttribute {
  const type = r.u32('attribute type');
  const validity = r.byte('attribute validity');
  if (validity === 0) return { type, valid: false, length: -1 };
  const length = r.u32('attribute length');
  const what = `attribute ${hex(type)}`;
  switch (wireKind(type)) {
    case 'byte':
      return { type, valid: true, length, value: r.byte(what) !== 0 };
    case 'ulong':
      return { type, valid: true, length, value: r.ulong(what) };
    case 'mechanisms': {
      const count = r.u32(`${what} count`);
      if (count * 8 > r.remaining) throw new RpcProtocolError(r.fn, `truncated message reading ${what}`, r.module);
      const mechs: number[] = [];
      for (let i = 0; i < count; i++) mechs.push(r.ulong(what));
      return { type, valid: true, length, value: mechs };
    }
    case 'date': {
      const bytes = r.byteArray(what);
      if (bytes && bytes.length !== 0 && bytes.length !== 8) throw new RpcProtocolError(r.fn, `${what}: a CK_DATE of ${bytes.length} bytes`, r.module);
      return { type, valid: true, length, value: bytes ? latin1.decode(bytes) : undefined };
    }
    case 'template':
      throw new RpcProtocolError(r.fn, `${what}: attribute-array values are never requested`, r.module);
    case 'bytes': {
      const bytes = r.byteArray(what);
      return { type, valid: true, length, value: bytes ? fromRaw(type, bytes) : undefined };
    }
  }
}

/** Raw C bytes back to the natural value, when their size says it is one. */
function fromRaw(type: number, bytes: Uint8Array): ReadAttribute['value'] {
  const kind = valueKind(type);
  if (kind === 'bool' && bytes.length === 1) return bytes[0] !== 0;
  if (kind === 'ulong' && bytes.length === 8) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (v === 0xffffffffffffffffn) return -1;
    if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  }
  return bytes;
}
