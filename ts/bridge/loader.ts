// Loading a module's shared object and decoding its function list, once per shared object
// per isolate. The koffi library handle is pinned by the returned record for as long as the
// record lives: dropping it lets koffi dlclose the library under any saved function pointer.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import { rvName } from './ckr.js';
import { ModuleLoadError } from './errors.js';
import { FUNCTIONS_2_40, FUNCTIONS_3_0 } from './functions.js';
import { L } from './layout.js';
import { buildRawTable, type RawTable } from './raw.js';

export interface Version {
  major: number;
  minor: number;
}

/** The PKCS#11 3.0 interface a module offered through C_GetInterface, if it did. */
export interface InterfaceInfo {
  name: string;
  version: Version;
  flags: number;
}

export interface LoadedLibrary {
  /** The path as resolved (absolute). */
  readonly path: string;
  /** The path with every symlink resolved: the identity of the shared object in this isolate. */
  readonly realPath: string;
  /** device:inode of the shared object: the same string in every isolate of the process. */
  readonly identity: string;
  /** Keeps the library mapped; see the file comment. */
  readonly handle: LibraryHandle;
  /** The CK_FUNCTION_LIST* (or CK_FUNCTION_LIST_3_0*) as an address. */
  readonly functionList: bigint;
  /** The function list's own version (2.x lists have 68 entries, 3.x lists 92). */
  readonly listVersion: Version;
  readonly iface?: InterfaceInfo;
  readonly raw: RawTable;
}

/** Exported only by libp11-kit itself: such a library is p11-kit-proxy. */
const PROXY_MARKER = 'p11_kit_modules_load';
const INTERFACE_NAME = 'PKCS 11';

/**
 * Where a module path points, as Node resolves paths: one with a slash ('./x.so', 'lib/x.so')
 * is relative to the current directory; a bare file name ('x.so') is looked up in p11-kit's
 * module directory, as p11-kit does for a config's `module:`.
 */
export function resolveModulePath(path: string, modulePath: string): string {
  if (isAbsolute(path)) return path;
  return path.includes('/') ? resolve(path) : join(modulePath, path);
}

function dlerrorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^Failed to load shared library: /, '');
}

function hasSymbol(lib: LibraryHandle, name: string): boolean {
  try {
    lib.func(`void ${name}(void)`);
    return true;
  } catch {
    return false;
  }
}

function readVersion(ptr: bigint): Version {
  const v = koffi.decode(ptr, koffi.array('uint8_t', 2)) as Uint8Array | number[];
  return { major: v[0], minor: v[1] };
}

function readPointers(list: bigint, names: readonly (readonly [string, string])[]): Record<string, bigint | null> {
  const ptrs = koffi.decode(list, L.functionListFirst, koffi.array('void *', names.length)) as (bigint | null)[];
  const out: Record<string, bigint | null> = {};
  names.forEach(([name], i) => (out[name] = ptrs[i] ?? null));
  return out;
}

/** C_GetInterface("PKCS 11"), when the module exports it and it answers with a list. */
function tryInterface(lib: LibraryHandle): { list: bigint; iface: InterfaceInfo } | undefined {
  let getInterface;
  try {
    getInterface = lib.func('unsigned long C_GetInterface(const char *name, void *version, _Out_ void **iface, unsigned long flags)');
  } catch {
    return undefined;
  }
  const out: unknown[] = [null];
  const rv = Number(getInterface(INTERFACE_NAME, null, out, 0));
  const ifacePtr = out[0] as bigint | null;
  if (rv !== 0 || !ifacePtr) return undefined;
  const iface = koffi.decode(ifacePtr, koffi.array('void *', 2)) as (bigint | null)[];
  const flags = Number(koffi.decode(ifacePtr, L.iface.flags, 'unsigned long'));
  const list = iface[1];
  if (!list) return undefined;
  // We asked for the interface by name; its pInterfaceName is not read (nothing bounds it).
  return { list, iface: { name: INTERFACE_NAME, version: readVersion(list), flags } };
}

/** Loads a library and decodes its function list. Not cached: see modules.ts. */
export function loadLibrary(path: string): LoadedLibrary {
  if (!existsSync(path)) throw new ModuleLoadError(path, 'not-found', 'no such file');
  const realPath = realpathSync(path);
  const st = statSync(realPath);
  let handle: LibraryHandle;
  try {
    handle = koffi.load(path);
  } catch (err) {
    throw new ModuleLoadError(path, 'load-failed', dlerrorText(err));
  }
  try {
    if (hasSymbol(handle, PROXY_MARKER)) {
      throw new ModuleLoadError(path, 'proxy-refused', 'refusing to load the p11-kit-proxy.so module as a registered module');
    }
    const viaInterface = tryInterface(handle);
    let list: bigint;
    let listVersion: Version;
    let pointers: Record<string, bigint | null>;
    if (viaInterface && viaInterface.iface.version.major >= 3) {
      list = viaInterface.list;
      listVersion = viaInterface.iface.version;
      pointers = readPointers(list, [...FUNCTIONS_2_40, ...FUNCTIONS_3_0]);
    } else {
      ({ list, listVersion } = viaInterface
        ? { list: viaInterface.list, listVersion: viaInterface.iface.version }
        : callGetFunctionList(handle, path));
      // A 2.x list has exactly the 2.40 members; reading further would run past the module's struct.
      pointers = readPointers(list, FUNCTIONS_2_40);
    }
    if (listVersion.major === 0) {
      throw new ModuleLoadError(path, 'bad-function-list', `function list version ${listVersion.major}.${listVersion.minor}`);
    }
    return {
      path,
      realPath,
      identity: `${st.dev}:${st.ino}`,
      handle,
      functionList: list,
      listVersion,
      iface: viaInterface?.iface,
      raw: buildRawTable(pointers),
    };
  } catch (err) {
    handle.unload();
    throw err;
  }
}

function callGetFunctionList(handle: LibraryHandle, path: string): { list: bigint; listVersion: Version } {
  let getFunctionList;
  try {
    getFunctionList = handle.func('unsigned long C_GetFunctionList(_Out_ void **list)');
  } catch (err) {
    throw new ModuleLoadError(path, 'no-entry-point', `no C_GetInterface or C_GetFunctionList entry point (${dlerrorText(err)})`);
  }
  const out: unknown[] = [null];
  const rv = Number(getFunctionList(out));
  if (rv !== 0) throw new ModuleLoadError(path, 'get-function-list-failed', `C_GetFunctionList returned ${rvName(rv)}`, rv);
  const list = out[0] as bigint | null;
  if (!list) throw new ModuleLoadError(path, 'get-function-list-failed', 'C_GetFunctionList returned CKR_OK and no list');
  return { list, listVersion: readVersion(list) };
}
