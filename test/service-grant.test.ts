// Least privilege: a hostile client (a compromised renderer) on a service endpoint. It sends
// every kind of message raw — comlink's GET/SET/CONSTRUCT/ENDPOINT, property paths, forged
// transfer handlers, batches and streams, malformed and out-of-grant — and nothing outside its
// grant happens: no library is dlopen'ed (a fixture that marks a file when loaded), no object
// appears or disappears, no PIN or token label changes, and the host keeps serving.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKM,
  CKO,
  CKU,
  connectPkcs11,
  FULL_GRANT,
  loadRegistry,
  ModuleLoadError,
  nodePortEndpoint,
  openModule,
  servePkcs11,
  ServiceRefusedError,
  UnknownModuleError,
  type ClientGrant,
  type ManagedModule,
  type Pkcs11Client,
} from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const TATTLETALE = new URL('../dist/native/fixtures/tattletale-module.so', import.meta.url).pathname;
const PIN = '1234';
const SO_PIN = '12345678';

let hsm: SoftHsm;
let slot: number;
let local: ManagedModule;
let keyHandle: number;
const work = mkdtempSync(join(tmpdir(), 'p11kit-grant-'));
const tattle = join(work, 'tattle');

beforeAll(() => {
  process.env.P11W_TATTLE = tattle;
  hsm = createSoftHsm();
  slot = hsm.initToken('grant', SO_PIN, PIN);
  local = openModule(SOFTHSM_MODULE);
  const s = local.openSession(slot, { rw: true });
  s.login(CKU.CKU_USER, PIN);
  keyHandle = s.generateKey(CKM.CKM_AES_KEY_GEN, [
    { type: CKA.CKA_TOKEN, value: true },
    { type: CKA.CKA_VALUE_LEN, value: 32 },
    { type: CKA.CKA_ENCRYPT, value: true },
    { type: CKA.CKA_LABEL, value: 'aes' },
  ]);
});
afterAll(() => {
  local.release();
  hsm.cleanup();
  rmSync(work, { recursive: true, force: true });
  delete process.env.P11W_TATTLE;
});

const open: { client?: Pkcs11Client; ports: MessagePort[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.client?.close();
    for (const p of o.ports) p.close();
  }
});

/** A service endpoint in this thread with `grant`; the client end as a typed client and as a raw port. */
function serve(grant?: ClientGrant) {
  const { port1, port2 } = new MessageChannel();
  const service = servePkcs11(nodePortEndpoint(port2), { grant });
  const client = connectPkcs11(nodePortEndpoint(port1));
  open.push({ client, ports: [port1, port2] });
  return { service, client, port: port1 };
}

/** Sends `msg` raw and waits for the reply carrying `match`. */
function raw(port: MessagePort, msg: Record<string, unknown>, match: (d: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const l = (d: Record<string, unknown>) => {
      if (d && match(d)) {
        port.off('message', l);
        resolve(d);
      }
    };
    port.on('message', l);
    port.postMessage(msg);
  });
}
let nextId = 1_000_000;
const comlink = (port: MessagePort, msg: Record<string, unknown>) => {
  const id = nextId++;
  return raw(port, { id, ...msg }, (d) => d.id === id);
};
/** The error a raw comlink reply carries (our codec's wire form), or undefined for a value. */
const thrown = (reply: Record<string, unknown>) =>
  reply.type === 'HANDLER' ? ((reply.value as { p11w: { name: string; fields: Record<string, unknown>; message: string } }).p11w) : undefined;

/** What must stay as it is: token objects and the token's label. */
function tokenSnapshot() {
  const s = local.openSession(slot);
  try {
    return { objects: s.findAllObjects([]).length, label: local.getTokenInfo(slot).label };
  } finally {
    s.close();
  }
}

