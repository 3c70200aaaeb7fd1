// Every typed call, by method name. module.ts turns each into a sync method and an async one.
import type { AttributeResult } from './attributes.js';
import type { ObjectRef, SessionHandle } from './handles.js';
import * as general from './ops-general.js';
import * as session from './ops-session.js';
import * as objects from './ops-objects.js';
import * as crypto from './ops-crypto.js';
import * as keys from './ops-keys.js';
import * as v3 from './ops-v3.js';
import type { Op, OpContext } from './op.js';

export const OPS = { ...general, ...session, ...objects, ...crypto, ...keys, ...v3 };
export type Ops = typeof OPS;

type Signature<F> = F extends (c: OpContext, ...args: infer A) => Op<infer R> ? [A, R] : never;

/** getAttributeValue's results, each typed by the attribute type asked for. */
export type AttributeResults<T extends readonly number[]> = { -readonly [I in keyof T]: AttributeResult<T[I] extends number ? T[I] : number> };

// Calls whose result type follows an argument: spelled out, as inference through
// Signature<> would erase their type parameter.
interface TypedReads {
  getAttributeValue<const T extends readonly number[]>(session: SessionHandle, object: ObjectRef, types: T): AttributeResults<T>;
}
interface AsyncTypedReads {
  getAttributeValue<const T extends readonly number[]>(session: SessionHandle, object: ObjectRef, types: T): Promise<AttributeResults<T>>;
}

/** The typed calls as synchronous methods. */
export type SyncCalls = Omit<{ [K in keyof Ops]: (...args: Signature<Ops[K]>[0]) => Signature<Ops[K]>[1] }, keyof TypedReads> & TypedReads;
/** The typed calls as methods returning promises. */
export type AsyncCalls = Omit<{ [K in keyof Ops]: (...args: Signature<Ops[K]>[0]) => Promise<Signature<Ops[K]>[1]> }, keyof TypedReads> &
  AsyncTypedReads;
