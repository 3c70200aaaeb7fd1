// CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO, CK_MECHANISM_INFO and CK_SESSION_INFO as objects.
// Each keeps its own copy of the structure's bytes and decodes a field the first time it is
// read (strings are the expensive part, and most callers read one or two fields). toJSON()
// and the inspector give the plain-object form. The interfaces are also the RPC client's
// (ts/rpc/info.ts), whose CK_ULONGs are always numbers: hence the `U` parameter.
import { inspect } from 'node:util';
import { L } from './layout.js';
import { readUlongBytes } from './memory.js';
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
 * The last text decoded for each string field (of any module), with the bytes it came from:
 * labels, manufacturer IDs and models rarely change between calls, and comparing 32 bytes costs
 * less than decoding them into a new string. Keys are the FIELD numbers below.
 */
class LastText {
  readonly bytes = new Uint8Array(64);
  len = -1;
  text = '';
}
const lastTexts: LastText[] = [];
const FIELD = { infoManufacturer: 0, infoDescription: 1, slotDescription: 2, slotManufacturer: 3, tokenLabel: 4, tokenManufacturer: 5, tokenModel: 6, tokenSerial: 7, tokenUtcTime: 8 } as const;

/** The bytes of one structure, with the field readers the views below share. */
abstract class StructView<T> {
  // Private (#) so that it is neither enumerable nor structured-cloned: it may be a slice of
  // Node's shared Buffer pool, whose other bytes are none of the receiver's business.
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  protected text(off: number, len: number, field: number): string {
    const b = this.#bytes;
    const last = (lastTexts[field] ??= new LastText());
    if (last.len === len && off + len <= b.length) {
      const prev = last.bytes;
      let i = 0;
      while (i < len && b[off + i] === prev[i]) i++;
      if (i === len) return last.text;
    }
    const text = paddedText(b, off, len);
    if (len <= last.bytes.length && off + len <= b.length) {
      last.bytes.set(b.subarray(off, off + len));
      last.len = len;
      last.text = text;
    }
    return text;
  }
  protected version(off: number): Version {
    return { major: this.#bytes[off], minor: this.#bytes[off + 1] };
  }
  protected ulong(off: number): Ulong {
    // Straight from the bytes: a DataView per read cost more than the read.
    return readUlongBytes(this.#bytes, off);
  }
  /** Flags are 32-bit in every defined use; keep them numbers (the low word, little-endian). */
  protected flagBits(off: number): number {
    const b = this.#bytes;
    return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
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
  declare private _manufacturerID?: string;
  declare private _libraryDescription?: string;
  protected names() {
    return INFO_NAMES;
  }
  get cryptokiVersion() {
    return this.version(i.cryptokiVersion);
  }
  get manufacturerID() {
    return (this._manufacturerID ??= this.text(i.manufacturerID, 32, FIELD.infoManufacturer));
  }
  get flags() {
    return this.flagBits(i.flags);
  }
  get libraryDescription() {
    return (this._libraryDescription ??= this.text(i.libraryDescription, 32, FIELD.infoDescription));
  }
  get libraryVersion() {
    return this.version(i.libraryVersion);
  }
}

const s = L.slotInfo;
const SLOT_NAMES = ['slotDescription', 'manufacturerID', 'flags', 'hardwareVersion', 'firmwareVersion'] as const;
export class SlotInfoView extends StructView<SlotInfo> implements SlotInfo {
  declare private _slotDescription?: string;
  declare private _manufacturerID?: string;
  protected names() {
    return SLOT_NAMES;
  }
  get slotDescription() {
    return (this._slotDescription ??= this.text(s.slotDescription, 64, FIELD.slotDescription));
  }
  get manufacturerID() {
    return (this._manufacturerID ??= this.text(s.manufacturerID, 32, FIELD.slotManufacturer));
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
  declare private _label?: string;
  declare private _manufacturerID?: string;
  declare private _model?: string;
  declare private _serialNumber?: string;
  protected names() {
    return TOKEN_NAMES;
  }
  get label() {
    return (this._label ??= this.text(t.label, 32, FIELD.tokenLabel));
  }
  get manufacturerID() {
    return (this._manufacturerID ??= this.text(t.manufacturerID, 32, FIELD.tokenManufacturer));
  }
  get model() {
    return (this._model ??= this.text(t.model, 16, FIELD.tokenModel));
  }
  get serialNumber() {
    return (this._serialNumber ??= this.text(t.serialNumber, 16, FIELD.tokenSerial));
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