describe('service grants: defaults', () => {
  it('a renderer-facing endpoint starts with "use" only, configured modules by name, no paths', async () => {
    const { client } = serve();
    expect(await client.supervisor.call('whoami')).toEqual({ operations: ['use'], paths: false, modules: 'configured' });
    await expect(client.openModule(SOFTHSM_MODULE)).rejects.toBeInstanceOf(ServiceRefusedError);
    await expect(client.openModule(TATTLETALE)).rejects.toMatchObject({ name: 'ServiceRefusedError', method: 'openModule' });
    await expect(client.openModule('libtattletale-module.so')).rejects.toBeInstanceOf(ServiceRefusedError); // a bare .so is a path (dlopen searches)
    await expect(client.openModule({ source: 'softhsm2', initReserved: 'configdir=/tmp' })).rejects.toBeInstanceOf(ServiceRefusedError);
    expect(existsSync(tattle)).toBe(false);

    // By name it may open and use; listing slots (read) and managing are refused.
    const m = await client.openModule('softhsm2');
    await expect(m.slots()).rejects.toMatchObject({ name: 'ServiceRefusedError', needs: 'read' });
    await expect(m.openSession(slot, { rw: true })).rejects.toMatchObject({ needs: 'manage' });
    const s = await m.openSession(slot, { pin: PIN });
    const [aes] = await s.findObjects([{ type: CKA.CKA_LABEL, value: 'aes' }]);
    expect(aes).toBe(keyHandle);
    const iv = new Uint8Array(16);
    expect((await s.encrypt({ mechanism: CKM.CKM_AES_CBC, parameter: iv }, aes, new Uint8Array(32))).length).toBe(32);
  });

  it('unknown module names are typed and list what this client could open', async () => {
    const configured = loadRegistry().modules.map((m) => m.name);
    expect(configured).toContain('softhsm2');
    const err = await serve().client.openModule('nosuchmodule').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownModuleError);
    expect(err).toMatchObject({ module: 'nosuchmodule', available: configured });
    expect((err as Error).message).toContain('softhsm2');
    // A narrower allow-list lists only its own names, and refuses the others as unknown.
    const narrow = serve({ modules: ['softhsm2'] }).client;
    await expect(narrow.openModule('p11-kit-trust')).rejects.toMatchObject({ name: 'UnknownModuleError', available: ['softhsm2'] });
  });

  it('an allow-list of paths admits exactly those paths', async () => {
    const { client } = serve({ paths: [SOFTHSM_MODULE], operations: ['read', 'use'] });
    const m = await client.openModule(SOFTHSM_MODULE);
    expect((await m.slots()).some((e) => e.slot === slot)).toBe(true);
    await expect(client.openModule(TATTLETALE)).rejects.toBeInstanceOf(ServiceRefusedError);
    await expect(client.openModule(`${SOFTHSM_MODULE}/../libsofthsm2.so`)).rejects.toBeInstanceOf(ServiceRefusedError);
    expect(existsSync(tattle)).toBe(false);
  });

  it('control: a trusted client naming the fixture does load it (so the mark would show)', async () => {
    const { client } = serve(FULL_GRANT);
    await expect(client.openModule(TATTLETALE)).rejects.toBeInstanceOf(ModuleLoadError);
    expect(readFileSync(tattle, 'utf8')).toBe('loaded\n');
    rmSync(tattle);
  });
});

