// PKCS#11 URIs (RFC 7512) with p11-kit 0.24.1's behaviour: parse, format, match.
export * from './types.js';
export { UriError, URI_RESULT_CODES, type UriErrorCode, type UriErrorWhere } from './error.js';
export { parseUri, normalizeUri } from './parse.js';
export { formatUri } from './format.js';
export { matchModuleInfo, matchSlot, matchTokenInfo, matchAttributes } from './match.js';
export { uriToJson, uriFromJson, type UriJson } from './json.js';
