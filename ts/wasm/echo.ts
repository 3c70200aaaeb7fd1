// What an error message may repeat of a value it did not make (an argument, a config value, a
// name): short values whole, long ones cut with their size said, anything else by its type. A
// caller's megabyte string must not become a megabyte message (copied into logs, traces and
// replies to a client), and describing a value must not run its code (an object's toString can
// throw, or be slow). The lowest layer, so the registry, URI and bridge layers share it.

/** How many characters of a caller's text a message repeats. */
export const ECHO_CHARS = 64;

// Control characters (and the line separators) would let a value rewrite a log line or a terminal.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const escape = (c: string) => {
  const n = c.charCodeAt(0);
  return n > 0xff ? `\\u${n.toString(16).padStart(4, '0')}` : `\\x${n.toString(16).padStart(2, '0')}`;
};

/** The first `max` characters of text, unprintables escaped (never half a surrogate pair). */
function head(text: string, max: number): string {
  let end = Math.min(max, text.length);
  const last = text.charCodeAt(end - 1);
  if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end).replace(UNPRINTABLE, escape);
}

/** Text as a message shows it: unprintables escaped, cut to `max` characters with its length said. */
export function clip(text: string, max = ECHO_CHARS): string {
  return text.length <= max ? head(text, max) : `${head(text, max)}… (${text.length} characters)`;
}

// A bigint within this shows whole (up to ~62 digits); beyond, only its magnitude.
const BIG = 1n << 200n;

/** Any value as a message shows it: strings quoted and clipped, numbers as written, the rest by type. */
export function echo(value: unknown, max = ECHO_CHARS): string {
  switch (typeof value) {
    case 'string':
      return value.length <= max ? `'${head(value, max)}'` : `'${head(value, max)}…' (${value.length} characters)`;
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint':
      return value < BIG && value > -BIG ? String(value) : 'a bigint beyond ±2^200';
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a view of ${value.byteLength} bytes`;
  return 'an object';
}
