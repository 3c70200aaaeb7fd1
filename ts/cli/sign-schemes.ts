// Signature schemes of `p11kit sign` / `verify`: the mechanism names the user may give, the
// default for a key type, and who hashes. Raw mechanisms (ECDSA, RSA-PKCS, RSA-PSS) sign a
// digest the host computes while streaming the input (RSA-PKCS wrapped in its DigestInfo);
// hashing mechanisms (ECDSA-SHA256, SHA256-RSA-PKCS, ...) get the input itself, in parts.
import { createHash } from 'node:crypto';
import { CKG, CKK, CKM, type Mechanism } from '../bridge/index.js';
import { CliError, EXIT } from './exit-codes.js';

export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

interface HashInfo {
  ckm: number;
  mgf: number;
  length: number;
  /** DER of the DigestInfo before the digest (PKCS #1 v1.5, RFC 8017 §9.2). */
  digestInfo: string;
}

const HASHES: Record<HashName, HashInfo> = {
  sha1: { ckm: CKM.CKM_SHA_1, mgf: CKG.CKG_MGF1_SHA1, length: 20, digestInfo: '3021300906052b0e03021a05000414' },
  sha224: { ckm: CKM.CKM_SHA224, mgf: CKG.CKG_MGF1_SHA224, length: 28, digestInfo: '302d300d06096086480165030402040500041c' },
  sha256: { ckm: CKM.CKM_SHA256, mgf: CKG.CKG_MGF1_SHA256, length: 32, digestInfo: '3031300d060960864801650304020105000420' },
  sha384: { ckm: CKM.CKM_SHA384, mgf: CKG.CKG_MGF1_SHA384, length: 48, digestInfo: '3041300d060960864801650304020205000430' },
  sha512: { ckm: CKM.CKM_SHA512, mgf: CKG.CKG_MGF1_SHA512, length: 64, digestInfo: '3051300d060960864801650304020305000440' },
};
const HASH_NAMES = Object.keys(HASHES) as HashName[];

type Family = 'ecdsa' | 'pkcs1' | 'pss';

export interface SignScheme {
  /** As the user writes it, e.g. 'ECDSA-SHA256'. */
  name: string;
  mechanism: number;
  keyType: number;
  family: Family;
  /** The mechanism hashes on the token (the input goes in whole, in parts). */
  tokenHashes: boolean;
  /** The hash: the token's, or the one the host computes; 'none' signs the input as it is. */
  hash: HashName | 'none';
}

interface SchemeDef {
  mechanism: number;
  keyType: number;
  family: Family;
  /** Set when the mechanism includes the hash. */
  hash?: HashName;
}

const DEFS = new Map<string, SchemeDef>([
  ['ECDSA', { mechanism: CKM.CKM_ECDSA, keyType: CKK.CKK_EC, family: 'ecdsa' }],
  ['RSA-PKCS', { mechanism: CKM.CKM_RSA_PKCS, keyType: CKK.CKK_RSA, family: 'pkcs1' }],
  ['RSA-PKCS-PSS', { mechanism: CKM.CKM_RSA_PKCS_PSS, keyType: CKK.CKK_RSA, family: 'pss' }],
]);
for (const h of HASH_NAMES) {
  const H = h.toUpperCase();
  DEFS.set(`ECDSA-${H}`, { mechanism: CKM[`CKM_ECDSA_${H}` as keyof typeof CKM], keyType: CKK.CKK_EC, family: 'ecdsa', hash: h });
  DEFS.set(`${H}-RSA-PKCS`, { mechanism: CKM[`CKM_${H}_RSA_PKCS` as keyof typeof CKM], keyType: CKK.CKK_RSA, family: 'pkcs1', hash: h });
  DEFS.set(`${H}-RSA-PKCS-PSS`, { mechanism: CKM[`CKM_${H}_RSA_PKCS_PSS` as keyof typeof CKM], keyType: CKK.CKK_RSA, family: 'pss', hash: h });
}

export const MECHANISM_HELP = `mechanism: ECDSA, ECDSA-SHA256 (…-SHA1/224/384/512), RSA-PKCS, SHA256-RSA-PKCS, RSA-PSS, SHA256-RSA-PSS, … (CKM_ names work too); default ECDSA for EC keys, RSA-PKCS for RSA keys, both over a SHA-256 the host computes`;
export const HASH_HELP = `hash the host computes for ECDSA, RSA-PKCS and RSA-PSS: ${HASH_NAMES.join(', ')} (default sha256), or none to sign the input as it is (a digest; for RSA-PKCS a DigestInfo)`;

