// Just enough DER to take certificates and SubjectPublicKeyInfos apart: tag, length, contents,
// with every length checked against the input (hostile files are expected).
import { ObjectsError } from './errors.js';

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset just past the contents. */
  end: number;
}

export function readTlv(buf: Uint8Array, at: number, what: string): Tlv {
  const bad = (why: string) => new ObjectsError('BAD_INPUT', `${what}: ${why}`);
  if (at + 2 > buf.length) throw bad('truncated DER');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw bad('multi-byte DER tags are not expected here');
  let len = buf[at + 1]!;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw bad('DER length out of range');
    if (body + n > buf.length) throw bad('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i]!;
    body += n;
  }
  if (body + len > buf.length) throw bad('DER length runs past the end of the input');
  return { tag, start: at, body, end: body + len };
}

/** The elements inside a constructed TLV, in order. */
export function children(buf: Uint8Array, parent: Tlv, what: string): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const t = readTlv(buf, at, what);
    if (t.end > parent.end) throw new ObjectsError('BAD_INPUT', `${what}: element runs past its container`);
    out.push(t);
    at = t.end;
    if (out.length > 64) throw new ObjectsError('BAD_INPUT', `${what}: too many elements`);
  }
  return out;
}

/** A definite-length DER header for `length` bytes of contents. */
export function derHeader(tag: number, length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(tag, length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(tag, 0x80 | bytes.length, ...bytes);
}

export const SEQUENCE = 0x30;
export const BIT_STRING = 0x03;
export const OCTET_STRING = 0x04;
export const INTEGER = 0x02;
export const OID = 0x06;
