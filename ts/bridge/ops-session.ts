// Typed calls on sessions: open/close, info, operation state, login.
import { CKF_SESSION } from './ckf.js';
import { L } from './layout.js';
import { SessionInfoView, type SessionInfo } from './info.js';
import { check, readSessionHandle, req, type Op, type OpContext } from './op.js';
import { outputBytes, putBytes, putSecret, type Secret } from './op-helpers.js';
import { asSessionHandle, type SessionHandle, type SlotId } from './handles.js';

type H = SessionHandle;

/** C_OpenSession without a notify callback; CKF_SERIAL_SESSION is always added, as the standard requires. */
export function* openSession(c: OpContext, slot: SlotId, flags: number = CKF_SESSION.CKF_SERIAL_SESSION): Op<SessionHandle> {
  const at = c.mem.alloc(L.ulong);
  check(c, 'C_OpenSession', yield req('C_OpenSession', slot, flags | CKF_SESSION.CKF_SERIAL_SESSION, 0, 0, at));
  return asSessionHandle(readSessionHandle(c, at));
}

export function* closeSession(c: OpContext, session: H): Op<void> {
  check(c, 'C_CloseSession', yield req('C_CloseSession', session));
}

export function* closeAllSessions(c: OpContext, slot: SlotId): Op<void> {
  check(c, 'C_CloseAllSessions', yield req('C_CloseAllSessions', slot));
}

export function* getSessionInfo(c: OpContext, session: H): Op<SessionInfo> {
  const at = c.mem.alloc(L.sessionInfo.size);
  check(c, 'C_GetSessionInfo', yield req('C_GetSessionInfo', session, at));
  return new SessionInfoView(c.mem.read(at, L.sessionInfo.size));
}

export function* getOperationState(c: OpContext, session: H): Op<Uint8Array> {
  return yield* outputBytes(c, 'C_GetOperationState', [session]);
}

export function* setOperationState(c: OpContext, session: H, state: Uint8Array, encryptionKey: number | bigint = 0, authenticationKey: number | bigint = 0): Op<void> {
  const [p, len] = putBytes(c, state);
  check(c, 'C_SetOperationState', yield req('C_SetOperationState', session, p, len, encryptionKey, authenticationKey));
}

/** C_Login; a null PIN means the protected authentication path (a PIN pad). */
export function* login(c: OpContext, session: H, userType: number, pin: Secret): Op<void> {
  const [p, len] = putSecret(c, pin);
  const rv = yield req('C_Login', session, userType, p, len);
  if (p) c.mem.wipe(p, len);
  check(c, 'C_Login', rv);
}

export function* logout(c: OpContext, session: H): Op<void> {
  check(c, 'C_Logout', yield req('C_Logout', session));
}
