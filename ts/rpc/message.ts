// Request and response payloads: u32 call id, the signature as a byte array, then the
// arguments in signature order (spec §7.2). Both sides here walk the signature as they go,
// so a request can only be built, and a reply only read, in the order the protocol defines.
import { readAttribute, writeTemplate, type Attribute, type WireAttribute } from './attributes.js';
import { CALL_ERROR, callById, type CallSpec } from './calls.js';
import { CKR } from './constants.js';
import { Pkcs11Error, REMOTE, RpcProtocolError } from './errors.js';
import type { Version } from '../bridge/loader.js';
import { writeMechanism, type Mechanism } from './mechanism.js';
import { WireReader, WireWriter, type UlongInput } from './wire.js';

const ascii = new TextEncoder();
const text = new TextDecoder('utf-8');

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Follows a signature; a mismatch is a bug in this library, not in the peer. */
class SignatureCursor {
  private at = 0;
  constructor(
    private readonly sig: string,
    private readonly fn: string,
  ) {}

  take(part: string): void {
    if (!this.sig.startsWith(part, this.at)) throw new Error(`p11kit-wasm rpc: ${this.fn} signature '${this.sig}' has no '${part}' at ${this.at}`);
    this.at += part.length;
  }

  get complete(): boolean {
    return this.at === this.sig.length;
  }
}

export class RequestBuilder {
  private readonly w: WireWriter;
  private readonly cursor: SignatureCursor;

  constructor(
    readonly spec: CallSpec,
    readonly module = REMOTE,
    /** Bytes reserved in front for the frame's header and options (finishFrame()). */
    headroom = 0,
  ) {
    this.w = new WireWriter(spec.name, module, headroom);
    this.cursor = new SignatureCursor(spec.request, spec.name);
    this.w.u32(spec.id).byteArray(spec.requestBytes);
  }

  byte(v: number): this {
    this.cursor.take('y');
    this.w.byte(v);
    return this;
  }

  ulong(v: UlongInput, what?: string): this {
    this.cursor.take('u');
    this.w.u64(v, what);
    return this;
  }

  /** `ay`: presence byte 1 and the bytes. */
  bytes(data: Uint8Array): this {
    this.cursor.take('ay');
    this.w.byte(1).byteArray(data);
    return this;
  }

  /** `ay` for a pointer that may be NULL (a NULL PIN: protected authentication path). */
  bytesOrNull(data: Uint8Array | null): this {
    this.cursor.take('ay');
    this.w.byte(1).byteArray(data);
    return this;
  }

  /** `fy` / `fu`: the caller's capacity; 0 asks for the size only. */
  byteBuffer(capacity: number): this {
    this.cursor.take('fy');
    this.w.u32(capacity);
    return this;
  }

  ulongBuffer(capacity: number): this {
    this.cursor.take('fu');
    this.w.u32(capacity);
    return this;
  }

  /** `fA`: count, then (type, capacity) pairs; capacity 0 asks for the length only. */
  attributeBuffer(slots: readonly { type: number; capacity: number }[]): this {
    this.cursor.take('fA');
    this.w.u32(slots.length);
    for (const s of slots) this.w.u32(s.type).u32(s.capacity);
    return this;
  }

  template(attrs: readonly Attribute[]): this {
    this.cursor.take('aA');
    writeTemplate(this.w, attrs);
    return this;
  }

  mechanism(mech: Mechanism): this {
    this.cursor.take('M');
    writeMechanism(this.w, mech);
    return this;
  }

  /** `z`: a NUL-terminated string, sent without its NUL. */
  zeroString(s: string): this {
    this.cursor.take('z');
    this.w.byteArray(ascii.encode(s));
    return this;
  }

  finish(): Uint8Array {
    if (!this.cursor.complete) throw new Error(`p11kit-wasm rpc: ${this.spec.name} request left incomplete`);
    return this.w.finish();
  }

  /** The request with the headroom it was built with in front, for RpcConnection.callFrame(). */
  finishFrame(): Uint8Array {
    this.finish();
    return this.w.frame();
  }
}

/** An `ay` reply: bytes, or only the length when the caller's buffer was absent or too small. */
export interface ByteArrayReply {
  data: Uint8Array | null;
  length: number;
}

export interface UlongArrayReply {
  values: number[] | null;
  count: number;
}

