// What a PKCS#11 URI selects behind the proxy: module-name / module-path and the library-*
// attributes pick modules, the slot and token attributes pick tokens, and object, id and type
// become the C_FindObjectsInit template.
import type { Attribute } from '../bridge/attributes.js';
import { CKA } from '../bridge/cka.js';
import { CKO } from '../bridge/ck-enums.js';
import { matchModuleInfo } from '../uri/match.js';
import { parseUri } from '../uri/parse.js';
import type { Uri, UriObjectType } from '../uri/types.js';
import type { Member } from './members.js';

export const URI_CLASS: Readonly<Record<UriObjectType, number>> = {
  data: CKO.CKO_DATA,
  cert: CKO.CKO_CERTIFICATE,
  public: CKO.CKO_PUBLIC_KEY,
  private: CKO.CKO_PRIVATE_KEY,
  'secret-key': CKO.CKO_SECRET_KEY,
};

export function toUri(uri: string | Uri): Uri {
  return typeof uri === 'string' ? parseUri(uri) : uri;
}

/**
 * Whether the URI's module attributes select this module: module-name is the registry name;
 * module-path is the `module:` value as written, the resolved path, or the real file; the
 * library-* attributes are matched against the module's CK_INFO (may throw the module's error).
 * `match` is what the matchers get: the URI text when there is one, byte-exact.
 */
export function selectsModule(uri: Uri, member: Member, match: string | Uri = uri): boolean {
  return selectsByName(uri, member) && (!wantsModuleInfo(uri) || matchModuleInfo(match, member.local('proxy.async.findTokens()').getInfo()));
}

/** The same, asking the module's CK_INFO through the async API (any module, remote ones too). */
export async function selectsModuleAsync(uri: Uri, member: Member, match: string | Uri = uri): Promise<boolean> {
  return selectsByName(uri, member) && (!wantsModuleInfo(uri) || matchModuleInfo(match, await member.async.getInfo()));
}

function selectsByName(uri: Uri, member: Member): boolean {
  if (uri.moduleName !== undefined && uri.moduleName !== member.name) return false;
  return uri.modulePath === undefined || member.paths.includes(uri.modulePath);
}

function wantsModuleInfo(uri: Uri): boolean {
  return uri.libraryDescription !== undefined || uri.libraryManufacturer !== undefined || uri.libraryVersion !== undefined;
}

/** The object attributes of the URI as a search template (label, id, class). */
export function objectTemplate(uri: Uri): Attribute[] {
  const template: Attribute[] = [];
  if (uri.object !== undefined) template.push({ type: CKA.CKA_LABEL, value: uri.object });
  if (uri.id !== undefined) template.push({ type: CKA.CKA_ID, value: uri.id });
  if (uri.type !== undefined) template.push({ type: CKA.CKA_CLASS, value: URI_CLASS[uri.type] });
  return template;
}
