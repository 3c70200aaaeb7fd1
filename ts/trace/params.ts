// The parameter names of each typed call, for the trace. Calls not listed print their
// arguments by position.
const S = 'session';
const crypt = [S, 'data'];
const init = [S, 'mechanism', 'key'];

export const PARAMS: Readonly<Record<string, readonly string[]>> = {
  initialize: ['options'],
  getInfo: [],
  getSlotList: ['tokenPresent'],
  getSlotInfo: ['slot'],
  getTokenInfo: ['slot'],
  getMechanismList: ['slot'],
  getMechanismInfo: ['slot', 'type'],
  initToken: ['slot', 'soPin', 'label'],
  initPIN: [S, 'pin'],
  setPIN: [S, 'oldPin', 'newPin'],
  waitForSlotEvent: ['flags'],
  openSession: ['slot', 'flags'],
  closeSession: [S],
  closeAllSessions: ['slot'],
  getSessionInfo: [S],
  login: [S, 'userType', 'pin'],
  loginUser: [S, 'userType', 'pin', 'username'],
  logout: [S],
  createObject: [S, 'template'],
  copyObject: [S, 'object', 'template'],
  destroyObject: [S, 'object'],
  getObjectSize: [S, 'object'],
  getAttributeValue: [S, 'object', 'types'],
  setAttributeValue: [S, 'object', 'template'],
  findObjectsInit: [S, 'template'],
  findObjects: [S, 'max'],
  findObjectsFinal: [S],
  findAllObjects: [S, 'template', 'batch'],
  encryptInit: init, decryptInit: init, signInit: init, verifyInit: init, signRecoverInit: init, verifyRecoverInit: init,
  digestInit: [S, 'mechanism'],
  encrypt: crypt, encryptUpdate: crypt, decrypt: crypt, decryptUpdate: crypt, digest: crypt, digestUpdate: crypt,
  sign: crypt, signUpdate: crypt, signRecover: crypt, verifyUpdate: crypt,
  verify: [S, 'data', 'signature'],
  verifyFinal: [S, 'signature'],
  verifyRecover: [S, 'signature'],
  digestKey: [S, 'key'],
  encryptFinal: [S], decryptFinal: [S], digestFinal: [S], signFinal: [S],
  getOperationState: [S], setOperationState: [S, 'state', 'encryptionKey', 'authenticationKey'],
  digestEncryptUpdate: crypt, decryptDigestUpdate: crypt, signEncryptUpdate: crypt, decryptVerifyUpdate: crypt,
  getFunctionStatus: [S], cancelFunction: [S], sessionCancel: [S, 'flags'],
  generateKey: [S, 'mechanism', 'template'],
  generateKeyPair: [S, 'mechanism', 'publicTemplate', 'privateTemplate'],
  wrapKey: [S, 'mechanism', 'wrappingKey', 'key'],
  unwrapKey: [S, 'mechanism', 'unwrappingKey', 'wrapped', 'template'],
  deriveKey: [S, 'mechanism', 'baseKey', 'template'],
  seedRandom: [S, 'seed'],
  generateRandom: [S, 'length'],
};

/** Arguments that are secrets: never printed. */
export const SECRET_PARAMS = new Set(['pin', 'soPin', 'oldPin', 'newPin', 'seed']);

/** Calls whose byte result is a secret (plaintext, randomness that may become a key). */
export const SECRET_RESULTS = new Set(['decrypt', 'decryptUpdate', 'decryptFinal', 'generateRandom', 'decryptDigestUpdate', 'decryptVerifyUpdate']);

/** Calls whose input is a secret whatever its type (plaintext); byte `data` is never shown anyway. */
export const SECRET_INPUTS = new Set(['encrypt', 'encryptUpdate', 'digestEncryptUpdate', 'signEncryptUpdate']);