export class ResponseParser {
  private readonly r: WireReader;
  private readonly cursor: SignatureCursor;

  /** Checks the call id and signature; an error reply becomes a thrown Pkcs11Error. */
  constructor(
    payload: Uint8Array,
    readonly spec: CallSpec,
    readonly module = REMOTE,
  ) {
    const fn = spec.name;
    this.r = new WireReader(payload, fn, module);
    const id = this.r.u32('call id');
    const sig = this.r.byteArray('signature');
    if (sig === null) throw new RpcProtocolError(fn, 'NULL signature', this.module);
    if (id === spec.id && sameBytes(sig, spec.responseBytes)) {
      this.cursor = new SignatureCursor(spec.response, fn);
      return;
    }
    const signature = text.decode(sig);
    if (id === CALL_ERROR) {
      if (signature !== 'u') throw new RpcProtocolError(fn, `error reply with signature '${signature}'`, this.module);
      const rv = this.r.ulong('error code');
      if (rv === CKR.CKR_OK) throw new RpcProtocolError(fn, 'error reply carrying CKR_OK', this.module);
      if (this.r.remaining !== 0) throw new RpcProtocolError(fn, `${this.r.remaining} stray bytes after an error reply`, this.module);
      throw new Pkcs11Error(rv, fn, module);
    }
    if (id !== spec.id) throw new RpcProtocolError(fn, `reply for call id ${id} (${callById(id)?.name ?? 'unknown'}) to ${fn}`, this.module);
    if (signature !== spec.response) throw new RpcProtocolError(fn, `reply signature '${signature}', expected '${spec.response}'`, this.module);
    this.cursor = new SignatureCursor(spec.response, fn);
  }

  byte(): number {
    this.cursor.take('y');
    return this.r.byte();
  }

  ulong(what?: string): number {
    this.cursor.take('u');
    return this.r.ulong(what);
  }

  version(): Version {
    this.cursor.take('v');
    return { major: this.r.byte('version major'), minor: this.r.byte('version minor') };
  }

  /** `s`: exactly `width` bytes, trailing spaces removed. */
  spaceString(width: number): string {
    this.cursor.take('s');
    const bytes = this.r.byteArray('space-padded string');
    if (bytes === null || bytes.length !== width) {
      throw new RpcProtocolError(this.spec.name, `space-padded string of ${bytes?.length ?? 'NULL'} bytes, expected ${width}`, this.module);
    }
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0x20) end--;
    return text.decode(bytes.subarray(0, end));
  }

  byteArray(): ByteArrayReply {
    this.cursor.take('ay');
    const present = this.r.byte('array presence');
    if (!present) return { data: null, length: this.r.u32('array length') };
    const data = this.r.byteArray() ?? new Uint8Array(0);
    return { data, length: data.length };
  }

  ulongArray(): UlongArrayReply {
    this.cursor.take('au');
    const present = this.r.byte('array presence');
    const count = this.r.u32('array count');
    if (!present) return { values: null, count };
    if (count * 8 > this.r.remaining) throw new RpcProtocolError(this.spec.name, `truncated message reading ${count} CK_ULONGs`, this.module);
    const values: number[] = [];
    for (let i = 0; i < count; i++) values.push(this.r.ulong('array element'));
    return { values, count };
  }

  /** `aA` in reply to an `fA` request: the same types, in the same order. */
  attributes(expected: readonly number[]): WireAttribute[] {
    this.cursor.take('aA');
    const count = this.r.u32('attribute count');
    if (count !== expected.length) throw new RpcProtocolError(this.spec.name, `${count} attributes in reply to ${expected.length}`, this.module);
    const out: WireAttribute[] = [];
    for (let i = 0; i < count; i++) {
      const a = readAttribute(this.r);
      if (a.type !== expected[i]) throw new RpcProtocolError(this.spec.name, `attribute 0x${a.type.toString(16)} in reply where 0x${expected[i]!.toString(16)} was asked`, this.module);
      out.push(a);
    }
    return out;
  }

  /** Everything the signature promised was read, and nothing else is there. */
  done(): void {
    if (!this.cursor.complete) throw new Error(`p11kit-wasm rpc: ${this.spec.name} reply read incompletely`);
    if (this.r.remaining !== 0) throw new RpcProtocolError(this.spec.name, `${this.r.remaining} stray bytes after the reply`, this.module);
  }
}
