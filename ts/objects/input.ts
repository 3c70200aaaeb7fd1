// A file to import, as the objects it holds: PEM (one or more CERTIFICATE / PUBLIC KEY blocks,
// as p11-kit 0.25 reads) or a single DER certificate or SubjectPublicKeyInfo; or, asked for
// explicitly, the bytes of a secret key. Each becomes the template p11-kit 0.25 would create.
import { createPublicKey, X509Certificate } from 'node:crypto';
import type { Attribute } from '../bridge/attributes.js';
import { CKA } from '../bridge/cka.js';
import { CKC, CKK, CKO } from '../bridge/ck-enums.js';
import { BIT_STRING, children, derHeader, OCTET_STRING, OID, readTlv, SEQUENCE } from './der.js';
import { ObjectsError } from './errors.js';

/** Largest file read for import: certificates and public keys are a few KiB. */
export const MAX_INPUT = 1024 * 1024;
const MAX_BLOCKS = 64;

export type SecretKind = 'generic' | 'aes';

export interface ObjectInput {
  kind: 'cert' | 'public' | 'secret';
  template: Attribute[];
}

const RSA_OID = '06092a864886f70d010101';
const EC_OID = '06072a8648ce3d0201';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bad = (why: string) => new ObjectsError('BAD_INPUT', why);

function certificate(der: Uint8Array): ObjectInput {
  try {
    new X509Certificate(der); // node's own parser judges the whole certificate
  } catch {
    throw bad('not a valid X.509 certificate');
  }
  const cert = readTlv(der, 0, 'certificate');
  const tbs = children(der, cert, 'certificate')[0];
  if (!tbs) throw bad('certificate without tbsCertificate');
  const fields = children(der, tbs, 'tbsCertificate');
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const [serial, , issuer, , subject] = fields.slice(offset);
  if (!subject || subject.tag !== SEQUENCE) throw bad('certificate without a subject name');
  if (!serial || !issuer) throw bad('certificate without serial number or issuer');
  return {
    kind: 'cert',
    template: [
      { type: CKA.CKA_CLASS, value: CKO.CKO_CERTIFICATE },
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_PRIVATE, value: false },
      { type: CKA.CKA_CERTIFICATE_TYPE, value: CKC.CKC_X_509 },
      { type: CKA.CKA_VALUE, value: der },
      { type: CKA.CKA_SUBJECT, value: der.slice(subject.start, subject.end) },
      // Not in p11-kit 0.25's template, but NSS softokn refuses a certificate without them.
      { type: CKA.CKA_ISSUER, value: der.slice(issuer.start, issuer.end) },
      { type: CKA.CKA_SERIAL_NUMBER, value: der.slice(serial.start, serial.end) },
    ],
  };
}

function publicKey(der: Uint8Array): ObjectInput {
  try {
    createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    throw bad('not a valid SubjectPublicKeyInfo');
  }
  const spki = readTlv(der, 0, 'public key');
  const [alg, bits] = children(der, spki, 'public key');
  if (!alg || !bits || bits.tag !== BIT_STRING) throw bad('public key without algorithm or key bits');
  const [oid, params] = children(der, alg, 'public key algorithm');
  if (!oid || oid.tag !== OID) throw bad('public key without an algorithm OID');
  const key = der.subarray(bits.body + 1, bits.end); // after the unused-bits byte
  const common: Attribute[] = [
    { type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY },
    { type: CKA.CKA_TOKEN, value: true },
    { type: CKA.CKA_PRIVATE, value: false },
    { type: CKA.CKA_VERIFY, value: true },
    { type: CKA.CKA_PUBLIC_KEY_INFO, value: der },
  ];
  const algorithm = hex(der.subarray(oid.start, oid.end));
  if (algorithm === RSA_OID) {
    const rsa = readTlv(key, 0, 'RSA public key');
    const [n, e] = children(key, rsa, 'RSA public key');
    if (!n || !e) throw bad('RSA public key without modulus or exponent');
    return {
      kind: 'public',
      template: [
        ...common,
        { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_RSA },
        { type: CKA.CKA_ENCRYPT, value: true },
        { type: CKA.CKA_MODULUS, value: key.slice(n.body, n.end) },
        { type: CKA.CKA_PUBLIC_EXPONENT, value: key.slice(e.body, e.end) },
      ],
    };
  }
  if (algorithm === EC_OID) {
    if (!params) throw bad('EC public key without curve parameters');
    const point = new Uint8Array([...derHeader(OCTET_STRING, key.length), ...key]);
    return {
      kind: 'public',
      template: [...common, { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_EC }, { type: CKA.CKA_EC_PARAMS, value: der.slice(params.start, params.end) }, { type: CKA.CKA_EC_POINT, value: point }],
    };
  }
  throw bad(`unrecognized public key algorithm (OID ${algorithm.slice(4)})`);
}

function secret(bytes: Uint8Array, kind: SecretKind): ObjectInput {
  if (bytes.length === 0) throw bad('an empty secret');
  if (kind === 'aes' && ![16, 24, 32].includes(bytes.length)) throw bad(`an AES key is 16, 24 or 32 bytes, not ${bytes.length}`);
  const use: Attribute[] =
    kind === 'aes'
      ? [{ type: CKA.CKA_ENCRYPT, value: true }, { type: CKA.CKA_DECRYPT, value: true }]
      : [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_VERIFY, value: true }];
  return {
    kind: 'secret',
    template: [
      { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
      { type: CKA.CKA_KEY_TYPE, value: kind === 'aes' ? CKK.CKK_AES : CKK.CKK_GENERIC_SECRET },
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_SENSITIVE, value: true },
      { type: CKA.CKA_EXTRACTABLE, value: false },
      ...use,
      { type: CKA.CKA_VALUE, value: bytes },
    ],
  };
}

const PEM = /-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

function fromPem(text: string): ObjectInput[] {
  const out: ObjectInput[] = [];
  for (const m of text.matchAll(PEM)) {
    if (out.length >= MAX_BLOCKS) throw bad(`more than ${MAX_BLOCKS} PEM blocks`);
    const der = new Uint8Array(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
    if (m[1] === 'CERTIFICATE') out.push(certificate(der));
    else if (m[1] === 'PUBLIC KEY') out.push(publicKey(der));
    else throw bad(`unrecognized PEM label: ${m[1]}`);
  }
  if (!out.length) throw bad('no object to import');
  return out;
}

/**
 * The objects in a file: PEM blocks, or one DER certificate or public key; with `secret`, the
 * bytes are the key itself. Throws ObjectsError('BAD_INPUT') naming what is wrong.
 */
export function readObjects(bytes: Uint8Array, opts: { secret?: SecretKind } = {}): ObjectInput[] {
  if (bytes.length > MAX_INPUT) throw bad(`larger than ${MAX_INPUT} bytes`);
  if (opts.secret) return [secret(bytes, opts.secret)];
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN ')) return fromPem(text);
  if (bytes[0] !== SEQUENCE) throw bad('neither PEM nor DER');
  const outer = readTlv(bytes, 0, 'DER input');
  if (outer.end !== bytes.length) throw bad('trailing bytes after the DER object');
  const first = children(bytes, outer, 'DER input')[0];
  // A certificate starts with the tbsCertificate SEQUENCE, a SubjectPublicKeyInfo with the algorithm's.
  const inner = first && first.tag === SEQUENCE ? children(bytes, first, 'DER input')[0] : undefined;
  return [inner && inner.tag === OID ? publicKey(bytes) : certificate(bytes)];
}
