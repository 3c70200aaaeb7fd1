// formatUri: a Uri object (or any subset of its fields) to text, through the wasm core.
import { resolveLowercase, resolveUriType } from './options.js';
import { encodeUriFields } from './records.js';
import type { FormatUriOptions, UriFields } from './types.js';
import { uriCore } from './wasm.js';

/**
 * Formats as p11_kit_uri_format does: fixed attribute order, path attributes limited to the
 * type (default ANY), the query always, escapes in upper-case hex unless lowercase.
 * Values p11-kit could not hold are rejected with UriError: a text field longer than its CK_*
 * field (BAD_SYNTAX), a version part above 254 (BAD_VERSION), a NUL in a query string
 * (BAD_ENCODING), a vendor query name outside [a-z0-9_-] (UNEXPECTED, as parsing it would be).
 */
export function formatUri(uri: UriFields, options: FormatUriOptions = {}): string {
  const core = uriCore();
  const type = resolveUriType(options.type);
  const lowercase = resolveLowercase(options.lowercase);
  return core.withRecords(encodeUriFields(uri), (handle) => core.format(handle, type, lowercase));
}
