// What key generation needs and everyone writes by hand: a named curve's CKA_EC_PARAMS, and
// key-pair templates with safe defaults (the private key sensitive, never extractable).
import type { Attribute } from './attributes.js';
import { CKA } from './cka.js';
import { CKM } from './ckm.js';
import { echo } from '../wasm/echo.js';

/** DER of each named curve's OID: the CKA_EC_PARAMS value PKCS#11 expects. */
const CURVE_OIDS = {
  'P-256': '06082a8648ce3d030107',
  'P-384': '06052b81040022',
  'P-521': '06052b81040023',
} as const;

export type NamedCurve = keyof typeof CURVE_OIDS;
export const NAMED_CURVES = Object.freeze(Object.keys(CURVE_OIDS)) as readonly NamedCurve[];

/** The CKA_EC_PARAMS of a named curve ('P-256', 'P-384', 'P-521'), a fresh copy each time. */
export function ecParams(curve: NamedCurve): Uint8Array {
  // Own keys only: 'toString' is no curve.
  const hex = typeof curve === 'string' && Object.hasOwn(CURVE_OIDS, curve) ? CURVE_OIDS[curve] : undefined;
  if (hex === undefined) throw new RangeError(`p11kit-wasm: unknown curve ${echo(curve)} (one of ${NAMED_CURVES.join(', ')})`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export interface KeyPairOptions {
  label?: string;
  id?: Uint8Array;
  /** A token object (default) or a session object. */
  token?: boolean;
}

/** A generateKeyPair call's arguments: the mechanism and both templates. */
export interface KeyPairTemplate {
  mechanism: number;
  publicTemplate: Attribute[];
  privateTemplate: Attribute[];
}

function common(o: KeyPairOptions): Attribute[] {
  const out: Attribute[] = [{ type: CKA.CKA_TOKEN, value: o.token ?? true }];
  if (o.label !== undefined) out.push({ type: CKA.CKA_LABEL, value: o.label });
  if (o.id !== undefined) out.push({ type: CKA.CKA_ID, value: o.id });
  return out;
}

function pair(mechanism: number, o: KeyPairOptions, publicOnly: Attribute[], canEncrypt: boolean): KeyPairTemplate {
  return {
    mechanism,
    publicTemplate: [...common(o), ...publicOnly, { type: CKA.CKA_VERIFY, value: true }, ...(canEncrypt ? [{ type: CKA.CKA_ENCRYPT, value: true }] : [])],
    privateTemplate: [
      ...common(o),
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_SENSITIVE, value: true },
      { type: CKA.CKA_EXTRACTABLE, value: false },
      { type: CKA.CKA_SIGN, value: true },
      ...(canEncrypt ? [{ type: CKA.CKA_DECRYPT, value: true }] : []),
    ],
  };
}

/** An EC signing key pair on a named curve. */
export function ecKeyPair(curve: NamedCurve, opts: KeyPairOptions = {}): KeyPairTemplate {
  return pair(CKM.CKM_EC_KEY_PAIR_GEN, opts, [{ type: CKA.CKA_EC_PARAMS, value: ecParams(curve) }], false);
}

/** An RSA key pair (public exponent 65537) for signing and encryption. */
export function rsaKeyPair(bits: number, opts: KeyPairOptions = {}): KeyPairTemplate {
  if (!Number.isInteger(bits) || bits < 512) throw new RangeError(`p11kit-wasm: not an RSA key size: ${echo(bits)}`);
  return pair(
    CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
    opts,
    [{ type: CKA.CKA_MODULUS_BITS, value: bits }, { type: CKA.CKA_PUBLIC_EXPONENT, value: Uint8Array.of(1, 0, 1) }],
    true,
  );
}
