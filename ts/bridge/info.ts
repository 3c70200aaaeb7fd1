// CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO, CK_MECHANISM_INFO and CK_SESSION_INFO as objects.
// Each keeps its own copy of the structure's bytes and decodes a field the first time it is
// read (strings are the expensive part, and most callers read one or two fields). toJSON()
// and the inspector give the plain-object form.
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

export interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
  maxSessionCount: Ulong;
  sessionCount: Ulong;
  maxRwSessionCount: Ulong;
  rwSessionCount: Ulong;
  maxPinLen: Ulong;
  minPinLen: Ulong;
  totalPublicMemory: Ulong;
  freePublicMemory: Ulong;
  totalPrivateMemory: Ulong;
  freePrivateMemory: Ulong;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface MechanismInfo {
  minKeySize: Ulong;
  maxKeySize: Ulong;
  flags: number;
}

export interface SessionInfo {
  slotID: Ulong;
  state: number;
  flags: number;
  deviceError: Ulong;
}

type Field = readonly ['text', number, number] | readonly ['version', number] | readonly ['ulong', number] | readonly ['flags', number];

/** Builds a class whose instances decode `fields` lazily from their own bytes. */
function lazyStruct<T>(fields: Record<keyof T & string, Field>) {
  class Lazy {
    /** Decoded values, made on the first read of any field. */
    cache?: Record<string, unknown>;
    constructor(readonly bytes: Buffer) {}
    toJSON(): T {
      const out: Record<string, unknown> = {};
      for (const name of Object.keys(fields)) out[name] = (this as unknown as Record<string, unknown>)[name];
      return out as T;
    }
    [inspect.custom](): T {
      return this.toJSON();
    }
  }
  for (const [name, field] of Object.entries(fields) as [string, Field][]) {
    Object.defineProperty(Lazy.prototype, name, {
      enumerable: true,
      get(this: { cache?: Record<string, unknown>; bytes: Buffer }) {
        const cache = (this.cache ??= {});
        const cached = cache[name];
        if (cached !== undefined) return cached;
        return (cache[name] = decodeField(this.bytes, field));
      },
    });
  }
  return Lazy as unknown as new (bytes: Buffer) => T & { toJSON(): T };
}

function decodeField(b: Buffer, f: Field): unknown {
  switch (f[0]) {
    case 'text':
      return paddedText(b, f[1], f[2]);
    case 'version':
      return { major: b[f[1]], minor: b[f[1] + 1] };
    case 'ulong':
    case 'flags': {
      const v = readUlong(new DataView(b.buffer, b.byteOffset, b.byteLength), f[1]);
      // Flags are 32-bit in every defined use; keep them numbers.
      return f[0] === 'flags' ? Number(BigInt(v) & 0xffffffffn) : v;
    }
  }
}

const i = L.info;
export const ModuleInfoView = lazyStruct<ModuleInfo>({
  cryptokiVersion: ['version', i.cryptokiVersion],
  manufacturerID: ['text', i.manufacturerID, 32],
  flags: ['flags', i.flags],
  libraryDescription: ['text', i.libraryDescription, 32],
  libraryVersion: ['version', i.libraryVersion],
});

const s = L.slotInfo;
export const SlotInfoView = lazyStruct<SlotInfo>({
  slotDescription: ['text', s.slotDescription, 64],
  manufacturerID: ['text', s.manufacturerID, 32],
  flags: ['flags', s.flags],
  hardwareVersion: ['version', s.hardwareVersion],
  firmwareVersion: ['version', s.firmwareVersion],
});

const t = L.tokenInfo;
export const TokenInfoView = lazyStruct<TokenInfo>({
  label: ['text', t.label, 32],
  manufacturerID: ['text', t.manufacturerID, 32],
  model: ['text', t.model, 16],
  serialNumber: ['text', t.serialNumber, 16],
  flags: ['flags', t.flags],
  maxSessionCount: ['ulong', t.ulMaxSessionCount],
  sessionCount: ['ulong', t.ulSessionCount],
  maxRwSessionCount: ['ulong', t.ulMaxRwSessionCount],
  rwSessionCount: ['ulong', t.ulRwSessionCount],
  maxPinLen: ['ulong', t.ulMaxPinLen],
  minPinLen: ['ulong', t.ulMinPinLen],
  totalPublicMemory: ['ulong', t.ulTotalPublicMemory],
  freePublicMemory: ['ulong', t.ulFreePublicMemory],
  totalPrivateMemory: ['ulong', t.ulTotalPrivateMemory],
  freePrivateMemory: ['ulong', t.ulFreePrivateMemory],
  hardwareVersion: ['version', t.hardwareVersion],
  firmwareVersion: ['version', t.firmwareVersion],
  utcTime: ['text', t.utcTime, 16],
});

const m = L.mechanismInfo;
export const MechanismInfoView = lazyStruct<MechanismInfo>({
  minKeySize: ['ulong', m.ulMinKeySize],
  maxKeySize: ['ulong', m.ulMaxKeySize],
  flags: ['flags', m.flags],
});

const se = L.sessionInfo;
export const SessionInfoView = lazyStruct<SessionInfo>({
  slotID: ['ulong', se.slotID],
  state: ['flags', se.state],
  flags: ['flags', se.flags],
  deviceError: ['ulong', se.ulDeviceError],
});
