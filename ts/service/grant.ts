// What a connected client may do. The host decides, per endpoint: which modules (registry names,
// or shared objects by path only where the host allows paths) and which classes of operation.
// The tables below classify every PKCS#11 call the in-thread API has (managed/calls.ts); they are
// typed as complete records, so a call added there without a class here does not compile — the
// service offers exactly what is classified, the client's faces are generated from the same lists.
import { SESSION_CALLS, MODULE_READS, type SessionCallName, type ModuleReadName } from '../managed/calls.js';
import { ServiceRefusedError, UnknownModuleError } from './errors.js';

/**
 * read: lists and info (slots, tokens, mechanisms, module and session state, slot events).
 * use: open granted modules and read-only sessions, log in as user, find objects and read their
 *      attributes, sign/verify/encrypt/decrypt/digest/random with existing keys.
 * manage: create/copy/destroy/modify objects, generate/wrap/unwrap/derive keys, read/write
 *      sessions, init token, init/set PIN, log in as SO.
 */
export type OperationClass = 'read' | 'use' | 'manage';

export interface ClientGrant {
  /** Registry names the client may open: 'configured' (default: whatever the p11-kit registry configures) or a list. */
  readonly modules?: 'configured' | readonly string[];
  /**
   * Shared objects the client may name by path: none (default), these exact absolute paths, or
   * any (true — for a trusted client only: it makes the host dlopen what the client names).
   * Also governs `initReserved` (a C_Initialize argument that configures NSS): only with paths.
   */
  readonly paths?: boolean | readonly string[];
  /** Default ['use']. */
  readonly operations?: readonly OperationClass[];
}

/** What a client of the library's own worker gets: the worker is the application itself. */
export const FULL_GRANT: ClientGrant = Object.freeze({ modules: 'configured', paths: true, operations: ['read', 'use', 'manage'] as OperationClass[] });

/**
 * Logging in as user (CKU_USER) or re-authenticating for one operation (CKU_CONTEXT_SPECIFIC) is
 * use; anything else — CKU_SO, or a value that is not one of those numbers — needs manage.
 */
export const userTypeClass = (userType: unknown): OperationClass => (userType === undefined || userType === 1 || userType === 2 ? 'use' : 'manage');
const loginClass = (args: readonly unknown[]): OperationClass => (args[0] === undefined ? 'manage' : userTypeClass(args[0]));

type Classify = OperationClass | ((args: readonly unknown[]) => OperationClass);

/** Every session call of the in-thread API (ManagedSession), with the class it needs. */
export const SESSION_CALL_CLASS: Readonly<Record<SessionCallName, Classify>> = {
  getSessionInfo: 'read',
  getOperationState: 'use', setOperationState: 'use',
  login: loginClass, loginUser: loginClass, logout: 'use', sessionCancel: 'use',
  initPIN: 'manage', setPIN: 'manage',
  createObject: 'manage', copyObject: 'manage', destroyObject: 'manage', setAttributeValue: 'manage',
  getObjectSize: 'use', getAttributeValue: 'use',
  findObjectsInit: 'use', findObjects: 'use', findObjectsFinal: 'use', findAllObjects: 'use',
  encryptInit: 'use', encrypt: 'use', encryptUpdate: 'use', encryptFinal: 'use',
  decryptInit: 'use', decrypt: 'use', decryptUpdate: 'use', decryptFinal: 'use',
  digestInit: 'use', digest: 'use', digestUpdate: 'use', digestKey: 'use', digestFinal: 'use',
  signInit: 'use', sign: 'use', signUpdate: 'use', signFinal: 'use', signRecoverInit: 'use', signRecover: 'use',
  verifyInit: 'use', verify: 'use', verifyUpdate: 'use', verifyFinal: 'use', verifyRecoverInit: 'use', verifyRecover: 'use',
  digestEncryptUpdate: 'use', decryptDigestUpdate: 'use', signEncryptUpdate: 'use', decryptVerifyUpdate: 'use',
  generateKey: 'manage', generateKeyPair: 'manage', wrapKey: 'manage', unwrapKey: 'manage', deriveKey: 'manage',
  seedRandom: 'use', generateRandom: 'use',
  getFunctionStatus: 'use', cancelFunction: 'use',
};

