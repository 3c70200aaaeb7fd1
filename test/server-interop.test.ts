// `serveTokens` / `p11kit server` against real clients, with `p11-kit server` (0.24.1) on the
// same SoftHSM2 token store as the oracle: p11-kit's own client library (p11-kit-client.so,
// in a child process) and `p11-kit list-modules` through `remote:` configs see the same slots,
// tokens, mechanisms and objects and sign/verify alike on both; our RPC client works against
// it; two clients at once; a client killed mid-call leaves the others served and its
// sessions closed; a client breaking the protocol is disconnected alone; the socket is its
// owner's only. `ours` runs in the default isolation (a process per client); the behaviour only
// the shared isolation has is in test/server-isolation.test.ts.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKR, CKU } from '../ts/rpc/constants.js';
import { RpcClient } from '../ts/rpc/index.js';
import { encodeFrame } from '../ts/rpc/frame.js';
import { serveTokens, type TokenServer } from '../ts/server/index.js';
import { openProxyAsync } from '../ts/proxy/index.js';
import { pidAlive, waitFor, type ServerHandle } from './helpers/rpc-procs.js';
import { serverChildren } from './helpers/server-children.js';
import { makeKey, startServerPair, type ServerPair } from './helpers/server-pair.js';
import { makeSoftHsmToken, slotOf, SOFTHSM, softhsmEntry, type SoftHsmToken, USER_PIN } from './helpers/rpc-softhsm.js';

const run = promisify(execFile);
const DUMP = join(process.cwd(), 'test/helpers/p11-client-dump.mjs');
const SLOW = join(process.cwd(), 'test/helpers/rpc-slow-client.mjs');
const KEY = 'signer';

const softhsm = softhsmEntry;

let store: SoftHsmToken;
let theirs: ServerHandle;
let ours: TokenServer;
let pair: ServerPair | undefined;

/** p11-kit-client.so's view of a server, from a child process. */
async function dump(address: string, pin = USER_PIN, key = KEY): Promise<unknown> {
  const { stdout } = await run(process.execPath, [DUMP, pin, key], { env: { ...store.env, P11_KIT_SERVER_ADDRESS: address }, timeout: 60_000 });
  return JSON.parse(stdout);
}

beforeAll(async () => {
  store = makeSoftHsmToken('interop');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'second', '--so-pin', '12345678', '--pin', USER_PIN], { env: store.env, stdio: 'ignore' });
  makeKey(store, 'interop', 'EC:prime256v1', KEY, '0102');
  makeKey(store, 'interop', 'AES:16', 'secret', '03');
  pair = await startServerPair(store);
  ({ ours, theirs } = pair);
}, 60_000);

afterAll(async () => {
  await pair?.close();
  store?.cleanup();
});

describe('p11-kit-client.so against our server and against p11-kit server', () => {
  it('sees the same slots, tokens, mechanisms and objects, and signs and verifies alike', async () => {
    const [a, b] = [await dump(ours.address), await dump(theirs.address)];
    // p11-kit server 0.24.1 hands SoftHSM2 an uninitialised CK_MECHANISM_INFO, into which SoftHSM2
    // ORs its ECB flags: bit 0x2 shows there only. The module's own answer (pkcs11-tool on
    // libsofthsm2.so directly) has no such bit, and that is what we serve.
    for (const slot of (b as { slots: { mechanisms?: { type: number; flags: number }[] }[] }).slots) {
      for (const m of slot.mechanisms ?? []) if (m.type === CKM.CKM_AES_ECB || m.type === CKM.CKM_DES3_ECB) m.flags &= ~0x2;
    }
    expect(a).toEqual(b);
    const slots = (a as { slots: { token?: { label: string }; objects?: { label: string }[]; signature?: unknown }[] }).slots;
    const token = slots.find((s) => s.token?.label === 'interop')!;
    expect(token.objects!.map((o) => o.label)).toEqual(expect.arrayContaining([KEY, 'secret']));
    expect(token.signature).toEqual({ length: 64, verifies: true, tamperedVerifies: 'CKR_SIGNATURE_INVALID', smallBuffer: 'CKR_BUFFER_TOO_SMALL', secondCallVerifies: true });
  }, 120_000);

  it('serves two clients at once, each in its own process with its own sessions and login', async () => {
    const [a, b] = (await Promise.all([dump(ours.address), dump(ours.address)])) as { slots: Record<string, unknown>[] }[];
    // Each client has a login of its own: what it lists before C_Login never depends on the other.
    expect(a).toEqual(b);
    expect(await waitFor(() => ours.sessions === 0, 10_000)).toBe(true);
    await waitFor(() => ours.clients === 0, 10_000);
    expect(ours.clients).toBe(0);
  }, 120_000);
});

