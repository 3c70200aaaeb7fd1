// The URI record stream of wasm/uri.h, both ways: a Uri object (or a PKCS#11 structure) into
// records for the core, and the core's records out into a Uri object. Binary-safe: values are
// bytes, written as UTF-8 when given as strings.
import { UriError, uriErrorCodeOf, type UriErrorCode } from './error.js';
import type { Uri, UriFields, UriObjectType, UriText, UriTextField, UriVendorQuery } from './types.js';

/** Field numbers of 'F' records (P11W_URI_F_* in wasm/uri.h). */
export const FIELD = {
  libraryDescription: 0,
  libraryManufacturer: 1,
  slotDescription: 2,
  slotManufacturer: 3,
  token: 4,
  manufacturer: 5,
  model: 6,
  serial: 7,
  id: 8,
  object: 9,
  pinSource: 10,
  pinValue: 11,
  moduleName: 12,
  modulePath: 13,
} as const;
type FieldKey = keyof typeof FIELD;
const FIELD_KEYS = Object.keys(FIELD) as FieldKey[];
const STRING_KEYS = FIELD_KEYS.filter((k) => k !== 'id');

/** CKO_* numbers of the classes a URI can name. */
export const OBJECT_CLASSES: Readonly<Record<UriObjectType, number>> = {
  data: 0,
  cert: 1,
  public: 2,
  private: 3,
  'secret-key': 4,
};
const CLASS_NAMES = new Map(Object.entries(OBJECT_CLASSES).map(([name, n]) => [n, name as UriObjectType]));

const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: it is part of the value, not a marker to drop.
const fromUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes to write for a text value: its raw form while the string is still what those bytes decode to. */
function exact(value: string, raw: Uint8Array | undefined): Uint8Array | string {
  if (raw === undefined) return value;
  if (!(raw instanceof Uint8Array)) typeError('raw URI values must be Uint8Arrays');
  return fromUtf8.decode(raw) === value ? raw : value;
}
const EMPTY = new Uint8Array(0);

export function textBytes(value: UriText): Uint8Array {
  return typeof value === 'string' ? utf8.encode(value) : value;
}

/** Builds a record stream in JavaScript memory; strings are written as UTF-8 in place. */
export class RecordWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.len + extra, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  /** Writes one value (bytes or a string as UTF-8) with its u32 length prefix. */
  private value(v: Uint8Array | string): void {
    const at = this.len;
    let n: number;
    if (typeof v === 'string') {
      this.ensure(4 + v.length * 3);
      n = utf8.encodeInto(v, this.buf.subarray(at + 4, at + 4 + v.length * 3)).written;
    } else {
      this.ensure(4 + v.length);
      this.buf.set(v, at + 4);
      n = v.length;
    }
    this.view.setUint32(at, n, true);
    this.len = at + 4 + n;
  }

  record(tag: string, num: number, a: Uint8Array | string = EMPTY, b: Uint8Array | string = EMPTY): this {
    this.ensure(5);
    this.buf[this.len] = tag.charCodeAt(0);
    this.view.setUint32(this.len + 1, num >>> 0, true);
    this.len += 5;
    this.value(a);
    this.value(b);
    return this;
  }

  /** The stream so far; valid until the writer is reset or written again. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): this {
    this.len = 0;
    return this;
  }
}

// encodeUriFields' writer: its bytes are copied into the core before anything else writes.
const fieldsWriter = new RecordWriter();

function typeError(what: string): never {
  throw new TypeError(`p11kit-wasm: ${what}`);
}

/** The records describing a Uri (or any subset of one) for p11w_uri_from_records; valid until the next call. */
export function encodeUriFields(fields: UriFields): Uint8Array {
  if (!(typeof fields === 'object' && fields !== null)) typeError('a URI must be an object of fields');
  const w = fieldsWriter.reset();
  for (const key of STRING_KEYS) {
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') typeError(`URI field ${key} must be a string`);
    w.record('F', FIELD[key], exact(value as string, fields.raw?.[key as UriTextField]));
  }
  if (fields.id !== undefined) {
    if (!(fields.id instanceof Uint8Array)) typeError('URI field id must be a Uint8Array');
    w.record('F', FIELD.id, fields.id);
  }
  if (fields.libraryVersion !== undefined) {
    const { major, minor } = fields.libraryVersion ?? {};
    for (const part of [major, minor]) {
      if (!Number.isInteger(part) || (part as number) < 0 || (part as number) > 254)
        throw new UriError('BAD_VERSION', 'libraryVersion needs integer major and minor, each 0..254', {
          attribute: 'library-version',
        });
    }
    w.record('V', ((major as number) << 8) | (minor as number));
  }
  if (fields.slotId !== undefined) {
    const id = fields.slotId;
    if (!(typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id)))) typeError('URI field slotId must be a bigint or a safe integer');
    w.record('I', 0, String(id));
  }
  if (fields.type !== undefined) {
    const n = Object.hasOwn(OBJECT_CLASSES, fields.type) ? OBJECT_CLASSES[fields.type] : undefined;
    if (n === undefined) typeError(`URI field type must be one of ${Object.keys(OBJECT_CLASSES).join(', ')}`);
    w.record('C', n);
  }
  for (const q of fields.vendor ?? []) {
    if (!(typeof q?.name === 'string' && typeof q?.value === 'string')) typeError('vendor query attributes are {name, value} strings');
    w.record('Q', 0, q.name, exact(q.value, q.rawValue));
  }
  if (fields.unrecognized) w.record('X', 1);
  return w.bytes();
}

