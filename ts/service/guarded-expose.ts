// The host's end of comlink's wire protocol, cut down to what a client of ours needs: call a
// named method with plain data. Comlink's own expose() walks any property path the peer sends
// and honours GET/SET/CONSTRUCT — from a hostile peer that reaches `constructor` and builds a
// Function in the host — and decodes peer-supplied transfer handlers (a forged 'throw' arg
// would throw out of the message listener and take the host down). Here, only APPLY on a
// one-element path naming an own entry of `methods`, with RAW arguments, runs anything;
// everything else is answered with a ServiceRefusedError and no side effect.
import type { Endpoint } from 'comlink';
import { encodeError, ServiceRefusedError } from './errors.js';

/** The most arguments one call of a service may pass (batched calls too: batch.ts). */
export const MAX_CALL_ARGS = 16;

type Method = (...args: unknown[]) => unknown;

const transferOnReply = new WeakMap<object, Transferable[]>();

/** Marks a result whose buffers travel back transferred, not copied (the stream pool's pieces). */
export function replyTransfer<T extends object>(value: T, list: Transferable[]): T {
  transferOnReply.set(value, list);
  return value;
}

/** Answers comlink calls on `ep` from `methods` (a null-prototype table); returns a stop function. */
export function exposeMethods(methods: Readonly<Record<string, Method>>, ep: Endpoint): () => void {
  const reply = (id: unknown, value: unknown, failed: boolean) => {
    const wire = failed ? { type: 'HANDLER', name: 'throw', value: { p11w: encodeError(value) } } : { type: 'RAW', value };
    try {
      const list = !failed && typeof value === 'object' && value !== null ? transferOnReply.get(value) : undefined;
      ep.postMessage({ ...wire, id }, list ?? []);
    } catch (e) {
      // An answer that cannot be cloned: the caller still gets an answer.
      ep.postMessage({ type: 'HANDLER', name: 'throw', value: { p11w: encodeError(new TypeError(`unserializable result: ${(e as Error).message}`)) }, id });
    }
  };
  const listener = (ev: MessageEvent) => {
    const d: unknown = ev?.data;
    if (typeof d !== 'object' || d === null) return;
    const { id, type, path, argumentList } = d as Record<string, unknown>;
    // Not comlink's: batches and streams share the endpoint and have their own listeners.
    if (typeof type !== 'string' || !('id' in d)) return;
    if (typeof id !== 'string' && typeof id !== 'number') return;
    if (type === 'RELEASE') return reply(id, undefined, false);
    let result: unknown;
    try {
      if (type !== 'APPLY') throw new ServiceRefusedError(String(type).slice(0, 32), 'only method calls are served');
      if (!Array.isArray(path) || path.length !== 1 || typeof path[0] !== 'string') {
        throw new ServiceRefusedError('(call)', 'a call names one method of the service');
      }
      const name = path[0];
      const fn = Object.prototype.hasOwnProperty.call(methods, name) ? methods[name] : undefined;
      if (typeof fn !== 'function') throw new ServiceRefusedError(name.slice(0, 64), 'no such method in this service');
      const args = argumentList === undefined ? [] : argumentList;
      if (!Array.isArray(args) || args.length > MAX_CALL_ARGS) throw new ServiceRefusedError(name, 'malformed argument list');
      const plain = args.map((a) => {
        if (typeof a !== 'object' || a === null || (a as { type?: unknown }).type !== 'RAW') {
          throw new ServiceRefusedError(name, 'arguments are plain data (no proxies, no handlers)');
        }
        return (a as { value: unknown }).value;
      });
      result = fn(...plain);
    } catch (e) {
      return reply(id, e, true);
    }
    Promise.resolve(result).then(
      (v) => reply(id, v, false),
      (e) => reply(id, e, true),
    );
  };
  ep.addEventListener('message', listener as never);
  ep.start?.();
  return () => ep.removeEventListener('message', listener as never);
}
