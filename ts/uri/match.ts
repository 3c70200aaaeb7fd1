// Matching a URI against what a module reports, with p11-kit's blank-padded comparison: done
// in the wasm core. A URI given as text is parsed there directly (byte-exact); a Uri object is
// sent as its fields.
import { FIELD, RecordWriter, encodeUriFields, textBytes } from './records.js';
import type { UriAttribute, UriFields, UriModuleInfo, UriSlotInfo, UriText, UriTokenInfo } from './types.js';
import { uriCore, type MatchKind } from './wasm.js';
import { UriType } from './types.js';

const CKA_CLASS = 0x0;

function withUri<T>(uri: UriFields | string, fn: (handle: number) => T): T {
  const core = uriCore();
  if (typeof uri === 'string') return core.withParsed(uri, UriType.ANY, fn);
  return core.withRecords(encodeUriFields(uri), fn);
}

function match(uri: UriFields | string, kind: MatchKind, structure: RecordWriter): boolean {
  const records = structure.bytes();
  return withUri(uri, (handle) => uriCore().match(handle, kind, records));
}

// Structures come from modules as space-padded fixed fields; both padded and trimmed work.
function field(w: RecordWriter, num: number, name: string, value: UriText, width: number): void {
  if (typeof value !== 'string' && !(value instanceof Uint8Array))
    throw new TypeError(`p11kit-wasm: ${name} must be a string or a Uint8Array`);
  const bytes = textBytes(value);
  if (bytes.length > width) throw new RangeError(`p11kit-wasm: ${name} is ${bytes.length} bytes; the PKCS#11 field holds ${width}`);
  w.record('F', num, bytes);
}

/** p11_kit_uri_match_module_info: library-description, library-manufacturer, library-version. */
export function matchModuleInfo(uri: UriFields | string, info: UriModuleInfo): boolean {
  const w = new RecordWriter();
  field(w, FIELD.libraryDescription, 'libraryDescription', info.libraryDescription, 32);
  field(w, FIELD.libraryManufacturer, 'manufacturerID', info.manufacturerID, 32);
  const { major, minor } = info.libraryVersion ?? {};
  if (![major, minor].every((n) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255))
    throw new TypeError('p11kit-wasm: libraryVersion needs integer major and minor, each 0..255');
  w.record('V', ((major as number) << 8) | (minor as number));
  return match(uri, 'module', w);
}

/**
 * p11_kit_uri_match_slot_info (slot-description, slot-manufacturer); when slotId is given, a
 * URI slot-id must also equal it, as p11-kit's iterator checks.
 */
export function matchSlot(uri: UriFields | string, info: UriSlotInfo, slotId?: number | bigint): boolean {
  const w = new RecordWriter();
  field(w, FIELD.slotDescription, 'slotDescription', info.slotDescription, 64);
  field(w, FIELD.slotManufacturer, 'manufacturerID', info.manufacturerID, 32);
  if (slotId !== undefined) {
    if (!(typeof slotId === 'bigint' ? slotId >= 0n : Number.isSafeInteger(slotId) && slotId >= 0))
      throw new TypeError('p11kit-wasm: slotId must be a non-negative integer');
    w.record('I', 0, textBytes(String(slotId)));
  }
  return match(uri, 'slot', w);
}

/** p11_kit_uri_match_token_info: token, manufacturer, model, serial. */
export function matchTokenInfo(uri: UriFields | string, info: UriTokenInfo): boolean {
  const w = new RecordWriter();
  field(w, FIELD.token, 'label', info.label, 32);
  field(w, FIELD.manufacturer, 'manufacturerID', info.manufacturerID, 32);
  field(w, FIELD.model, 'model', info.model, 16);
  field(w, FIELD.serial, 'serialNumber', info.serialNumber, 16);
  return match(uri, 'token', w);
}

function classBytes(value: number | bigint): Uint8Array {
  const n = BigInt(value);
  if (n < 0n || n >= 1n << 64n) throw new RangeError('p11kit-wasm: a CKA_CLASS value must fit a CK_ULONG');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

/**
 * p11_kit_uri_match_attributes: each CKA_CLASS, CKA_LABEL or CKA_ID in the template that the URI
 * also has must be equal; attributes either side lacks are ignored.
 */
export function matchAttributes(uri: UriFields | string, attributes: readonly UriAttribute[]): boolean {
  if (!Array.isArray(attributes)) throw new TypeError('p11kit-wasm: attributes must be an array of {type, value}');
  const w = new RecordWriter();
  for (const attr of attributes) {
    if (!Number.isInteger(attr?.type) || attr.type < 0 || attr.type > 0xffffffff)
      throw new TypeError('p11kit-wasm: an attribute type must be a CK_ATTRIBUTE_TYPE number');
    const { value } = attr;
    let bytes: Uint8Array;
    if (value instanceof Uint8Array) bytes = value;
    else if (typeof value === 'string') bytes = textBytes(value);
    else if ((typeof value === 'number' && Number.isInteger(value)) || typeof value === 'bigint') {
      if (attr.type !== CKA_CLASS) throw new TypeError('p11kit-wasm: only CKA_CLASS takes a number value');
      bytes = classBytes(value);
    } else throw new TypeError('p11kit-wasm: an attribute value must be a Uint8Array, string or integer');
    w.record('A', attr.type, bytes);
  }
  return match(uri, 'attributes', w);
}
