// CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO, CK_MECHANISM_INFO and CK_SESSION_INFO as objects.
// Each reads private bytes that no one else writes, and decodes a string field the first time it
// is read (strings are the expensive part, and most callers read one or two fields). toJSON()
// and the inspector give the plain-object form. The interfaces are also the RPC client's
// (ts/rpc/info.ts), whose CK_ULONGs are always numbers: hence the `U` parameter.
import { inspect } from 'node:util';
import { L } from './layout.js';
import { readUlong } from './memory.js';
import { paddedText } from './strings.js';
import type { Version } from './loader.js';

export type Ulong = number | bigint;

export interface ModuleInfo {
  cryptokiVersion: Version;
  manufacturerID: string;
  flags: number;
  libraryDescription: string;
  libraryVersion: Version;
}

export interface SlotInfo {
  slotDescription: string;
  manufacturerID: string;
  flags: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
}

export interface TokenInfo<U = Ulong> {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
  maxSessionCount: U;
  sessionCount: U;
  maxRwSessionCount: U;
  rwSessionCount: U;
  maxPinLen: U;
  minPinLen: U;
  totalPublicMemory: U;
  freePublicMemory: U;
  totalPrivateMemory: U;
  freePrivateMemory: U;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface MechanismInfo<U = Ulong> {
  minKeySize: U;
  maxKeySize: U;
  flags: number;
}

export interface SessionInfo<U = Ulong> {
  slotID: U;
  state: number;
  flags: number;
  deviceError: U;
}

/**
 * The last text decoded for each string field (of any module), with the bytes it came from as
 * 32-bit words: labels, manufacturer IDs and models rarely change between calls, and comparing
 * a few words costs less than decoding them into a new string. Indexed by the FIELD numbers below.
 */
class LastText {
  readonly words = new Uint32Array(16); // the longest field, slotDescription: 64 bytes
  len = -1;
  text = '';
}
const FIELD = { infoManufacturer: 0, infoDescription: 1, slotDescription: 2, slotManufacturer: 3, tokenLabel: 4, tokenManufacturer: 5, tokenModel: 6, tokenSerial: 7, tokenUtcTime: 8 } as const;
const lastTexts = Object.values(FIELD).map(() => new LastText());

/** The bytes of one structure, read in place, with the field readers the views below share. */
abstract class StructView<T> {
  // Private (#) so that they are neither enumerable nor structured-cloned: the bytes may be a
  // slab other results share (module.ts) or a slice of Node's shared Buffer pool, whose other
  // bytes are none of the receiver's business.
  readonly #bytes: Uint8Array;
  readonly #dv: DataView;
  /** Where the structure starts in #bytes (and #dv). */
  readonly #at: number;
  /** `dv`, when given, covers the same memory as `bytes` from the same start. */
  constructor(bytes: Uint8Array, at = 0, dv?: DataView) {
    this.#bytes = bytes;
    this.#at = at;
    this.#dv = dv ?? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /** A padded text field; `len` is a multiple of 4 (every CK_UTF8CHAR field is 16, 32 or 64). */
  protected text(off: number, len: number, field: number): string {
    const b = this.#bytes;
    const at = this.#at + off;
    // A structure cut short (only a hand-made view can be): decoded as far as it goes, not cached.
    if (at + len > b.length) return paddedText(b, at, len);
    const dv = this.#dv;
    const last = lastTexts[field];
    const words = last.words;
    const n = len >> 2;
    if (last.len === len) {
      let k = 0;
      while (k < n && dv.getUint32(at + 4 * k, true) === words[k]) k++;
      if (k === n) return last.text;
    }
    const text = paddedText(b, at, len);
    for (let k = 0; k < n; k++) words[k] = dv.getUint32(at + 4 * k, true);
    last.len = len;
    last.text = text;
    return text;
  }
  protected version(off: number): Version {
    const b = this.#bytes;
    const at = this.#at + off;
    return { major: b[at], minor: b[at + 1] };
  }
  protected ulong(off: number): Ulong {
    return readUlong(this.#dv, this.#at + off);
  }
  /** Flags are 32-bit in every defined use; keep them numbers (the low word, little-endian). */
  protected flagBits(off: number): number {
    return this.#dv.getUint32(this.#at + off, true);
  }
  /** The field names, in structure order (for toJSON and the inspector). */
  protected abstract names(): readonly (keyof T & string)[];
  toJSON(): T {
    const out: Record<string, unknown> = {};
    for (const name of this.names()) out[name] = (this as unknown as Record<string, unknown>)[name];
    return out as T;
  }
  [inspect.custom](): T {
    return this.toJSON();
  }
}

const i = L.info;
const INFO_NAMES = ['cryptokiVersion', 'manufacturerID', 'flags', 'libraryDescription', 'libraryVersion'] as const;
export class ModuleInfoView extends StructView<ModuleInfo> implements ModuleInfo {
  #manufacturerID: string | undefined = undefined;
  #libraryDescription: string | undefined = undefined;
  protected names() {
    return INFO_NAMES;
  }
  get cryptokiVersion() {
    return this.version(i.cryptokiVersion);
  }
  get manufacturerID() {
    return (this.#manufacturerID ??= this.text(i.manufacturerID, 32, FIELD.infoManufacturer));
  }
  get flags() {
    return this.flagBits(i.flags);
  }
  get libraryDescription() {
    return (this.#libraryDescription ??= this.text(i.libraryDescription, 32, FIELD.infoDescription));
  }
  get libraryVersion() {
    return this.version(i.libraryVersion);
  }
}

const s = L.slotInfo;
const SLOT_NAMES = ['slotDescription', 'manufacturerID', 'flags', 'hardwareVersion', 'firmwareVersion'] as const;
export class SlotInfoView extends StructView<SlotInfo> implements SlotInfo {
  #slotDescription: string | undefined = undefined;
  #manufacturerID: string | undefined = undefined;
  protected names() {
    return SLOT_NAMES;
  }
  get slotDescription() {
    return (this.#slotDescription ??= this.text(s.slotDescription, 64, FIELD.slotDescription));
  }
  get manufacturerID() {
    return (this.#manufacturerID ??= this.text(s.manufacturerID, 32, FIELD.slotManufacturer));
  }
  get flags() {
    return this.flagBits(s.flags);
  }
  get hardwareVersion() {
    return this.version(s.hardwareVersion);
  }
  get firmwareVersion() {
    return this.version(s.firmwareVersion);
  }
}

const t = L.tokenInfo;
const TOKEN_NAMES = [
  'label', 'manufacturerID', 'model', 'serialNumber', 'flags', 'maxSessionCount', 'sessionCount', 'maxRwSessionCount',
  'rwSessionCount', 'maxPinLen', 'minPinLen', 'totalPublicMemory', 'freePublicMemory', 'totalPrivateMemory',
  'freePrivateMemory', 'hardwareVersion', 'firmwareVersion', 'utcTime',
] as const;
export class TokenInfoView extends StructView<TokenInfo> implements TokenInfo {
  #label: string | undefined = undefined;
  #manufacturerID: string | undefined = undefined;
  #model: string | undefined = undefined;
  #serialNumber: string | undefined = undefined;
  protected names() {
    return TOKEN_NAMES;
  }
  get label() {
    return (this.#label ??= this.text(t.label, 32, FIELD.tokenLabel));
  }
  get manufacturerID() {
    return (this.#manufacturerID ??= this.text(t.manufacturerID, 32, FIELD.tokenManufacturer));
  }
  get model() {
    return (this.#model ??= this.text(t.model, 16, FIELD.tokenModel));
  }
  get serialNumber() {
    return (this.#serialNumber ??= this.text(t.serialNumber, 16, FIELD.tokenSerial));
  }
  get flags() {
    return this.flagBits(t.flags);
  }
  get maxSessionCount() {
    return this.ulong(t.ulMaxSessionCount);
  }
  get sessionCount() {
    return this.ulong(t.ulSessionCount);
  }
  get maxRwSessionCount() {
    return this.ulong(t.ulMaxRwSessionCount);
  }
  get rwSessionCount() {
    return this.ulong(t.ulRwSessionCount);
  }
  get maxPinLen() {
    return this.ulong(t.ulMaxPinLen);
  }
  get minPinLen() {
    return this.ulong(t.ulMinPinLen);
  }
  get totalPublicMemory() {
    return this.ulong(t.ulTotalPublicMemory);
  }
  get freePublicMemory() {
    return this.ulong(t.ulFreePublicMemory);
  }
  get totalPrivateMemory() {
    return this.ulong(t.ulTotalPrivateMemory);
  }
  get freePrivateMemory() {
    return this.ulong(t.ulFreePrivateMemory);
  }
  get hardwareVersion() {
    return this.version(t.hardwareVersion);
  }
  get firmwareVersion() {
    return this.version(t.firmwareVersion);
  }
  get utcTime() {
    return this.text(t.utcTime, 16, FIELD.tokenUtcTime);
  }
}

const m = L.mechanismInfo;
const MECHANISM_NAMES = ['minKeySize', 'maxKeySize', 'flags'] as const;
export class MechanismInfoView extends StructView<MechanismInfo> implements MechanismInfo {
  protected names() {
    return MECHANISM_NAMES;
  }
  get minKeySize() {
    return this.ulong(m.ulMinKeySize);
  }
  get maxKeySize() {
    return this.ulong(m.ulMaxKeySize);
  }
  get flags() {
    return this.flagBits(m.flags);
  }
}

const se = L.sessionInfo;
const SESSION_NAMES = ['slotID', 'state', 'flags', 'deviceError'] as const;
export class SessionInfoView extends StructView<SessionInfo> implements SessionInfo {
  protected names() {
    return SESSION_NAMES;
  }
  get slotID() {
    return this.ulong(se.slotID);
  }
  get state() {
    return this.flagBits(se.state);
  }
  get flags() {
    return this.flagBits(se.flags);
  }
  get deviceError() {
    return this.ulong(se.ulDeviceError);
  }
}
