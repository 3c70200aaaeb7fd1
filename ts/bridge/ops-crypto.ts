// Typed cryptographic operations: encrypt, decrypt, digest, sign, verify (and their recover
// and dual-function forms). Outputs use the two-call length query of op-helpers.ts.
import { CKR } from './ckr.js';
import { encodeMechanism, type Mechanism } from './mechanisms.js';
import { check, req, type Op, type OpContext } from './op.js';
import { outputBytes, putBytes } from './op-helpers.js';
import type { FunctionName } from './functions.js';
import type { RawArg } from './raw.js';

import type { ObjectRef, SessionHandle } from './handles.js';

type H = SessionHandle;
type Mech = Mechanism | number;

function* init(c: OpContext, fn: FunctionName, session: H, mech: Mech, key?: ObjectRef): Op<void> {
  const m = encodeMechanism(c.mem, mech);
  check(c, fn, key === undefined ? yield req(fn, session, m) : yield req(fn, session, m, key));
}

function* transform(c: OpContext, fn: FunctionName, session: H, data: Uint8Array): Op<Uint8Array> {
  return yield* outputBytes(c, fn, [session, ...putBytes(c, data)]);
}

function* feed(c: OpContext, fn: FunctionName, session: H, data: Uint8Array): Op<void> {
  check(c, fn, yield req(fn, session, ...putBytes(c, data)));
}

function* final(c: OpContext, fn: FunctionName, session: H): Op<Uint8Array> {
  return yield* outputBytes(c, fn, [session]);
}

/** CKR_SIGNATURE_INVALID and CKR_SIGNATURE_LEN_RANGE mean "does not verify": false, not an error. */
function* verdict(c: OpContext, fn: FunctionName, args: RawArg[]): Op<boolean> {
  const rv: number = yield req(fn, ...args);
  if (rv === CKR.CKR_SIGNATURE_INVALID || rv === CKR.CKR_SIGNATURE_LEN_RANGE) return false;
  check(c, fn, rv);
  return true;
}

export const encryptInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_EncryptInit', s, m, key);
export const encrypt = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_Encrypt', s, data);
export const encryptUpdate = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_EncryptUpdate', s, data);
export const encryptFinal = (c: OpContext, s: H) => final(c, 'C_EncryptFinal', s);
export const decryptInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_DecryptInit', s, m, key);
export const decrypt = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_Decrypt', s, data);
export const decryptUpdate = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_DecryptUpdate', s, data);
export const decryptFinal = (c: OpContext, s: H) => final(c, 'C_DecryptFinal', s);
export const digestInit = (c: OpContext, s: H, m: Mech) => init(c, 'C_DigestInit', s, m);
export const digest = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_Digest', s, data);
export const digestUpdate = (c: OpContext, s: H, data: Uint8Array) => feed(c, 'C_DigestUpdate', s, data);
export function* digestKey(c: OpContext, s: H, key: ObjectRef): Op<void> {
  check(c, 'C_DigestKey', yield req('C_DigestKey', s, key));
}
export const digestFinal = (c: OpContext, s: H) => final(c, 'C_DigestFinal', s);
export const signInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_SignInit', s, m, key);
export const sign = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_Sign', s, data);
export const signUpdate = (c: OpContext, s: H, data: Uint8Array) => feed(c, 'C_SignUpdate', s, data);
export const signFinal = (c: OpContext, s: H) => final(c, 'C_SignFinal', s);
export const signRecoverInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_SignRecoverInit', s, m, key);
export const signRecover = (c: OpContext, s: H, data: Uint8Array) => transform(c, 'C_SignRecover', s, data);
export const verifyInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_VerifyInit', s, m, key);
export function* verify(c: OpContext, s: H, data: Uint8Array, signature: Uint8Array): Op<boolean> {
  return yield* verdict(c, 'C_Verify', [s, ...putBytes(c, data), ...putBytes(c, signature)]);
}
export const verifyUpdate = (c: OpContext, s: H, data: Uint8Array) => feed(c, 'C_VerifyUpdate', s, data);
export function* verifyFinal(c: OpContext, s: H, signature: Uint8Array): Op<boolean> {
  return yield* verdict(c, 'C_VerifyFinal', [s, ...putBytes(c, signature)]);
}
export const verifyRecoverInit = (c: OpContext, s: H, m: Mech, key: ObjectRef) => init(c, 'C_VerifyRecoverInit', s, m, key);
export const verifyRecover = (c: OpContext, s: H, signature: Uint8Array) => transform(c, 'C_VerifyRecover', s, signature);
export const digestEncryptUpdate = (c: OpContext, s: H, part: Uint8Array) => transform(c, 'C_DigestEncryptUpdate', s, part);
export const decryptDigestUpdate = (c: OpContext, s: H, part: Uint8Array) => transform(c, 'C_DecryptDigestUpdate', s, part);
export const signEncryptUpdate = (c: OpContext, s: H, part: Uint8Array) => transform(c, 'C_SignEncryptUpdate', s, part);
export const decryptVerifyUpdate = (c: OpContext, s: H, part: Uint8Array) => transform(c, 'C_DecryptVerifyUpdate', s, part);
