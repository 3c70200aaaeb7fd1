// pkcs11js, the in-process oracle of the RPC tests (its own native binding, not our bridge),
// and the CK_ULONG Buffers it takes and gives for slot IDs.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const pkcs11js = require('pkcs11js') as typeof import('pkcs11js');

/** A CK_ULONG pkcs11js returned (8 bytes, little-endian) as a number. */
export const ulongOf = (b: Buffer): number => Number(b.readBigUInt64LE(0));

/** A number as the 8-byte CK_ULONG Buffer pkcs11js takes. */
export const bufOf = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