export interface CoreFailure {
  code: UriErrorCode;
  detail: string;
  attribute?: string;
  byteOffset?: number;
}

/** Set by text(): a copy of the last value's bytes when they are not UTF-8, else undefined. */
let notUtf8: Uint8Array | undefined;

/** Short ASCII is the common case; TextDecoder's call cost dominates there. */
function text(heap: Uint8Array, start: number, len: number): string {
  notUtf8 = undefined;
  if (len > 32) return utf8Text(heap.subarray(start, start + len));
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = heap[i];
    if (c >= 0x80) return utf8Text(heap.subarray(start, start + len));
    s += String.fromCharCode(c);
  }
  return s;
}

function utf8Text(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    notUtf8 = bytes.slice(); // kept so that formatting gives back exactly these bytes
    return fromUtf8.decode(bytes);
  }
}

/** Reads the core's output records: the parsed Uri, or why parsing failed. */
export function decodeUriRecords(heap: Uint8Array, ptr: number, len: number): { uri: Uri; failure?: CoreFailure } {
  const view = new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  const uri: Uri = { vendor: [], unrecognized: false, ignored: [] };
  const fields = uri as unknown as Record<string, unknown>;
  let failure: CoreFailure | undefined;
  const end = ptr + len;
  for (let at = ptr; at < end; ) {
    const tag = heap[at];
    const num = view.getUint32(at + 1, true);
    const aLen = view.getUint32(at + 5, true);
    const a = at + 9;
    const bLen = view.getUint32(a + aLen, true);
    const b = a + aLen + 4;
    at = b + bLen;
    if (at > end) throw new Error('p11kit-wasm: truncated URI records from the wasm core');
    switch (tag) {
      case 0x46: // 'F'
        if (num === FIELD.id) uri.id = heap.slice(a, a + aLen);
        else {
          fields[FIELD_KEYS[num]] = text(heap, a, aLen);
          if (notUtf8) (uri.raw ??= {})[FIELD_KEYS[num] as UriTextField] = notUtf8;
        }
        break;
      case 0x56: // 'V'
        uri.libraryVersion = { major: num >>> 8, minor: num & 0xff };
        break;
      case 0x49: // 'I'
        uri.slotId = BigInt(text(heap, a, aLen));
        break;
      case 0x43: { // 'C'
        const name = CLASS_NAMES.get(num);
        if (name) uri.type = name;
        break;
      }
      case 0x51: // 'Q'
      {
        const q: UriVendorQuery = { name: text(heap, a, aLen), value: text(heap, b, bLen) };
        if (notUtf8) q.rawValue = notUtf8;
        uri.vendor.push(q);
      }
        break;
      case 0x58: // 'X'
        uri.unrecognized = true;
        break;
      case 0x55: // 'U'
        uri.ignored.push({ name: text(heap, a, aLen), reason: text(heap, b, bLen) });
        break;
      case 0x45: // 'E'
        failure = { code: uriErrorCodeOf(-num), detail: text(heap, a, aLen) };
        if (bLen) failure.attribute = text(heap, b, bLen);
        break;
      case 0x50: // 'P'
        if (failure) failure.byteOffset = num;
        break;
    }
  }
  return failure ? { uri, failure } : { uri };
}
