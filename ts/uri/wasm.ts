// Calls into the URI part of the wasm core (wasm/uri.h). Every p11w_uri handle made here is
// freed before the call that made it returns; inputs go through one reusable scratch block so
// a parse costs no JavaScript-side allocation in the core's heap.
import { core, type Core } from '../wasm/core.js';
import { UriError } from './error.js';
import { decodeUriRecords, type CoreFailure } from './records.js';
import type { Uri } from './types.js';

interface UriExports {
  p11w_uri_parse(text: number, len: number, type: number): number;
  p11w_uri_from_records(data: number, len: number): number;
  p11w_uri_result(uri: number): number;
  p11w_uri_output(uri: number, lenOut: number): number;
  p11w_uri_format(uri: number, type: number, flags: number, lenOut: number): number;
  p11w_uri_free(uri: number): void;
  p11w_uri_match_module(uri: number, data: number, len: number): number;
  p11w_uri_match_slot(uri: number, data: number, len: number): number;
  p11w_uri_match_token(uri: number, data: number, len: number): number;
  p11w_uri_match_attributes(uri: number, data: number, len: number): number;
  p11w_uri_heap_in_use(): number;
  p11w_uri_normalize(text: number, len: number, type: number, flags: number, lenOut: number): number;
  p11w_uri_normalized(): number;
}

export type MatchKind = 'module' | 'slot' | 'token' | 'attributes';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8');

// Node's own encoders, straight between strings and the core's memory (no subarray, no
// TextEncoder/TextDecoder round): UTF-8 in, and ASCII out (formatted URIs are ASCII: the core
// percent-encodes every other byte).
interface NodeCodecs {
  utf8Write(this: Uint8Array, text: string, offset: number, length: number): number;
  latin1Slice(this: Uint8Array, start: number, end: number): string;
}
const { utf8Write, latin1Slice } = Buffer.prototype as unknown as NodeCodecs;

/** Why the last parse failed: kept as plain values until the API edge makes the UriError. */
const OUT_OF_MEMORY: CoreFailure = { code: 'UNEXPECTED', detail: 'out of memory' };

export class UriCore {
  private readonly fns: UriExports;
  private scratch = 0; // [u32 out-length][input bytes…]
  private scratchSize = 0;
  private lastFailure: CoreFailure = OUT_OF_MEMORY;
  /** Whether the last text put in was ASCII (its byte offsets are string offsets). */
  private lastAscii = true;

  constructor(private readonly core: Core) {
    const names: (keyof UriExports)[] = [
      'p11w_uri_parse', 'p11w_uri_from_records', 'p11w_uri_result', 'p11w_uri_output', 'p11w_uri_format',
      'p11w_uri_free', 'p11w_uri_match_module', 'p11w_uri_match_slot', 'p11w_uri_match_token',
      'p11w_uri_match_attributes', 'p11w_uri_heap_in_use', 'p11w_uri_normalize', 'p11w_uri_normalized',
    ];
    this.fns = Object.fromEntries(names.map((n) => [n, core.fn(n)])) as unknown as UriExports;
  }

  /** The u32 a core call wrote to the scratch block's length slot (malloc aligns it). */
  private outLen(): number {
    return this.core.heap32[this.scratch >>> 2];
  }

  /** Room for `bytes` input bytes after the length slot; returns the input's address. */
  private reserve(bytes: number): number {
    if (bytes + 8 > this.scratchSize) {
      if (this.scratch) this.core.exports.p11w_free(this.scratch);
      const size = Math.max(256, 2 ** Math.ceil(Math.log2(bytes + 8)));
      this.scratch = this.core.exports.p11w_alloc(size);
      this.scratchSize = this.scratch ? size : 0;
      if (!this.scratch) throw new RangeError(`p11kit-wasm: the wasm core is out of memory (${size} bytes)`);
    }
    return this.scratch + 4;
  }

  /** Writes text as UTF-8 into the scratch block; returns its address and byte length. */
  private putText(text: string): [number, number] {
    const ptr = this.reserve(text.length * 3);
    const written = utf8Write.call(this.core.heap, text, ptr, text.length * 3);
    this.lastAscii = written === text.length;
    return [ptr, written];
  }

  private putBytes(bytes: Uint8Array): [number, number] {
    const ptr = this.reserve(bytes.length);
    this.core.heap.set(bytes, ptr);
    return [ptr, bytes.length];
  }

  private handle(uri: number): number {
    if (!uri) throw new RangeError('p11kit-wasm: the wasm core is out of memory (URI)');
    return uri;
  }

