// Typed calls on objects: create, copy, destroy, size, attributes, search.
import { CKR } from './ckr.js';
import { BridgeError } from './errors.js';
import { attributeKind } from './attribute-kinds.js';
import { decodeValue, encodeQuery, encodeTemplate, returnedLength, type Attribute, type AttributeResult, type RawAttribute, type AttributeValue } from './attributes.js';
import { L } from './layout.js';
import { check, MAX_FOUND_OBJECTS, MAX_OUTPUT, tooManyFound, MAX_RETRIES, plausible, readHandle, req, type Op, type OpContext } from './op.js';

import type { ObjectHandle, ObjectRef, SessionHandle } from './handles.js';

type H = SessionHandle;
const A = L.attribute;
const GET = 'C_GetAttributeValue';
/** Most entries we accept in one nested template (CKA_WRAP_TEMPLATE and friends). */
const MAX_NESTED = 4096;

export function* createObject(c: OpContext, session: H, template: readonly Attribute[]): Op<ObjectHandle> {
  const t = encodeTemplate(c.mem, template);
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_CreateObject', yield req('C_CreateObject', session, t, template.length, out));
  return readHandle(c, 'C_CreateObject', out) as ObjectHandle;
}

export function* copyObject(c: OpContext, session: H, object: ObjectRef, template: readonly Attribute[] = []): Op<ObjectHandle> {
  const t = encodeTemplate(c.mem, template);
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_CopyObject', yield req('C_CopyObject', session, object, t, template.length, out));
  return readHandle(c, 'C_CopyObject', out) as ObjectHandle;
}

export function* destroyObject(c: OpContext, session: H, object: ObjectRef): Op<void> {
  check(c, 'C_DestroyObject', yield req('C_DestroyObject', session, object));
}

export function* getObjectSize(c: OpContext, session: H, object: ObjectRef): Op<number | bigint> {
  const out = c.mem.alloc(L.ulong);
  check(c, 'C_GetObjectSize', yield req('C_GetObjectSize', session, object, out));
  return c.mem.ulong(out);
}

export function* setAttributeValue(c: OpContext, session: H, object: ObjectRef, template: readonly Attribute[]): Op<void> {
  const t = encodeTemplate(c.mem, template);
  check(c, 'C_SetAttributeValue', yield req('C_SetAttributeValue', session, object, t, template.length));
}

/** Results that still fill the other attributes (PKCS#11 §5.7 C_GetAttributeValue). */
function partial(rv: number): boolean {
  return rv === CKR.CKR_OK || rv === CKR.CKR_ATTRIBUTE_SENSITIVE || rv === CKR.CKR_ATTRIBUTE_TYPE_INVALID;
}

/** One buffer we gave the module: where, how big, and for nested templates the inner entries. */
interface Slot {
  addr: number;
  cap: number;
  inner?: { count: number; bufs: { addr: number; cap: number }[] };
}

/**
 * C_GetAttributeValue for `types`: a length query, then the values (then, for attribute-array
 * attributes, their members' values), retried while CKR_BUFFER_TOO_SMALL says lengths grew.
 * Unavailable attributes (sensitive, unknown to the object) come back with value undefined.
 */
export function* getAttributeValue(c: OpContext, session: H, object: ObjectRef, types: readonly number[]): Op<AttributeResult[]> {
  const n = types.length;
  for (let attempt = 0; ; attempt++) {
    const base = encodeQuery(c.mem, types);
    let rv: number = yield req(GET, session, object, base, n);
    if (!partial(rv)) check(c, GET, rv);
    const slots: (Slot | null)[] = [];
    for (let i = 0; i < n; i++) {
      const len = returnedLength(c.mem, base, i);
      if (len === -1) {
        slots.push(null);
        continue;
      }
      const cap = plausible(c, GET, len, MAX_OUTPUT, 'length');
      const at = base + i * A.size;
      if (attributeKind(types[i]) === 'attributes') {
        if (cap % A.size !== 0 || cap / A.size > MAX_NESTED) {
          throw new BridgeError('UNTRUSTED_LENGTH', `attribute array of ${cap} bytes is not a whole number of CK_ATTRIBUTEs`, GET, c.module);
        }
        const count = cap / A.size;
        slots.push({ addr: c.mem.alloc(cap), cap, inner: { count, bufs: [] } });
      } else {
        slots.push({ addr: c.mem.alloc(cap), cap });
      }
      c.mem.setPtr(at + A.pValue, slots[i]!.addr);
      c.mem.setUlong(at + A.ulValueLen, cap);
    }
    rv = yield req(GET, session, object, base, n);
    if (rv === CKR.CKR_BUFFER_TOO_SMALL && attempt < MAX_RETRIES) continue;
    if (!partial(rv)) check(c, GET, rv);

    // Members of attribute arrays: the module filled their types and lengths; now their values.
    const nested = slots.filter((s): s is Slot => !!s?.inner);
    if (nested.length) {
      for (const s of nested) {
        for (let j = 0; j < s.inner!.count; j++) {
          const at = s.addr + j * A.size;
          const len = returnedLength(c.mem, s.addr, j);
          const cap = len === -1 ? 0 : plausible(c, GET, len, MAX_OUTPUT, 'length');
          const addr = c.mem.alloc(cap);
          s.inner!.bufs.push({ addr, cap });
          c.mem.setPtr(at + A.pValue, addr);
          c.mem.setUlong(at + A.ulValueLen, cap);
        }
      }
      rv = yield req(GET, session, object, base, n);
      if (rv === CKR.CKR_BUFFER_TOO_SMALL && attempt < MAX_RETRIES) continue;
      if (!partial(rv)) check(c, GET, rv);
    }
    return types.map((type, i) => ({ type, value: decodeSlot(c, base, i, type, slots[i]) }));
  }
}

