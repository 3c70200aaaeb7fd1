// The call table of p11-kit 0.24.1's RPC protocol (version 0): call ids in order, and the
// request/response signatures both sides check (spec §7.2). Letters: y byte, u CK_ULONG as u64,
// v CK_VERSION, s space-padded string, z NUL-terminated string, M mechanism, A attribute,
// a<x> array of x, f<x> "buffer for x" (the caller's capacity only).

/** [name, request signature, response signature], indexed by call id. Id 0 is the error reply. */
const TABLE = [
  ['ERROR', '', 'u'],
  ['C_Initialize', 'ayyay', ''],
  ['C_Finalize', '', ''],
  ['C_GetInfo', '', 'vsusv'],
  ['C_GetSlotList', 'yfu', 'au'],
  ['C_GetSlotInfo', 'u', 'ssuvv'],
  ['C_GetTokenInfo', 'u', 'ssssuuuuuuuuuuuvvs'],
  ['C_GetMechanismList', 'ufu', 'au'],
  ['C_GetMechanismInfo', 'uu', 'uuu'],
  ['C_InitToken', 'uayz', ''],
  ['C_OpenSession', 'uu', 'u'],
  ['C_CloseSession', 'u', ''],
  ['C_CloseAllSessions', 'u', ''],
  ['C_GetSessionInfo', 'u', 'uuuu'],
  ['C_InitPIN', 'uay', ''],
  ['C_SetPIN', 'uayay', ''],
  ['C_GetOperationState', 'ufy', 'ay'],
  ['C_SetOperationState', 'uayuu', ''],
  ['C_Login', 'uuay', ''],
  ['C_Logout', 'u', ''],
  ['C_CreateObject', 'uaA', 'u'],
  ['C_CopyObject', 'uuaA', 'u'],
  ['C_DestroyObject', 'uu', ''],
  ['C_GetObjectSize', 'uu', 'u'],
  ['C_GetAttributeValue', 'uufA', 'aAu'],
  ['C_SetAttributeValue', 'uuaA', ''],
  ['C_FindObjectsInit', 'uaA', ''],
  ['C_FindObjects', 'ufu', 'au'],
  ['C_FindObjectsFinal', 'u', ''],
  ['C_EncryptInit', 'uMu', ''],
  ['C_Encrypt', 'uayfy', 'ay'],
  ['C_EncryptUpdate', 'uayfy', 'ay'],
  ['C_EncryptFinal', 'ufy', 'ay'],
  ['C_DecryptInit', 'uMu', ''],
  ['C_Decrypt', 'uayfy', 'ay'],
  ['C_DecryptUpdate', 'uayfy', 'ay'],
  ['C_DecryptFinal', 'ufy', 'ay'],
  ['C_DigestInit', 'uM', ''],
  ['C_Digest', 'uayfy', 'ay'],
  ['C_DigestUpdate', 'uay', ''],
  ['C_DigestKey', 'uu', ''],
  ['C_DigestFinal', 'ufy', 'ay'],
  ['C_SignInit', 'uMu', ''],
  ['C_Sign', 'uayfy', 'ay'],
  ['C_SignUpdate', 'uay', ''],
  ['C_SignFinal', 'ufy', 'ay'],
  ['C_SignRecoverInit', 'uMu', ''],
  ['C_SignRecover', 'uayfy', 'ay'],
  ['C_VerifyInit', 'uMu', ''],
  ['C_Verify', 'uayay', ''],
  ['C_VerifyUpdate', 'uay', ''],
  ['C_VerifyFinal', 'uay', ''],
  ['C_VerifyRecoverInit', 'uMu', ''],
  ['C_VerifyRecover', 'uayfy', 'ay'],
  ['C_DigestEncryptUpdate', 'uayfy', 'ay'],
  ['C_DecryptDigestUpdate', 'uayfy', 'ay'],
  ['C_SignEncryptUpdate', 'uayfy', 'ay'],
  ['C_DecryptVerifyUpdate', 'uayfy', 'ay'],
  ['C_GenerateKey', 'uMaA', 'u'],
  ['C_GenerateKeyPair', 'uMaAaA', 'uu'],
  ['C_WrapKey', 'uMuufy', 'ay'],
  ['C_UnwrapKey', 'uMuayaA', 'u'],
  ['C_DeriveKey', 'uMuaA', 'u'],
  ['C_SeedRandom', 'uay', ''],
  ['C_GenerateRandom', 'ufy', 'ay'],
  ['C_WaitForSlotEvent', 'u', 'u'],
] as const;

export type CallName = Exclude<(typeof TABLE)[number][0], 'ERROR'>;

export interface CallSpec {
  id: number;
  name: CallName;
  request: string;
  response: string;
  /** The signatures as the bytes on the wire, made once. */
  requestBytes: Uint8Array;
  responseBytes: Uint8Array;
}

export const CALL_ERROR = 0;
/** The highest call id of protocol version 0; ids above belong to newer p11-kit releases. */
export const MAX_CALL_ID_V0 = TABLE.length - 1;

const byName = new Map<string, CallSpec>();
const byId: (CallSpec | undefined)[] = [];
TABLE.forEach(([name, request, response], id) => {
  if (id === CALL_ERROR) return;
  const ascii = new TextEncoder();
  const spec: CallSpec = { id, name: name as CallName, request, response, requestBytes: ascii.encode(request), responseBytes: ascii.encode(response) };
  byName.set(name, spec);
  byId[id] = spec;
});

export function callSpec(name: CallName): CallSpec {
  return byName.get(name)!;
}

export function callById(id: number): CallSpec | undefined {
  return byId[id];
}

/** Every call of protocol version 0, in id order. */
export function allCalls(): readonly CallSpec[] {
  return byId.filter((c): c is CallSpec => c !== undefined);
}