describe('serving the tokens a URI selects', () => {
  it('serves only the matching token; the other slots are CKR_SLOT_ID_INVALID', async () => {
    const all = new RpcClient({ remote: ours.address });
    const only = await serveTokens({ modules: [softhsm], uri: 'pkcs11:token=second' });
    const c = new RpcClient({ remote: only.address });
    try {
      await all.initialize();
      await c.initialize();
      const everything = await all.getSlotList(true);
      const served = await c.getSlotList(true);
      expect(everything.length).toBeGreaterThanOrEqual(2);
      expect(served.length).toBe(1);
      expect((await c.getTokenInfo(served[0]!)).label).toBe('second');
      const other = everything.find((s) => s !== served[0])!;
      await expect(c.getTokenInfo(other)).rejects.toMatchObject({ rv: CKR.CKR_SLOT_ID_INVALID });
      await expect(c.openSession(other, CKF.CKF_SERIAL_SESSION)).rejects.toMatchObject({ rv: CKR.CKR_SLOT_ID_INVALID });
    } finally {
      await c.close();
      await all.close();
      await only.close();
    }
    expect(existsSync(only.socketPath)).toBe(false);
  }, 60_000);

  it('a URI with a slot id (a bigint once parsed) and an object id (bytes) reaches the client\'s process as parsed', async () => {
    const all = new RpcClient({ remote: ours.address });
    let bySlot: TokenServer | undefined;
    let c: RpcClient | undefined;
    try {
      await all.initialize();
      const [slot] = await all.getSlotList(true);
      bySlot = await serveTokens({ modules: [softhsm], uri: `pkcs11:slot-id=${slot};id=%01%ff` });
      c = new RpcClient({ remote: bySlot.address });
      await c.initialize();
      expect(await c.getSlotList(true)).toEqual([slot]);
    } finally {
      await c?.close();
      await all.close();
      await bySlot?.close();
    }
  }, 60_000);
});

describe('limits', () => {
  it('a client holds at most maxSessions sessions (CKR_SESSION_COUNT beyond), other clients unaffected', async () => {
    const small = await serveTokens({ modules: [softhsm], limits: { maxSessions: 2 } });
    const a = new RpcClient({ remote: small.address });
    const b = new RpcClient({ remote: small.address });
    try {
      await a.initialize();
      await b.initialize();
      const [slot] = await a.getSlotList(true);
      const first = await a.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await a.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await expect(a.openSession(slot!, CKF.CKF_SERIAL_SESSION)).rejects.toMatchObject({ rv: CKR.CKR_SESSION_COUNT });
      await b.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await a.closeSession(first);
      await a.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      expect(await waitFor(() => small.sessions === 3, 10_000)).toBe(true); // as the children report it
    } finally {
      await a.close();
      await b.close();
      await small.close();
    }
  }, 60_000);
});