function bounded(c: OpContext, len: number | bigint, cap: number): number {
  if (typeof len !== 'number' || len > cap) {
    throw new BridgeError('UNTRUSTED_LENGTH', `returned length ${len} exceeds the ${cap} bytes we provided`, GET, c.module);
  }
  return len;
}

function decodeSlot(c: OpContext, base: number, i: number, type: number, slot: Slot | null): AttributeValue | undefined {
  const len = returnedLength(c.mem, base, i);
  if (!slot || len === -1) return undefined;
  const size = bounded(c, len, slot.cap);
  if (!slot.inner) return decodeValue(attributeKind(type), c.mem.read(slot.addr, size));
  if (size % A.size !== 0) throw new BridgeError('UNTRUSTED_LENGTH', `attribute array length ${size}`, GET, c.module);
  const members: RawAttribute[] = [];
  for (let j = 0; j < size / A.size; j++) {
    const innerType = Number(c.mem.ulong(slot.addr + j * A.size + A.type));
    const innerLen = returnedLength(c.mem, slot.addr, j);
    const buf = slot.inner.bufs[j];
    if (innerLen === -1 || !buf) continue;
    const kind = attributeKind(innerType);
    const bytes = c.mem.read(buf.addr, bounded(c, innerLen, buf.cap));
    members.push({ type: innerType, value: kind === 'attributes' ? bytes : decodeValue(kind, bytes) });
  }
  return members;
}

export function* findObjectsInit(c: OpContext, session: H, template: readonly Attribute[] = []): Op<void> {
  const t = encodeTemplate(c.mem, template);
  check(c, 'C_FindObjectsInit', yield req('C_FindObjectsInit', session, t, template.length));
}

export function* findObjects(c: OpContext, session: H, max = 64): Op<ObjectHandle[]> {
  const list = c.mem.alloc(Math.max(1, max) * L.ulong);
  const count = c.mem.alloc(L.ulong);
  check(c, 'C_FindObjects', yield req('C_FindObjects', session, list, max, count));
  const got = c.mem.ulong(count);
  if (typeof got !== 'number' || got > max) {
    throw new BridgeError('UNTRUSTED_COUNT', `returned count ${got} exceeds the ${max} we asked for`, 'C_FindObjects', c.module);
  }
  const out: ObjectHandle[] = [];
  for (let i = 0; i < got; i++) out.push(readHandle(c, 'C_FindObjects', list + i * L.ulong) as ObjectHandle);
  return out;
}

export function* findObjectsFinal(c: OpContext, session: H): Op<void> {
  check(c, 'C_FindObjectsFinal', yield req('C_FindObjectsFinal', session));
}

/** Init, FindObjects in batches until one comes back short (or too many came), Final (also after a failure). */
export function* findAllObjects(c: OpContext, session: H, template: readonly Attribute[] = [], batch = 64): Op<ObjectHandle[]> {
  yield* findObjectsInit(c, session, template);
  const all: ObjectHandle[] = [];
  try {
    for (;;) {
      c.mem.reset();
      const got = yield* findObjects(c, session, batch);
      all.push(...got);
      if (got.length < batch) break;
      if (all.length >= MAX_FOUND_OBJECTS) throw tooManyFound(c.module);
    }
  } finally {
    const rv: number = yield req('C_FindObjectsFinal', session);
    if (rv !== CKR.CKR_OK && rv !== CKR.CKR_OPERATION_NOT_INITIALIZED) check(c, 'C_FindObjectsFinal', rv);
  }
  return all;
}
