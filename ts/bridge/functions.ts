// The PKCS#11 function lists: names in function-list order and each function's argument
// shape. U = CK_ULONG (or any handle/flags), P = a pointer, B = CK_BBOOL. Every function
// returns CK_RV. The raw layer declares every pointer as `void *`, so callers pass addresses.

/** CK_FUNCTION_LIST (2.40) after its CK_VERSION, in order. */
export const FUNCTIONS_2_40 = [
  ['C_Initialize', 'P'], ['C_Finalize', 'P'], ['C_GetInfo', 'P'], ['C_GetFunctionList', 'P'],
  ['C_GetSlotList', 'BPP'], ['C_GetSlotInfo', 'UP'], ['C_GetTokenInfo', 'UP'], ['C_GetMechanismList', 'UPP'],
  ['C_GetMechanismInfo', 'UUP'], ['C_InitToken', 'UPUP'], ['C_InitPIN', 'UPU'], ['C_SetPIN', 'UPUPU'],
  ['C_OpenSession', 'UUPPP'], ['C_CloseSession', 'U'], ['C_CloseAllSessions', 'U'], ['C_GetSessionInfo', 'UP'],
  ['C_GetOperationState', 'UPP'], ['C_SetOperationState', 'UPUUU'], ['C_Login', 'UUPU'], ['C_Logout', 'U'],
  ['C_CreateObject', 'UPUP'], ['C_CopyObject', 'UUPUP'], ['C_DestroyObject', 'UU'], ['C_GetObjectSize', 'UUP'],
  ['C_GetAttributeValue', 'UUPU'], ['C_SetAttributeValue', 'UUPU'], ['C_FindObjectsInit', 'UPU'],
  ['C_FindObjects', 'UPUP'], ['C_FindObjectsFinal', 'U'],
  ['C_EncryptInit', 'UPU'], ['C_Encrypt', 'UPUPP'], ['C_EncryptUpdate', 'UPUPP'], ['C_EncryptFinal', 'UPP'],
  ['C_DecryptInit', 'UPU'], ['C_Decrypt', 'UPUPP'], ['C_DecryptUpdate', 'UPUPP'], ['C_DecryptFinal', 'UPP'],
  ['C_DigestInit', 'UP'], ['C_Digest', 'UPUPP'], ['C_DigestUpdate', 'UPU'], ['C_DigestKey', 'UU'], ['C_DigestFinal', 'UPP'],
  ['C_SignInit', 'UPU'], ['C_Sign', 'UPUPP'], ['C_SignUpdate', 'UPU'], ['C_SignFinal', 'UPP'],
  ['C_SignRecoverInit', 'UPU'], ['C_SignRecover', 'UPUPP'],
  ['C_VerifyInit', 'UPU'], ['C_Verify', 'UPUPU'], ['C_VerifyUpdate', 'UPU'], ['C_VerifyFinal', 'UPU'],
  ['C_VerifyRecoverInit', 'UPU'], ['C_VerifyRecover', 'UPUPP'],
  ['C_DigestEncryptUpdate', 'UPUPP'], ['C_DecryptDigestUpdate', 'UPUPP'], ['C_SignEncryptUpdate', 'UPUPP'],
  ['C_DecryptVerifyUpdate', 'UPUPP'],
  ['C_GenerateKey', 'UPPUP'], ['C_GenerateKeyPair', 'UPPUPUPP'], ['C_WrapKey', 'UPUUPP'], ['C_UnwrapKey', 'UPUPUPUP'],
  ['C_DeriveKey', 'UPUPUP'], ['C_SeedRandom', 'UPU'], ['C_GenerateRandom', 'UPU'],
  ['C_GetFunctionStatus', 'U'], ['C_CancelFunction', 'U'], ['C_WaitForSlotEvent', 'UPP'],
] as const;

/** What CK_FUNCTION_LIST_3_0 adds after the 2.40 members, in order. */
export const FUNCTIONS_3_0 = [
  ['C_GetInterfaceList', 'PP'], ['C_GetInterface', 'PPPU'], ['C_LoginUser', 'UUPUPU'], ['C_SessionCancel', 'UU'],
  ['C_MessageEncryptInit', 'UPU'], ['C_EncryptMessage', 'UPUPUPUPP'], ['C_EncryptMessageBegin', 'UPUPU'],
  ['C_EncryptMessageNext', 'UPUPUPPU'], ['C_MessageEncryptFinal', 'U'],
  ['C_MessageDecryptInit', 'UPU'], ['C_DecryptMessage', 'UPUPUPUPP'], ['C_DecryptMessageBegin', 'UPUPU'],
  ['C_DecryptMessageNext', 'UPUPUPPU'], ['C_MessageDecryptFinal', 'U'],
  ['C_MessageSignInit', 'UPU'], ['C_SignMessage', 'UPUPUPP'], ['C_SignMessageBegin', 'UPU'],
  ['C_SignMessageNext', 'UPUPUPP'], ['C_MessageSignFinal', 'U'],
  ['C_MessageVerifyInit', 'UPU'], ['C_VerifyMessage', 'UPUPUPU'], ['C_VerifyMessageBegin', 'UPU'],
  ['C_VerifyMessageNext', 'UPUPUPU'], ['C_MessageVerifyFinal', 'U'],
] as const;

export type FunctionName2_40 = (typeof FUNCTIONS_2_40)[number][0];
export type FunctionName3_0 = (typeof FUNCTIONS_3_0)[number][0];
export type FunctionName = FunctionName2_40 | FunctionName3_0;

export const SIGNATURES: Readonly<Record<FunctionName, string>> = Object.fromEntries([...FUNCTIONS_2_40, ...FUNCTIONS_3_0]) as Record<
  FunctionName,
  string
>;

/**
 * Calls that may block for a long time (user interaction, hardware, slow key generation, or
 * waiting for an event). Their async forms run on dedicated threads, never on libuv's pool.
 * C_WaitForSlotEvent is listed for its blocking form only; see blockingCall().
 */
export const BLOCKING = new Set<FunctionName>([
  'C_Initialize', 'C_InitToken', 'C_InitPIN', 'C_SetPIN', 'C_Login', 'C_LoginUser',
  'C_GenerateKey', 'C_GenerateKeyPair', 'C_WaitForSlotEvent',
]);
