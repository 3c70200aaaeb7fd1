// CK_FLAGS bits, one table per structure they belong to (their values overlap).
import type { ConstTable } from './names.js';

export const CKF_TOKEN = Object.freeze({
  CKF_RNG: 0x1,
  CKF_WRITE_PROTECTED: 0x2,
  CKF_LOGIN_REQUIRED: 0x4,
  CKF_USER_PIN_INITIALIZED: 0x8,
  CKF_RESTORE_KEY_NOT_NEEDED: 0x20,
  CKF_CLOCK_ON_TOKEN: 0x40,
  CKF_PROTECTED_AUTHENTICATION_PATH: 0x100,
  CKF_DUAL_CRYPTO_OPERATIONS: 0x200,
  CKF_TOKEN_INITIALIZED: 0x400,
  CKF_SECONDARY_AUTHENTICATION: 0x800,
  CKF_USER_PIN_COUNT_LOW: 0x10000,
  CKF_USER_PIN_FINAL_TRY: 0x20000,
  CKF_USER_PIN_LOCKED: 0x40000,
  CKF_USER_PIN_TO_BE_CHANGED: 0x80000,
  CKF_SO_PIN_COUNT_LOW: 0x100000,
  CKF_SO_PIN_FINAL_TRY: 0x200000,
  CKF_SO_PIN_LOCKED: 0x400000,
  CKF_SO_PIN_TO_BE_CHANGED: 0x800000,
  CKF_ERROR_STATE: 0x1000000,
} as const) satisfies ConstTable;

export const CKF_SLOT = Object.freeze({
  CKF_TOKEN_PRESENT: 0x1,
  CKF_REMOVABLE_DEVICE: 0x2,
  CKF_HW_SLOT: 0x4,
} as const) satisfies ConstTable;

export const CKF_SESSION = Object.freeze({
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
} as const) satisfies ConstTable;

export const CKF_INIT = Object.freeze({
  CKF_LIBRARY_CANT_CREATE_OS_THREADS: 0x1,
  CKF_OS_LOCKING_OK: 0x2,
} as const) satisfies ConstTable;

export const CKF_MECHANISM = Object.freeze({
  CKF_HW: 0x1,
  CKF_MESSAGE_ENCRYPT: 0x2,
  CKF_MESSAGE_DECRYPT: 0x4,
  CKF_MESSAGE_SIGN: 0x8,
  CKF_MESSAGE_VERIFY: 0x10,
  CKF_MULTI_MESSAGE: 0x20,
  CKF_FIND_OBJECTS: 0x40,
  CKF_ENCRYPT: 0x100,
  CKF_DECRYPT: 0x200,
  CKF_DIGEST: 0x400,
  CKF_SIGN: 0x800,
  CKF_SIGN_RECOVER: 0x1000,
  CKF_VERIFY: 0x2000,
  CKF_VERIFY_RECOVER: 0x4000,
  CKF_GENERATE: 0x8000,
  CKF_GENERATE_KEY_PAIR: 0x10000,
  CKF_WRAP: 0x20000,
  CKF_UNWRAP: 0x40000,
  CKF_DERIVE: 0x80000,
  CKF_EC_F_P: 0x100000,
  CKF_EC_F_2M: 0x200000,
  CKF_EC_ECPARAMETERS: 0x400000,
  CKF_EC_OID: 0x800000,
  CKF_EC_NAMEDCURVE: 0x800000,
  CKF_EC_UNCOMPRESS: 0x1000000,
  CKF_EC_COMPRESS: 0x2000000,
  CKF_EC_CURVENAME: 0x4000000,
  CKF_EXTENSION: 0x80000000,
} as const) satisfies ConstTable;

export const CKF_MISC = Object.freeze({
  CKF_DONT_BLOCK: 0x1,
  CKF_INTERFACE_FORK_SAFE: 0x1,
  CKF_END_OF_MESSAGE: 0x1,
  CKF_ARRAY_ATTRIBUTE: 0x40000000,
} as const) satisfies ConstTable;

/** Every CKF_ name, for lookups by name; values overlap between groups, so reverse lookups use a group. */
export const CKF = Object.freeze({
  ...CKF_TOKEN,
  ...CKF_SLOT,
  ...CKF_SESSION,
  ...CKF_INIT,
  ...CKF_MECHANISM,
  ...CKF_MISC,
} as const);

/** The names of the bits set in `flags`, in bit order; unknown bits as 0x... . */
export function flagNames(group: ConstTable, flags: number | bigint): string[] {
  const value = BigInt(flags);
  const out: string[] = [];
  let known = 0n;
  const seen = new Set<number>();
  for (const [name, bit] of Object.entries(group)) {
    if (seen.has(bit)) continue;
    seen.add(bit);
    known |= BigInt(bit);
    if (value & BigInt(bit)) out.push(name);
  }
  const unknown = value & ~known;
  if (unknown) out.push(`0x${unknown.toString(16)}`);
  return out;
}
