// The shapes PKCS#11 repeats: an output buffer behind a length pointer, and an array of
// CK_ULONGs behind a count pointer. Both query the size first, allocate, fill, and retry on
// CKR_BUFFER_TOO_SMALL; the module's answer never exceeds what we allocated.
import koffi from 'koffi';
import { CKR } from './ckr.js';
import { BridgeError } from './errors.js';
import type { FunctionName } from './functions.js';
import { L } from './layout.js';
import { check, MAX_COUNT, MAX_OUTPUT, MAX_RETRIES, plausible, readBounded, req, type Op, type OpContext } from './op.js';
import type { RawArg } from './raw.js';

function exhausted(c: OpContext, fn: FunctionName): BridgeError {
  return new BridgeError('RETRY_EXHAUSTED', `still CKR_BUFFER_TOO_SMALL after ${MAX_RETRIES} retries`, fn, c.module);
}

/**
 * Functions whose output length does not depend on the input (signatures, digests): after the
 * first call we try the last length straight away and fall back to the query on
 * CKR_BUFFER_TOO_SMALL, which PKCS#11 says leaves the operation active.
 */
const FIXED_OUTPUT = new Set<FunctionName>(['C_Sign', 'C_SignFinal', 'C_Digest', 'C_DigestFinal']);

/** fn(...lead, pOut, pulOutLen, ...trail) → the output bytes. */
export function* outputBytes(c: OpContext, fn: FunctionName, lead: RawArg[], trail: RawArg[] = []): Op<Uint8Array> {
  const lenAddr = c.mem.alloc(L.ulong);
  const hint = c.hints && FIXED_OUTPUT.has(fn) ? c.hints.get(fn) : undefined;
  if (hint !== undefined) {
    const out = c.mem.alloc(hint);
    c.mem.setUlong(lenAddr, hint);
    const rv = yield req(fn, ...lead, out, lenAddr, ...trail);
    if (rv !== CKR.CKR_BUFFER_TOO_SMALL) {
      check(c, fn, rv);
      return c.mem.read(out, readBounded(c, fn, lenAddr, hint, 'length'));
    }
    c.hints!.delete(fn);
    c.mem.setUlong(lenAddr, 0);
  }
  check(c, fn, yield req(fn, ...lead, 0, lenAddr, ...trail));
  let size = plausible(c, fn, c.mem.ulong(lenAddr), MAX_OUTPUT, 'length');
  for (let attempt = 0; ; attempt++) {
    // Outputs land in the arena and leave as exact-size copies (never a view of shared memory).
    // Even zero bytes get a real pointer: NULL would make the call a length query again.
    const out = c.mem.alloc(size);
    c.mem.setUlong(lenAddr, size);
    const rv = yield req(fn, ...lead, out, lenAddr, ...trail);
    if (rv === CKR.CKR_BUFFER_TOO_SMALL) {
      if (attempt >= MAX_RETRIES) throw exhausted(c, fn);
      const claimed = plausible(c, fn, c.mem.ulong(lenAddr), MAX_OUTPUT, 'length');
      size = claimed > size ? claimed : Math.min(MAX_OUTPUT, Math.max(64, size * 2));
      continue;
    }
    check(c, fn, rv);
    const n = readBounded(c, fn, lenAddr, size, 'length');
    if (c.hints && FIXED_OUTPUT.has(fn) && n > 0) c.hints.set(fn, n);
    return c.mem.read(out, n);
  }
}

/** fn(...lead, pList, pulCount) → the CK_ULONG values (slot IDs, mechanism types). */
export function* ulongList(c: OpContext, fn: FunctionName, lead: RawArg[]): Op<number[]> {
  const countAddr = c.mem.alloc(L.ulong);
  check(c, fn, yield req(fn, ...lead, 0, countAddr));
  let count = plausible(c, fn, c.mem.ulong(countAddr), MAX_COUNT, 'count');
  for (let attempt = 0; ; attempt++) {
    // One spare entry: a list that grew by one between the calls still fits.
    const capacity = count + 1;
    const list = c.mem.alloc(capacity * L.ulong);
    c.mem.setUlong(countAddr, capacity);
    const rv = yield req(fn, ...lead, list, countAddr);
    if (rv === CKR.CKR_BUFFER_TOO_SMALL) {
      if (attempt >= MAX_RETRIES) throw exhausted(c, fn);
      const claimed = plausible(c, fn, c.mem.ulong(countAddr), MAX_COUNT, 'count');
      count = claimed > capacity ? claimed : Math.min(MAX_COUNT, capacity * 2);
      continue;
    }
    check(c, fn, rv);
    const n = readBounded(c, fn, countAddr, capacity, 'count');
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const v = c.mem.ulong(list + i * L.ulong);
      if (typeof v !== 'number') throw new BridgeError('UNTRUSTED_VALUE', `list entry ${v} does not fit in a JavaScript number`, fn, c.module);
      out[i] = v;
    }
    return out;
  }
}

/** A PIN, label or other secret-ish input: bytes at an address, and its length. NULL for null. */
export type Secret = string | Uint8Array | null | undefined;

export function putSecret(c: OpContext, s: Secret): [addr: number, len: number] {
  if (s === null || s === undefined) return [0, 0];
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return [c.mem.put(bytes), bytes.length];
}

/** Inputs at least this big go to the module in place (sync calls) rather than copied. */
const DIRECT_MIN = 4096;

/** Bytes in: a pointer argument and the length (a valid address even for zero bytes). */
export function putBytes(c: OpContext, data: Uint8Array): [ptr: RawArg, len: number] {
  if (!(data instanceof Uint8Array)) throw new BridgeError('BAD_ARGUMENT', 'expected bytes (a Uint8Array or Buffer)');
  return c.direct && data.length > DIRECT_MIN ? [koffi.address(data), data.length] : [c.mem.put(data), data.length];
}
