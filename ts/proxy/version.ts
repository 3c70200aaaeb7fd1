// The proxy's face is PKCS#11 2.40 (its C_GetInfo says so, as p11-kit-proxy's does), whatever
// interface a module behind it was loaded with. A module we reach through C_GetInterface may
// describe itself in 3.0 terms; a 2.40 caller could not use those capabilities through us, and
// p11-kit-proxy (which asks modules for their 2.x function list) does not show them. So the
// 3.0-only mechanism flags are taken off what the proxy reports, and the 3.0-only session calls
// are not offered — one version, consistently.
import { CKF_MECHANISM } from '../bridge/ckf.js';
import type { MechanismInfo } from '../bridge/info.js';

/** Mechanism flags PKCS#11 3.0 added: message-based operations and object search. */
const V3_ONLY_FLAGS =
  CKF_MECHANISM.CKF_MESSAGE_ENCRYPT |
  CKF_MECHANISM.CKF_MESSAGE_DECRYPT |
  CKF_MECHANISM.CKF_MESSAGE_SIGN |
  CKF_MECHANISM.CKF_MESSAGE_VERIFY |
  CKF_MECHANISM.CKF_MULTI_MESSAGE |
  CKF_MECHANISM.CKF_FIND_OBJECTS;

/** A module's mechanism info as the proxy's 2.40 face shows it. */
export function asV2Mechanism(info: MechanismInfo): MechanismInfo {
  return { minKeySize: info.minKeySize, maxKeySize: info.maxKeySize, flags: (info.flags & ~V3_ONLY_FLAGS) >>> 0 };
}

/** Session calls PKCS#11 3.0 added; a 2.40 function list has no entry for them. */
export const V3_ONLY_CALLS: ReadonlyMap<string, string> = new Map([
  ['loginUser', 'C_LoginUser'],
  ['sessionCancel', 'C_SessionCancel'],
]);
