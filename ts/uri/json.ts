// A JSON form of a Uri, for the CLI and for storing URIs as data: `id` as lower-case hex,
// `slotId` as a decimal string, the raw bytes of values that are not UTF-8 (`raw`, a vendor
// query's `rawValue`) as hex, everything else as in Uri.
import type { Uri, UriFields, UriObjectType, UriTextField, UriVendorQuery, UriVersion } from './types.js';
import { clip } from '../wasm/echo.js';

export interface UriJson {
  libraryDescription?: string;
  libraryManufacturer?: string;
  libraryVersion?: UriVersion;
  slotDescription?: string;
  slotManufacturer?: string;
  slotId?: string;
  token?: string;
  manufacturer?: string;
  model?: string;
  serial?: string;
  id?: string;
  object?: string;
  type?: UriObjectType;
  pinSource?: string;
  pinValue?: string;
  moduleName?: string;
  modulePath?: string;
  vendor?: { name: string; value: string; rawValue?: string }[];
  raw?: Partial<Record<UriTextField, string>>;
  unrecognized?: boolean;
  ignored?: Uri['ignored'];
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
function fromHex(h: unknown, what: string): Uint8Array {
  if (typeof h !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(h)) fail(`${what} must be a hex string`);
  return Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
}

const STRING_KEYS = [
  'libraryDescription', 'libraryManufacturer', 'slotDescription', 'slotManufacturer', 'token', 'manufacturer',
  'model', 'serial', 'object', 'type', 'pinSource', 'pinValue', 'moduleName', 'modulePath',
] as const;
const KEYS = new Set<string>([...STRING_KEYS, 'libraryVersion', 'slotId', 'id', 'vendor', 'raw', 'unrecognized', 'ignored']);

/** The JSON form; pinValue is left out unless asked for (it is a secret). */
export function uriToJson(uri: UriFields, options: { includePinValue?: boolean } = {}): UriJson {
  const out: UriJson = {};
  for (const key of STRING_KEYS) {
    if (uri[key] === undefined || (key === 'pinValue' && !options.includePinValue)) continue;
    (out as Record<string, unknown>)[key] = uri[key];
  }
  if (uri.libraryVersion) out.libraryVersion = { major: uri.libraryVersion.major, minor: uri.libraryVersion.minor };
  if (uri.slotId !== undefined) out.slotId = String(uri.slotId);
  if (uri.id) out.id = Array.from(uri.id, (b) => b.toString(16).padStart(2, '0')).join('');
  out.vendor = (uri.vendor ?? []).map((q) => ({ name: q.name, value: q.value, ...(q.rawValue ? { rawValue: toHex(q.rawValue) } : {}) }));
  const raw = Object.entries(uri.raw ?? {}).filter(([k]) => k !== 'pinValue' || options.includePinValue);
  if (raw.length) out.raw = Object.fromEntries(raw.map(([k, v]) => [k, toHex(v)]));
  out.unrecognized = !!uri.unrecognized;
  if (uri.ignored?.length) out.ignored = uri.ignored.map((i) => ({ name: i.name, reason: i.reason }));
  return out;
}

function fail(what: string): never {
  throw new TypeError(`p11kit-wasm: URI JSON: ${what}`);
}

/** Reads the JSON form back into fields formatUri takes; unknown keys and wrong types throw. */
export function uriFromJson(json: unknown): UriFields {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('expected an object of URI fields');
  const obj = json as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !KEYS.has(k));
  if (unknown.length) fail(`unknown field(s) ${clip(unknown.join(', '))}; known: ${[...KEYS].join(', ')}`);
  const out: Record<string, unknown> = {};
  for (const key of STRING_KEYS) {
    if (obj[key] === undefined) continue;
    if (typeof obj[key] !== 'string') fail(`${key} must be a string`);
    out[key] = obj[key];
  }
  if (obj.libraryVersion !== undefined) {
    const v = obj.libraryVersion as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || typeof v.major !== 'number' || typeof v.minor !== 'number')
      fail('libraryVersion must be {"major": n, "minor": n}');
    out.libraryVersion = { major: v.major, minor: v.minor };
  }
  if (obj.slotId !== undefined) {
    const s = obj.slotId;
    if (!(typeof s === 'string' && /^[0-9]+$/.test(s)) && !(typeof s === 'number' && Number.isSafeInteger(s) && s >= 0))
      fail('slotId must be a decimal string or a non-negative integer');
    out.slotId = BigInt(s as string | number);
  }
  if (obj.id !== undefined) {
    if (typeof obj.id !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(obj.id)) fail('id must be a hex string');
    out.id = Uint8Array.from(obj.id.match(/../g) ?? [], (h) => parseInt(h, 16));
  }
  if (obj.vendor !== undefined) {
    if (!Array.isArray(obj.vendor) || !obj.vendor.every((q) => typeof q?.name === 'string' && typeof q?.value === 'string'))
      fail('vendor must be an array of {"name": string, "value": string}');
    out.vendor = (obj.vendor as { name: string; value: string; rawValue?: unknown }[]).map((q): UriVendorQuery => ({
      name: q.name,
      value: q.value,
      ...(q.rawValue !== undefined ? { rawValue: fromHex(q.rawValue, 'vendor rawValue') } : {}),
    }));
  }
  if (obj.raw !== undefined) {
    if (typeof obj.raw !== 'object' || obj.raw === null || Array.isArray(obj.raw)) fail('raw must be an object of hex strings');
    const raw: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(obj.raw)) {
      if (!(STRING_KEYS as readonly string[]).includes(k) || k === 'type') fail(`raw.${clip(k)} is not a text field`);
      raw[k] = fromHex(v, `raw.${k}`);
    }
    out.raw = raw;
  }
  if (obj.unrecognized !== undefined) {
    if (typeof obj.unrecognized !== 'boolean') fail('unrecognized must be a boolean');
    out.unrecognized = obj.unrecognized;
  }
  return out as UriFields;
}
