// Small CK_* enumerations: object classes, key types, certificate types, user types,
// session states, KDFs, MGFs, OAEP sources.
import type { ConstTable } from './names.js';

export const CKO = Object.freeze({
  CKO_DATA: 0,
  CKO_CERTIFICATE: 1,
  CKO_PUBLIC_KEY: 2,
  CKO_PRIVATE_KEY: 3,
  CKO_SECRET_KEY: 4,
  CKO_HW_FEATURE: 5,
  CKO_DOMAIN_PARAMETERS: 6,
  CKO_MECHANISM: 7,
  CKO_OTP_KEY: 8,
  CKO_PROFILE: 9,
  CKO_VENDOR_DEFINED: 0x80000000,
} as const) satisfies ConstTable;

export const CKK = Object.freeze({
  CKK_RSA: 0x0,
  CKK_DSA: 0x1,
  CKK_DH: 0x2,
  CKK_EC: 0x3,
  CKK_ECDSA: 0x3,
  CKK_X9_42_DH: 0x4,
  CKK_KEA: 0x5,
  CKK_GENERIC_SECRET: 0x10,
  CKK_RC2: 0x11,
  CKK_RC4: 0x12,
  CKK_DES: 0x13,
  CKK_DES2: 0x14,
  CKK_DES3: 0x15,
  CKK_CAST: 0x16,
  CKK_CAST3: 0x17,
  CKK_CAST128: 0x18,
  CKK_CAST5: 0x18,
  CKK_RC5: 0x19,
  CKK_IDEA: 0x1a,
  CKK_SKIPJACK: 0x1b,
  CKK_BATON: 0x1c,
  CKK_JUNIPER: 0x1d,
  CKK_CDMF: 0x1e,
  CKK_AES: 0x1f,
  CKK_BLOWFISH: 0x20,
  CKK_TWOFISH: 0x21,
  CKK_SECURID: 0x22,
  CKK_HOTP: 0x23,
  CKK_ACTI: 0x24,
  CKK_CAMELLIA: 0x25,
  CKK_ARIA: 0x26,
  CKK_MD5_HMAC: 0x27,
  CKK_SHA_1_HMAC: 0x28,
  CKK_RIPEMD128_HMAC: 0x29,
  CKK_RIPEMD160_HMAC: 0x2a,
  CKK_SHA256_HMAC: 0x2b,
  CKK_SHA384_HMAC: 0x2c,
  CKK_SHA512_HMAC: 0x2d,
  CKK_SHA224_HMAC: 0x2e,
  CKK_SEED: 0x2f,
  CKK_GOSTR3410: 0x30,
  CKK_GOSTR3411: 0x31,
  CKK_GOST28147: 0x32,
  CKK_CHACHA20: 0x33,
  CKK_POLY1305: 0x34,
  CKK_AES_XTS: 0x35,
  CKK_SHA3_224_HMAC: 0x36,
  CKK_SHA3_256_HMAC: 0x37,
  CKK_SHA3_384_HMAC: 0x38,
  CKK_SHA3_512_HMAC: 0x39,
  CKK_BLAKE2B_160_HMAC: 0x3a,
  CKK_BLAKE2B_256_HMAC: 0x3b,
  CKK_BLAKE2B_384_HMAC: 0x3c,
  CKK_BLAKE2B_512_HMAC: 0x3d,
  CKK_SALSA20: 0x3e,
  CKK_X2RATCHET: 0x3f,
  CKK_EC_EDWARDS: 0x40,
  CKK_EC_MONTGOMERY: 0x41,
  CKK_HKDF: 0x42,
  CKK_VENDOR_DEFINED: 0x80000000,
} as const) satisfies ConstTable;

export const CKC = Object.freeze({
  CKC_X_509: 0,
  CKC_X_509_ATTR_CERT: 1,
  CKC_WTLS: 2,
  CKC_VENDOR_DEFINED: 0x80000000,
} as const) satisfies ConstTable;

export const CKU = Object.freeze({
  CKU_SO: 0,
  CKU_USER: 1,
  CKU_CONTEXT_SPECIFIC: 2,
} as const) satisfies ConstTable;

export const CKS = Object.freeze({
  CKS_RO_PUBLIC_SESSION: 0,
  CKS_RO_USER_FUNCTIONS: 1,
  CKS_RW_PUBLIC_SESSION: 2,
  CKS_RW_USER_FUNCTIONS: 3,
  CKS_RW_SO_FUNCTIONS: 4,
} as const) satisfies ConstTable;

export const CKD = Object.freeze({
  CKD_NULL: 1,
  CKD_SHA1_KDF: 2,
  CKD_SHA1_KDF_ASN1: 3,
  CKD_SHA1_KDF_CONCATENATE: 4,
  CKD_SHA224_KDF: 5,
  CKD_SHA256_KDF: 6,
  CKD_SHA384_KDF: 7,
  CKD_SHA512_KDF: 8,
  CKD_CPDIVERSIFY_KDF: 9,
} as const) satisfies ConstTable;

export const CKG = Object.freeze({
  CKG_MGF1_SHA1: 1,
  CKG_MGF1_SHA256: 2,
  CKG_MGF1_SHA384: 3,
  CKG_MGF1_SHA512: 4,
  CKG_MGF1_SHA224: 5,
} as const) satisfies ConstTable;

export const CKZ = Object.freeze({
  CKZ_DATA_SPECIFIED: 1,
} as const) satisfies ConstTable;

