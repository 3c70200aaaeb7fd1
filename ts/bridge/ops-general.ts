// Typed calls about the module, its slots, tokens and mechanisms, and token/PIN setup.
import { CKR } from './ckr.js';
import { L } from './layout.js';
import { MechanismInfoView, ModuleInfoView, SlotInfoView, TokenInfoView, type MechanismInfo, type ModuleInfo, type SlotInfo, type TokenInfo } from './info.js';
import { check, readHandle, req, type Op, type OpContext } from './op.js';
import { putSecret, ulongList, type Secret } from './op-helpers.js';
import { padText } from './strings.js';
import type { FunctionName } from './functions.js';
import { asSlotId, type SessionHandle, type SlotId } from './handles.js';

/** A fixed-size structure filled by fn(...lead, pStruct), copied out. */
function* struct(c: OpContext, fn: FunctionName, size: number, lead: (number | bigint)[]): Op<Uint8Array> {
  const at = c.mem.alloc(size);
  check(c, fn, yield req(fn, ...lead, at));
  return c.mem.read(at, size);
}

export function* getInfo(c: OpContext): Op<ModuleInfo> {
  return new ModuleInfoView(yield* struct(c, 'C_GetInfo', L.info.size, []));
}

export function* getSlotList(c: OpContext, tokenPresent = false): Op<SlotId[]> {
  return (yield* ulongList(c, 'C_GetSlotList', [tokenPresent ? 1 : 0])) as SlotId[];
}

export function* getSlotInfo(c: OpContext, slot: SlotId): Op<SlotInfo> {
  return new SlotInfoView(yield* struct(c, 'C_GetSlotInfo', L.slotInfo.size, [slot]));
}

export function* getTokenInfo(c: OpContext, slot: SlotId): Op<TokenInfo> {
  return new TokenInfoView(yield* struct(c, 'C_GetTokenInfo', L.tokenInfo.size, [slot]));
}

export function* getMechanismList(c: OpContext, slot: SlotId): Op<number[]> {
  return yield* ulongList(c, 'C_GetMechanismList', [slot]);
}

export function* getMechanismInfo(c: OpContext, slot: SlotId, type: number): Op<MechanismInfo> {
  return new MechanismInfoView(yield* struct(c, 'C_GetMechanismInfo', L.mechanismInfo.size, [slot, type]));
}

/** C_InitToken; the label is blank-padded to 32 bytes as the standard requires. */
export function* initToken(c: OpContext, slot: SlotId, soPin: Secret, label: string): Op<void> {
  const [pin, len] = putSecret(c, soPin);
  const lab = c.mem.put(padText(label, 32));
  const rv = yield req('C_InitToken', slot, pin, len, lab);
  if (pin) c.mem.wipe(pin, len);
  check(c, 'C_InitToken', rv);
}

export function* initPIN(c: OpContext, session: SessionHandle, pin: Secret): Op<void> {
  const [p, len] = putSecret(c, pin);
  const rv = yield req('C_InitPIN', session, p, len);
  if (p) c.mem.wipe(p, len);
  check(c, 'C_InitPIN', rv);
}

export function* setPIN(c: OpContext, session: SessionHandle, oldPin: Secret, newPin: Secret): Op<void> {
  const [o, olen] = putSecret(c, oldPin);
  const [n, nlen] = putSecret(c, newPin);
  const rv = yield req('C_SetPIN', session, o, olen, n, nlen);
  if (o) c.mem.wipe(o, olen);
  if (n) c.mem.wipe(n, nlen);
  check(c, 'C_SetPIN', rv);
}

/**
 * C_WaitForSlotEvent: the slot that changed, or null for CKR_NO_EVENT (with CKF_DONT_BLOCK).
 * Blocking waits end when another thread calls C_Finalize (then CKR_CRYPTOKI_NOT_INITIALIZED).
 */
export function* waitForSlotEvent(c: OpContext, flags = 0): Op<SlotId | null> {
  const at = c.mem.alloc(L.ulong);
  const rv = yield req('C_WaitForSlotEvent', flags, at, 0);
  if (rv === CKR.CKR_NO_EVENT) return null;
  check(c, 'C_WaitForSlotEvent', rv);
  return asSlotId(readHandle(c, 'C_WaitForSlotEvent', at));
}
