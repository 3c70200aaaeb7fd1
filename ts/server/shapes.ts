// The shapes most calls share — an operation's init, input in and bytes out, bytes out only,
// input in only — and p11-kit's two-call convention for output buffers: because the bridge
// runs an operation to its end, an answer the client had no room for is kept for that session
// until the client asks again.
import type { AttributeResult } from '../bridge/attributes.js';
import { CKA } from '../bridge/cka.js';
import { CKR } from '../bridge/ckr.js';
import type { ProxySession } from '../proxy/sessions.js';
import { ReplyWriter, rawValue, type AnsweredAttribute } from './reply.js';
import type { RequestReader } from './request.js';
import type { ClientState } from './state.js';

export type Handler = (req: RequestReader, client: ClientState) => Promise<Uint8Array>;

/** 'C_SignInit' -> 'signInit': the proxy session's method for a call. */
export const method = (name: string) => name[2]!.toLowerCase() + name.slice(3);

type SessionFn = (...args: unknown[]) => Promise<unknown>;
export const call = (s: ProxySession, name: string): SessionFn => (s.async as unknown as Record<string, SessionFn>)[method(name)]!;

/** Values a token never hands out: their absence means CKR_ATTRIBUTE_SENSITIVE rather than an unknown type. */
const SENSITIVE = new Set<number>([
  CKA.CKA_VALUE, CKA.CKA_PRIVATE_EXPONENT, CKA.CKA_PRIME_1, CKA.CKA_PRIME_2, CKA.CKA_EXPONENT_1, CKA.CKA_EXPONENT_2, CKA.CKA_COEFFICIENT,
]);

export const empty = (req: RequestReader) => new ReplyWriter(req.spec).finish();

/** A call producing bytes: answered from the kept result when the client asks again. */
export async function produce(req: RequestReader, client: ClientState, handle: number, capacity: number, run: (s: ProxySession) => Promise<unknown>): Promise<Uint8Array> {
  const s = client.session(handle);
  const kept = client.takeKept(handle, req.spec.name);
  const data = kept ?? ((await run(s)) as Uint8Array);
  if (capacity === 0 || data.length > capacity) client.keep(handle, req.spec.name, data);
  return new ReplyWriter(req.spec).output(data, capacity).finish();
}

/** `uayfy`: session, input, output room. */
export const transform: Handler = async (req, client) => {
  const h = req.ulong('session');
  const input = req.bytes('input') ?? new Uint8Array(0);
  const cap = req.capacity('fy');
  req.done();
  return produce(req, client, h, cap, (s) => call(s, req.spec.name)(input));
};

/** `ufy`: session, output room. */
export const final: Handler = async (req, client) => {
  const h = req.ulong('session');
  const cap = req.capacity('fy');
  req.done();
  return produce(req, client, h, cap, (s) => call(s, req.spec.name)());
};

/** `uay` without output (updates, seeds, PINs). */
export const feed: Handler = async (req, client) => {
  const h = req.ulong('session');
  const input = req.bytes('input');
  req.done();
  await call(client.session(h), req.spec.name)(input ?? (req.spec.name === 'C_InitPIN' ? null : new Uint8Array(0)));
  return empty(req);
};

/** `uMu` / `uM`: an operation's init. */
export const init: Handler = async (req, client) => {
  const h = req.ulong('session');
  const mech = req.mechanism();
  const key = req.spec.request === 'uMu' ? req.ulong('key') : undefined;
  req.done();
  const s = client.session(h);
  client.takeKept(h, '');
  await (key === undefined ? call(s, req.spec.name)(mech) : call(s, req.spec.name)(mech, key));
  return empty(req);
};

export function answer(a: AttributeResult, capacity: number): { answer: AnsweredAttribute; rv: number } {
  const bytes = rawValue(a.value);
  if (bytes === undefined) return { answer: { type: a.type, state: 'unavailable' }, rv: SENSITIVE.has(a.type) ? CKR.CKR_ATTRIBUTE_SENSITIVE : CKR.CKR_ATTRIBUTE_TYPE_INVALID };
  if (capacity === 0) return { answer: { type: a.type, state: 'length', length: bytes.length }, rv: CKR.CKR_OK };
  if (bytes.length > capacity) return { answer: { type: a.type, state: 'unavailable' }, rv: CKR.CKR_BUFFER_TOO_SMALL };
  return { answer: { type: a.type, state: 'value', bytes }, rv: CKR.CKR_OK };
}
