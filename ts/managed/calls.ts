// Which bridge calls are made on a session, and which of the module-level ones may be
// retried after an automatic re-initialize (they change nothing).
import type { SyncCalls } from '../bridge/ops.js';

export const SESSION_CALLS = [
  'getSessionInfo', 'getOperationState', 'setOperationState', 'login', 'logout', 'loginUser', 'sessionCancel',
  'initPIN', 'setPIN',
  'createObject', 'copyObject', 'destroyObject', 'getObjectSize', 'getAttributeValue', 'setAttributeValue',
  'findObjectsInit', 'findObjects', 'findObjectsFinal', 'findAllObjects',
  'encryptInit', 'encrypt', 'encryptUpdate', 'encryptFinal', 'decryptInit', 'decrypt', 'decryptUpdate', 'decryptFinal',
  'digestInit', 'digest', 'digestUpdate', 'digestKey', 'digestFinal',
  'signInit', 'sign', 'signUpdate', 'signFinal', 'signRecoverInit', 'signRecover',
  'verifyInit', 'verify', 'verifyUpdate', 'verifyFinal', 'verifyRecoverInit', 'verifyRecover',
  'digestEncryptUpdate', 'decryptDigestUpdate', 'signEncryptUpdate', 'decryptVerifyUpdate',
  'generateKey', 'generateKeyPair', 'wrapKey', 'unwrapKey', 'deriveKey', 'seedRandom', 'generateRandom',
  'getFunctionStatus', 'cancelFunction',
] as const satisfies readonly (keyof SyncCalls)[];

export const MODULE_READS = ['getInfo', 'getSlotList', 'getSlotInfo', 'getTokenInfo', 'getMechanismList', 'getMechanismInfo'] as const satisfies readonly (keyof SyncCalls)[];

export type SessionCallName = (typeof SESSION_CALLS)[number];
export type ModuleReadName = (typeof MODULE_READS)[number];

type Tail<T extends unknown[]> = T extends [unknown, ...infer R] ? R : never;

/** A session's calls: the bridge's, without the session handle argument. */
export type SessionCalls = { [K in SessionCallName]: (...args: Tail<Parameters<SyncCalls[K]>>) => ReturnType<SyncCalls[K]> };
export type AsyncSessionCalls = { [K in SessionCallName]: (...args: Tail<Parameters<SyncCalls[K]>>) => Promise<ReturnType<SyncCalls[K]>> };
export type ModuleReads = Pick<SyncCalls, ModuleReadName>;
export type AsyncModuleReads = { [K in ModuleReadName]: (...args: Parameters<SyncCalls[K]>) => Promise<ReturnType<SyncCalls[K]>> };
