// The info structs as replies carry them (signatures vsusv, ssuvv, ssssuuuuuuuuuuuvvs, uuu, uuuu).
// Space-padded strings come back with the padding removed; CK_ULONG ~0 comes back as -1.
import type { ResponseParser } from './message.js';

export interface Version {
  major: number;
  minor: number;
}

export interface Info {
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
  maxSessionCount: number;
  sessionCount: number;
  maxRwSessionCount: number;
  rwSessionCount: number;
  maxPinLen: number;
  minPinLen: number;
  totalPublicMemory: number;
  freePublicMemory: number;
  totalPrivateMemory: number;
  freePrivateMemory: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface MechanismInfo {
  minKeySize: number;
  maxKeySize: number;
  flags: number;
}

export interface SessionInfo {
  slotID: number;
  state: number;
  flags: number;
  deviceError: number;
}

export function readInfo(p: ResponseParser): Info {
  return {
    cryptokiVersion: p.version(),
    manufacturerID: p.spaceString(32),
    flags: p.ulong(),
    libraryDescription: p.spaceString(32),
    libraryVersion: p.version(),
  };
}

export function readSlotInfo(p: ResponseParser): SlotInfo {
  return {
    slotDescription: p.spaceString(64),
    manufacturerID: p.spaceString(32),
    flags: p.ulong(),
    hardwareVersion: p.version(),
    firmwareVersion: p.version(),
  };
}

export function readTokenInfo(p: ResponseParser): TokenInfo {
  return {
    label: p.spaceString(32),
    manufacturerID: p.spaceString(32),
    model: p.spaceString(16),
    serialNumber: p.spaceString(16),
    flags: p.ulong(),
    maxSessionCount: p.ulong(),
    sessionCount: p.ulong(),
    maxRwSessionCount: p.ulong(),
    rwSessionCount: p.ulong(),
    maxPinLen: p.ulong(),
    minPinLen: p.ulong(),
    totalPublicMemory: p.ulong(),
    freePublicMemory: p.ulong(),
    totalPrivateMemory: p.ulong(),
    freePrivateMemory: p.ulong(),
    hardwareVersion: p.version(),
    firmwareVersion: p.version(),
    utcTime: p.spaceString(16),
  };
}

export function readMechanismInfo(p: ResponseParser): MechanismInfo {
  return { minKeySize: p.ulong(), maxKeySize: p.ulong(), flags: p.ulong() };
}

export function readSessionInfo(p: ResponseParser): SessionInfo {
  return { slotID: p.ulong(), state: p.ulong(), flags: p.ulong(), deviceError: p.ulong() };
}
