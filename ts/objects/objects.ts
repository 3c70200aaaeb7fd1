// import-object, export-object and delete-object as library calls over a proxy: what p11-kit
// 0.25's commands do, with the object found by PKCS#11 URI and its URI handed back.
import { createPublicKey } from 'node:crypto';
import type { Attribute } from '../bridge/attributes.js';
import { CKA } from '../bridge/cka.js';
import type { ObjectHandle } from '../bridge/handles.js';
import { CKC, CKK, CKO } from '../bridge/ck-enums.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { ProxySession } from '../proxy/sessions.js';
import type { ProxyToken } from '../proxy/types.js';
import { objectTemplate } from '../proxy/lookup.js';
import type { Uri } from '../uri/types.js';
import { BIT_STRING, derHeader, OCTET_STRING, readTlv, SEQUENCE } from './der.js';
import { ObjectsError } from './errors.js';
import { readObjects, type SecretKind } from './input.js';
import { labelAndId, matchingTokens, objectUri, oneToken, openOn, shown, toUri, tokenUri, type TokenOptions } from './tokens.js';

export interface ImportOptions extends TokenOptions {
  /** CKA_LABEL of every imported object. */
  label?: string;
  /** CKA_ID of every imported object (not in p11-kit 0.25). */
  id?: Uint8Array;
  /** The file is a secret key's bytes, of this type (not in p11-kit 0.25). */
  secret?: SecretKind;
}

export interface ImportedObject {
  kind: 'cert' | 'public' | 'secret';
  uri: string;
}

/**
 * Creates the objects of a file (PEM certificates and public keys, one DER certificate or
 * public key, or a secret's bytes) on the one writable token the URI selects.
 */
export async function importObject(proxy: ProxyModule, tokenUri: string | Uri, data: Uint8Array, opts: ImportOptions = {}): Promise<ImportedObject[]> {
  const inputs = readObjects(data, { secret: opts.secret });
  const token = await oneToken(proxy, toUri(tokenUri), true);
  const session = await openOn(proxy, token, opts, true);
  try {
    const extra: Attribute[] = [...(opts.label !== undefined ? [{ type: CKA.CKA_LABEL, value: opts.label }] : []), ...(opts.id ? [{ type: CKA.CKA_ID, value: opts.id }] : [])];
    const out: ImportedObject[] = [];
    for (const input of inputs) {
      const handle = await session.async.createObject([...input.template, ...extra]);
      const cls = input.kind === 'cert' ? CKO.CKO_CERTIFICATE : input.kind === 'public' ? CKO.CKO_PUBLIC_KEY : CKO.CKO_SECRET_KEY;
      const { label, id } = await labelAndId(session, handle);
      out.push({ kind: input.kind, uri: objectUri(token.token, cls, label, id) });
    }
    return out;
  } finally {
    await session.async.close();
  }
}

interface FoundObject {
  token: ProxyToken;
  session: ProxySession;
  handle: ObjectHandle;
  cls: number;
}

/** The one object the URI names, with a session on its token (the caller closes it). */
async function oneObject(proxy: ProxyModule, uri: Uri, opts: TokenOptions, rw: boolean): Promise<FoundObject> {
  const tokens = await matchingTokens(proxy, uri, rw);
  if (!tokens.length) throw new ObjectsError('NOT_FOUND', `no token matches ${shown(uri)}`);
  const found: FoundObject[] = [];
  const sessions: ProxySession[] = [];
  try {
    for (const token of tokens) {
      const session = await openOn(proxy, token, opts, rw);
      sessions.push(session);
      for (const handle of await session.async.findAllObjects(objectTemplate(uri))) {
        const [cls] = await session.async.getAttributeValue(handle, [CKA.CKA_CLASS]);
        found.push({ token, session, handle, cls: Number(cls?.value ?? -1) });
      }
    }
    if (found.length === 1) {
      sessions.splice(sessions.indexOf(found[0]!.session), 1);
      return found[0]!;
    }
    if (!found.length) throw new ObjectsError('NOT_FOUND', `no object matches ${shown(uri)}`);
    const uris = await Promise.all(found.map(async (f) => objectUri(f.token.token, f.cls, ...Object.values(await labelAndId(f.session, f.handle)) as [string | undefined, Uint8Array | undefined])));
    throw new ObjectsError('AMBIGUOUS', `${found.length} objects match ${shown(uri)}; name one:\n${uris.map((u) => `    ${u}`).join('\n')}`);
  } finally {
    for (const s of sessions) await s.async.close().catch(() => undefined);
  }
}

