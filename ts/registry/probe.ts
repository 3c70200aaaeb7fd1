// p11-kit's load check: a configured module only counts if its library loads as a
// PKCS#11 module. We load it, find C_GetFunctionList, call it, and let go again.
// koffi is required on first probe, not imported: `p11kit-wasm/registry` must load no
// native code until a module is actually probed.
import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';

type Koffi = typeof import('koffi');
let koffiModule: Koffi | undefined;
const koffi = (): Koffi => (koffiModule ??= createRequire(import.meta.url)('koffi') as Koffi);

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** A symbol only libp11-kit exports: a library that has it is p11-kit-proxy itself. */
const P11_KIT_MARKER = 'p11_kit_modules_load';
/**
 * C_GetFunctionList's prototype, declared once: each probe only looks the symbol up and calls it.
 * Anonymous: a named prototype is a process-wide type name that a second copy of this file would
 * declare again (and koffi refuses).
 */
let getFunctionListType: ReturnType<Koffi['proto']> | undefined;
const GET_FUNCTION_LIST = () => (getFunctionListType ??= koffi().proto('unsigned long', [koffi().out('void **')]));

export function probeModule(path: string): ProbeResult {
  if (!path) return { ok: false, reason: `couldn't load module: ${path}: empty path` };
  let lib: LibraryHandle;
  try {
    lib = koffi().load(path);
  } catch (err) {
    return { ok: false, reason: `couldn't load module: ${path}: ${dlerror(err)}` };
  }
  try {
    let getFunctionList: unknown;
    try {
      getFunctionList = lib.symbol('C_GetFunctionList');
    } catch (err) {
      return { ok: false, reason: `couldn't find C_GetFunctionList entry point in module: ${path}: ${dlerror(err)}` };
    }
    if (hasSymbol(lib, P11_KIT_MARKER)) {
      return { ok: false, reason: 'refusing to load the p11-kit-proxy.so module as a registered module' };
    }
    const out: unknown[] = [null];
    const rv = Number(koffi().call(getFunctionList, GET_FUNCTION_LIST(), out));
    if (rv !== 0 || !out[0]) {
      const what = rv !== 0 ? `rv 0x${rv.toString(16).padStart(8, '0')}` : 'returned no function list';
      return { ok: false, reason: `call to C_GetFunctionList failed in module: ${path}: ${what}` };
    }
    return { ok: true };
  } finally {
    lib.unload();
  }
}

function hasSymbol(lib: LibraryHandle, name: string): boolean {
  try {
    lib.symbol(name);
    return true;
  } catch {
    return false;
  }
}

function dlerror(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/^Failed to load shared library: /, '').replace(/^Cannot find (function|symbol) /, 'cannot find ');
}
