// `p11-kit remote` (Debian's p11-kit 0.24.1) hosting SoftHSM2, driven by our RPC client, and
// the same token driven in-process through pkcs11js: the full flow, and the same answers.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../ts/rpc/constants.js';
import { HostConnectError, Pkcs11Error, RpcClient, RpcUnsupportedError, type TokenInfo } from '../ts/rpc/index.js';
import { pidAlive, processesMarked, waitFor } from './helpers/rpc-procs.js';
import { bufOf, pkcs11js, ulongOf } from './helpers/pkcs11js.js';
import { P256, SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

let token: SoftHsmToken;
let client: RpcClient;
let local: InstanceType<typeof pkcs11js.PKCS11>;
let slot: number;
const hostPids: number[] = [];

beforeAll(async () => {
  token = makeSoftHsmToken('rpc-remote');
  client = new RpcClient({ remote: `|p11-kit remote ${SOFTHSM}`, name: 'softhsm2', env: token.env });
  client.on('connected', (e) => e.pid && hostPids.push(e.pid));
  await client.initialize();
  [slot] = (await client.getSlotList(true)) as [number];
  // The in-process path reads SOFTHSM2_CONF when it initializes.
  process.env.SOFTHSM2_CONF = token.conf;
  local = new pkcs11js.PKCS11();
  local.load(SOFTHSM);
  local.C_Initialize();
});

afterAll(async () => {
  await client?.close();
  try {
    local?.C_Finalize();
    local?.close();
  } catch {
    // already gone
  }
  token?.cleanup();
});

describe('p11-kit remote hosting SoftHSM2', () => {
  it('runs the host as a child process speaking protocol 0', () => {
    expect(client.generation).toBe(1);
    expect(client.state).toBe('ready');
    expect(hostPids).toHaveLength(1);
    expect(pidAlive(hostPids[0]!)).toBe(true);
  });

  it('holds this process alive only while calls are in flight', async () => {
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const idle = count('ProcessWrap');
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION);
    // A session-object RSA key pair takes SoftHSM2 long enough to look at the loop meanwhile.
    const pending = client.generateKeyPair(s, { mechanism: CKM.CKM_RSA_PKCS_KEY_PAIR_GEN }, [{ type: CKA.CKA_MODULUS_BITS, value: 2048 }], [{ type: CKA.CKA_PRIVATE, value: false }]);
    await new Promise((r) => setTimeout(r, 5));
    expect(count('ProcessWrap')).toBe(idle + 1);
    await pending;
    expect(count('ProcessWrap')).toBe(idle);
    await client.closeSession(s);
  });

  it('answers general and slot queries exactly as the module in-process does', async () => {
    const info = await client.getInfo();
    const li = local.C_GetInfo();
    expect(info.manufacturerID).toBe(li.manufacturerID.trimEnd());
    expect(info.libraryDescription).toBe(li.libraryDescription.trimEnd());
    expect(info.cryptokiVersion).toEqual(li.cryptokiVersion);
    expect(info.libraryVersion).toEqual(li.libraryVersion);

    const localSlots = local.C_GetSlotList(true).map(ulongOf);
    expect(await client.getSlotList(true)).toEqual(localSlots);
    expect((await client.getSlotList(false)).length).toBe(local.C_GetSlotList(false).length);

    const ti: TokenInfo = await client.getTokenInfo(slot);
    const lt = local.C_GetTokenInfo(bufOf(slot));
    expect(ti.label).toBe('rpc-remote');
    expect([ti.label, ti.manufacturerID, ti.model, ti.serialNumber]).toEqual([lt.label, lt.manufacturerID, lt.model, lt.serialNumber].map((s) => s.trimEnd()));
    expect(ti.flags).toBe(lt.flags);
    expect(ti.flags & CKF.CKF_TOKEN_INITIALIZED).toBe(CKF.CKF_TOKEN_INITIALIZED);
    expect([ti.maxPinLen, ti.minPinLen]).toEqual([lt.maxPinLen, lt.minPinLen]);

    const si = await client.getSlotInfo(slot);
    const ls = local.C_GetSlotInfo(bufOf(slot));
    expect([si.slotDescription, si.manufacturerID, si.flags]).toEqual([ls.slotDescription.trimEnd(), ls.manufacturerID.trimEnd(), ls.flags]);
  });

  it('lists every mechanism the module has (no purge) with the same info', async () => {
    const mechs = await client.getMechanismList(slot);
    expect(mechs).toEqual(local.C_GetMechanismList(bufOf(slot)));
    expect(mechs).toContain(CKM.CKM_ECDSA);
    let extraBit = 0;
    for (const m of mechs) {
      const li = local.C_GetMechanismInfo(bufOf(slot), m);
      const ri = await client.getMechanismInfo(slot, m);
      expect([ri.minKeySize, ri.maxKeySize]).toEqual([li.minKeySize, li.maxKeySize]);
      // The host's answer carries bit 0x2 (CKF_MESSAGE_ENCRYPT in 3.0) for some symmetric
      // mechanisms; p11-kit's own client shows it too ("other flags=0x2" from pkcs11-tool on
      // p11-kit-client.so), so it comes from the host side. Everything else is identical.
      expect(ri.flags & ~0x2).toBe(li.flags);
      if (ri.flags !== li.flags) extraBit++;
    }
    expect(extraBit).toBeLessThan(mechs.length / 2);
  });

  it('logs in, makes an EC P-256 key pair, signs and verifies; pkcs11js verifies the same signature', async () => {
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await expect(client.login(s, CKU.CKU_USER, 'wrong')).rejects.toMatchObject({ rv: CKR.CKR_PIN_INCORRECT });
    await client.login(s, CKU.CKU_USER, USER_PIN);
    expect((await client.getSessionInfo(s)).state).toBe(3); // CKS_RW_USER_FUNCTIONS
    const id = Uint8Array.of(0xec, 1);
    const { publicKey, privateKey } = await client.generateKeyPair(
      s,
      { mechanism: CKM.CKM_EC_KEY_PAIR_GEN },
      [
        { type: CKA.CKA_EC_PARAMS, value: P256 },
        { type: CKA.CKA_VERIFY, value: true },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_ID, value: id },
        { type: CKA.CKA_LABEL, value: 'ec-remote' },
      ],
      [
        { type: CKA.CKA_SIGN, value: true },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_PRIVATE, value: true },
        { type: CKA.CKA_SENSITIVE, value: true },
        { type: CKA.CKA_ID, value: id },
        { type: CKA.CKA_LABEL, value: 'ec-remote' },
      ],
    );
    expect(publicKey).not.toBe(privateKey);

    // SoftHSM2 2.6 signs ECDSA over a digest the caller makes (no CKM_ECDSA_SHA256).
    const message = new Uint8Array(createHash('sha256').update('sign me over RPC').digest());
    await client.signInit(s, { mechanism: CKM.CKM_ECDSA }, privateKey);
    const signature = await client.sign(s, message);
    expect(signature).toHaveLength(64);
    await client.verifyInit(s, { mechanism: CKM.CKM_ECDSA }, publicKey);
    await client.verify(s, message, signature);
    const tampered = Uint8Array.from(signature);
    tampered[5]! ^= 1;
    await client.verifyInit(s, { mechanism: CKM.CKM_ECDSA }, publicKey);
    await expect(client.verify(s, message, tampered)).rejects.toMatchObject({ rv: CKR.CKR_SIGNATURE_INVALID });

    // The host wrote a token object; the module in this process finds it and checks the signature.
    const ls = local.C_OpenSession(bufOf(slot), CKF.CKF_SERIAL_SESSION);
    local.C_FindObjectsInit(ls, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY },
      { type: CKA.CKA_ID, value: Buffer.from(id) },
    ]);
    const found = local.C_FindObjects(ls, 10);
    local.C_FindObjectsFinal(ls);
    expect(found).toHaveLength(1);
    local.C_VerifyInit(ls, { mechanism: CKM.CKM_ECDSA }, found[0]!);
    expect(local.C_Verify(ls, Buffer.from(message), Buffer.from(signature))).toBe(true);

    // Its public attributes read the same both ways.
    const types = [CKA.CKA_CLASS, CKA.CKA_KEY_TYPE, CKA.CKA_TOKEN, CKA.CKA_LABEL, CKA.CKA_ID, CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT, CKA.CKA_VERIFY];
    const remote = await client.getAttributeValue(s, publicKey, types);
    expect(remote.rv).toBe(CKR.CKR_OK);
    const localAttrs = local.C_GetAttributeValue(ls, found[0]!, types.map((type) => ({ type })));
    expect(remote.attributes.map((a) => a.value)).toEqual([
      CKO.CKO_PUBLIC_KEY,
      3,
      true,
      new TextEncoder().encode('ec-remote'),
      id,
      P256,
      new Uint8Array(localAttrs[6]!.value as Buffer),
      true,
    ]);
    expect(Buffer.from(remote.attributes[6]!.value as Uint8Array).equals(localAttrs[6]!.value as Buffer)).toBe(true);
    local.C_CloseSession(ls);

    // Sensitive values stay unavailable, with the module's CK_RV.
    const secret = await client.getAttributeValue(s, privateKey, [CKA.CKA_CLASS, CKA.CKA_VALUE, CKA.CKA_SENSITIVE]);
    expect(secret.rv).toBe(CKR.CKR_ATTRIBUTE_SENSITIVE);
    expect(secret.attributes.map((a) => a.value)).toEqual([CKO.CKO_PRIVATE_KEY, undefined, true]);
    await client.closeSession(s);
  });

  it('finds objects by template, as the module does in-process', async () => {
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await client.login(s, CKU.CKU_USER, USER_PIN).catch((e: Pkcs11Error) => expect(e.rv).toBe(CKR.CKR_USER_ALREADY_LOGGED_IN));
    for (let i = 0; i < 3; i++) {
      await client.createObject(s, [
        { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_LABEL, value: `data-${i}` },
        { type: CKA.CKA_APPLICATION, value: 'rpc-test' },
        { type: CKA.CKA_VALUE, value: new Uint8Array(300 + i).fill(i) },
      ]);
    }
    const template = [
      { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
      { type: CKA.CKA_APPLICATION, value: 'rpc-test' },
    ];
    await client.findObjectsInit(s, template);
    const first = await client.findObjects(s, 2);
    const rest = await client.findObjects(s, 10);
    await client.findObjectsFinal(s);
    expect(first).toHaveLength(2);
    expect(rest).toHaveLength(1);
    const values = await Promise.all([...first, ...rest].map((h) => client.getAttributeValue(s, h, [CKA.CKA_LABEL, CKA.CKA_VALUE])));
    const remoteSet = values.map((v) => `${new TextDecoder().decode(v.attributes[0]!.value as Uint8Array)}:${(v.attributes[1]!.value as Uint8Array).length}`).sort();
    expect(remoteSet).toEqual(['data-0:300', 'data-1:301', 'data-2:302']);

    const ls = local.C_OpenSession(bufOf(slot), CKF.CKF_SERIAL_SESSION);
    local.C_Login(ls, CKU.CKU_USER, USER_PIN);
    local.C_FindObjectsInit(ls, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
      { type: CKA.CKA_APPLICATION, value: Buffer.from('rpc-test') },
    ]);
    const localFound = local.C_FindObjects(ls, 10);
    local.C_FindObjectsFinal(ls);
    const localSet = localFound
      .map((h) => local.C_GetAttributeValue(ls, h, [{ type: CKA.CKA_LABEL }, { type: CKA.CKA_VALUE }]))
      .map((a) => `${(a[0]!.value as Buffer).toString()}:${(a[1]!.value as Buffer).length}`)
      .sort();
    local.C_Logout(ls);
    local.C_CloseSession(ls);
    expect(remoteSet).toEqual(localSet);

    const [h] = first as [number];
    const size = await client.getObjectSize(s, h).catch((e: Pkcs11Error) => e.rv);
    expect(typeof size).toBe('number');
    await client.setAttributeValue(s, h, [{ type: CKA.CKA_LABEL, value: 'renamed' }]);
    expect((await client.getAttributeValue(s, h, [CKA.CKA_LABEL])).attributes[0]!.value).toEqual(new TextEncoder().encode('renamed'));
    await client.destroyObject(s, h);
    await expect(client.getAttributeValue(s, h, [CKA.CKA_LABEL])).rejects.toMatchObject({ rv: CKR.CKR_OBJECT_HANDLE_INVALID });
    await client.closeSession(s);
  });

  it('digests, makes RSA signatures byte-identical to the in-process ones, and random bytes', async () => {
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await client.login(s, CKU.CKU_USER, USER_PIN).catch((e: Pkcs11Error) => expect(e.rv).toBe(CKR.CKR_USER_ALREADY_LOGGED_IN));
    const data = new Uint8Array(1000).map((_, i) => i * 7);
    await client.digestInit(s, { mechanism: CKM.CKM_SHA256 });
    expect(Buffer.from(await client.digest(s, data)).equals(createHash('sha256').update(data).digest())).toBe(true);
    await client.digestInit(s, { mechanism: CKM.CKM_SHA256 });
    await client.digestUpdate(s, data.subarray(0, 10));
    await client.digestUpdate(s, data.subarray(10));
    expect(Buffer.from(await client.digestFinal(s)).equals(createHash('sha256').update(data).digest())).toBe(true);

    const id = Uint8Array.of(0x55, 2);
    const kp = await client.generateKeyPair(
      s,
      { mechanism: CKM.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        { type: CKA.CKA_MODULUS_BITS, value: 2048 },
        { type: CKA.CKA_PUBLIC_EXPONENT, value: Uint8Array.of(1, 0, 1) },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_ID, value: id },
      ],
      [
        { type: CKA.CKA_SIGN, value: true },
        { type: CKA.CKA_DECRYPT, value: true },
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_PRIVATE, value: true },
        { type: CKA.CKA_ID, value: id },
      ],
    );
    await client.signInit(s, { mechanism: CKM.CKM_SHA256_RSA_PKCS }, kp.privateKey);
    const remoteSig = await client.sign(s, data);

    const ls = local.C_OpenSession(bufOf(slot), CKF.CKF_SERIAL_SESSION);
    local.C_Login(ls, CKU.CKU_USER, USER_PIN);
    local.C_FindObjectsInit(ls, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY },
      { type: CKA.CKA_ID, value: Buffer.from(id) },
    ]);
    const [priv] = local.C_FindObjects(ls, 1);
    local.C_FindObjectsFinal(ls);
    local.C_SignInit(ls, { mechanism: CKM.CKM_SHA256_RSA_PKCS }, priv!);
    const localSig = local.C_Sign(ls, Buffer.from(data), Buffer.alloc(512));
    local.C_Logout(ls);
    local.C_CloseSession(ls);
    expect(Buffer.from(remoteSig).equals(localSig)).toBe(true);

    // RSA-PSS travels structured (CKM_RSA_PKCS_PSS) and raw (the hashed variants).
    const pss = { hashAlg: CKM.CKM_SHA256, mgf: 2, sLen: 32 };
    const digest = createHash('sha256').update(data).digest();
    for (const [mech, input] of [
      [{ mechanism: CKM.CKM_RSA_PKCS_PSS, parameter: pss }, new Uint8Array(digest)],
      [{ mechanism: CKM.CKM_SHA256_RSA_PKCS_PSS, parameter: pss }, data],
    ] as const) {
      await client.signInit(s, mech, kp.privateKey);
      const sig = await client.sign(s, input);
      await client.verifyInit(s, mech, kp.publicKey);
      await client.verify(s, input, sig);
    }
    // RSA-OAEP round trip.
    const oaep = { mechanism: CKM.CKM_RSA_PKCS_OAEP, parameter: { hashAlg: CKM.CKM_SHA_1, mgf: 1 } };
    await client.encryptInit(s, oaep, kp.publicKey);
    const ct = await client.encrypt(s, Uint8Array.of(1, 2, 3));
    expect(ct).toHaveLength(256);
    await client.decryptInit(s, oaep, kp.privateKey);
    expect(await client.decrypt(s, ct)).toEqual(Uint8Array.of(1, 2, 3));

    const r1 = await client.generateRandom(s, 48);
    const r2 = await client.generateRandom(s, 48);
    expect(r1).toHaveLength(48);
    expect(Buffer.from(r1).equals(Buffer.from(r2))).toBe(false);
    await client.closeAllSessions(slot);
    await expect(client.getSessionInfo(s)).rejects.toMatchObject({ rv: CKR.CKR_SESSION_HANDLE_INVALID });
  });

  it('sizes outputs larger than its first guess (AES-CBC over 4 KiB)', async () => {
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION);
    await client.login(s, CKU.CKU_USER, USER_PIN);
    const key = await client.generateKey(s, { mechanism: CKM.CKM_AES_KEY_GEN }, [
      { type: CKA.CKA_VALUE_LEN, value: 32 },
      { type: CKA.CKA_ENCRYPT, value: true },
      { type: CKA.CKA_DECRYPT, value: true },
    ]);
    const iv = new Uint8Array(16).fill(3);
    const plain = new Uint8Array(4096 + 5).map((_, i) => i);
    await client.encryptInit(s, { mechanism: CKM.CKM_AES_CBC_PAD, parameter: iv }, key);
    const ct = await client.encrypt(s, plain);
    expect(ct).toHaveLength(4112);
    await client.decryptInit(s, { mechanism: CKM.CKM_AES_CBC_PAD, parameter: iv }, key);
    const part1 = await client.decryptUpdate(s, ct.subarray(0, 2048));
    const part2 = await client.decryptUpdate(s, ct.subarray(2048));
    const last = await client.decryptFinal(s);
    expect(Uint8Array.from([...part1, ...part2, ...last])).toEqual(plain);
    await client.closeSession(s);
  });

  it('refuses what protocol 0 cannot carry, without disturbing the host', async () => {
    const s = await client.openSession(slot, CKF.CKF_SERIAL_SESSION);
    await expect(client.encryptInit(s, { mechanism: CKM.CKM_AES_GCM, parameter: new Uint8Array(48) }, 1)).rejects.toBeInstanceOf(RpcUnsupportedError);
    await expect(client.findObjectsInit(s, [{ type: CKA.CKA_WRAP_TEMPLATE, value: [] }])).rejects.toBeInstanceOf(RpcUnsupportedError);
    await expect(client.getAttributeValue(s, 1, [CKA.CKA_UNWRAP_TEMPLATE])).rejects.toBeInstanceOf(RpcUnsupportedError);
    expect(client.state).toBe('ready');
    expect(await client.getSlotList(true)).toContain(slot);
    await client.closeSession(s);
  });

  it('passes the host its errors: a second C_Initialize is CKR_CRYPTOKI_ALREADY_INITIALIZED', async () => {
    await expect(client.initialize()).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_ALREADY_INITIALIZED });
    expect(client.generation).toBe(1);
  });

  it('finalizes: the host exits, and calls then need C_Initialize again', async () => {
    const pid = client.pid!;
    await client.finalize();
    expect(client.state).toBe('closed');
    expect(await waitFor(() => !pidAlive(pid))).toBe(true);
    await expect(client.getInfo()).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    await client.initialize();
    expect(client.generation).toBe(2);
    expect(client.pid).not.toBe(pid);
    expect(await client.getSlotList(true)).toContain(slot);
  });

  it('reports a host that cannot be started as HostConnectError', async () => {
    const broken = new RpcClient({ remote: '|/nonexistent/p11-kit-host', env: token.env });
    await expect(broken.initialize()).rejects.toBeInstanceOf(HostConnectError);
    expect(broken.state).toBe('closed');
    const refusing = new RpcClient({ remote: `|p11-kit remote /nonexistent/module.so`, env: token.env });
    await expect(refusing.initialize()).rejects.toBeInstanceOf(Pkcs11Error);
    expect(refusing.state).toBe('closed');
  });

  it('leaves no host processes behind once closed', async () => {
    await client.close();
    for (const pid of hostPids) expect(await waitFor(() => !pidAlive(pid))).toBe(true);
    expect(await waitFor(() => processesMarked(token.dir).length === 0)).toBe(true);
  });
});
