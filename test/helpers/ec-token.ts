// A SoftHSM2 token in a fresh store, opened in this thread through the managed API, logged in,
// with a token EC P-256 key pair labelled 'ec': what the service suites find and sign with
// from their workers.
import { CKA, CKM, CKU, openModule, type ManagedModule, type ManagedSession } from '../../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './softhsm.js';

export const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

export interface EcToken {
  hsm: SoftHsm;
  slot: number;
  local: ManagedModule;
  /** The logged-in read-write session the key pair was made on. */
  session: ManagedSession;
}

export function ecToken(label: string, pin: string): EcToken {
  const hsm = createSoftHsm();
  const slot = hsm.initToken(label, '12345678', pin);
  const local = openModule(SOFTHSM_MODULE);
  const session = local.openSession(slot, { rw: true });
  session.login(CKU.CKU_USER, pin);
  session.generateKeyPair(
    CKM.CKM_EC_KEY_PAIR_GEN,
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_EC_PARAMS, value: P256_PARAMS },
      { type: CKA.CKA_VERIFY, value: true },
      { type: CKA.CKA_LABEL, value: 'ec' },
    ],
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_SIGN, value: true },
      { type: CKA.CKA_LABEL, value: 'ec' },
    ],
  );
  return { hsm, slot, local, session };
}
