// Results leave the service as exact-size copies. A typed-array view is cloned with its whole
// backing ArrayBuffer: a 32-byte answer sliced from Node's 8 KB Buffer pool would carry the
// other 8160 bytes along — other calls' data, possibly secrets — into the client (a renderer,
// say), and cost the copy of all of them. Views that do not span their buffer are copied.

/** Whether the value is a view over only part of its buffer. */
const partial = (v: ArrayBufferView) => v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength;

const MAX_DEPTH = 32;

/** Returns `value` with every partial view replaced by an exact copy (plain arrays and objects are walked). */
export function compact<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (ArrayBuffer.isView(value)) {
    if (!partial(value)) return value;
    return (value instanceof DataView ? new DataView(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice()) as T;
  }
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const c = compact(v, depth + 1);
      if (c !== v) (out ??= value.slice())[i] = c;
    });
    return (out ?? value) as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const c = compact(v, depth + 1);
    if (c !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = c;
  }
  return (out ?? value) as T;
}

/** compact() applied to a result that may be a promise. */
export function compactResult(r: unknown): unknown {
  return r instanceof Promise ? r.then((v) => compact(v)) : compact(r);
}

/** The object's methods (own and inherited), each returning compacted results. */
export function compactingMethods(api: object): Record<string, (...args: unknown[]) => unknown> {
  const out: Record<string, (...args: unknown[]) => unknown> = {};
  for (let p: object | null = api; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      const fn = (api as Record<string, unknown>)[name];
      if (name === 'constructor' || name in out || typeof fn !== 'function') continue;
      out[name] = (...args: unknown[]) => compactResult((fn as (...a: unknown[]) => unknown).apply(api, args));
    }
  }
  return out;
}
