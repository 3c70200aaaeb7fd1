// Typed PKCS#11 3.0 calls. The message-based functions are available raw (module.raw) and
// through call()/callAsync(); the two below are the ones with a fixed, simple shape.
import { check, req, type Op, type OpContext } from './op.js';
import { putSecret, type Secret } from './op-helpers.js';
import type { SessionHandle } from './handles.js';

type H = SessionHandle;

export function* loginUser(c: OpContext, session: H, userType: number, pin: Secret, username: string): Op<void> {
  const [p, len] = putSecret(c, pin);
  const [u, ulen] = putSecret(c, username);
  const rv = yield req('C_LoginUser', session, userType, p, len, u, ulen);
  if (p) c.mem.wipe(p, len);
  check(c, 'C_LoginUser', rv);
}

export function* sessionCancel(c: OpContext, session: H, flags: number): Op<void> {
  check(c, 'C_SessionCancel', yield req('C_SessionCancel', session, flags));
}