/** 'CKM_SHA256_RSA_PKCS', 'sha256-rsa-pss' -> 'SHA256-RSA-PKCS' / 'SHA256-RSA-PKCS-PSS'. */
function canonical(name: string): string {
  const n = name.trim().toUpperCase().replace(/^CKM_/, '').replace(/_/g, '-').replace(/SHA-(?=\d)/g, 'SHA');
  return n.endsWith('RSA-PSS') ? `${n.slice(0, -'RSA-PSS'.length)}RSA-PKCS-PSS` : n;
}

function keyTypeName(keyType: number): string {
  return keyType === CKK.CKK_EC ? 'EC' : keyType === CKK.CKK_RSA ? 'RSA' : `0x${keyType.toString(16)}`;
}

function hashOption(hash: string | undefined): HashName | 'none' | undefined {
  if (hash === undefined) return undefined;
  const h = hash.toLowerCase().replace(/-/g, '');
  if (h === 'none' || (HASH_NAMES as string[]).includes(h)) return h as HashName | 'none';
  throw new CliError(EXIT.USAGE, `unknown hash '${hash}' (${HASH_NAMES.join(', ')} or none)`);
}

/** The scheme for a key: the one named, or the key type's default. */
export function schemeFor(mechanism: string | undefined, hash: string | undefined, keyType: number): SignScheme {
  const wanted = hashOption(hash);
  const name = mechanism === undefined ? (keyType === CKK.CKK_RSA ? 'RSA-PKCS' : keyType === CKK.CKK_EC ? 'ECDSA' : undefined) : canonical(mechanism);
  if (name === undefined) throw new CliError(EXIT.USAGE, `no default mechanism for a key of type ${keyTypeName(keyType)}: give --mechanism`);
  const def = DEFS.get(name);
  if (!def) throw new CliError(EXIT.USAGE, `unknown or unsupported mechanism '${mechanism}'`);
  if (def.keyType !== keyType) throw new CliError(EXIT.USAGE, `${name} needs an ${keyTypeName(def.keyType)} key; this key is ${keyTypeName(keyType)}`);
  if (def.hash) {
    if (wanted !== undefined && wanted !== def.hash) throw new CliError(EXIT.USAGE, `${name} hashes with ${def.hash} on the token; --hash ${hash} contradicts it`);
    return { name, mechanism: def.mechanism, keyType, family: def.family, tokenHashes: true, hash: def.hash };
  }
  const h = wanted ?? 'sha256';
  if (h === 'none' && def.family === 'pss') throw new CliError(EXIT.USAGE, `${name} needs the hash for its parameters: give --hash`);
  return { name, mechanism: def.mechanism, keyType, family: def.family, tokenHashes: false, hash: h };
}

/** The CK_MECHANISM, with CK_RSA_PKCS_PSS_PARAMS (MGF1 of the same hash, salt as long as the digest) for PSS. */
export function mechanismOf(s: SignScheme): Mechanism {
  // The scheme table pairs each mechanism with its parameter; the type system can't see a
  // table lookup, hence the casts.
  if (s.family !== 'pss' || s.hash === 'none') return { mechanism: s.mechanism } as Mechanism;
  const h = HASHES[s.hash];
  return { mechanism: s.mechanism, parameter: { hashAlg: h.ckm, mgf: h.mgf, saltLength: h.length } } as Mechanism;
}

/** Largest input signed as it is (--hash none): a digest or DigestInfo, never a file's worth. */
const MAX_RAW_INPUT = 1024;

/** What a raw mechanism signs, from the whole input (streamed through the hash). */
export async function hostInput(s: SignScheme, input: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (s.hash === 'none') {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of input) {
      size += chunk.length;
      if (size > MAX_RAW_INPUT) throw new CliError(EXIT.USAGE, `--hash none signs a digest: the input is larger than ${MAX_RAW_INPUT} bytes`);
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }
  const hash = createHash(s.hash);
  for await (const chunk of input) hash.update(chunk);
  const digest = hash.digest();
  return s.family === 'pkcs1' ? Buffer.concat([Buffer.from(HASHES[s.hash].digestInfo, 'hex'), digest]) : digest;
}

/** How the output names it: the mechanism, and the host's hash when there is one. */
export function describeScheme(s: SignScheme): { mechanism: string; hash: string; hashedBy: 'token' | 'host' | 'none' } {
  return { mechanism: s.name, hash: s.hash, hashedBy: s.tokenHashes ? 'token' : s.hash === 'none' ? 'none' : 'host' };
}
