// Every one of the 65 calls of protocol 0, sent to the real host (p11-kit remote 0.24.1 hosting
// SoftHSM2). The host exits when it cannot parse a request, so a call that comes back — with a
// result or with the module's CK_RV in an error reply — proves its request signature and body
// were what 0.24.1 expects, and that we read its reply. One host, one generation, all calls.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCalls, type CallName } from '../ts/rpc/calls.js';
import { CKA, CKF, CKM, CKO, CKU } from '../ts/rpc/constants.js';
import { Pkcs11Error, RpcClient, type HostLostEvent } from '../ts/rpc/index.js';
import { P256, SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

let token: SoftHsmToken;
let client: RpcClient;
const reached = new Map<CallName, string>();
const losses: HostLostEvent[] = [];

beforeAll(async () => {
  token = makeSoftHsmToken('rpc-calls');
  client = new RpcClient({ remote: `|p11-kit remote ${SOFTHSM}`, env: token.env });
  client.on('hostLost', (e) => losses.push(e));
  // Record each call and how it came back.
  const call = client.call.bind(client);
  client.call = (async (name, build, read) => {
    try {
      const out = await call(name, build, read);
      reached.set(name, 'ok');
      return out;
    } catch (err) {
      // Only the module's own answer counts: a plain Pkcs11Error decoded from an error reply.
      if (err instanceof Pkcs11Error && err.constructor === Pkcs11Error) reached.set(name, (err as Pkcs11Error).message);
      throw err;
    }
  }) as typeof client.call;
  await client.initialize();
});

afterAll(async () => {
  await client?.close();
  token?.cleanup();
});

/** Runs a call for its round trip; the module may well refuse it. */
const run = (p: Promise<unknown>) => p.catch((e: unknown) => e);

describe('all 65 calls against p11-kit remote 0.24.1', () => {
  it('each request is read by the host and each reply by us', async () => {
    await run(client.initialize());
    await run(client.getInfo());
    const [slot] = (await client.getSlotList(true)) as [number];
    await run(client.getSlotInfo(slot));
    await run(client.getTokenInfo(slot));
    await run(client.getMechanismList(slot));
    await run(client.getMechanismInfo(slot, CKM.CKM_ECDSA));
    await run(client.waitForSlotEvent(CKF.CKF_DONT_BLOCK));

    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await run(client.initToken(slot, 'not-the-so-pin', 'nope'));
    await run(client.getSessionInfo(s));
    await client.login(s, CKU.CKU_USER, USER_PIN);
    await run(client.initPIN(s, '5678'));
    await run(client.setPIN(s, 'wrong-old-pin', '5678'));

    const ec = await client.generateKeyPair(s, { mechanism: CKM.CKM_EC_KEY_PAIR_GEN }, [{ type: CKA.CKA_EC_PARAMS, value: P256 }], [{ type: CKA.CKA_SIGN, value: true }]);
    const aes = await client.generateKey(s, { mechanism: CKM.CKM_AES_KEY_GEN }, [
      { type: CKA.CKA_VALUE_LEN, value: 16 },
      { type: CKA.CKA_ENCRYPT, value: true },
      { type: CKA.CKA_DECRYPT, value: true },
      { type: CKA.CKA_WRAP, value: true },
      { type: CKA.CKA_UNWRAP, value: true },
      { type: CKA.CKA_EXTRACTABLE, value: true },
    ]);

    const data = await client.createObject(s, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
      { type: CKA.CKA_LABEL, value: 'calls' },
      { type: CKA.CKA_VALUE, value: new Uint8Array(10) },
    ]);
    const copy = await run(client.copyObject(s, data, [{ type: CKA.CKA_LABEL, value: 'copy' }]));
    await run(client.getObjectSize(s, data));
    const read = await client.getAttributeValue(s, aes, [CKA.CKA_CLASS, CKA.CKA_KEY_TYPE, CKA.CKA_VALUE_LEN, CKA.CKA_ENCRYPT, CKA.CKA_ID]);
    expect(read.attributes.map((a) => a.value)).toEqual([CKO.CKO_SECRET_KEY, 0x1f, 16, true, new Uint8Array(0)]);
    await run(client.setAttributeValue(s, data, [{ type: CKA.CKA_LABEL, value: 'renamed' }]));
    await client.findObjectsInit(s, [{ type: CKA.CKA_CLASS, value: CKO.CKO_DATA }]);
    await run(client.findObjects(s, 5));
    await client.findObjectsFinal(s);
    if (typeof copy === 'number') await run(client.destroyObject(s, copy));
    await run(client.destroyObject(s, data));

    const block = new Uint8Array(16).fill(5);
    const ecb = { mechanism: CKM.CKM_AES_ECB };
    await client.encryptInit(s, ecb, aes);
    const ct = await client.encrypt(s, block);
    await client.encryptInit(s, ecb, aes);
    await run(client.encryptUpdate(s, block));
    await run(client.encryptFinal(s));
    await client.decryptInit(s, ecb, aes);
    expect(await client.decrypt(s, ct)).toEqual(block);
    await client.decryptInit(s, ecb, aes);
    await run(client.decryptUpdate(s, ct));
    await run(client.decryptFinal(s));

    await client.digestInit(s, { mechanism: CKM.CKM_SHA256 });
    expect(Buffer.from(await client.digest(s, block)).toString('hex')).toBe(createHash('sha256').update(block).digest('hex'));
    await client.digestInit(s, { mechanism: CKM.CKM_SHA256 });
    await run(client.digestUpdate(s, block));
    await run(client.digestKey(s, aes));
    await run(client.digestFinal(s));
    await run(client.getOperationState(s));
    await run(client.setOperationState(s, Uint8Array.of(1, 2, 3)));

    const digest = new Uint8Array(32).fill(9);
    await client.signInit(s, { mechanism: CKM.CKM_ECDSA }, ec.privateKey);
    const sig = await client.sign(s, digest);
    await run(client.signInit(s, { mechanism: CKM.CKM_ECDSA }, ec.privateKey));
    await run(client.signUpdate(s, digest));
    await run(client.signFinal(s));
    await run(client.signRecoverInit(s, { mechanism: CKM.CKM_ECDSA }, ec.privateKey));
    await run(client.signRecover(s, digest));
    await client.verifyInit(s, { mechanism: CKM.CKM_ECDSA }, ec.publicKey);
    await client.verify(s, digest, sig);
    await run(client.verifyInit(s, { mechanism: CKM.CKM_ECDSA }, ec.publicKey));
    await run(client.verifyUpdate(s, digest));
    await run(client.verifyFinal(s, sig));
    await run(client.verifyRecoverInit(s, { mechanism: CKM.CKM_ECDSA }, ec.publicKey));
    await run(client.verifyRecover(s, sig));

    await run(client.digestEncryptUpdate(s, block));
    await run(client.decryptDigestUpdate(s, block));
    await run(client.signEncryptUpdate(s, block));
    await run(client.decryptVerifyUpdate(s, block));

    const wrapped = await run(client.wrapKey(s, ecb, aes, aes));
    await run(
      client.unwrapKey(s, ecb, aes, wrapped instanceof Uint8Array ? wrapped : new Uint8Array(16), [
        { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
        { type: CKA.CKA_KEY_TYPE, value: 0x1f },
      ]),
    );
    await run(client.deriveKey(s, { mechanism: CKM.CKM_SHA256 }, aes, [{ type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY }]));
    await run(client.seedRandom(s, Uint8Array.of(1, 2, 3, 4)));
    await run(client.generateRandom(s, 20));

    await run(client.logout(s));
    await run(client.closeSession(s));
    await run(client.closeAllSessions(slot));
    await client.finalize();

    expect(losses).toEqual([]);
    const missing = allCalls()
      .map((c) => c.name)
      .filter((n) => !reached.has(n));
    expect(missing).toEqual([]);
    expect(reached.size).toBe(65);
  });
});
