// A module's C_Finalize may unload libraries the module loaded for itself (OpenSC unloads
// libpcsclite) while a thread that the same finalize has just released from a blocking
// C_WaitForSlotEvent is still returning through their code: measured with OpenSC behind the
// proxy, a SIGSEGV at an address in the unmapped libpcsclite in 1 of 2 runs. So before a
// C_Finalize, every shared object mapped now is marked never-unload (dlopen with RTLD_NOLOAD |
// RTLD_NODELETE: no new load, one more reference that is never dropped). A finalize can then
// end a wait without pulling code out from under it; the price is that those libraries stay
// mapped for the life of the process, as most do anyway.
import { readFileSync } from 'node:fs';
import koffi from 'koffi';

const RTLD_LAZY = 0x1;
const RTLD_NOLOAD = 0x4;
const RTLD_NODELETE = 0x1000;

let dlopen: ((file: string, mode: number) => unknown) | undefined;
/** Paths already pinned by this isolate (pinning is for good: once is enough). */
const pinned = new Set<string>();

/** Shared objects in this process's mappings, by path. */
function mappedLibraries(): string[] {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return [];
  }
  const paths = new Set<string>();
  for (const line of maps.split('\n')) {
    const at = line.indexOf(' /');
    if (at < 0) continue;
    const path = line.slice(at + 1);
    if (/\.so(\.[\d.]+)?$/.test(path)) paths.add(path);
  }
  return [...paths];
}

/** Marks every shared object mapped now as never-unload (see above). */
export function pinLoadedLibraries(): void {
  dlopen ??= koffi.load('libc.so.6').func('void *dlopen(const char *file, int mode)') as (file: string, mode: number) => unknown;
  for (const path of mappedLibraries()) {
    if (pinned.has(path)) continue;
    pinned.add(path);
    dlopen(path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  }
}
