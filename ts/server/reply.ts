// A reply written in the order of the call's response signature; or the error reply (call id
// 0, signature 'u', the CK_RV). Output buffers follow p11-kit's convention: with no room, or
// too little, only the length goes back (presence byte 0), and the client's library turns that
// into the size answer or CKR_BUFFER_TOO_SMALL.
import type { AttributeValue } from '../bridge/attributes.js';
import { wireKind } from '../rpc/attributes.js';
import { CALL_ERROR, type CallSpec } from '../rpc/calls.js';
import { WireWriter } from '../rpc/wire.js';
import { ulongBytes } from './request.js';

const SERVER = 'p11kit server';
const utf8 = new TextEncoder();
const ERROR_SIGNATURE = utf8.encode('u');

type Ulong = number | bigint;

export interface Version {
  major: number;
  minor: number;
}

/** One attribute of a C_GetAttributeValue answer, as the module left it. */
export type AnsweredAttribute =
  | { type: number; state: 'unavailable' }
  | { type: number; state: 'length'; length: number }
  | { type: number; state: 'value'; bytes: Uint8Array };

export function errorReply(rv: number): Uint8Array {
  return new WireWriter('error', SERVER).u32(CALL_ERROR).byteArray(ERROR_SIGNATURE).u64(rv).finish();
}

/** CK_UNAVAILABLE_INFORMATION and other values past 2^53 come from the bridge as bigint or -1. */
function u64Of(v: Ulong): bigint {
  if (typeof v === 'bigint') return v & 0xffffffffffffffffn;
  return v < 0 ? 0xffffffffffffffffn : BigInt(v);
}

export class ReplyWriter {
  private readonly w: WireWriter;
  private at = 0;

  constructor(private readonly spec: CallSpec) {
    this.w = new WireWriter(spec.name, SERVER).u32(spec.id).byteArray(spec.responseBytes);
  }

  private take(part: string): void {
    if (!this.spec.response.startsWith(part, this.at)) throw new Error(`p11kit server: ${this.spec.name} wrote '${part}' out of signature order`);
    this.at += part.length;
  }

  byte(v: number): this {
    this.take('y');
    this.w.byte(v);
    return this;
  }

  ulong(v: Ulong): this {
    this.take('u');
    this.w.u64(u64Of(v));
    return this;
  }

  version(v: Version): this {
    this.take('v');
    this.w.byte(v.major).byte(v.minor);
    return this;
  }

  /** `s`: exactly `width` bytes, space-padded (cut at a character boundary if longer). */
  spaceString(text: string, width: number): this {
    this.take('s');
    let bytes = utf8.encode(text);
    if (bytes.length > width) {
      let end = width;
      while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
      bytes = bytes.subarray(0, end);
    }
    const out = new Uint8Array(width).fill(0x20);
    out.set(bytes);
    this.w.byteArray(out);
    return this;
  }

  /** `ay` in answer to an `fy` of `capacity`: the bytes if they fit, else their length only. */
  output(data: Uint8Array, capacity: number): this {
    this.take('ay');
    if (capacity === 0 || data.length > capacity) this.w.byte(0).u32(data.length);
    else this.w.byte(1).byteArray(data);
    return this;
  }

  /** `au` in answer to an `fu` of `capacity`. */
  ulongs(values: readonly Ulong[], capacity: number): this {
    this.take('au');
    if (capacity === 0 || values.length > capacity) {
      this.w.byte(0).u32(values.length);
    } else {
      this.w.byte(1).u32(values.length);
      for (const v of values) this.w.u64(u64Of(v));
    }
    return this;
  }

  attributes(answers: readonly AnsweredAttribute[]): this {
    this.take('aA');
    this.w.u32(answers.length);
    for (const a of answers) {
      this.w.u32(a.type);
      if (a.state === 'unavailable') {
        this.w.byte(0);
        continue;
      }
      const bytes = a.state === 'value' ? a.bytes : null;
      const length = a.state === 'value' ? a.bytes.length : a.length;
      this.w.byte(1).u32(length);
      switch (wireKind(a.type)) {
        case 'byte':
          this.w.byte(bytes?.[0] ?? 0);
          break;
        case 'ulong':
          this.w.u64(bytes && bytes.length === 8 ? new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true) : 0n);
          break;
        case 'mechanisms': {
          const n = bytes ? Math.floor(bytes.length / 8) : 0;
          this.w.u32(n);
          for (let i = 0; i < n; i++) this.w.u64(new DataView(bytes!.buffer, bytes!.byteOffset + i * 8, 8).getBigUint64(0, true));
          break;
        }
        default:
          this.w.byteArray(bytes);
      }
    }
    return this;
  }

  finish(): Uint8Array {
    if (this.at !== this.spec.response.length) throw new Error(`p11kit server: ${this.spec.name} reply left incomplete`);
    return this.w.finish();
  }
}

/** A bridge attribute value back to the raw C bytes the wire carries. undefined: not representable. */
export function rawValue(v: AttributeValue | undefined): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  if (typeof v === 'number' || typeof v === 'bigint') return ulongBytes(u64Of(v));
  if (typeof v === 'string') return utf8.encode(v);
  if (Array.isArray(v)) {
    if (v.every((m) => typeof m === 'number')) {
      const out = new Uint8Array(v.length * 8);
      (v as number[]).forEach((m, i) => out.set(ulongBytes(u64Of(m)), i * 8));
      return out;
    }
    return undefined; // a nested template: not served
  }
  const d = v as { year: number; month: number; day: number };
  return utf8.encode(`${d.year}`.padStart(4, '0') + `${d.month}`.padStart(2, '0') + `${d.day}`.padStart(2, '0'));
}
