// The PKCS#11 constants of the RPC client: the bridge's tables, re-exported so the rpc code and
// its tests name one source; plus the one sentinel the wire codec maps.
export { CKR, rvName } from '../bridge/ckr.js';
export { CKA } from '../bridge/cka.js';
export { CKM } from '../bridge/ckm.js';
export { CKF } from '../bridge/ckf.js';
export { CKO, CKK, CKU, CKG, CKZ } from '../bridge/ck-enums.js';

export const CKZ_DATA_SPECIFIED = 1;

/** ~0 as a CK_ULONG (CK_UNAVAILABLE_INFORMATION): decoded as -1, and -1 encodes as ~0. */
export const CK_UNAVAILABLE_INFORMATION = -1;
