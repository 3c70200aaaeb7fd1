// CK_ATTRIBUTE templates: encoding JS values into native arrays (with nested templates for
// CKA_WRAP_TEMPLATE and friends) and decoding what C_GetAttributeValue filled in. Decoding
// reads only the buffers we allocated, with the lengths the module reported checked against
// them; a pointer the module may have written back is never followed.
import { BridgeError } from './errors.js';
import { echo } from '../wasm/echo.js';
import {
  attributeKind,
  type AttributeKind,
  type BoolAttributeType,
  type DateAttributeType,
  type MechanismsAttributeType,
  type StringAttributeType,
  type TemplateAttributeType,
  type UlongAttributeType,
} from './attribute-kinds.js';
import type { CKA } from './cka.js';
import { L, UNAVAILABLE } from './layout.js';
import { readUlong, type Arena } from './memory.js';

/** CK_DATE: year, month and day as numbers (the native form is 8 ASCII digits). */
export interface CkDate {
  year: number;
  month: number;
  day: number;
}

export type AttributeValue = boolean | number | bigint | string | Uint8Array | CkDate | RawAttribute[] | number[];

/** The value an attribute type takes: CKA_SIGN a boolean, CKA_LABEL a string, CKA_ID bytes... */
export type AttributeValueOf<T extends number> = T extends BoolAttributeType ? boolean
  : T extends UlongAttributeType ? number | bigint
  : T extends StringAttributeType ? string
  : T extends DateAttributeType ? CkDate
  : T extends TemplateAttributeType ? Attribute[]
  : T extends MechanismsAttributeType ? number[]
  : T extends BytesAttributeType ? Uint8Array
  : AttributeValue; // a type only known at run time, or a vendor's

/** The standard attribute types whose value is a byte string (CKA_ID, CKA_VALUE, CKA_EC_PARAMS...). */
type BytesAttributeType = Exclude<
  (typeof CKA)[keyof typeof CKA],
  BoolAttributeType | UlongAttributeType | StringAttributeType | DateAttributeType | TemplateAttributeType | MechanismsAttributeType
>;

declare const vendorBrand: unique symbol;
/** An attribute type outside the standard table; made by vendorAttributeType(). */
export type VendorAttributeType = number & { readonly [vendorBrand]: true };
/** Marks a number as a vendor (or otherwise unlisted) attribute type, whose value is not checked by type. */
export const vendorAttributeType = (type: number): VendorAttributeType => type as VendorAttributeType;

type KnownAttribute = { [K in keyof typeof CKA]: { type: (typeof CKA)[K]; value: AttributeValueOf<(typeof CKA)[K]> } }[keyof typeof CKA];

/**
 * One template entry. With a CKA constant as `type`, `value` must be of that attribute's
 * kind (`{ type: CKA.CKA_SIGN, value: 'yes' }` does not compile); other types go through
 * vendorAttributeType().
 */
export type Attribute = KnownAttribute | { type: VendorAttributeType; value: AttributeValue };

/** Any attribute, as the encoder takes it (the type is only known at run time). */
export interface RawAttribute {
  type: number;
  value: AttributeValue;
}

/** What C_GetAttributeValue gave for one type: `value` is undefined when the module said unavailable (sensitive, invalid type). */
export interface AttributeResult<T extends number = number> {
  type: T;
  value: AttributeValueOf<T> | undefined;
}

const A = L.attribute;
const utf8 = new TextDecoder('utf-8');

function bad(type: number, why: string): BridgeError {
  return new BridgeError('BAD_ARGUMENT', `attribute 0x${type.toString(16)}: ${why}`);
}

function ulongBytes(mem: Arena, values: (number | bigint)[]): [number, number] {
  const addr = mem.alloc(values.length * L.ulong);
  values.forEach((v, i) => mem.setUlong(addr + i * L.ulong, v));
  return [addr, values.length * L.ulong];
}

function dateBytes(type: number, v: CkDate | Date | string): Uint8Array {
  let text: string;
  if (typeof v === 'string') text = v;
  else if (v instanceof Date) text = `${v.getUTCFullYear()}`.padStart(4, '0') + `${v.getUTCMonth() + 1}`.padStart(2, '0') + `${v.getUTCDate()}`.padStart(2, '0');
  else text = `${v.year}`.padStart(4, '0') + `${v.month}`.padStart(2, '0') + `${v.day}`.padStart(2, '0');
  if (!/^\d{8}$/.test(text)) throw bad(type, `not a date: ${echo(text)}`);
  return Buffer.from(text, 'latin1');
}

