// An NSS softokn database in a fresh temp dir, made with the real certutil. NSS softokn is
// initialized through C_Initialize's pReserved with its configuration string (reservedString),
// which is also what p11-kit's `x-init-reserved` would carry.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NSS_SOFTOKN_MODULE = '/usr/lib/x86_64-linux-gnu/libsoftokn3.so';

export interface NssDb {
  dir: string;
  /** configdir='sql:<dir>' certPrefix='' keyPrefix='' secmod='secmod.db' flags= */
  reservedString: string;
  cleanup(): void;
}

/** An empty-password SQL database (certutil -N); flags are appended to the reserved string. */
export function createNssDb(flags = ''): NssDb {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-nss-'));
  execFileSync('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password'], { stdio: 'pipe' });
  return {
    dir,
    reservedString: `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=${flags}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
