// A client's request read the way the call table says: the call id and signature are checked
// first, then each argument in signature order. Counts are bounded by the server's limits
// before anything is allocated for them. A request that does not parse throws
// RpcProtocolError (the caller closes the connection); one that parses but cannot be served
// throws a Refusal carrying the CK_RV to answer with.
import { vendorAttributeType, type Attribute } from '../bridge/attributes.js';
import { attributeKind } from '../bridge/attribute-kinds.js';
import { CKM } from '../bridge/ckm.js';
import { CKR } from '../bridge/ckr.js';
import { vendorMechanismType, type Mechanism } from '../bridge/mechanisms.js';
import { wireKind } from '../rpc/attributes.js';
import { callById, type CallSpec } from '../rpc/calls.js';
import { RpcProtocolError } from '../rpc/errors.js';
import { POINTER_PARAMS } from '../rpc/mechanism.js';
import { WireReader } from '../rpc/wire.js';
import type { ServerLimits } from './limits.js';

const SERVER = 'p11kit server';

/** A well-formed request the server refuses with this CK_RV (the client stays connected). */
export class Refusal extends Error {
  constructor(
    readonly rv: number,
    message: string,
  ) {
    super(message);
  }
}

/** An `fA` entry: the type asked for and the room the caller has (0: length only). */
export interface AttributeAsk {
  type: number;
  capacity: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The raw C bytes of a CK_ULONG (LP64 little-endian, the hosts p11-kit serves between). */
export function ulongBytes(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}

export class RequestReader {
  readonly spec: CallSpec;
  private readonly r: WireReader;
  private at = 0;

  constructor(
    payload: Uint8Array,
    private readonly limits: ServerLimits,
  ) {
    const head = new WireReader(payload, 'request', SERVER);
    const id = head.u32('call id');
    const spec = callById(id);
    if (!spec) throw new RpcProtocolError('request', `unknown call id ${id}`, SERVER);
    const sig = head.byteArray('signature');
    if (sig === null || !sameBytes(sig, spec.requestBytes)) throw new RpcProtocolError(spec.name, 'request signature does not match the call', SERVER);
    this.spec = spec;
    this.r = new WireReader(payload.subarray(payload.length - head.remaining), spec.name, SERVER);
  }

  private take(part: string): void {
    if (!this.spec.request.startsWith(part, this.at)) throw new Error(`p11kit server: ${this.spec.name} read '${part}' out of signature order`);
    this.at += part.length;
  }

  byte(): number {
    this.take('y');
    return this.r.byte();
  }

  /** A CK_ULONG that must fit a JavaScript number (handles, flags, types); ~0 is -1. */
  ulong(what = 'a CK_ULONG'): number {
    this.take('u');
    return this.r.ulong(what);
  }

  /** `ay`: bytes, or null for a NULL pointer (a NULL PIN: protected authentication path). */
  bytes(what = 'a byte array'): Uint8Array | null {
    this.take('ay');
    const present = this.r.byte(`${what} presence`);
    if (!present) {
      this.r.u32(`${what} length`);
      return null;
    }
    return this.r.byteArray(what);
  }

  /** `fy` / `fu`: the caller's capacity; 0 is a length query. p11-kit sends ~0 for a 0-length buffer. */
  capacity(part: 'fy' | 'fu'): number {
    this.take(part);
    const n = this.r.u32('buffer capacity');
    return n === 0xffffffff ? 0 : n;
  }

  attributeAsks(): AttributeAsk[] {
    this.take('fA');
    const count = this.boundedCount('attribute count');
    const out: AttributeAsk[] = [];
    for (let i = 0; i < count; i++) out.push({ type: this.r.u32('attribute type'), capacity: this.r.u32('attribute capacity') });
    return out;
  }

  /** `aA`: a template, every value as the raw C bytes the module expects. */
  template(): Attribute[] {
    this.take('aA');
    const count = this.boundedCount('attribute count');
    const out: Attribute[] = [];
    for (let i = 0; i < count; i++) out.push(this.attribute());
    return out;
  }

  mechanism(): Mechanism {
    this.take('M');
    const type = this.r.u32('mechanism type');
    if (type === CKM.CKM_RSA_PKCS_PSS) {
      return { mechanism: type, parameter: { hashAlg: this.u64num('hashAlg'), mgf: this.u64num('mgf'), saltLength: this.u64num('sLen') } };
    }
    if (type === CKM.CKM_RSA_PKCS_OAEP) {
      const hashAlg = this.u64num('hashAlg');
      const mgf = this.u64num('mgf');
      const source = this.u64num('source');
      const label = this.r.byteArray('OAEP label');
      return { mechanism: type, parameter: { hashAlg, mgf, source, ...(label && label.length ? { sourceData: label } : {}) } };
    }
    const param = this.r.byteArray('mechanism parameter');
    // Bytes standing for a struct that holds pointers would have the module follow the
    // client's pointers: refused, as p11-kit's own client refuses to send them.
    if (param !== null && POINTER_PARAMS.has(type)) throw new Refusal(CKR.CKR_MECHANISM_PARAM_INVALID, `mechanism 0x${type.toString(16)} has a parameter with pointers`);
    return { mechanism: vendorMechanismType(type), parameter: param }; // any number the client sends: the module judges it
  }

  zeroString(): string {
    this.take('z');
    const bytes = this.r.byteArray('string');
    return bytes ? new TextDecoder('utf-8').decode(bytes) : '';
  }

  /** The whole request was read, and nothing else is there. */
  done(): void {
    if (this.at !== this.spec.request.length) throw new Error(`p11kit server: ${this.spec.name} request read incompletely`);
    if (this.r.remaining !== 0) throw new RpcProtocolError(this.spec.name, `${this.r.remaining} stray bytes after the request`, SERVER);
  }

  private u64num(what: string): number {
    return this.r.ulong(what);
  }

  private boundedCount(what: string): number {
    const n = this.r.u32(what);
    if (n > this.limits.maxAttributes) throw new Refusal(CKR.CKR_ARGUMENTS_BAD, `${n} attributes exceed the limit of ${this.limits.maxAttributes}`);
    return n;
  }

  private attribute(): Attribute {
    const type = this.r.u32('attribute type');
    const valid = this.r.byte('attribute validity');
    if (!valid) throw new Refusal(CKR.CKR_ATTRIBUTE_VALUE_INVALID, `attribute 0x${type.toString(16)} without a value in a template`);
    this.r.u32('attribute length');
    const what = `attribute 0x${type.toString(16)}`;
    let value: Uint8Array;
    switch (wireKind(type)) {
      case 'byte':
        value = Uint8Array.of(this.r.byte(what));
        break;
      case 'ulong':
        value = ulongBytes(this.r.u64(what));
        break;
      case 'mechanisms': {
        const n = this.r.u32(`${what} count`);
        if (n * 8 > this.r.remaining) throw new RpcProtocolError(this.spec.name, `truncated message reading ${what}`, SERVER);
        value = new Uint8Array(n * 8);
        for (let i = 0; i < n; i++) value.set(ulongBytes(this.r.u64(what)), i * 8);
        break;
      }
      case 'template':
        throw new Refusal(CKR.CKR_ATTRIBUTE_TYPE_INVALID, `${what}: attribute arrays are not served`);
      default:
        value = this.r.byteArray(what) ?? new Uint8Array(0);
    }
    // Raw bytes standing for an attribute array would be read by the module as pointers.
    if (attributeKind(type) === 'attributes') throw new Refusal(CKR.CKR_ATTRIBUTE_TYPE_INVALID, `${what}: attribute arrays are not served`);
    return { type: vendorAttributeType(type), value };
  }
}