/** Module-level calls of the in-thread API (ManagedModule) besides opening sessions. */
export const MODULE_CALL_CLASS: Readonly<Record<ModuleReadName | 'initToken' | 'closeAllSessions', Classify>> = {
  getInfo: 'read', getSlotList: 'read', getSlotInfo: 'read', getTokenInfo: 'read', getMechanismList: 'read', getMechanismInfo: 'read',
  initToken: 'manage',
  closeAllSessions: 'use',
};
export type ModuleCallName = keyof typeof MODULE_CALL_CLASS;
export const MODULE_CALLS = Object.keys(MODULE_CALL_CLASS) as ModuleCallName[];

/** Session calls that may wait on a person or on slow hardware: they run off the service's thread. */
export const SLOW_SESSION_CALLS: ReadonlySet<string> = new Set<SessionCallName>(['login', 'loginUser', 'initPIN', 'setPIN', 'generateKey', 'generateKeyPair']);

// The lists the tables were built from, checked at load as well (a stray key would be a call the
// in-thread API does not have).
for (const name of Object.keys(SESSION_CALL_CLASS)) if (!(SESSION_CALLS as readonly string[]).includes(name)) throw new Error(`grant.ts: ${name} is no session call`);
for (const name of MODULE_READS) if (!(name in MODULE_CALL_CLASS)) throw new Error(`grant.ts: ${name} unclassified`);

export function classOf(table: Readonly<Record<string, Classify>>, name: string, args: readonly unknown[]): OperationClass | undefined {
  if (!Object.prototype.hasOwnProperty.call(table, name)) return undefined;
  const c = table[name];
  return typeof c === 'function' ? c(args) : c;
}

function isPathLike(source: string): boolean {
  return source.includes('/') || source.endsWith('.so') || source.includes('\\');
}

/** A grant checked once, asked on every call. */
export class Grant {
  private readonly ops: ReadonlySet<OperationClass>;
  private readonly paths: boolean | ReadonlySet<string>;
  private readonly modules: 'configured' | ReadonlySet<string>;

  constructor(grant: ClientGrant = {}) {
    const ops = grant.operations ?? ['use'];
    for (const o of ops) if (o !== 'read' && o !== 'use' && o !== 'manage') throw new TypeError(`grant: unknown operation class '${String(o)}'`);
    this.ops = new Set(ops);
    const paths = grant.paths ?? false;
    if (Array.isArray(paths)) {
      for (const p of paths) if (typeof p !== 'string' || !p.startsWith('/')) throw new TypeError(`grant: allowed paths must be absolute, got '${String(p)}'`);
      this.paths = new Set(paths);
    } else this.paths = paths === true;
    const modules = grant.modules ?? 'configured';
    this.modules = modules === 'configured' ? modules : new Set(modules);
  }

  /** What this grant allows, for the client to see (`whoami`). */
  describe(): { operations: OperationClass[]; paths: boolean | string[]; modules: 'configured' | string[] } {
    return {
      operations: [...this.ops],
      paths: typeof this.paths === 'boolean' ? this.paths : [...this.paths],
      modules: this.modules === 'configured' ? 'configured' : [...this.modules],
    };
  }

  allows(cls: OperationClass): boolean {
    return this.ops.has(cls);
  }

  require(method: string, cls: OperationClass): void {
    if (!this.ops.has(cls)) throw new ServiceRefusedError(method, `this client is not granted '${cls}' operations`, cls);
  }

  /**
   * Checks a module source before anything is loaded. `configured()` lists the registry's names
   * (called only for a name, so a refused path costs no registry read).
   */
  checkModule(source: unknown, initReserved: unknown, configured: () => string[]): void {
    if (typeof source !== 'string' || source.length === 0 || source.length > 4096 || source.includes('\0')) {
      throw new ServiceRefusedError('openModule', 'a module is named by a non-empty string');
    }
    const pathsAllowed = this.paths === true || (typeof this.paths !== 'boolean' && this.paths.size > 0);
    if (initReserved !== undefined && !pathsAllowed) {
      throw new ServiceRefusedError('openModule', 'this client may not pass C_Initialize arguments (initReserved)');
    }
    if (isPathLike(source)) {
      if (this.paths === true || (typeof this.paths !== 'boolean' && this.paths.has(source))) return;
      throw new ServiceRefusedError('openModule', 'this client may not name a module by path; open a configured module by name');
    }
    const names = configured();
    const offered = this.modules === 'configured' ? names : names.filter((n) => (this.modules as ReadonlySet<string>).has(n));
    if (!offered.includes(source)) throw new UnknownModuleError(source, offered, 'this client');
  }
}
