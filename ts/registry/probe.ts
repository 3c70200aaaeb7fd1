// p11-kit's load check: a configured module only counts if its library loads as a
// PKCS#11 module. We dlopen it, find C_GetFunctionList and call it, as p11-kit does, through
// libc's own dl* functions (declared once): one dlopen and two dlsym per library, no library
// object and no thrown error per probe. A library that passes stays open until the caller's
// check is over: dlopen hands back the same handle for the same file (glibc matches it by
// device and inode), which is how the caller tells one library named by two configs.
// koffi is required on first probe, not imported: `p11kit-wasm/registry` must load no
// native code until a module is actually probed.
import { createRequire } from 'node:module';
import { clip } from '../wasm/echo.js';

type Koffi = typeof import('koffi');
/** A dlopen handle. */
export type Handle = bigint;

interface Dl {
  koffi: Koffi;
  dlopen(path: string, flags: number): Handle | null;
  dlsym(handle: Handle, name: string): Handle | null;
  dlclose(handle: Handle): number;
  dlerror(): string | null;
  /** C_GetFunctionList's prototype (anonymous: a named one is process-wide and a second copy of this file would clash). */
  getFunctionList: ReturnType<Koffi['proto']>;
}

/** How much of a module path (a config value, up to megabytes) a reason repeats: any real path fits. */
const PATH_CHARS = 4096;

// glibc's values; p11-kit opens modules RTLD_NOW | RTLD_LOCAL.
const RTLD_NOW = 2;

let dl: Dl | undefined;
function libdl(): Dl {
  if (dl) return dl;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const self = koffi.load(null as unknown as string); // the process's own symbols: libc's dl* functions
  dl = {
    koffi,
    dlopen: self.func('void *dlopen(const char *path, int flags)'),
    dlsym: self.func('void *dlsym(void *handle, const char *name)'),
    dlclose: self.func('int dlclose(void *handle)'),
    dlerror: self.func('const char *dlerror(void)'),
    getFunctionList: koffi.proto('unsigned long', [koffi.out('void **')]),
  };
  return dl;
}

/** A symbol only libp11-kit exports: a library that has it is p11-kit-proxy itself. */
const P11_KIT_MARKER = 'p11_kit_modules_load';

/** dlopen, as p11-kit does; the handle is the library's identity while it stays open. */
export function openLibrary(path: string): { handle: Handle } | { reason: string } {
  if (!path) return { reason: `couldn't load module: ${path}: empty path` };
  const d = libdl();
  const handle = d.dlopen(path, RTLD_NOW);
  return handle ? { handle } : { reason: `couldn't load module: ${clip(path, PATH_CHARS)}: ${clip(openError(path, d.dlerror()), PATH_CHARS)}` };
}

export function closeLibrary(handle: Handle): void {
  libdl().dlclose(handle);
}

/** Why an open library is no PKCS#11 module p11-kit would load, or undefined when it is one. */
export function checkLibrary(handle: Handle, path: string): string | undefined {
  const d = libdl();
  const getFunctionList = d.dlsym(handle, 'C_GetFunctionList');
  if (!getFunctionList) return `couldn't find C_GetFunctionList entry point in module: ${clip(path, PATH_CHARS)}: cannot find 'C_GetFunctionList' in shared library`;
  if (d.dlsym(handle, P11_KIT_MARKER)) return 'refusing to load the p11-kit-proxy.so module as a registered module';
  d.dlerror(); // the failed marker lookup left an error behind: not ours to report later
  const out: unknown[] = [null];
  const rv = Number(d.koffi.call(getFunctionList, d.getFunctionList, out));
  if (rv !== 0 || !out[0]) {
    const what = rv !== 0 ? `rv 0x${rv.toString(16).padStart(8, '0')}` : 'returned no function list';
    return `call to C_GetFunctionList failed in module: ${clip(path, PATH_CHARS)}: ${what}`;
  }
  return undefined;
}

/** dlerror's text without the path it starts with (the message names the path already). */
function openError(path: string, text: string | null): string {
  if (!text) return 'unknown error';
  return text.startsWith(path) ? text.slice(path.length).replace(/^[: ]+/, '') : text;
}
