// OpenSC for the virtual card: opensc-pkcs11 reads OPENSC_CONF at C_Initialize; this one turns
// on the default card driver, which is what binds our PKCS#15 card (its ATR is nobody's).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OPENSC_MODULE = '/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so';
export const YKCS11_MODULE = '/usr/lib/x86_64-linux-gnu/libykcs11.so.2';

/** Writes an opensc.conf into dir and returns its path. */
export function writeOpenscConf(dir) {
  const path = join(dir, 'opensc.conf');
  writeFileSync(path, 'app default {\n  enable_default_driver = true;\n}\n');
  return path;
}
