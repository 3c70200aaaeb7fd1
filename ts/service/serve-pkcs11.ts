// Serving a Pkcs11Service to one client: the table of what a client can call (and the class of
// operation each call needs), the guard that checks the client's grant before anything runs,
// and the three channels on the endpoint — single calls (guarded-expose.ts), batches, streams.
import { serveBatches } from './batch.js';
import { compactResult } from './compact.js';
import type { ServiceEndpoint } from './endpoint.js';
import { installErrorTransfer } from './errors.js';
import { classOf, MODULE_CALL_CLASS, SESSION_CALL_CLASS, userTypeClass, type ClientGrant, type OperationClass } from './grant.js';
import { exposeMethods } from './guarded-expose.js';
import { Pkcs11Service } from './pkcs11-host.js';
import { serveRing, type RingHandlers } from './ring-host.js';
import type { SessionOptions, SlotEventOptions } from './pkcs11-types.js';
import { serveStreams } from './stream.js';

type Classify = OperationClass | 'any' | ((args: readonly unknown[]) => OperationClass);
const optsClass = (args: readonly unknown[]): OperationClass => {
  const o = args[2] as SessionOptions | undefined;
  if (o === undefined) return 'use';
  if (typeof o !== 'object' || o === null || o.rw) return 'manage';
  return o.pin !== undefined ? userTypeClass(o.userType) : 'use';
};
const bySessionCall = (args: readonly unknown[]): OperationClass => classOf(SESSION_CALL_CLASS, String(args[1]), (args[2] as unknown[]) ?? []) ?? 'manage';
const byModuleCall = (args: readonly unknown[]): OperationClass => classOf(MODULE_CALL_CLASS, String(args[1]), (args[2] as unknown[]) ?? []) ?? 'manage';

/**
 * The service's face, one entry per method a client can call, with the class of operation it
 * needs. Nothing else of a Pkcs11Service is reachable from a client.
 */
export const SERVICE_METHODS = {
  openModule: 'use',
  closeModule: 'use',
  listModules: 'any',
  moduleState: 'read',
  reinitialize: 'use',
  slots: 'read',
  mechanisms: 'read',
  openSession: optsClass,
  closeSession: 'use',
  sessionsOf: 'use',
  login: (args) => userTypeClass(args[2]),
  logout: 'use',
  findObjects: 'use',
  getAttributes: 'use',
  findAndRead: 'use',
  createObject: 'manage',
  destroyObject: 'manage',
  sign: 'use',
  verify: 'use',
  digest: 'use',
  encrypt: 'use',
  decrypt: 'use',
  generateRandom: 'use',
  generateKeyPair: 'manage',
  generateKey: 'manage',
  sessionCall: bySessionCall,
  sessionFeed: bySessionCall,
  moduleCall: byModuleCall,
  whoami: 'any',
  drain: 'any',
  ping: 'any',
} as const satisfies Partial<Record<keyof Pkcs11Service, Classify>>;
export type ServiceMethodName = keyof typeof SERVICE_METHODS;

/** The methods a client may batch: short, synchronous, one message for many (batch.ts). */
export const BATCHED = [
  'sign',
  'verify',
  'digest',
  'encrypt',
  'decrypt',
  'generateRandom',
  'findObjects',
  'getAttributes',
  'findAndRead',
  'sessionCall',
] as const satisfies readonly ServiceMethodName[];

/** Calls that name the call they make in their second argument (the grant is asked about that one). */
const BY_NAME: ReadonlySet<string> = new Set(['sessionCall', 'sessionFeed', 'moduleCall']);

type Method = (...args: unknown[]) => unknown;

/**
 * The service's methods behind its grant: each checks the class it needs before it runs. Fixed
 * arity (no service method takes more than five arguments; a missing one is undefined, as when
 * not passed), so the batched hot path builds no argument array. `after` maps each result
 * (single calls leave compacted: compact.ts; batches and the ring pack their own).
 */
function guardedMethods(service: Pkcs11Service, names: readonly ServiceMethodName[], after?: (r: unknown) => unknown): Record<string, Method> {
  const out: Record<string, Method> = Object.create(null);
  for (const name of names) {
    const cls = SERVICE_METHODS[name] as Classify;
    const fn = service[name] as Method;
    const byName = BY_NAME.has(name);
    out[name] = (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => {
      const needs = typeof cls === 'function' ? cls([a, b, c, d, e]) : cls;
      if (needs !== 'any') service.grant.require(byName ? String(b) : name, needs);
      const r = fn.call(service, a, b, c, d, e);
      return after ? after(r) : r;
    };
  }
  return out;
}

export interface ServePkcs11Options {
  /** What this endpoint's client may do (default: 'use' only, configured modules by name, no paths). */
  readonly grant?: ClientGrant;
  /** The service to serve (default: a new one, so that clients never see each other's ids). */
  readonly service?: Pkcs11Service;
}

/**
 * Serves a PKCS#11 service on `ep` for one client and returns it. Each client gets its own
 * service (its own modules, sessions and ids) with its own grant; modules are still shared
 * process-wide through the lifecycle (one C_Initialize).
 */
export function servePkcs11(ep: ServiceEndpoint, opts: ServePkcs11Options = {}): Pkcs11Service {
  installErrorTransfer();
  const service = opts.service ?? new Pkcs11Service(opts.grant);
  const batched = guardedMethods(service, BATCHED);
  // First: it drains the ring before each message the others read (ring-host.ts).
  serveRing(ep, batched as unknown as RingHandlers);
  exposeMethods(guardedMethods(service, Object.keys(SERVICE_METHODS) as ServiceMethodName[], compactResult), ep);
  serveBatches(ep, batched as never);
  serveStreams(ep, {
    slotEvents: (signal: AbortSignal, id: number, o?: SlotEventOptions) => {
      service.grant.require('slotEvents', 'read');
      return service.slotEvents(signal, id, o);
    },
  });
  return service;
}