/** Encodes one value; returns [pValue, ulValueLen]. */
function encodeValue(mem: Arena, type: number, kind: AttributeKind, value: AttributeValue | Date): [number, number] {
  if (value instanceof Uint8Array) return [mem.put(value), value.length];
  switch (kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw bad(type, 'expects a boolean');
      return [mem.put(Uint8Array.of(value ? 1 : 0)), 1];
    case 'ulong':
      if (typeof value !== 'number' && typeof value !== 'bigint') throw bad(type, 'expects a number');
      return ulongBytes(mem, [value]);
    case 'string':
      if (typeof value !== 'string') throw bad(type, 'expects a string');
      return encodeValue(mem, type, 'bytes', Buffer.from(value, 'utf8'));
    case 'date':
      if (typeof value === 'string' || value instanceof Date || (typeof value === 'object' && 'year' in value)) {
        return encodeValue(mem, type, 'bytes', dateBytes(type, value as CkDate));
      }
      throw bad(type, 'expects a date');
    case 'attributes':
      if (!Array.isArray(value)) throw bad(type, 'expects an attribute array');
      return [encodeTemplate(mem, value as RawAttribute[]), value.length * A.size];
    case 'mechanisms':
      if (!Array.isArray(value)) throw bad(type, 'expects an array of mechanism types');
      return ulongBytes(mem, value as number[]);
    case 'bytes':
      // An unknown (vendor) type: go by the value.
      if (typeof value === 'boolean') return encodeValue(mem, type, 'bool', value);
      if (typeof value === 'number' || typeof value === 'bigint') return encodeValue(mem, type, 'ulong', value);
      if (typeof value === 'string') return encodeValue(mem, type, 'string', value);
      throw bad(type, 'expects bytes');
  }
}

/** Writes a CK_ATTRIBUTE array for `attrs` into mem; returns its address. */
export function encodeTemplate(mem: Arena, attrs: readonly RawAttribute[]): number {
  const base = mem.alloc(Math.max(1, attrs.length) * A.size);
  attrs.forEach((attr, i) => {
    if (!attr || typeof attr.type !== 'number') throw new BridgeError('BAD_ARGUMENT', `template entry ${i} has no numeric type`);
    const [p, len] = encodeValue(mem, attr.type, attributeKind(attr.type), attr.value);
    const at = base + i * A.size;
    mem.setUlong(at + A.type, attr.type);
    mem.setPtr(at + A.pValue, p);
    mem.setUlong(at + A.ulValueLen, len);
  });
  return base;
}

/** A query template: the types with NULL pValue and zero lengths. */
export function encodeQuery(mem: Arena, types: readonly number[]): number {
  const base = mem.alloc(Math.max(1, types.length) * A.size);
  types.forEach((t, i) => mem.setUlong(base + i * A.size + A.type, t));
  return base;
}

/** Decodes bytes of a known kind; falls back to the bytes when their size does not fit the kind. */
export function decodeValue(kind: AttributeKind, bytes: Uint8Array): AttributeValue {
  switch (kind) {
    case 'bool':
      return bytes.length === 1 ? bytes[0] !== 0 : bytes;
    case 'ulong':
    case 'mechanisms': {
      if (bytes.length % L.ulong !== 0 || (kind === 'ulong' && bytes.length !== L.ulong)) return bytes;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (kind === 'ulong') return readUlong(dv, 0);
      const values: number[] = [];
      for (let off = 0; off < bytes.length; off += L.ulong) values.push(Number(readUlong(dv, off)));
      return values;
    }
    case 'string':
      return utf8.decode(bytes);
    case 'date': {
      if (bytes.length !== 8) return bytes;
      const text = Buffer.from(bytes).toString('latin1');
      if (!/^\d{8}$/.test(text)) return bytes;
      return { year: +text.slice(0, 4), month: +text.slice(4, 6), day: +text.slice(6, 8) };
    }
    case 'attributes':
    case 'bytes':
      return bytes;
  }
}

/** The ulValueLen the module left for entry i of the array at base; UNAVAILABLE as -1. */
export function returnedLength(mem: Arena, base: number, i: number): number | bigint {
  const v = mem.ulong(base + i * A.size + A.ulValueLen);
  return BigInt(v) === UNAVAILABLE ? -1 : v;
}