describe('clients', () => {
  it('beyond maxClients a connection is closed at once; the connected client keeps being served', async () => {
    const one = await serveTokens({ modules: [softhsm], limits: { maxClients: 1 } });
    const a = new RpcClient({ remote: one.address });
    try {
      await a.initialize();
      const extra = await rawClient(one.socketPath, []);
      expect(extra).toEqual({ received: Buffer.alloc(0), closed: true });
      expect((await a.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await a.close();
      await one.close();
    }
  }, 60_000);
});

describe('closing', () => {
  it('close() ends connected clients (their sessions closed) and resolves; their next call fails', async () => {
    const srv = await serveTokens({ modules: [softhsm] });
    const c = new RpcClient({ remote: srv.address });
    await c.initialize();
    const [slot] = await c.getSlotList(true);
    await c.openSession(slot!, CKF.CKF_SERIAL_SESSION);
    expect(await waitFor(() => srv.sessions === 1, 10_000)).toBe(true);
    await srv.close();
    expect(srv.clients).toBe(0);
    expect(srv.sessions).toBe(0);
    expect(existsSync(srv.socketPath)).toBe(false);
    await expect(c.getSlotList(true)).rejects.toThrow();
    await c.close();
  }, 60_000);
});

describe('serving a proxy the caller holds', () => {
  it('serves it with isolation shared, and close() leaves it open for the caller; the default isolation refuses it', async () => {
    const proxy = await openProxyAsync({ modules: [softhsm] });
    try {
      await expect(serveTokens({ proxy })).rejects.toThrow(/isolation: 'shared'/);
      const srv = await serveTokens({ proxy, isolation: 'shared' });
      const c = new RpcClient({ remote: srv.address });
      await c.initialize();
      expect((await c.getSlotList(true)).length).toBe((await proxy.async.getSlotList(true)).length);
      await c.close();
      await srv.close();
      expect((await proxy.async.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await proxy.async.release();
    }
  }, 60_000);
});

describe('p11-kit list-modules through remote: configs', () => {
  it('lists the same tokens behind our server as behind p11-kit server', async () => {
    const tree = join(store.dir, 'conf');
    mkdirSync(join(tree, 'system'), { recursive: true });
    writeFileSync(join(tree, 'pkcs11.conf'), '');
    writeFileSync(join(tree, 'system/via-ours.module'), `remote: ${ours.address}\n`);
    writeFileSync(join(tree, 'system/via-theirs.module'), `remote: ${theirs.address}\n`);
    const { stdout } = await run('p11-kit', ['list-modules'], {
      env: {
        ...store.env,
        LD_PRELOAD: join(process.cwd(), 'dist/native/fixtures/p11kit-relocate-shim.so'),
        P11KIT_SHIM_SYSTEM_CONFIG: join(tree, 'pkcs11.conf'),
        P11KIT_SHIM_USER_CONFIG: join(tree, 'user.conf'),
        P11KIT_SHIM_PACKAGE_MODULES: join(tree, 'package'),
        P11KIT_SHIM_SYSTEM_MODULES: join(tree, 'system'),
        P11KIT_SHIM_USER_MODULES: join(tree, 'user'),
      },
      timeout: 60_000,
    });
    const block = (name: string) => {
      const start = stdout.indexOf(`${name}:`);
      expect(start).toBeGreaterThanOrEqual(0);
      const rest = stdout.slice(start + name.length + 1);
      const end = rest.search(/^\S/m);
      return end < 0 ? rest : rest.slice(0, end);
    };
    const viaOurs = block('via-ours');
    expect(viaOurs).toContain('token: interop');
    expect(viaOurs).toEqual(block('via-theirs'));
  }, 120_000);
});

describe('our RPC client against our server', () => {
  it('logs in, signs and verifies; another client closing all its sessions leaves this one open', async () => {
    const a = new RpcClient({ remote: ours.address });
    const b = new RpcClient({ remote: ours.address });
    try {
      await a.initialize();
      await b.initialize();
      const slot = await slotOf(a, 'interop');
      const s = await a.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await a.login(s, CKU.CKU_USER, USER_PIN);
      await a.findObjectsInit(s, [{ type: CKA.CKA_LABEL, value: KEY }, { type: CKA.CKA_CLASS, value: 3 }]);
      const [priv] = await a.findObjects(s, 4);
      await a.findObjectsFinal(s);
      const digest = new Uint8Array(createHash('sha256').update('ours').digest());
      await a.signInit(s, { mechanism: CKM.CKM_ECDSA }, priv!);
      expect((await a.sign(s, digest)).length).toBe(64);
      // b closing all sessions of the slot closes only its own.
      await b.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await b.closeAllSessions(slot!);
      expect((await a.getSessionInfo(s)).slotID).toBe(slot);
      await a.closeSession(s);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});

describe('a client killed mid-call', () => {
  it('ends only its own server process; the other clients are served and its sessions closed', async () => {
    const other = new RpcClient({ remote: ours.address });
    await other.initialize();
    const before = serverChildren();
    const child = spawn(process.execPath, [SLOW, USER_PIN], { env: { ...store.env, P11_KIT_SERVER_ADDRESS: ours.address }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    expect(await waitFor(() => out.includes('sent'), 30_000)).toBe(true);
    const [killedOnes] = serverChildren().filter((pid) => !before.includes(pid));
    expect(killedOnes).toBeDefined();
    child.kill('SIGKILL');
    // The other client is served while the dead one's key generation still runs.
    const view = (await dump(ours.address)) as { slots: { signature?: { verifies: boolean } }[] };
    expect(view.slots.some((s) => s.signature?.verifies)).toBe(true);
    // Its process exits once the call in progress is over; the other client's process stays.
    expect(await waitFor(() => !pidAlive(killedOnes!), 120_000)).toBe(true);
    expect(before.every(pidAlive)).toBe(true);
    expect((await other.getSlotList(true)).length).toBeGreaterThan(0);
    await other.close();
    expect(await waitFor(() => ours.clients === 0 && ours.sessions === 0, 60_000)).toBe(true);
  }, 180_000);
});

/** Whole reply frames after the handshake byte. */
function frameCount(buf: Buffer): number {
  let n = 0;
  for (let at = 1; at + 12 <= buf.length; n++) {
    const end = at + 12 + buf.readUInt32BE(at + 4) + buf.readUInt32BE(at + 8);
    if (end > buf.length) break;
    at = end;
  }
  return n;
}

/**
 * A raw connection: handshake, then whatever bytes the test writes. Resolves when the server
 * closes it, or (still open) once `replies` whole frames came back.
 */
function rawClient(path: string, bytes: Uint8Array[], replies = Infinity): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => (sock.destroy(), resolve({ received: Buffer.concat(chunks), closed: false })), 20_000);
    sock.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (frameCount(all) >= replies) {
        clearTimeout(timer);
        sock.removeAllListeners('close');
        sock.destroy();
        resolve({ received: all, closed: false });
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => (clearTimeout(timer), resolve({ received: Buffer.concat(chunks), closed: true })));
    sock.write(Uint8Array.of(0));
    for (const b of bytes) sock.write(b);
  });
}

describe('hostile clients', () => {
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const sig = (s: string) => Buffer.concat([u32(s.length), Buffer.from(s)]);
  const INIT = Buffer.concat([u32(1), sig('ayyay'), Buffer.from([1]), sig('PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1'), Buffer.from([0, 1]), u32(1), Buffer.from([0])]);

  it('closes a client whose frame announces more than the limit, and only that client', async () => {
    const other = new RpcClient({ remote: ours.address });
    try {
      await other.initialize();
      const header = Buffer.concat([u32(1), u32(0), u32(0x7fffffff)]);
      const r = await rawClient(ours.socketPath, [header]);
      expect(r.closed).toBe(true);
      expect(r.received).toEqual(Buffer.from([0])); // the handshake, then nothing
      expect((await other.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });

  it('closes a client sending an unknown call or a truncated request', async () => {
    for (const payload of [Buffer.concat([u32(999), sig('')]), Buffer.concat([u32(4), sig('yfu'), Buffer.from([1])])]) {
      const r = await rawClient(ours.socketPath, [encodeFrame(1, new Uint8Array(0), INIT), encodeFrame(7, new Uint8Array(0), payload)]);
      expect(r.closed).toBe(true);
    }
  });

  it('answers an oversized template with CKR_ARGUMENTS_BAD and keeps the connection', async () => {
    // C_FindObjectsInit(session 1, template of 2^31 attributes), then C_GetInfo on the same connection.
    const init = INIT;
    const find = Buffer.concat([u32(26), sig('uaA'), Buffer.alloc(8), u32(0x80000000)]);
    const info = Buffer.concat([u32(3), sig('')]);
    const r = await rawClient(ours.socketPath, [encodeFrame(1, new Uint8Array(0), init), encodeFrame(2, new Uint8Array(0), find), encodeFrame(3, new Uint8Array(0), info)], 3);
    expect(r.closed).toBe(false);
    // handshake byte, then three replies: OK, error(ARGUMENTS_BAD), C_GetInfo.
    const second = r.received.subarray(1 + 12 + 4 + 4);
    expect(second.readUInt32BE(0)).toBe(2);
    const payload = second.subarray(12, 12 + second.readUInt32BE(8));
    expect(payload.readUInt32BE(0)).toBe(0); // the error reply
    expect(Number(payload.readBigUInt64BE(4 + 5))).toBe(CKR.CKR_ARGUMENTS_BAD);
    expect(r.received.length).toBeGreaterThan(1 + 20 + 12 + payload.length + 12);
  });

  it('keeps the socket to its owner: mode 0600, another user cannot connect', async () => {
    expect(statSync(ours.socketPath).mode & 0o777).toBe(0o600);
    const r = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', `require('net').connect(${JSON.stringify(ours.socketPath)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    r.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => r.once('exit', resolve));
    expect(out.trim()).toBe('EACCES');
  });

  it('a request for a session of another client is CKR_SESSION_HANDLE_INVALID', async () => {
    const a = new RpcClient({ remote: ours.address });
    try {
      await a.initialize();
      const [slot] = await a.getSlotList(true);
      const s = await a.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      // A second raw connection names a's session handle (the proxy's, 0x11 and up).
      const probe = Buffer.concat([u32(13), sig('u'), Buffer.alloc(4), u32(0x11)]);
      const r = await rawClient(ours.socketPath, [encodeFrame(1, new Uint8Array(0), INIT), encodeFrame(2, new Uint8Array(0), probe)], 2);
      const second = r.received.subarray(1 + 12 + 4 + 4);
      const payload = second.subarray(12);
      expect(payload.readUInt32BE(0)).toBe(0);
      expect(Number(payload.readBigUInt64BE(9))).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
      await a.closeSession(s);
    } finally {
      await a.close();
    }
  });
});

describe('p11kit server (the command)', () => {
  it('prints the address as p11-kit server does, serves, and on SIGTERM closes and removes its socket', async () => {
    const path = join(store.dir, 'cli.sock');
    const child = spawn(process.execPath, [join(process.cwd(), 'dist/lib/cli.js'), 'server', '-f', '-p', SOFTHSM, '-n', path], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      expect(await waitFor(() => out.includes('P11_KIT_SERVER_PID'), 30_000)).toBe(true);
      expect(out).toBe(`P11_KIT_SERVER_ADDRESS=unix:path=${path}; export P11_KIT_SERVER_ADDRESS;\nP11_KIT_SERVER_PID=${child.pid}; export P11_KIT_SERVER_PID;\n`);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const view = (await dump(`unix:path=${path}`)) as { slots: { signature?: { verifies: boolean } }[] };
      expect(view.slots.some((s) => s.signature?.verifies)).toBe(true);
      const c = new RpcClient({ remote: `unix:path=${path}` });
      await c.initialize();
      const served = serverChildren(child.pid);
      expect(served.length).toBe(1); // the connected client's process
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(served.some(pidAlive)).toBe(false);
      await expect(c.getSlotList(true)).rejects.toThrow();
      await c.close();
      expect(existsSync(path)).toBe(false);
      expect(readdirSync(store.dir).filter((f) => f.startsWith('.p11kit-server-'))).toEqual([]); // the private directory is gone too
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // a failed assertion must not leave the server running
    }
  }, 120_000);

  it('refuses a socket path that exists (exit 6) and leaves the file alone', async () => {
    const path = join(store.dir, 'taken');
    writeFileSync(path, 'not a socket');
    const r = await run(process.execPath, [join(process.cwd(), 'dist/lib/cli.js'), 'server', '-p', SOFTHSM, '-n', path], { env: store.env }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(6);
    expect((r as { stderr: string }).stderr).toContain('already exists');
    expect(readFileSync(path, 'utf8')).toBe('not a socket');
  }, 60_000);
});