  /** Parses text; the handle lives only during fn. Throws UriError if the text does not parse. */
  withParsed<T>(text: string, type: number, fn: (uri: number) => T): T {
    const [ptr, len] = this.putText(text);
    const uri = this.handle(this.fns.p11w_uri_parse(ptr, len, type));
    try {
      if (this.fns.p11w_uri_result(uri) !== 0) throw this.error(this.noteFailure(uri), text);
      return fn(uri);
    } finally {
      this.fns.p11w_uri_free(uri);
    }
  }

  /** The parsed fields of text, or null when it does not parse (then error() says why). */
  parse(text: string, type: number): Uri | null {
    const [ptr, len] = this.putText(text);
    const uri = this.handle(this.fns.p11w_uri_parse(ptr, len, type));
    try {
      if (this.fns.p11w_uri_result(uri) !== 0) {
        this.lastFailure = this.noteFailure(uri);
        return null;
      }
      return this.read(uri);
    } finally {
      this.fns.p11w_uri_free(uri);
    }
  }

  /** Builds a URI from records (records.ts); the handle lives only during fn. */
  withRecords<T>(records: Uint8Array, fn: (uri: number) => T): T {
    const [ptr, len] = this.putBytes(records);
    const uri = this.handle(this.fns.p11w_uri_from_records(ptr, len));
    try {
      if (this.fns.p11w_uri_result(uri) !== 0) throw this.error(this.noteFailure(uri));
      return fn(uri);
    } finally {
      this.fns.p11w_uri_free(uri);
    }
  }

  /**
   * Parse + format in one core call (the hot path: no handle to make or free); null when the
   * text does not parse (then error() says why).
   */
  normalize(text: string, type: number, lowercase: boolean): string | null {
    const [ptr, len] = this.putText(text);
    const out = this.fns.p11w_uri_normalize(ptr, len, type, lowercase ? 1 : 0, this.scratch);
    if (!out) {
      const uri = this.fns.p11w_uri_normalized();
      if (!uri) throw new RangeError('p11kit-wasm: the wasm core is out of memory (URI)');
      this.lastFailure = this.noteFailure(uri);
      return null;
    }
    return latin1Slice.call(this.core.heap, out, out + this.outLen());
  }

  /** The parsed fields of a handle. */
  read(uri: number): Uri {
    const ptr = this.fns.p11w_uri_output(uri, this.scratch);
    if (!ptr) throw new RangeError('p11kit-wasm: the wasm core is out of memory (URI fields)');
    const len = this.outLen();
    return decodeUriRecords(this.core.heap, ptr, len).uri;
  }

  format(uri: number, type: number, lowercase: boolean): string {
    const ptr = this.fns.p11w_uri_format(uri, type, lowercase ? 1 : 0, this.scratch);
    if (!ptr) throw new RangeError('p11kit-wasm: the wasm core is out of memory (formatting a URI)');
    return latin1Slice.call(this.core.heap, ptr, ptr + this.outLen());
  }

  /** 1/0 from the core; structure records that the core cannot read are a caller bug. */
  match(uri: number, kind: MatchKind, structure: Uint8Array): boolean {
    const [ptr, len] = this.putBytes(structure);
    const rc = this.fns[`p11w_uri_match_${kind}`](uri, ptr, len);
    if (rc < 0) throw new TypeError(`p11kit-wasm: malformed ${kind} information for URI matching`);
    return rc === 1;
  }

  heapInUse(): number {
    return this.fns.p11w_uri_heap_in_use();
  }

  /** Why the URI behind a failed handle failed, as plain values (no Error built here). */
  private noteFailure(uri: number): CoreFailure {
    const ptr = this.fns.p11w_uri_output(uri, this.scratch);
    const len = this.outLen();
    return (ptr && decodeUriRecords(this.core.heap, ptr, len).failure) || OUT_OF_MEMORY;
  }

  /**
   * The UriError for a failure (by default the last parse's or normalize's, for `text`): built
   * by the API functions when they throw, not on the way out of the core.
   */
  error(found: CoreFailure = this.lastFailure, text?: string): UriError {
    const where: { attribute?: string; offset?: number } = {};
    if (found.attribute !== undefined) where.attribute = found.attribute;
    if (found.byteOffset !== undefined) where.offset = text === undefined || this.lastAscii ? found.byteOffset : stringOffset(text, found.byteOffset);
    return new UriError(found.code, found.detail, where);
  }
}

/** The UTF-16 index of a UTF-8 byte offset into text. */
function stringOffset(text: string, byteOffset: number): number {
  const bytes = utf8.encode(text);
  if (bytes.length === text.length) return byteOffset;
  return fromUtf8.decode(bytes.subarray(0, byteOffset)).length;
}

let shared: UriCore | undefined;

/** The URI interface of this isolate's shared core instance. */
export function uriCore(): UriCore {
  shared ??= new UriCore(core());
  return shared;
}