describe('service grants: a hostile client', () => {
  it('comlink messages other than a call by one method name are refused; the host keeps serving', async () => {
    const { port, client, service } = serve();
    const attempts: Record<string, unknown>[] = [
      { type: 'GET', path: ['grant'] },
      { type: 'GET', path: [] },
      { type: 'SET', path: ['grant'], value: { type: 'RAW', value: {} } },
      { type: 'SET', path: ['openModule', 'x'], value: { type: 'RAW', value: 1 } },
      { type: 'CONSTRUCT', path: ['openModule', 'constructor'], argumentList: [{ type: 'RAW', value: 'return process' }] },
      { type: 'APPLY', path: ['openModule', 'constructor'], argumentList: [{ type: 'RAW', value: 'return 1' }] },
      { type: 'APPLY', path: ['constructor'] },
      { type: 'APPLY', path: ['__proto__'] },
      { type: 'APPLY', path: ['hasOwnProperty'] },
      { type: 'APPLY', path: ['module'], argumentList: [{ type: 'RAW', value: 1 }, { type: 'RAW', value: 'x' }] },
      { type: 'APPLY', path: ['grant', 'require'] },
      { type: 'APPLY', path: [['openModule']] },
      { type: 'APPLY', path: 'openModule' },
      { type: 'ENDPOINT' },
      { type: 'APPLY', path: ['openModule'], argumentList: [{ type: 'HANDLER', name: 'throw', value: { isError: false, value: 1 } }] },
      { type: 'APPLY', path: ['openModule'], argumentList: [{ type: 'HANDLER', name: 'proxy', value: null }] },
      { type: 'APPLY', path: ['openModule'], argumentList: [{ type: 'RAW', value: { source: TATTLETALE } }] },
      { type: 'APPLY', path: ['openModule'], argumentList: [{ type: 'RAW', value: { source: 'x'.repeat(10_000) } }] },
      { type: 'APPLY', path: ['openModule'], argumentList: [{ type: 'RAW', value: null }] },
      { type: 'APPLY', path: ['openModule'], argumentList: Array.from({ length: 100 }, () => ({ type: 'RAW', value: 1 })) },
      { type: 'APPLY', path: ['openModule'], argumentList: 'nope' },
      { type: 'APPLY', path: ['drain'], argumentList: [{ type: 'RAW' }] },
    ];
    for (const a of attempts) {
      const reply = await comlink(port, a);
      const e = thrown(reply);
      if (a.path?.[0] === 'drain') expect(e, JSON.stringify(a)).toBeUndefined();
      else expect(e?.name, JSON.stringify(a)).toMatch(/^(ServiceRefusedError|UnknownModuleError)$/);
    }
    // The grant is what it was, nothing was loaded, and the same port still answers.
    expect(service.grant.describe().operations).toEqual(['use']);
    expect(existsSync(tattle)).toBe(false);
    expect(await client.ping()).toMatchObject({ modules: 0, sessions: 0 });
    // Garbage that is not a message of ours at all is ignored, not fatal.
    for (const junk of [null, 1, 'x', [], { id: {} }, { type: 7, id: 1 }, { p11wBatch: 1, methods: 5, calls: 7 }, { p11wStreamOpen: 'x' }]) port.postMessage(junk);
    expect(await client.ping()).toMatchObject({ modules: 0 });
  });

  it('out-of-grant calls by every route — call, batch, session/module call by name, stream — change nothing', async () => {
    const { port, client } = serve({ paths: [SOFTHSM_MODULE] }); // 'use' only
    const before = tokenSnapshot();
    const m = await client.openModule(SOFTHSM_MODULE);
    const s = await m.openSession(slot, { pin: PIN });
    const sup = client.supervisor;
    const refusals = [
      sup.call('createObject', s.id, [{ type: CKA.CKA_CLASS, value: CKO.CKO_DATA }, { type: CKA.CKA_TOKEN, value: true }]),
      sup.call('destroyObject', s.id, keyHandle),
      sup.call('generateKey', s.id, CKM.CKM_AES_KEY_GEN, [{ type: CKA.CKA_TOKEN, value: true }, { type: CKA.CKA_VALUE_LEN, value: 16 }]),
      sup.call('generateKeyPair', s.id, CKM.CKM_EC_KEY_PAIR_GEN, [], []),
      sup.call('login', s.id, SO_PIN, CKU.CKU_SO),
      sup.call('login', s.id, SO_PIN, '0' as never), // not a number: not "user" either
      sup.call('openSession', m.id, slot, { pin: SO_PIN, userType: 0n as never }),
      sup.call('openSession', m.id, slot, 'rw' as never),
      sup.call('sessionCall', s.id, 'login', ['0', SO_PIN]),
      sup.call('sessionCall', s.id, 'login', [undefined, SO_PIN]),
      sup.call('openSession', m.id, slot, { pin: SO_PIN, userType: CKU.CKU_SO }),
      sup.call('slots', m.id),
      sup.call('mechanisms', m.id, slot),
      sup.call('moduleState', m.id),
      sup.call('sessionCall', s.id, 'setPIN', [PIN, '9999']),
      sup.call('sessionCall', s.id, 'initPIN', ['9999']),
      sup.call('sessionCall', s.id, 'destroyObject', [keyHandle]),
      sup.call('sessionCall', s.id, 'setAttributeValue', [keyHandle, [{ type: CKA.CKA_LABEL, value: 'pwned' }]]),
      sup.call('sessionCall', s.id, 'wrapKey', [CKM.CKM_AES_KEY_WRAP, keyHandle, keyHandle]),
      sup.call('sessionCall', s.id, 'loginUser', [CKU.CKU_SO, SO_PIN, 'so']),
      sup.call('sessionCall', s.id, '__proto__', []),
      sup.call('sessionCall', s.id, 'constructor', []),
      sup.call('sessionFeed', s.id, 'setAttributeValue', new ArrayBuffer(8), 8),
      sup.call('sessionFeed', s.id, 'findObjects', new ArrayBuffer(8), 8),
      sup.call('sessionFeed', s.id, 'signUpdate', new ArrayBuffer(8), 9),
      sup.call('sessionFeed', s.id, 'signUpdate', 'not a buffer' as never, 1),
      sup.call('moduleCall', m.id, 'initToken', [slot, SO_PIN, 'pwned']),
      sup.call('moduleCall', m.id, 'getTokenInfo', [slot]),
      sup.call('moduleCall', m.id, 'release', []),
      sup.batch('sessionCall', s.id, 'destroyObject', [keyHandle]),
      sup.batch('createObject' as 'findObjects', s.id, []),
      sup.batch('drain' as 'findObjects', s.id),
    ];
    const outcomes = await Promise.all(refusals.map((p) => p.then(() => 'done', (e: unknown) => e)));
    outcomes.forEach((o, i) => expect(o, `attempt ${i}`).toBeInstanceOf(Error));
    outcomes.forEach((o, i) => expect((o as Error).name, `attempt ${i}: ${(o as Error).message}`).toMatch(/ServiceRefusedError|TypeError/));
    await expect(m.slotEvents().next()).rejects.toMatchObject({ name: 'ServiceRefusedError', needs: 'read' });
    // A raw batch naming methods that are not batched is refused call by call.
    const reply = await raw(port, { p11wBatch: 77, methods: ['openModule', 'drain'], calls: [0, 1, { source: TATTLETALE }, 1, 0] }, (d) => d.p11wBatchDone === 77);
    expect((reply.failed as unknown[]).length).toBe(2);
    // Raw stream messages: an unknown source, a known one out of grant, cancels of streams that do not exist.
    for (const [id, name] of [[501, 'constructor'], [502, 'slotEvents'], [503, '__proto__']] as const) {
      const end = await raw(port, { p11wStreamOpen: id, name, args: [m.id] }, (d) => d.p11wStreamEnd === id);
      expect((end.error as { name: string }).name).toMatch(/TypeError|ServiceRefusedError/);
    }
    port.postMessage({ p11wStreamCancel: 999 });
    port.postMessage({ p11wStreamCancel: 'x' });

    // Nothing happened: same objects, same label, the key intact (this process is logged in as user).
    expect(tokenSnapshot()).toEqual(before);
    const check = local.openSession(slot);
    expect(check.getAttributeValue(keyHandle, [CKA.CKA_LABEL])[0].value).toBe('aes');
    check.close();
    expect(existsSync(tattle)).toBe(false);
    // And what is granted still works on the same session.
    expect((await s.generateRandom(8)).length).toBe(8);
  });

  it("clients never see each other's sessions", async () => {
    const a = serve({ paths: [SOFTHSM_MODULE] }).client;
    const b = serve({ paths: [SOFTHSM_MODULE] }).client;
    const sa = await (await a.openModule(SOFTHSM_MODULE)).openSession(slot, { pin: PIN });
    await b.openModule(SOFTHSM_MODULE);
    await expect(b.supervisor.call('generateRandom', sa.id, 8)).rejects.toMatchObject({ code: 'CKR_SESSION_HANDLE_INVALID' });
    await expect(b.supervisor.call('closeSession', sa.id)).rejects.toMatchObject({ code: 'CKR_SESSION_HANDLE_INVALID' });
    expect((await sa.generateRandom(8)).length).toBe(8);
  });
});
