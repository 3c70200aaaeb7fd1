// A `remote:` module behind the proxy: SoftHSM2 in-process (one token store) and a second
// SoftHSM2 token store served by a real `p11-kit remote` host, both read from one config tree.
// Slot IDs and token lists against the real p11-kit-proxy on the same tree, signing on both
// tokens through proxy sessions, the sync API refusing the remote module, a host killed while
// the in-process module keeps serving, re-entry by each policy, and no host left behind.
import { createHash, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKF_SLOT,
  CKM,
  CKR,
  CKU,
  HostLostError,
  ProxyError,
  StaleHandleError,
  openProxy,
  openProxyAsync,
  type ModuleFailure,
  type ProxyModule,
  type ProxySession,
} from '../ts/index.js';
import { createConfTree, runOracle, type ConfTree, type OracleStep } from './helpers/proxy-tree.js';
import { pidAlive, processesMarked, waitFor } from './helpers/rpc-procs.js';
import { P256, SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';
import { createSoftHsm, type SoftHsm } from './helpers/softhsm.js';

const LOCAL = 'local-token';
const REMOTE = 'remote-token';
/** SubjectPublicKeyInfo of a P-256 key, up to the 65-byte uncompressed point. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

let hsm: SoftHsm;
let far: SoftHsmToken;
let tree: ConfTree;
let autoTree: ConfTree;
const opened: ProxyModule[] = [];

/** The remote line: the host gets the second token store through its own environment. */
const remoteLine = () => `remote: |env SOFTHSM2_CONF=${far.conf} p11-kit remote ${SOFTHSM}\n`;

beforeAll(() => {
  hsm = createSoftHsm(); // this process's SoftHSM2 reads its own store
  hsm.initToken(LOCAL, '0000', USER_PIN);
  far = makeSoftHsmToken(REMOTE);
  tree = createConfTree();
  tree.module('local', `module: ${SOFTHSM}\n`);
  tree.module('far', remoteLine());
  autoTree = createConfTree();
  autoTree.module('local', `module: ${SOFTHSM}\n`);
  autoTree.module('far', `${remoteLine()}x-reinit-policy: auto\n`);
});

afterAll(async () => {
  await Promise.all(opened.map((p) => p.async.release()));
  tree?.cleanup();
  autoTree?.cleanup();
  far?.cleanup();
  hsm?.cleanup();
});

async function open(t: ConfTree = tree): Promise<ProxyModule> {
  const p = await openProxyAsync({ registry: t.registry });
  opened.push(p);
  return p;
}

/** The host processes of the second store (marked by its directory in their environment). */
const hosts = () => processesMarked(far.dir);

interface SlotView {
  id: number;
  description: string;
  manufacturer: string;
  present: boolean;
  token: { label: string; manufacturer: string; model: string; serial: string } | null;
}

/** Our proxy's slots in the oracle's shape, through the async API. */
async function slotsOf(proxy: ProxyModule): Promise<SlotView[]> {
  const out: SlotView[] = [];
  for (const id of await proxy.async.getSlotList()) {
    const si = await proxy.async.getSlotInfo(id);
    const present = (si.flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0;
    const ti = present ? await proxy.async.getTokenInfo(id) : undefined;
    out.push({
      id,
      description: si.slotDescription,
      manufacturer: si.manufacturerID,
      present,
      token: ti ? { label: ti.label, manufacturer: ti.manufacturerID, model: ti.model, serial: ti.serialNumber } : null,
    });
  }
  return out;
}

function oracleSlots(step: OracleStep): SlotView[] {
  expect(step).toMatchObject({ step: 'slots', rv: CKR.CKR_OK });
  return (step.slots as (SlotView & { rv: number })[]).map(({ rv, ...slot }) => {
    expect(rv).toBe(CKR.CKR_OK);
    return slot;
  });
}

async function slotOf(proxy: ProxyModule, label: string): Promise<number> {
  const [t] = await proxy.async.findTokens(`pkcs11:token=${label}`);
  if (!t) throw new Error(`no token ${label}`);
  return t.slot;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('resolved'),
    (e: unknown) => e,
  );
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return new Error('returned');
}

/** An ECDSA P-256 signature made on the token behind `s`, checked by node:crypto with the token's public key. */
async function signAndCheck(s: ProxySession, label: string): Promise<void> {
  await s.async.login(CKU.CKU_USER, USER_PIN);
  const kp = await s.async.generateKeyPair(
    CKM.CKM_EC_KEY_PAIR_GEN,
    [{ type: CKA.CKA_EC_PARAMS, value: P256 }, { type: CKA.CKA_VERIFY, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_LABEL, value: label }],
    [{ type: CKA.CKA_SIGN, value: true }, { type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_PRIVATE, value: true }, { type: CKA.CKA_LABEL, value: label }],
  );
  const data = Buffer.from(`signed on ${label}`);
  await s.async.signInit(CKM.CKM_ECDSA, kp.privateKey);
  const sig = await s.async.sign(createHash('sha256').update(data).digest());
  expect(sig).toHaveLength(64);
  const [point] = await s.async.getAttributeValue(kp.publicKey, [CKA.CKA_EC_POINT]);
  const der = point!.value as Uint8Array; // OCTET STRING (04 41) around the uncompressed point
  expect([...der.subarray(0, 3)]).toEqual([0x04, 0x41, 0x04]);
  const key = { key: Buffer.concat([P256_SPKI_PREFIX, der.subarray(2)]), format: 'der' as const, type: 'spki' as const, dsaEncoding: 'ieee-p1363' as const };
  expect(verify('sha256', data, key, sig)).toBe(true);
  expect(verify('sha256', Buffer.from('something else'), key, sig)).toBe(false);
  // The token agrees, through the same proxy session.
  await s.async.verifyInit(CKM.CKM_ECDSA, kp.publicKey);
  expect(await s.async.verify(createHash('sha256').update(data).digest(), sig)).toBe(true);
}

describe('a remote: module behind the proxy', () => {
  it('lists slots and tokens in module order with the IDs and answers of p11-kit-proxy on the same tree', async () => {
    const oracle = runOracle(tree, ['initialize', 'slots', 'finalize'], hsm.env);
    expect(oracle[0]).toMatchObject({ step: 'initialize', rv: CKR.CKR_OK });
    const proxy = await open();
    // Same priority: by name, so the remote module comes first and its slots get the first IDs.
    expect(proxy.modules.map((m) => [m.name, m.host, m.usable])).toEqual([
      ['far', 'ready', true],
      ['local', undefined, true],
    ]);
    expect(proxy.failures).toEqual([]);
    const ours = await slotsOf(proxy);
    expect(ours).toEqual(oracleSlots(oracle[1]!));
    expect(ours.map((s) => s.id)).toEqual(ours.map((_, i) => 17 + i));
    // Each SoftHSM2 store: its token, then the free slot's uninitialized one.
    const labels = ours.filter((s) => s.token).map((s) => [proxy.slotOwner(s.id).module, s.token!.label]);
    expect(labels).toEqual([
      ['far', REMOTE],
      ['far', ''],
      ['local', LOCAL],
      ['local', ''],
    ]);
    // Asked again, the IDs stay; tokenPresent filters as p11-kit-proxy does.
    expect((await slotsOf(proxy)).map((s) => s.id)).toEqual(ours.map((s) => s.id));
    expect(await proxy.async.getSlotList(true)).toEqual(ours.filter((s) => s.present).map((s) => s.id));
    // Module attributes select the remote module too (module-name, and its CK_INFO from the host).
    expect((await proxy.async.findTokens('pkcs11:?module-name=far')).map((t) => t.token.label)).toEqual([REMOTE, '']);
    expect((await proxy.async.findTokens('pkcs11:library-manufacturer=SoftHSM;token=remote-token')).map((t) => [t.module, t.token.label])).toEqual([['far', REMOTE]]);
    expect((await proxy.async.findTokens('pkcs11:library-manufacturer=SoftHSM')).map((t) => t.module)).toEqual(['far', 'far', 'local', 'local']);
    expect(await proxy.async.findTokens('pkcs11:library-manufacturer=Nobody')).toEqual([]);
  });

  it('signs on both tokens through proxy sessions, and finds their keys by URI across both', async () => {
    const proxy = await open();
    const sessions: ProxySession[] = [];
    for (const [label, module] of [
      [REMOTE, 'far'],
      [LOCAL, 'local'],
    ] as const) {
      const s = await proxy.async.openSession(`pkcs11:token=${label}`, { rw: true });
      sessions.push(s);
      expect(s.module).toBe(module);
      expect(s.slot).toBe(await slotOf(proxy, label));
      expect((await s.async.getSessionInfo()).slotID).toBe(s.slot); // the proxy's slot ID, not the module's
      await signAndCheck(s, `key-on-${label}`);
    }
    // Proxy handles count up across modules.
    expect(sessions[1]!.handle).toBe(sessions[0]!.handle + 1);

    const found = await proxy.findObjects('pkcs11:type=private', { pin: USER_PIN, attributes: [CKA.CKA_LABEL] });
    expect(found.map((o) => [o.module, o.token.label, o.attributes[0]!.value])).toEqual([
      ['far', REMOTE, `key-on-${REMOTE}`],
      ['local', LOCAL, `key-on-${LOCAL}`],
    ]);
    for (const s of sessions) await s.async.close();
    expect(sessions.every((s) => !s.open)).toBe(true);
    expect(proxy.sessions()).toEqual([]);
  });

  it("refuses the remote module on the sync API with ASYNC_ONLY naming the async form; the sync API still serves the local one", async () => {
    const proxy = await open();
    const remoteSlot = await slotOf(proxy, REMOTE);
    const localSlot = await slotOf(proxy, LOCAL);
    const refused = (fn: () => unknown, form: string) => {
      const err = thrown(fn);
      expect(err).toBeInstanceOf(ProxyError);
      expect(err).toMatchObject({ code: 'ASYNC_ONLY', module: 'far' });
      expect((err as Error).message).toContain(form);
    };
    refused(() => proxy.getSlotInfo(remoteSlot), 'proxy.async.getSlotInfo()');
    refused(() => proxy.getTokenInfo(remoteSlot), 'proxy.async.getTokenInfo()');
    refused(() => proxy.getMechanismList(remoteSlot), 'proxy.async.getMechanismList()');
    refused(() => proxy.openSession(remoteSlot), 'proxy.async.openSession()');
    refused(() => proxy.reinitialize('far'), 'proxy.async.reinitialize()');

    const s = await proxy.async.openSession(remoteSlot);
    refused(() => s.generateRandom(8), 'session.async.generateRandom()');
    refused(() => s.getSessionInfo(), 'session.async.getSessionInfo()');
    refused(() => s.close(), 'session.async.close()');
    expect(await s.async.generateRandom(8)).toHaveLength(8);
    await s.async.close();
    expect(s.open).toBe(false);
    await expect(s.async.generateRandom(8)).rejects.toMatchObject({ rv: CKR.CKR_SESSION_HANDLE_INVALID });

    // Module-wide sync calls pass over the remote module.
    expect(proxy.getSlotList()).toEqual((await proxy.async.getSlotList()).filter((id) => proxy.slotOwner(id).module === 'local'));
    expect(proxy.findTokens('pkcs11:').map((t) => t.token.label)).toEqual([LOCAL, '']);
    const noMatch = thrown(() => proxy.openSession(`pkcs11:token=${REMOTE}`));
    expect(noMatch).toMatchObject({ name: 'ProxyError', code: 'NO_MATCHING_TOKEN' });
    expect((noMatch as Error).message).toContain('proxy.async.openSession()');
    expect(proxy.getTokenInfo(localSlot).label).toBe(LOCAL);
    const local = proxy.openSession(localSlot);
    expect(local.generateRandom(8)).toHaveLength(8);
    local.close();

    expect(proxy.module('far')).toBeUndefined();
    expect(proxy.remote('far')?.name).toBe('far');
    expect(proxy.remote('local')).toBeUndefined();
    expect(proxy.failures).toEqual([]);
  });

  it('openProxy (sync) starts no host until the async API needs one; the remote slots then get the next IDs', async () => {
    const before = hosts().length;
    const proxy = openProxy({ registry: tree.registry });
    opened.push(proxy);
    expect(proxy.modules.find((m) => m.name === 'far')).toMatchObject({ host: 'closed', usable: false });
    const localIds = proxy.getSlotList();
    expect(localIds).toEqual(localIds.map((_, i) => 17 + i));
    expect(hosts()).toHaveLength(before);

    // Listed in module order (the remote module first), numbered after the local slots.
    const all = await proxy.async.getSlotList();
    expect(proxy.modules.find((m) => m.name === 'far')).toMatchObject({ host: 'ready', usable: true, generation: 1 });
    const next = 17 + localIds.length;
    expect(all).toEqual([next, next + 1, ...localIds]);
    expect(all.slice(0, 2).map((id) => proxy.slotOwner(id).module)).toEqual(['far', 'far']);
    expect((await proxy.async.getTokenInfo(await slotOf(proxy, REMOTE))).label).toBe(REMOTE);
  });

  it('host killed: the loss is reported, the remote slots answer with the RPC typed errors, the local module keeps serving; explicit re-entry keeps the IDs', async () => {
    const proxy = await open();
    const failures: ModuleFailure[] = [];
    proxy.on('failure', (f) => failures.push(f));
    const ids = await proxy.async.getSlotList();
    const remoteSlot = await slotOf(proxy, REMOTE);
    const localSlot = await slotOf(proxy, LOCAL);
    const remoteSession = await proxy.async.openSession(remoteSlot);
    const localSession = await proxy.async.openSession(localSlot);
    const pid = proxy.remote('far')!.client.pid!;
    expect(pidAlive(pid)).toBe(true);

    process.kill(pid, 'SIGKILL');
    expect(await waitFor(() => failures.some((f) => f.stage === 'host-lost'))).toBe(true);
    const [loss] = failures;
    expect(loss).toMatchObject({ module: 'far', stage: 'host-lost', dropped: false });
    expect(loss!.error).toBeInstanceOf(HostLostError);
    expect(loss!.error).toMatchObject({ generation: 1 });
    expect(loss!.error.message).toMatch(/SIGKILL/);
    expect(proxy.modules.find((m) => m.name === 'far')).toMatchObject({ host: 'lost', usable: false, state: { phase: 'stale' } });
    expect(await waitFor(() => !pidAlive(pid))).toBe(true);

    // The remote module's slots and session answer with the RPC client's typed errors; nothing restarts.
    const lost = await rejection(proxy.async.getTokenInfo(remoteSlot));
    expect(lost).toBeInstanceOf(HostLostError);
    expect(lost).toMatchObject({ pending: false, rv: CKR.CKR_CRYPTOKI_NOT_INITIALIZED });
    expect(remoteSession.open).toBe(false);
    expect(await rejection(remoteSession.async.generateRandom(8))).toBeInstanceOf(StaleHandleError);
    expect(proxy.remote('far')!.generation).toBe(1);

    // The in-process module keeps serving, sync and async; the listing reports and skips the lost one.
    expect(await localSession.async.generateRandom(16)).toHaveLength(16);
    expect(proxy.getTokenInfo(localSlot).label).toBe(LOCAL);
    const localIds = ids.filter((id) => proxy.slotOwner(id).module === 'local');
    const reported = failures.length;
    expect(await proxy.async.getSlotList()).toEqual(localIds);
    expect(failures.slice(reported).map((f) => [f.module, f.stage, f.error.name])).toEqual([['far', 'slot-list', 'HostLostError']]);
    expect((await proxy.async.findTokens('pkcs11:')).map((t) => [t.module, t.token.label])).toEqual([
      ['local', LOCAL],
      ['local', ''],
    ]);

    // Explicit re-entry: a new host, a fresh C_Initialize, the same slot IDs.
    await proxy.async.reinitialize('far');
    const remote = proxy.remote('far')!;
    expect(remote.generation).toBe(2);
    expect(remote.client.pid).not.toBe(pid);
    expect(await proxy.async.getSlotList()).toEqual(ids);
    expect((await proxy.async.getTokenInfo(remoteSlot)).label).toBe(REMOTE);
    const fresh = await proxy.async.openSession(remoteSlot);
    expect(await fresh.async.generateRandom(8)).toHaveLength(8);
    expect(await rejection(remoteSession.async.generateRandom(8))).toBeInstanceOf(StaleHandleError);
    expect(await localSession.async.generateRandom(8)).toHaveLength(8);
  });

  it("host killed under x-reinit-policy: auto: the next call starts a fresh host by itself", async () => {
    const proxy = await open(autoTree);
    const failures: ModuleFailure[] = [];
    proxy.on('failure', (f) => failures.push(f));
    const remoteSlot = await slotOf(proxy, REMOTE);
    const session = await proxy.async.openSession(remoteSlot);
    const pid = proxy.remote('far')!.client.pid!;

    process.kill(pid, 'SIGKILL');
    expect(await waitFor(() => failures.length > 0)).toBe(true);
    expect(failures[0]).toMatchObject({ module: 'far', stage: 'host-lost' });
    // A stale session is refused without starting anything; a slot call starts the new host.
    expect(await rejection(session.async.generateRandom(8))).toBeInstanceOf(StaleHandleError);
    expect(proxy.remote('far')!.generation).toBe(1);
    expect((await proxy.async.getTokenInfo(remoteSlot)).label).toBe(REMOTE);
    expect(proxy.remote('far')!.generation).toBe(2);
    expect(proxy.remote('far')!.client.pid).not.toBe(pid);
    expect(failures).toHaveLength(1);
    const s2 = await proxy.async.openSession(`pkcs11:token=${REMOTE}`);
    expect(s2.slot).toBe(remoteSlot);
    expect(await s2.async.generateRandom(8)).toHaveLength(8);
  });

  it('a critical remote module whose host cannot start fails openProxyAsync; a non-critical one is reported and skipped', async () => {
    const t = createConfTree();
    try {
      t.module('local', `module: ${SOFTHSM}\n`);
      t.module('gone', 'remote: |/nonexistent/p11-kit-host remote x.so\n');
      const proxy = await open(t);
      expect(proxy.failures.map((f) => [f.module, f.stage, f.error.name])).toEqual([['gone', 'slot-list', 'HostConnectError']]);
      expect((await proxy.async.findTokens('pkcs11:')).map((x) => x.module)).toEqual(['local', 'local']);

      t.module('gone', 'remote: |/nonexistent/p11-kit-host remote x.so\ncritical: yes\n');
      const err = await rejection(openProxyAsync({ registry: t.registry }));
      expect(err).toBeInstanceOf(ProxyError);
      expect(err).toMatchObject({ code: 'CRITICAL_MODULE_FAILED', module: 'gone' });
    } finally {
      t.cleanup();
    }
  });

  it('leaves no host process behind once every proxy is released', async () => {
    expect(hosts().length).toBeGreaterThan(0); // the proxies above still hold theirs
    await Promise.all(opened.splice(0).map((p) => p.async.release()));
    expect(await waitFor(() => hosts().length === 0)).toBe(true);
  });
});
