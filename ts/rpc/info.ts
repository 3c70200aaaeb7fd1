// The info structs as replies carry them (signatures vsusv, ssuvv, ssssuuuuuuuuuuuvvs, uuu, uuuu).
// Space-padded strings come back with the padding removed; CK_ULONG ~0 comes back as -1.
// The shapes are the bridge's (types only: nothing of the bridge is loaded), with number CK_ULONGs.
import type {
  MechanismInfo as BridgeMechanismInfo,
  ModuleInfo,
  SessionInfo as BridgeSessionInfo,
  SlotInfo,
  TokenInfo as BridgeTokenInfo,
} from '../bridge/info.js';
import type { ResponseParser } from './message.js';

export type { Version } from '../bridge/loader.js';
export type { SlotInfo } from '../bridge/info.js';
/** CK_INFO as the bridge types it. */
export type Info = ModuleInfo;
export type TokenInfo = BridgeTokenInfo<number>;
export type MechanismInfo = BridgeMechanismInfo<number>;
export type SessionInfo = BridgeSessionInfo<number>;

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
