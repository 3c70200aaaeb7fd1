// `p11-kit server` (0.24.1) exporting a SoftHSM2 token on a unix socket in a temp dir, started
// and stopped here. Our client talks to it at the address it prints; p11-kit's own client
// (p11-kit-client.so, loaded in-process through pkcs11js) talks to the same server as the oracle.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKR, CKU } from '../ts/rpc/constants.js';
import { HostConnectError, HostLostError, RpcClient, StaleHandleError, type HostLostEvent } from '../ts/rpc/index.js';
import { childrenOf, pidAlive, processesMarked, startServer, waitFor, type ServerHandle } from './helpers/rpc-procs.js';
import { bufOf, pkcs11js, ulongOf } from './helpers/pkcs11js.js';
import { P256, SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

const P11_KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';

let token: SoftHsmToken;
let server: ServerHandle;
let client: RpcClient;
const losses: HostLostEvent[] = [];

beforeAll(async () => {
  token = makeSoftHsmToken('rpc-server');
  server = await startServer(SOFTHSM, join(token.dir, 'pkcs11.sock'), token.env);
  client = new RpcClient({ remote: server.address });
  client.on('hostLost', (e) => losses.push(e));
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
  token?.cleanup();
});

describe('p11-kit server on a unix socket', () => {
  it('prints a unix:path= address for the socket in the temp dir', () => {
    expect(server.address).toBe(`unix:path=${server.socketPath}`);
    expect(existsSync(server.socketPath)).toBe(true);
  });

  it('serves the token: login, key pair, sign and verify', async () => {
    await client.initialize();
    const slots = await client.getSlotList(true);
    // The server exports tokens through p11-kit's filter, which numbers slots from 17 as the proxy does.
    expect(slots[0]).toBe(17);
    expect((await client.getTokenInfo(slots[0]!)).label).toBe('rpc-server');
    const s = await client.openSession(slots[0]!, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await client.login(s, CKU.CKU_USER, USER_PIN);
    const kp = await client.generateKeyPair(s, { mechanism: CKM.CKM_EC_KEY_PAIR_GEN }, [{ type: CKA.CKA_EC_PARAMS, value: P256 }], [{ type: CKA.CKA_SIGN, value: true }]);
    const digest = new Uint8Array(createHash('sha256').update('over the socket').digest());
    await client.signInit(s, { mechanism: CKM.CKM_ECDSA }, kp.privateKey);
    const sig = await client.sign(s, digest);
    await client.verifyInit(s, { mechanism: CKM.CKM_ECDSA }, kp.publicKey);
    await client.verify(s, digest, sig);
    await client.closeSession(s);
  });

  it("answers as p11-kit's own client does (p11-kit-client.so against the same server)", async () => {
    const saved = process.env.P11_KIT_SERVER_ADDRESS;
    process.env.P11_KIT_SERVER_ADDRESS = server.address;
    const oracle = new pkcs11js.PKCS11();
    try {
      oracle.load(P11_KIT_CLIENT);
      oracle.C_Initialize({ flags: 2 }); // CKF_OS_LOCKING_OK: p11-kit-client refuses to run without locking
      const oSlots = oracle.C_GetSlotList(true).map(ulongOf);
      const slots = await client.getSlotList(true);
      expect(slots).toEqual(oSlots);
      const slot = slots[0]!;
      const ti = await client.getTokenInfo(slot);
      const oti = oracle.C_GetTokenInfo(bufOf(slot));
      expect([ti.label, ti.manufacturerID, ti.model, ti.serialNumber, ti.flags]).toEqual([oti.label.trimEnd(), oti.manufacturerID.trimEnd(), oti.model.trimEnd(), oti.serialNumber.trimEnd(), oti.flags]);
      // p11-kit's client drops mechanisms whose parameters it cannot carry; we list them all.
      const mechs = await client.getMechanismList(slot);
      const oMechs = oracle.C_GetMechanismList(bufOf(slot));
      expect(oMechs.length).toBeGreaterThan(10);
      expect(mechs.length).toBeGreaterThan(oMechs.length);
      expect(mechs).toEqual(expect.arrayContaining(oMechs));
      expect(mechs).toContain(CKM.CKM_AES_CBC_PAD);
      expect(oMechs).not.toContain(CKM.CKM_AES_CBC_PAD);
      for (const m of oMechs) {
        const oi = oracle.C_GetMechanismInfo(bufOf(slot), m);
        expect(await client.getMechanismInfo(slot, m)).toEqual({ minKeySize: oi.minKeySize, maxKeySize: oi.maxKeySize, flags: oi.flags });
      }
      oracle.C_Finalize();
    } finally {
      oracle.close();
      if (saved === undefined) delete process.env.P11_KIT_SERVER_ADDRESS;
      else process.env.P11_KIT_SERVER_ADDRESS = saved;
    }
  });

  it('treats a dropped connection as host loss; initialize() reconnects to the same server', async () => {
    const [slot] = (await client.getSlotList(true)) as [number];
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION);
    // The server runs one p11-kit-remote per connection: killing ours drops our socket.
    const before = childrenOf(server.pid);
    expect(before.length).toBeGreaterThanOrEqual(1);
    const pending = client.generateRandom(s, 32).then(
      () => undefined,
      (e: unknown) => e,
    );
    for (const pid of before) process.kill(pid, 'SIGKILL');
    const err = await pending;
    if (err !== undefined) expect(err).toBeInstanceOf(HostLostError);
    expect(await waitFor(() => losses.length === 1)).toBe(true);
    expect(losses[0]).toMatchObject({ generation: 1, reason: expect.stringMatching(/closed the connection|ECONNRESET|EPIPE/) });
    await expect(client.getSessionInfo(s)).rejects.toBeInstanceOf(StaleHandleError);

    await client.initialize();
    expect(client.generation).toBe(2);
    expect(await client.getSlotList(true)).toContain(slot);
    expect(childrenOf(server.pid).some((pid) => !before.includes(pid))).toBe(true);
  });

  it('fails to connect to a socket that is not there with HostConnectError', async () => {
    const nowhere = new RpcClient({ remote: `unix:path=${join(token.dir, 'absent.sock')}` });
    const err = await nowhere.initialize().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostConnectError);
    expect((err as HostConnectError).rv).toBe(CKR.CKR_DEVICE_ERROR);
    expect((err as Error).message).toMatch(/ENOENT/);
  });

  it('stops cleanly: the socket is removed and no server process is left', async () => {
    await client.close();
    await server.stop();
    expect(pidAlive(server.pid)).toBe(false);
    expect(await waitFor(() => !existsSync(server.socketPath))).toBe(true);
    expect(await waitFor(() => processesMarked(token.dir).length === 0)).toBe(true);
  });
});
