// list-profiles, add-profile and delete-profile: the CKO_PROFILE objects (PKCS#11 3.0) of the
// tokens a URI selects, named by p11-kit's nicknames for the CKP_* constants.
import { CKA } from '../bridge/cka.js';
import { CKO } from '../bridge/ck-enums.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { Uri } from '../uri/types.js';
import { ObjectsError } from './errors.js';
import { matchingTokens, openOn, shown, toUri, tokenUri, type TokenOptions } from './tokens.js';

/** CKP_* values (PKCS#11 3.0/3.1) by p11-kit's nicknames. */
export const PROFILES: Readonly<Record<string, number>> = Object.freeze({
  'baseline-provider': 1,
  'extended-provider': 2,
  'authentication-token': 3,
  'public-certificates-token': 4,
  'complete-provider': 5,
  'hkdf-tls-token': 6,
  'vendor-defined': 0x80000000,
});
// CKP_INVALID_ID has a name to be listed by, but is no profile to add.
const NAMES = new Map([[0, 'invalid-id'], ...Object.entries(PROFILES).map(([name, id]) => [id, name] as const)]);

export interface Profile {
  id: number;
  /** p11-kit's nickname, or the number as p11-kit prints it (0xAB) when it has none. */
  name: string;
}

export interface TokenProfiles {
  token: string;
  profiles: Profile[];
}

/** A profile given by nickname (as p11-kit prints them) or by number (0x... or decimal). */
export function profileId(text: string): number {
  const known = PROFILES[text.toLowerCase()];
  if (known !== undefined) return known;
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new ObjectsError('BAD_INPUT', `unknown profile '${text}' (one of ${Object.keys(PROFILES).join(', ')}, or a number)`);
  return n;
}

export const profileName = (id: number): string => NAMES.get(id) ?? `0x${id.toString(16).toUpperCase()}`;

/** Whether p11-kit has a nickname for the profile (list-profiles marks the others "(unknown)"). */
export const isNamedProfile = (id: number): boolean => NAMES.has(id);

const PROFILE_CLASS = [{ type: CKA.CKA_CLASS, value: CKO.CKO_PROFILE }];

export async function listProfiles(proxy: ProxyModule, uri: string | Uri = 'pkcs11:', opts: TokenOptions = {}): Promise<TokenProfiles[]> {
  const out: TokenProfiles[] = [];
  for (const token of await matchingTokens(proxy, toUri(uri), false)) {
    const session = await openOn(proxy, token, opts, false);
    try {
      const profiles: Profile[] = [];
      for (const h of await session.async.findAllObjects(PROFILE_CLASS)) {
        const [id] = await session.async.getAttributeValue(h, [CKA.CKA_PROFILE_ID]);
        if (typeof id?.value === 'number') profiles.push({ id: id.value, name: profileName(id.value) });
      }
      out.push({ token: tokenUri(token.token), profiles });
    } finally {
      await session.async.close();
    }
  }
  return out;
}

/** Adds the profile to each writable token the URI selects that does not have it yet; returns the tokens it was added to. */
export async function addProfile(proxy: ProxyModule, uri: string | Uri, profile: number | string, opts: TokenOptions = {}): Promise<string[]> {
  const id = typeof profile === 'number' ? profile : profileId(profile);
  const u = toUri(uri);
  const tokens = await matchingTokens(proxy, u, true);
  if (!tokens.length) throw new ObjectsError('NOT_FOUND', `no writable token matches ${shown(u)}`);
  const added: string[] = [];
  for (const token of tokens) {
    const session = await openOn(proxy, token, opts, true);
    try {
      if ((await session.async.findAllObjects([...PROFILE_CLASS, { type: CKA.CKA_PROFILE_ID, value: id }])).length) continue;
      // A token object: p11-kit 0.25 creates a session object, which is gone when the command ends.
      await session.async.createObject([...PROFILE_CLASS, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_PROFILE_ID, value: id }]);
      added.push(tokenUri(token.token));
    } finally {
      await session.async.close();
    }
  }
  return added;
}

/** Removes the profile's objects from the writable tokens the URI selects; returns how many were destroyed. */
export async function deleteProfile(proxy: ProxyModule, uri: string | Uri, profile: number | string, opts: TokenOptions = {}): Promise<number> {
  const id = typeof profile === 'number' ? profile : profileId(profile);
  const u = toUri(uri);
  const tokens = await matchingTokens(proxy, u, true);
  if (!tokens.length) throw new ObjectsError('NOT_FOUND', `no writable token matches ${shown(u)}`);
  let destroyed = 0;
  for (const token of tokens) {
    const session = await openOn(proxy, token, opts, true);
    try {
      for (const h of await session.async.findAllObjects([...PROFILE_CLASS, { type: CKA.CKA_PROFILE_ID, value: id }])) {
        await session.async.destroyObject(h);
        destroyed++;
      }
    } finally {
      await session.async.close();
    }
  }
  return destroyed;
}