export interface ExportedObject {
  kind: 'cert' | 'public';
  uri: string;
  pem: string;
}

const pem = (label: string, der: Uint8Array) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

async function publicKeyDer(session: ProxySession, handle: ObjectHandle): Promise<Uint8Array> {
  const [info, type, params, point, modulus, exponent] = await session.async.getAttributeValue(handle, [
    CKA.CKA_PUBLIC_KEY_INFO, CKA.CKA_KEY_TYPE, CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT, CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT,
  ]);
  if (info?.value instanceof Uint8Array && info.value.length) return info.value;
  const bytes = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v) : undefined);
  let jwk: Parameters<typeof createPublicKey>[0];
  if (type?.value === CKK.CKK_RSA && bytes(modulus?.value) && bytes(exponent?.value)) {
    jwk = { key: { kty: 'RSA', n: bytes(modulus!.value)!.toString('base64url'), e: bytes(exponent!.value)!.toString('base64url') }, format: 'jwk' };
    return new Uint8Array(createPublicKey(jwk).export({ type: 'spki', format: 'der' }));
  }
  if (type?.value === CKK.CKK_EC && bytes(params?.value) && bytes(point?.value)) {
    // SPKI = SEQUENCE { SEQUENCE { id-ecPublicKey, params }, BIT STRING point }.
    const raw = bareEcPoint(bytes(point!.value)!);
    const alg = Buffer.concat([Buffer.from('06072a8648ce3d0201', 'hex'), bytes(params!.value)!]);
    const bits = Buffer.concat([Buffer.of(0), raw]);
    const body = Buffer.concat([derHeader(SEQUENCE, alg.length), alg, derHeader(BIT_STRING, bits.length), bits]);
    const der = Buffer.concat([derHeader(SEQUENCE, body.length), body]);
    try {
      createPublicKey({ key: der, format: 'der', type: 'spki' });
    } catch {
      throw new ObjectsError('UNSUPPORTED', 'the token\'s EC public key does not form a valid SubjectPublicKeyInfo');
    }
    return new Uint8Array(der);
  }
  throw new ObjectsError('UNSUPPORTED', `cannot export a public key of key type ${String(type?.value)} without CKA_PUBLIC_KEY_INFO`);
}

/** CKA_EC_POINT is a DER OCTET STRING (PKCS#11 2.40); some tokens give the point bare. */
function bareEcPoint(p: Uint8Array): Uint8Array {
  if (p[0] === OCTET_STRING) {
    try {
      const t = readTlv(p, 0, 'EC point');
      if (t.end === p.length && p[t.body] === 0x04) return p.subarray(t.body);
    } catch {
      // not wrapped
    }
  }
  return p;
}

/** The one certificate (X.509) or public key the URI names, as PEM. */
export async function exportObject(proxy: ProxyModule, uri: string | Uri, opts: TokenOptions = {}): Promise<ExportedObject> {
  const o = await oneObject(proxy, toUri(uri), opts, false);
  try {
    const { label, id } = await labelAndId(o.session, o.handle);
    const where = objectUri(o.token.token, o.cls, label, id);
    if (o.cls === CKO.CKO_CERTIFICATE) {
      const [type, value] = await o.session.async.getAttributeValue(o.handle, [CKA.CKA_CERTIFICATE_TYPE, CKA.CKA_VALUE]);
      if (type?.value !== CKC.CKC_X_509) throw new ObjectsError('UNSUPPORTED', 'unrecognized certificate type (only X.509 is exported)');
      if (!(value?.value instanceof Uint8Array) || !value.value.length) throw new ObjectsError('UNSUPPORTED', 'no valid certificate value');
      return { kind: 'cert', uri: where, pem: pem('CERTIFICATE', value.value) };
    }
    if (o.cls === CKO.CKO_PUBLIC_KEY) return { kind: 'public', uri: where, pem: pem('PUBLIC KEY', await publicKeyDer(o.session, o.handle)) };
    throw new ObjectsError('UNSUPPORTED', 'unsupported object class (certificates and public keys are exported)');
  } finally {
    await o.session.async.close();
  }
}

/** Destroys the one object the URI names; returns its URI. */
export async function deleteObject(proxy: ProxyModule, uri: string | Uri, opts: TokenOptions = {}): Promise<{ uri: string; token: string }> {
  const o = await oneObject(proxy, toUri(uri), opts, true);
  try {
    const { label, id } = await labelAndId(o.session, o.handle);
    await o.session.async.destroyObject(o.handle);
    return { uri: objectUri(o.token.token, o.cls, label, id), token: tokenUri(o.token.token) };
  } finally {
    await o.session.async.close();
  }
}
