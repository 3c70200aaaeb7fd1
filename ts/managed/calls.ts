// Which bridge calls are made on a session, and which of the module-level ones may be
// retried after an automatic re-initialize (they change nothing).
import type { AttributeResults, SyncCalls } from '../bridge/ops.js';
import type { ObjectRef } from '../bridge/handles.js';

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

// getAttributeValue's result follows its argument, which Parameters<> would erase.
interface SessionTypedReads {
  getAttributeValue<const T extends readonly number[]>(object: ObjectRef, types: T): AttributeResults<T>;
}
interface AsyncSessionTypedReads {
  getAttributeValue<const T extends readonly number[]>(object: ObjectRef, types: T): Promise<AttributeResults<T>>;
}

/** A session's calls: the bridge's, without the session handle argument. */
export type SessionCalls = Omit<{ [K in SessionCallName]: (...args: Tail<Parameters<SyncCalls[K]>>) => ReturnType<SyncCalls[K]> }, keyof SessionTypedReads> &
  SessionTypedReads;
export type AsyncSessionCalls = Omit<
  { [K in SessionCallName]: (...args: Tail<Parameters<SyncCalls[K]>>) => Promise<ReturnType<SyncCalls[K]>> },
  keyof SessionTypedReads
> &
  AsyncSessionTypedReads;
export type ModuleReads = Pick<SyncCalls, ModuleReadName>;
export type AsyncModuleReads = { [K in ModuleReadName]: (...args: Parameters<SyncCalls[K]>) => Promise<ReturnType<SyncCalls[K]>> };

/** A method called with up to four arguments (five with a session handle in front). */
export type UpToFour = (this: unknown, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => unknown;

/**
 * Calls f with the first n of a..e (n = the caller's arguments.length, plus one where a session
 * handle goes in front): the generated fixed-arity methods pass on exactly what they were given —
 * what the callee sees (and a trace prints) is the caller's call — without building an argument
 * array.
 */
export function callFirst(f: UpToFour, self: unknown, n: number, a: unknown, b: unknown, c: unknown, d: unknown, e?: unknown): unknown {
  switch (n) {
    case 0:
      return f.call(self);
    case 1:
      return f.call(self, a);
    case 2:
      return f.call(self, a, b);
    case 3:
      return f.call(self, a, b, c);
    case 4:
      return f.call(self, a, b, c, d);
    default:
      return f.call(self, a, b, c, d, e);
  }
}
