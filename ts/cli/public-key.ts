// The curves generate-keypair offers, and a token's public key as a PEM SubjectPublicKeyInfo
// (what OpenSSL and node:crypto read), built from CKA_EC_PARAMS/CKA_EC_POINT or
// CKA_MODULUS/CKA_PUBLIC_EXPONENT through a JWK.
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { CKK } from '../bridge/index.js';

export interface Curve {
  /** JWK / NIST name. */
  jwk: string;
  /** DER of the named curve's OID: the CKA_EC_PARAMS value. */
  params: string;
  /** Bytes of one coordinate. */
  size: number;
}

export const CURVES: Readonly<Record<string, Curve>> = {
  p256: { jwk: 'P-256', params: '06082a8648ce3d030107', size: 32 },
  p384: { jwk: 'P-384', params: '06052b81040022', size: 48 },
};
const BY_PARAMS = new Map(Object.values(CURVES).map((c) => [c.params, c]));
const ALIASES: Record<string, string> = { 'p-256': 'p256', prime256v1: 'p256', secp256r1: 'p256', 'p-384': 'p384', secp384r1: 'p384' };

export function curveNamed(name: string): [string, Curve] | undefined {
  const key = ALIASES[name.toLowerCase()] ?? name.toLowerCase();
  const c = CURVES[key];
  return c ? [key, c] : undefined;
}

/** The uncompressed point: CKA_EC_POINT is a DER OCTET STRING (PKCS#11 2.40), some tokens give it bare. */
export function uncompressedPoint(ecPoint: Uint8Array, size: number): Uint8Array | undefined {
  const bare = 1 + 2 * size;
  if (ecPoint.length === bare && ecPoint[0] === 0x04) return ecPoint;
  if (ecPoint[0] !== 0x04 || ecPoint.length < 2) return undefined;
  let at = 2;
  let len = ecPoint[1];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 2 || ecPoint.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | ecPoint[2 + i];
    at = 2 + n;
  }
  const inner = ecPoint.subarray(at);
  return inner.length === len && len === bare && inner[0] === 0x04 ? inner : undefined;
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export interface PublicParts {
  ecParams?: Uint8Array;
  ecPoint?: Uint8Array;
  modulus?: Uint8Array;
  publicExponent?: Uint8Array;
}

/** The public key as PEM, or undefined when the token's values are not a key we can express. */
export function publicKeyPem(keyType: number, p: PublicParts): string | undefined {
  let jwk: JsonWebKey;
  if (keyType === CKK.CKK_EC && p.ecParams && p.ecPoint) {
    const curve = BY_PARAMS.get(Buffer.from(p.ecParams).toString('hex'));
    const point = curve && uncompressedPoint(p.ecPoint, curve.size);
    if (!curve || !point) return undefined;
    jwk = { kty: 'EC', crv: curve.jwk, x: b64url(point.subarray(1, 1 + curve.size)), y: b64url(point.subarray(1 + curve.size)) };
  } else if (keyType === CKK.CKK_RSA && p.modulus && p.publicExponent) {
    jwk = { kty: 'RSA', n: b64url(p.modulus), e: b64url(p.publicExponent) };
  } else {
    return undefined;
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
  } catch {
    return undefined; // a point off the curve, a zero modulus: not ours to repair
  }
}
