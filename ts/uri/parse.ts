// parseUri and normalizeUri: text in, through the wasm core.
import { resolveLowercase, resolveUriType } from './options.js';
import type { FormatUriOptions, ParseUriOptions, Uri } from './types.js';
import { uriCore } from './wasm.js';

function checkText(text: unknown): asserts text is string {
  if (typeof text !== 'string') throw new TypeError('p11kit-wasm: a PKCS#11 URI must be a string');
}

/**
 * Parses a PKCS#11 URI as p11-kit 0.24.1 does. Throws UriError (code BAD_SCHEME, BAD_ENCODING,
 * BAD_SYNTAX, BAD_VERSION or UNEXPECTED) when p11-kit would fail; a NUL character, which p11-kit
 * cannot even receive, is BAD_ENCODING. Unknown path attributes do not throw: they are listed in
 * `ignored` and set `unrecognized`.
 */
export function parseUri(text: string, options: ParseUriOptions = {}): Uri {
  checkText(text);
  const core = uriCore();
  const uri = core.parse(text, resolveUriType(options.type));
  if (uri === null) throw core.error(undefined, text);
  return uri;
}

/**
 * Parses and formats in one pass through the core, byte for byte as p11-kit would (also for
 * values that are not UTF-8): the canonical form of a URI. The type applies to both steps.
 */
export function normalizeUri(text: string, options: FormatUriOptions = {}): string {
  checkText(text);
  const core = uriCore();
  const out = core.normalize(text, resolveUriType(options.type), resolveLowercase(options.lowercase));
  if (out === null) throw core.error(undefined, text);
  return out;
}
