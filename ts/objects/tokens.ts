// The token (or tokens) a URI selects behind a proxy, a session on it logged in when a PIN is
// given, and the URIs the operations print.
import { CKA } from '../bridge/cka.js';
import type { ObjectHandle } from '../bridge/handles.js';
import { CKF_TOKEN } from '../bridge/ckf.js';
import { CKR } from '../bridge/ckr.js';
import { CKO, CKU } from '../bridge/ck-enums.js';
import type { TokenInfo } from '../bridge/info.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { ProxySession } from '../proxy/sessions.js';
import type { Pin, ProxyToken } from '../proxy/types.js';
import { formatUri } from '../uri/format.js';
import { parseUri } from '../uri/parse.js';
import type { Uri, UriObjectType } from '../uri/types.js';
import { ObjectsError } from './errors.js';

/** A PIN, or a function giving it per token; undefined: no login (public objects only). */
export type PinOption = Pin | ((token: ProxyToken) => Pin | undefined | Promise<Pin | undefined>);

export interface TokenOptions {
  pin?: PinOption;
}

export const toUri = (uri: string | Uri): Uri => (typeof uri === 'string' ? parseUri(uri) : uri);

/** The URI as it may be shown again: without a pin-value. */
export const shown = (uri: Uri): string => formatUri({ ...uri, pinValue: undefined });

export function tokenUri(t: TokenInfo): string {
  return formatUri({ token: t.label, manufacturer: t.manufacturerID, model: t.model, serial: t.serialNumber }, { type: 'token' });
}

const TYPE_OF: Record<number, UriObjectType> = {
  [CKO.CKO_DATA]: 'data',
  [CKO.CKO_CERTIFICATE]: 'cert',
  [CKO.CKO_PUBLIC_KEY]: 'public',
  [CKO.CKO_PRIVATE_KEY]: 'private',
  [CKO.CKO_SECRET_KEY]: 'secret-key',
};

export function objectUri(t: TokenInfo, cls: number, label: string | undefined, id: Uint8Array | undefined): string {
  return formatUri(
    { token: t.label, manufacturer: t.manufacturerID, model: t.model, serial: t.serialNumber, object: label, ...(id?.length ? { id } : {}), type: TYPE_OF[cls] },
    { type: 'object-on-token' },
  );
}

/** Tokens the URI matches; with `writable`, write-protected ones are passed over (as p11-kit does). */
export async function matchingTokens(proxy: ProxyModule, uri: Uri, writable: boolean): Promise<ProxyToken[]> {
  const tokens = await proxy.async.findTokens(uri);
  return writable ? tokens.filter((t) => !(t.token.flags & CKF_TOKEN.CKF_WRITE_PROTECTED)) : tokens;
}

export async function oneToken(proxy: ProxyModule, uri: Uri, writable: boolean): Promise<ProxyToken> {
  const tokens = await matchingTokens(proxy, uri, writable);
  if (tokens.length === 1) return tokens[0]!;
  if (!tokens.length) throw new ObjectsError('NOT_FOUND', `no ${writable ? 'writable ' : ''}token matches ${shown(uri)}`);
  throw new ObjectsError('AMBIGUOUS', `${tokens.length} tokens match ${shown(uri)}; name one:\n${tokens.map((t) => `    ${tokenUri(t.token)}`).join('\n')}`);
}

/** A session on the token, logged in as the user when a PIN is given (already logged in is fine). */
export async function openOn(proxy: ProxyModule, token: ProxyToken, opts: TokenOptions, rw: boolean): Promise<ProxySession> {
  const session = await proxy.async.openSession(token.slot, { rw });
  try {
    const pin = typeof opts.pin === 'function' ? await opts.pin(token) : opts.pin;
    if (pin !== undefined) {
      try {
        await session.async.login(CKU.CKU_USER, pin);
      } catch (err) {
        if ((err as { rv?: number }).rv !== CKR.CKR_USER_ALREADY_LOGGED_IN) throw err;
      }
    }
    return session;
  } catch (err) {
    await session.async.close().catch(() => undefined);
    throw err;
  }
}

/** CKA_LABEL and CKA_ID of an object, for its URI. */
export async function labelAndId(session: ProxySession, handle: ObjectHandle): Promise<{ label?: string; id?: Uint8Array }> {
  const [label, id] = await session.async.getAttributeValue(handle, [CKA.CKA_LABEL, CKA.CKA_ID]);
  return { label: label?.value, id: id?.value };
}
