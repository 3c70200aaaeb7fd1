// CK_UTF8CHAR fields: fixed width, blank-padded, not NUL-terminated. Decoding stops at the first
// NUL (what a C caller printing the field would see), drops trailing blanks, and turns invalid
// UTF-8 into U+FFFD, so a module's garbage never becomes an exception or an overread.
import { echo } from '../wasm/echo.js';

/** The trimmed text of `len` bytes at `off` in `buf`. */
export function paddedText(buf: Uint8Array, off: number, len: number): string {
  let end = off;
  let ascii = true;
  const limit = Math.min(off + len, buf.length);
  for (let c = buf[end]; end < limit && c !== 0; c = buf[++end]) if (c > 0x7f) ascii = false;
  while (end > off && buf[end - 1] === 0x20) end--;
  // Node's own slice decoders (what toString() calls); ASCII, the usual case, takes the cheaper one.
  const slicers = Buffer.prototype as unknown as Slicers;
  return ascii ? slicers.latin1Slice.call(buf, off, end) : slicers.utf8Slice.call(buf, off, end);
}

interface Slicers {
  latin1Slice(this: Uint8Array, start: number, end: number): string;
  utf8Slice(this: Uint8Array, start: number, end: number): string;
}

/** Blank-pads `text` (UTF-8) into `len` bytes; longer text is an error, never silently cut mid-character. */
export function padText(text: string, len: number): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > len) throw new RangeError(`${echo(text)} is ${bytes.length} bytes; the field holds ${len}`);
  const out = new Uint8Array(len).fill(0x20);
  out.set(bytes);
  return out;
}
