// Typed key management and randomness: generate, wrap, unwrap, derive, seed, random.
import { encodeTemplate, type Attribute } from './attributes.js';
import { L } from './layout.js';
import { encodeMechanism, type Mechanism } from './mechanisms.js';
import { check, MAX_OUTPUT, readHandle, req, type Op, type OpContext } from './op.js';
import { BridgeError } from './errors.js';
import { outputBytes, putBytes } from './op-helpers.js';

import type { ObjectHandle, ObjectRef, SessionHandle } from './handles.js';
import { echo } from '../wasm/echo.js';

type H = SessionHandle;
type Mech = Mechanism | number;

export function* generateKey(c: OpContext, session: H, mech: Mech, template: readonly Attribute[]): Op<ObjectHandle> {
  const m = encodeMechanism(c.mem, mech);
  const t = encodeTemplate(c.mem, template);
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_GenerateKey', yield req('C_GenerateKey', session, m, t, template.length, out));
  return readHandle(c, 'C_GenerateKey', out) as ObjectHandle;
}

export interface KeyPair {
  publicKey: ObjectHandle;
  privateKey: ObjectHandle;
}

export function* generateKeyPair(
  c: OpContext,
  session: H,
  mech: Mech,
  publicTemplate: readonly Attribute[],
  privateTemplate: readonly Attribute[],
): Op<KeyPair> {
  const m = encodeMechanism(c.mem, mech);
  const pub = encodeTemplate(c.mem, publicTemplate);
  const priv = encodeTemplate(c.mem, privateTemplate);
  const out = c.mem.alloc(2 * L.ulong);
  const fn = 'C_GenerateKeyPair';
  check(c, fn, yield req(fn, session, m, pub, publicTemplate.length, priv, privateTemplate.length, out, out + L.ulong));
  return { publicKey: readHandle(c, fn, out) as ObjectHandle, privateKey: readHandle(c, fn, out + L.ulong) as ObjectHandle };
}

export function* wrapKey(c: OpContext, session: H, mech: Mech, wrappingKey: ObjectRef, key: ObjectRef): Op<Uint8Array> {
  return yield* outputBytes(c, 'C_WrapKey', [session, encodeMechanism(c.mem, mech), wrappingKey, key]);
}

export function* unwrapKey(c: OpContext, session: H, mech: Mech, unwrappingKey: ObjectRef, wrapped: Uint8Array, template: readonly Attribute[]): Op<ObjectHandle> {
  const m = encodeMechanism(c.mem, mech);
  const t = encodeTemplate(c.mem, template);
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_UnwrapKey', yield req('C_UnwrapKey', session, m, unwrappingKey, ...putBytes(c, wrapped), t, template.length, out));
  return readHandle(c, 'C_UnwrapKey', out) as ObjectHandle;
}

export function* deriveKey(c: OpContext, session: H, mech: Mech, baseKey: ObjectRef, template: readonly Attribute[]): Op<ObjectHandle> {
  const m = encodeMechanism(c.mem, mech);
  const t = encodeTemplate(c.mem, template);
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_DeriveKey', yield req('C_DeriveKey', session, m, baseKey, t, template.length, out));
  return readHandle(c, 'C_DeriveKey', out) as ObjectHandle;
}

export function* seedRandom(c: OpContext, session: H, seed: Uint8Array): Op<void> {
  check(c, 'C_SeedRandom', yield req('C_SeedRandom', session, ...putBytes(c, seed)));
}

export function* generateRandom(c: OpContext, session: H, length: number): Op<Uint8Array> {
  if (!Number.isInteger(length) || length < 0 || length > MAX_OUTPUT) throw new BridgeError('BAD_ARGUMENT', `cannot generate ${echo(length)} random bytes (a length is an integer from 0 to ${MAX_OUTPUT})`);
  const at = c.mem.alloc(length);
  check(c, 'C_GenerateRandom', yield req('C_GenerateRandom', session, at, length));
  return c.mem.read(at, length);
}

/** Legacy parallel-function calls: they answer CKR_FUNCTION_NOT_PARALLEL on current modules. */
export function* getFunctionStatus(c: OpContext, session: H): Op<void> {
  check(c, 'C_GetFunctionStatus', yield req('C_GetFunctionStatus', session));
}

export function* cancelFunction(c: OpContext, session: H): Op<void> {
  check(c, 'C_CancelFunction', yield req('C_CancelFunction', session));
}
