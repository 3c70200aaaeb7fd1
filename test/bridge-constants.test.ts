// The constant tables against the C headers on this machine (NSS's 3.0 pkcs11t.h and p11-kit's
// pkcs11.h): every name we define that a header also defines must have the same value, and the
// reverse lookups must give names back.
import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CKR, rvName } from '../ts/bridge/ckr.js';
import { CKA } from '../ts/bridge/cka.js';
import { CKM } from '../ts/bridge/ckm.js';
import { CKO, CKK, CKC, CKU, CKS, CKD, CKG, CKZ } from '../ts/bridge/ck-enums.js';
import { CKF, CKF_TOKEN, flagNames } from '../ts/bridge/ckf.js';
import { nameOf, valueOf } from '../ts/bridge/names.js';

const headers = ['/usr/include/nss/pkcs11t.h', '/usr/include/p11-kit-1/p11-kit/pkcs11.h'];

function headerDefines(): Map<string, number> {
  const defs = new Map<string, number>();
  const re = /#define\s+(CK[A-Z]_[A-Z0-9_]+)\s+\(?(?:\(CK_[A-Z_]+\)\s*)?(0x[0-9a-fA-F]+|\d+)[UL]*\)?\s*$/gm;
  for (const file of headers) {
    for (const m of readFileSync(file, 'utf8').matchAll(re)) if (!defs.has(m[1])) defs.set(m[1], Number(m[2]));
  }
  return defs;
}

describe('PKCS#11 constants', () => {
  it('agree with the C headers installed on this machine', () => {
    for (const h of headers) expect(existsSync(h), h).toBe(true);
    const defs = headerDefines();
    const all = { ...CKR, ...CKA, ...CKM, ...CKO, ...CKK, ...CKC, ...CKU, ...CKS, ...CKD, ...CKG, ...CKZ, ...CKF };
    let checked = 0;
    const mismatches: string[] = [];
    for (const [name, value] of Object.entries(all)) {
      const expected = defs.get(name);
      if (expected === undefined) continue;
      checked++;
      if (expected !== value) mismatches.push(`${name}: ours 0x${value.toString(16)}, header 0x${expected.toString(16)}`);
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(500);
  });

  it('map names both ways', () => {
    expect(rvName(0x191)).toBe('CKR_CRYPTOKI_ALREADY_INITIALIZED');
    expect(rvName(0x80000005)).toBe('CKR_VENDOR_DEFINED+0x5');
    expect(rvName(0x7777)).toBe('CKR_0x00007777');
    expect(nameOf(CKM, 0x1040)).toBe('CKM_EC_KEY_PAIR_GEN');
    expect(nameOf(CKA, 0x180)).toBe('CKA_EC_PARAMS');
    expect(valueOf(CKK, 'EC', 'CKK_')).toBe(3);
    expect(valueOf(CKO, 'CKO_PRIVATE_KEY', 'CKO_')).toBe(3);
    expect(flagNames(CKF_TOKEN, 0x401 | 0x4000000)).toEqual(['CKF_RNG', 'CKF_TOKEN_INITIALIZED', '0x4000000']);
  });
});
