// How the trace prints values: constants by name, flags by name, bytes as a length with a
// short hex preview where they are public, and secrets never.
import { CKA } from '../bridge/cka.js';
import { CKK, CKO, CKU } from '../bridge/ck-enums.js';
import { CKF_SESSION, flagNames } from '../bridge/ckf.js';
import { CKM } from '../bridge/ckm.js';
import { describe } from '../bridge/names.js';
import type { Attribute, AttributeResult } from '../bridge/attributes.js';

/** Attribute values that are key material or may be: always redacted. */
const SECRET_ATTRS = new Set<number>([
  CKA.CKA_VALUE, CKA.CKA_PRIVATE_EXPONENT, CKA.CKA_PRIME_1, CKA.CKA_PRIME_2, CKA.CKA_EXPONENT_1,
  CKA.CKA_EXPONENT_2, CKA.CKA_COEFFICIENT, CKA.CKA_PRIME, CKA.CKA_SUBPRIME, CKA.CKA_BASE,
]);
/** Objects whose CKA_VALUE is public (a certificate, data objects are not keys). */
const PUBLIC_CLASSES = new Set<number>([CKO.CKO_CERTIFICATE, CKO.CKO_PUBLIC_KEY]);

const PREVIEW = 16;

export function bytes(b: Uint8Array, secret = false): string {
  if (secret) return `<${b.length} bytes, redacted>`;
  const hex = Buffer.from(b.subarray(0, PREVIEW)).toString('hex');
  return `<${b.length} bytes ${hex}${b.length > PREVIEW ? '…' : ''}>`;
}

function classOf(attrs: readonly (Attribute | AttributeResult)[]): number | undefined {
  const c = attrs.find((a) => a.type === CKA.CKA_CLASS)?.value;
  return typeof c === 'number' ? c : undefined;
}

function attrValue(a: Attribute | AttributeResult, publicValue: boolean): string {
  const v = a.value;
  if (v === undefined) return '(unavailable)';
  if (SECRET_ATTRS.has(a.type) && !(a.type === CKA.CKA_VALUE && publicValue)) return '<redacted>';
  if (a.type === CKA.CKA_CLASS && typeof v === 'number') return describe(CKO, v, 'CKO_');
  if (a.type === CKA.CKA_KEY_TYPE && typeof v === 'number') return describe(CKK, v, 'CKK_');
  return value(v);
}

export function template(attrs: readonly (Attribute | AttributeResult)[]): string {
  const cls = classOf(attrs);
  const publicValue = cls !== undefined && PUBLIC_CLASSES.has(cls);
  return `[${attrs.map((a) => `${describe(CKA, a.type, 'CKA_')}=${attrValue(a, publicValue)}`).join(', ')}]`;
}

function isAttributeList(v: unknown): v is Attribute[] {
  return Array.isArray(v) && v.length > 0 && v.every((a) => a && typeof a === 'object' && 'type' in a && 'value' in a);
}

/** A value of unknown shape, printed without ever following anything secret. */
export function value(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (v instanceof Uint8Array) return bytes(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}`;
  if (typeof v !== 'object') return String(v);
  // The bridge's info objects decode lazily; their JSON form has the fields.
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return value((v as { toJSON(): unknown }).toJSON());
  if (isAttributeList(v)) return template(v);
  if (Array.isArray(v)) return `[${v.map(value).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${value(x)}`).join(', ')}}`;
}

/** One named argument of a call. */
export function argument(name: string, v: unknown, secret: boolean): string {
  if (secret) return `${name}=<redacted>`;
  if (name === 'mechanism') {
    const m = typeof v === 'number' ? { mechanism: v } : (v as { mechanism: number; parameter?: unknown });
    const p = m.parameter === undefined ? '' : `, parameter: ${value(m.parameter)}`;
    return `${name}=${describe(CKM, m.mechanism, 'CKM_')}${p}`;
  }
  if (name === 'type' && typeof v === 'number') return `${name}=${describe(CKM, v, 'CKM_')}`;
  if (name === 'userType' && typeof v === 'number') return `${name}=${describe(CKU, v, 'CKU_')}`;
  if (name === 'flags' && typeof v === 'number') return `${name}=${flagNames(CKF_SESSION, v).join('|') || '0'}`;
  if (name === 'types' && Array.isArray(v)) return `${name}=[${v.map((t) => describe(CKA, t as number, 'CKA_')).join(', ')}]`;
  if (name.endsWith('emplate') && Array.isArray(v)) return `${name}=${template(v as Attribute[])}`;
  if (name === 'options' && v && typeof v === 'object') return `${name}={reserved: ${'reserved' in v && (v as { reserved?: unknown }).reserved != null ? '<set>' : 'none'}}`;
  return `${name}=${value(v)}`;
}
