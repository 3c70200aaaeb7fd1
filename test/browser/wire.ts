// What the test relay sends over its WebSocket: the structured-clone data our service protocol
// uses (plain objects and arrays, Uint8Array, ArrayBuffer, bigint, undefined) as JSON with tags.
// Used on both ends: bundled into the Chromium page and imported by the Node relay.

const TAGS = ['$u', '$b', '$8', '$a'] as const;

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function walkOut(v: unknown, depth: number): unknown {
  if (depth > 64) throw new RangeError('wire: too deep');
  if (v === undefined) return { $u: 1 };
  if (typeof v === 'bigint') return { $b: v.toString() };
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return { $8: toBase64(v) };
  if (v instanceof ArrayBuffer) return { $a: toBase64(new Uint8Array(v)) };
  if (Array.isArray(v)) return v.map((x) => walkOut(x, depth + 1));
  const out: Record<string, unknown> = {};
  // A key of the message that starts with '$' gets one more, so it never reads as a tag.
  for (const [k, x] of Object.entries(v)) out[k.startsWith('$') ? `$${k}` : k] = walkOut(x, depth + 1);
  return out;
}

function walkIn(v: unknown, depth: number): unknown {
  if (depth > 64) throw new RangeError('wire: too deep');
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => walkIn(x, depth + 1));
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && (TAGS as readonly string[]).includes(keys[0])) {
    const [k] = keys;
    if (k === '$u') return undefined;
    if (k === '$b') return BigInt(o.$b as string);
    const bytes = fromBase64(String(o[k]));
    return k === '$8' ? bytes : bytes.buffer;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k.startsWith('$') ? k.slice(1) : k] = walkIn(x, depth + 1);
  return out;
}

export const encodeWire = (message: unknown): string => JSON.stringify(walkOut(message, 0));
export const decodeWire = (text: string): unknown => walkIn(JSON.parse(text), 0);
