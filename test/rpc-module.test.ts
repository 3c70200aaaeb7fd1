// A remote module through the same typed interface as a local one: a `remote:` config from the
// registry, the same SoftHSM2 loaded in-process by the bridge, and one flow run against both
// with the same answers. `isolate: true` hosts a local module in a `p11-kit remote` child, so a
// crash there (SIGSEGV delivered to the host) costs a generation, not this process.
import { readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11Module } from '../ts/bridge/module.js';
import { loadRegistry } from '../ts/registry/load.js';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../ts/rpc/constants.js';
import { HostLostError, Pkcs11Error, RemoteModule, isolateModule, openAsyncModule, type AsyncModule } from '../ts/rpc/index.js';
import { createConfTree } from './helpers/proxy-tree.js';
import { pidAlive, processesMarked, waitFor } from './helpers/rpc-procs.js';
import { P256, SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

let token: SoftHsmToken;
const opened: RemoteModule[] = [];

const softhsmInProcess = () => readFileSync('/proc/self/maps', 'utf8').includes('libsofthsm2.so');

beforeAll(() => {
  token = makeSoftHsmToken('rpc-module');
});

afterAll(async () => {
  await Promise.all(opened.map((m) => m.close()));
  token?.cleanup();
});

/** The same typed calls against any module; the answers that do not depend on handle values. */
async function flow(m: AsyncModule) {
  const c = m.async;
  await c.initialize();
  try {
    const info = await c.getInfo();
    const [slot] = await c.getSlotList(true);
    const label = (await c.getTokenInfo(slot!)).label;
    const s = await c.openSession(slot!, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await c.login(s, CKU.CKU_USER, USER_PIN);
    const kp = await c.generateKeyPair(
      s,
      CKM.CKM_EC_KEY_PAIR_GEN,
      [
        { type: CKA.CKA_EC_PARAMS, value: P256 },
        { type: CKA.CKA_LABEL, value: 'same-interface' },
        { type: CKA.CKA_VERIFY, value: true },
      ],
      [{ type: CKA.CKA_SIGN, value: true }],
    );
    const digest = new Uint8Array(32).fill(0x42);
    await c.signInit(s, { mechanism: CKM.CKM_ECDSA }, kp.privateKey);
    const sig = await c.sign(s, digest);
    await c.verifyInit(s, CKM.CKM_ECDSA, kp.publicKey);
    const good = await c.verify(s, digest, sig);
    const bad = Uint8Array.from(sig);
    bad[0]! ^= 0xff;
    await c.verifyInit(s, CKM.CKM_ECDSA, kp.publicKey);
    const forged = await c.verify(s, digest, bad);
    const attrs = await c.getAttributeValue(s, kp.publicKey, [CKA.CKA_CLASS, CKA.CKA_LABEL, CKA.CKA_EC_PARAMS, CKA.CKA_VERIFY, CKA.CKA_TOKEN, CKA.CKA_VALUE]);
    const found = await c.findAllObjects(s, [
      { type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY },
      { type: CKA.CKA_LABEL, value: 'same-interface' },
    ]);
    const random = await c.generateRandom(s, 24);
    const notLoggedOut = await c.logout(s).then(() => 'ok');
    const wrongPin = await c.login(s, CKU.CKU_USER, 'bad-pin').catch((e: Pkcs11Error) => [e.name, e.rv]);
    await c.closeSession(s);
    return {
      manufacturer: info.manufacturerID,
      label,
      sigLength: sig.length,
      good,
      forged,
      attrs: attrs.map((a) => [a.type, a.value instanceof Uint8Array ? Buffer.from(a.value).toString('hex') : a.value]),
      found: found.length,
      randomLength: random.length,
      notLoggedOut,
      wrongPin,
      slotEvent: await c.waitForSlotEvent(CKF.CKF_DONT_BLOCK).catch((e: Pkcs11Error) => e.rv),
    };
  } finally {
    await c.finalize();
  }
}

describe('isolate: true', () => {
  it('runs the module in a p11-kit remote child, never in this process', async () => {
    const m = isolateModule(SOFTHSM, { env: token.env });
    opened.push(m);
    await m.async.initialize();
    expect(softhsmInProcess()).toBe(false);
    const pid = m.client.pid!;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')).toContain(SOFTHSM);
    expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/p11-kit-remote$/);
    expect(m.name).toBe('libsofthsm2.so');
    expect(m.path).toBe(SOFTHSM);
    expect((await m.async.getTokenInfo((await m.async.getSlotList(true))[0]!)).label).toBe('rpc-module');
  });

  it('a crash in the module kills the host, not us: typed errors, then a fresh host', async () => {
    const m = opened[0]!;
    const [slot] = await m.async.getSlotList(true);
    const s = await m.async.openSession(slot!, CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION);
    await m.async.login(s, CKU.CKU_USER, USER_PIN);
    const pid = m.client.pid!;
    const pending = m.async.generateKeyPair(s, CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.CKA_MODULUS_BITS, value: 4096 }], []).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    process.kill(pid, 'SIGSEGV');
    const err = await pending;
    expect(err).toBeInstanceOf(HostLostError);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((err as Error).message).toMatch(/SIGSEGV/);
    expect(await waitFor(() => !pidAlive(pid))).toBe(true);
    await expect(m.async.getSlotList(true)).rejects.toMatchObject({ rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    await m.async.initialize();
    expect(m.generation).toBe(2);
    await expect(m.async.getSessionInfo(s)).rejects.toMatchObject({ name: 'StaleHandleError' });
    expect((await m.async.getSlotList(true))[0]).toBe(slot);
    await m.close();
  });
});

describe('a remote: config from the registry', () => {
  let remote: AsyncModule;
  let local: AsyncModule;

  beforeAll(() => {
    const tree = createConfTree();
    tree.module('softhsm-remote', `remote: |p11-kit remote ${SOFTHSM}\n`);
    tree.module('softhsm-local', `module: ${SOFTHSM}\n`);
    const registry = loadRegistry({ ...tree.registry, modulePath: '/usr/lib/x86_64-linux-gnu/pkcs11', env: token.env });
    tree.cleanup();
    const byName = new Map(registry.modules.map((m) => [m.name, m]));
    expect([...byName.keys()].sort()).toEqual(['softhsm-local', 'softhsm-remote']);
    expect(byName.get('softhsm-remote')!.settings.remote).toBe(`|p11-kit remote ${SOFTHSM}`);
    remote = openAsyncModule(byName.get('softhsm-remote')!, { env: token.env });
    local = openAsyncModule(byName.get('softhsm-local')!);
    opened.push(remote as RemoteModule);
    process.env.SOFTHSM2_CONF = token.conf;
  });

  it('opens the remote config over RPC and the local one in-process, under the same interface', () => {
    expect(remote).toBeInstanceOf(RemoteModule);
    expect(local).toBeInstanceOf(Pkcs11Module);
    expect(remote.name).toBe('softhsm-remote');
    expect(local.name).toBe('softhsm-remote'.replace('remote', 'local'));
    expect(Object.keys(remote.async).sort()).toEqual(Object.keys(local.async).sort());
  });

  it('gives the same answers to the same typed flow', async () => {
    const viaRpc = await flow(remote);
    const inProcess = await flow(local);
    expect(viaRpc).toEqual(inProcess);
    expect(viaRpc).toMatchObject({
      manufacturer: 'SoftHSM',
      label: 'rpc-module',
      sigLength: 64,
      good: true,
      forged: false,
      found: 1,
      randomLength: 24,
      notLoggedOut: 'ok',
      wrongPin: ['Pkcs11Error', CKR.CKR_PIN_INCORRECT],
    });
    expect(viaRpc.attrs).toEqual([
      [CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY],
      [CKA.CKA_LABEL, 'same-interface'],
      [CKA.CKA_EC_PARAMS, Buffer.from(P256).toString('hex')],
      [CKA.CKA_VERIFY, true],
      [CKA.CKA_TOKEN, false],
      [CKA.CKA_VALUE, undefined],
    ]);
  });

  it('leaves no host processes behind', async () => {
    await Promise.all(opened.map((m) => m.close()));
    expect(await waitFor(() => processesMarked(token.dir).length === 0)).toBe(true);
  });
});
