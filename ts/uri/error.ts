// UriError: p11-kit's URI result codes as a typed error. Messages say what and where, and
// never quote attribute values (a pin-value may be among them).

export type UriErrorCode = 'UNEXPECTED' | 'BAD_SCHEME' | 'BAD_ENCODING' | 'BAD_SYNTAX' | 'BAD_VERSION' | 'NOT_FOUND';

/** p11-kit's numeric P11KitUriResult for each code. */
export const URI_RESULT_CODES: Readonly<Record<UriErrorCode, number>> = {
  UNEXPECTED: -1,
  BAD_SCHEME: -2,
  BAD_ENCODING: -3,
  BAD_SYNTAX: -4,
  BAD_VERSION: -5,
  NOT_FOUND: -6,
};

// The texts p11_kit_uri_message() gives, so messages read the same as p11-kit's tools.
const P11KIT_MESSAGES: Readonly<Record<UriErrorCode, string>> = {
  UNEXPECTED: 'Unexpected or internal system error',
  BAD_SCHEME: "URI scheme must be 'pkcs11:'",
  BAD_ENCODING: 'URI encoding invalid or corrupted',
  BAD_SYNTAX: 'URI syntax is invalid',
  BAD_VERSION: 'URI version component is invalid',
  NOT_FOUND: 'The URI component was not found',
};

export function uriErrorCodeOf(result: number): UriErrorCode {
  const found = (Object.keys(URI_RESULT_CODES) as UriErrorCode[]).find((k) => URI_RESULT_CODES[k] === result);
  return found ?? 'UNEXPECTED';
}

export interface UriErrorWhere {
  /** The attribute involved, if any. */
  attribute?: string;
  /** Offset in the URI text (UTF-16 code units, as JavaScript indexes strings), if known. */
  offset?: number;
}

export class UriError extends Error {
  // On the prototype, not per instance: a field definition per throw costs measurably.
  declare readonly name: 'UriError';
  declare readonly code: UriErrorCode;
  /** p11-kit's numeric result (-1 … -6). */
  declare readonly result: number;
  declare readonly attribute?: string;
  declare readonly offset?: number;

  constructor(code: UriErrorCode, detail: string, where: UriErrorWhere = {}) {
    super(message(code, detail, where));
    this.code = code;
    this.result = URI_RESULT_CODES[code];
    if (where.attribute !== undefined) this.attribute = where.attribute;
    if (where.offset !== undefined) this.offset = where.offset;
  }
}

Object.defineProperty(UriError.prototype, 'name', { value: 'UriError', enumerable: false, configurable: true, writable: false });

// Plain concatenation: invalid URIs can be a good part of a workload (bench/uri.mjs).
function message(code: UriErrorCode, detail: string, where: UriErrorWhere): string {
  const { attribute, offset } = where;
  let text = `${P11KIT_MESSAGES[code]}: ${detail}`;
  if (attribute !== undefined) text += offset !== undefined ? ` (attribute '${shorten(attribute)}', at offset ${offset})` : ` (attribute '${shorten(attribute)}')`;
  else if (offset !== undefined) text += ` (at offset ${offset})`;
  return text;
}

// A name such as 'token' needs no escaping.
const PLAIN_NAME = /^[a-z0-9_-]{0,40}$/;

// Attribute names come from the input and may be long or hold control characters.
function shorten(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  const printable = JSON.stringify(name).slice(1, -1);
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}
