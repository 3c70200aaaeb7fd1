// The registry's record stream (wasm/abi.h) read in one pass, each record handed to a visitor
// as it is read: a registry's output is thousands of short records, and decoding each string on
// its own, or making an object per record, costs more than the merge that made them. When the
// core says every string in it is ASCII (every real configuration), one latin1 string of the
// whole stream is also the UTF-8 text of each field, and a field is a slice of it; otherwise the
// generic reader decodes field by field.
import { readRecords } from '../wasm/core.js';

export type RecordVisitor = (tag: string, num: number, a: string, b: string) => void;

const TRUNCATED = 'p11kit-wasm: truncated record stream from the wasm core';

export function visitRegistryRecords(bytes: Uint8Array, ascii: boolean, visit: RecordVisitor): void {
  if (!ascii) {
    for (const r of readRecords(bytes)) visit(r.tag, r.num, r.a, r.b);
    return;
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const u32 = (at: number) =>
    (text.charCodeAt(at) | (text.charCodeAt(at + 1) << 8) | (text.charCodeAt(at + 2) << 16) | (text.charCodeAt(at + 3) << 24)) >>> 0;
  let at = 0;
  while (at < text.length) {
    if (at + 13 > text.length) throw new Error(TRUNCATED);
    const aAt = at + 9;
    const aEnd = aAt + u32(at + 5);
    if (aEnd + 4 > text.length) throw new Error(TRUNCATED);
    const bAt = aEnd + 4;
    const bEnd = bAt + u32(aEnd);
    if (bEnd > text.length) throw new Error(TRUNCATED);
    visit(text[at], u32(at + 1), text.slice(aAt, aEnd), text.slice(bAt, bEnd));
    at = bEnd;
  }
}
