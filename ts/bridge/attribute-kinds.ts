// How each attribute's value is encoded, by attribute type. Types not listed (vendor ones)
// travel as bytes unless the caller's value says otherwise.
import { CKA } from './cka.js';

export type AttributeKind = 'bool' | 'ulong' | 'string' | 'bytes' | 'date' | 'attributes' | 'mechanisms';

const BOOL = [
  'TOKEN', 'PRIVATE', 'TRUSTED', 'SENSITIVE', 'ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP', 'SIGN', 'SIGN_RECOVER', 'VERIFY',
  'VERIFY_RECOVER', 'DERIVE', 'EXTRACTABLE', 'LOCAL', 'NEVER_EXTRACTABLE', 'ALWAYS_SENSITIVE', 'MODIFIABLE', 'COPYABLE',
  'DESTROYABLE', 'SECONDARY_AUTH', 'ALWAYS_AUTHENTICATE', 'WRAP_WITH_TRUSTED', 'OTP_USER_FRIENDLY_MODE', 'RESET_ON_INIT',
  'HAS_RESET', 'COLOR',
] as const;
const ULONG = [
  'CLASS', 'CERTIFICATE_TYPE', 'CERTIFICATE_CATEGORY', 'JAVA_MIDP_SECURITY_DOMAIN', 'NAME_HASH_ALGORITHM', 'KEY_TYPE',
  'MODULUS_BITS', 'PRIME_BITS', 'SUBPRIME_BITS', 'VALUE_BITS', 'VALUE_LEN', 'KEY_GEN_MECHANISM', 'AUTH_PIN_FLAGS',
  'OTP_FORMAT', 'OTP_LENGTH', 'OTP_TIME_INTERVAL', 'OTP_CHALLENGE_REQUIREMENT', 'OTP_TIME_REQUIREMENT',
  'OTP_COUNTER_REQUIREMENT', 'OTP_PIN_REQUIREMENT', 'HW_FEATURE_TYPE', 'PIXEL_X', 'PIXEL_Y', 'RESOLUTION', 'CHAR_ROWS',
  'CHAR_COLUMNS', 'BITS_PER_PIXEL', 'MECHANISM_TYPE', 'PROFILE_ID',
] as const;
const STRING = [
  'LABEL', 'UNIQUE_ID', 'APPLICATION', 'URL', 'OTP_USER_IDENTIFIER', 'OTP_SERVICE_IDENTIFIER', 'OTP_SERVICE_LOGO_TYPE',
  'OTP_TIME', 'CHAR_SETS', 'ENCODING_METHODS', 'MIME_TYPES',
] as const;
const DATE = ['START_DATE', 'END_DATE'] as const;
const ATTRIBUTES = ['WRAP_TEMPLATE', 'UNWRAP_TEMPLATE', 'DERIVE_TEMPLATE'] as const;
const MECHANISMS = ['ALLOWED_MECHANISMS'] as const;

// The same lists as types: the CKA values of each kind, for values typed by attribute.
type Cka = typeof CKA;
type ValuesOf<L extends readonly string[]> = Cka[Extract<`CKA_${L[number]}`, keyof Cka>];
export type BoolAttributeType = ValuesOf<typeof BOOL>;
export type UlongAttributeType = ValuesOf<typeof ULONG>;
export type StringAttributeType = ValuesOf<typeof STRING>;
export type DateAttributeType = ValuesOf<typeof DATE>;
export type TemplateAttributeType = ValuesOf<typeof ATTRIBUTES>;
export type MechanismsAttributeType = ValuesOf<typeof MECHANISMS>;

const kinds = new Map<number, AttributeKind>();
for (const [list, kind] of [
  [BOOL, 'bool'],
  [ULONG, 'ulong'],
  [STRING, 'string'],
  [DATE, 'date'],
  [ATTRIBUTES, 'attributes'],
  [MECHANISMS, 'mechanisms'],
] as const) {
  for (const name of list) {
    const value = (CKA as Record<string, number>)[`CKA_${name}`];
    if (value === undefined) throw new Error(`attribute-kinds: unknown CKA_${name}`);
    kinds.set(value, kind);
  }
}

/** The kind of an attribute type; 'bytes' for everything not listed. */
export function attributeKind(type: number): AttributeKind {
  return kinds.get(type) ?? 'bytes';
}
