// Client isolation of `serveTokens` / `p11kit server`. By default each client is served by a
// process of its own, so PKCS#11's one login per token per application is one login per client,
// as with p11-kit server (0.24.1), which runs here on the same SoftHSM2 store as the oracle: a
// client that never logged in sees none of another's private objects and is refused what needs
// a login; logins and logouts of two clients are independent; a killed client ends its own
// process only; close() and a SIGKILLed server leave no child process; a PIN shows in no process
// listing. Isolation `shared` (one process for all clients) is tested for what the README says
// it costs: the clients share the token's login.
import { execFileSync, spawn } from 'node:child_process';
import { connect as connectRaw } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKO, CKR, CKU } from '../ts/rpc/constants.js';
import { RpcClient } from '../ts/rpc/index.js';
import { DEFAULT_SERVER_LIMITS, serveTokens, type TokenServer } from '../ts/server/index.js';
import { childrenOf, pidAlive, waitFor, type ServerHandle } from './helpers/rpc-procs.js';
import { connectClient as connect, makeSoftHsmToken, slotOf, SOFTHSM, softhsmEntry, type SoftHsmToken, USER_PIN } from './helpers/rpc-softhsm.js';
import { CHILD_ENTRY, listing, serverChildren } from './helpers/server-children.js';
import { makeKey, startServerPair, type ServerPair } from './helpers/server-pair.js';

const LABEL = 'isolated';
const KEY = 'signer';
/** A PIN no process listing may show (the other token's PIN is too short to search for). */
const MARKED_PIN = 'pin-5d1e83b0-never-listed';
const CLI = join(process.cwd(), 'dist/lib/cli.js');
const RW = CKF.CKF_SERIAL_SESSION | CKF.CKF_RW_SESSION;
const CKS_RW_PUBLIC_SESSION = 2;
const CKS_RW_USER_FUNCTIONS = 3;
const PRIVATE = [{ type: CKA.CKA_PRIVATE, value: true }];

const softhsm = softhsmEntry;

let store: SoftHsmToken;
let theirs: ServerHandle;
let ours: TokenServer;
let pair: ServerPair | undefined;

/** The labels of the objects a session finds with this template, sorted. */
async function labels(c: RpcClient, s: number, template: { type: number; value: boolean }[]): Promise<string[]> {
  await c.findObjectsInit(s, template);
  const found = await c.findObjects(s, 64);
  await c.findObjectsFinal(s);
  const out: string[] = [];
  for (const h of found) out.push(new TextDecoder().decode((await c.getAttributeValue(s, h, [CKA.CKA_LABEL])).attributes[0]!.value));
  return out.sort();
}

/** The CK_RV a call ends with. */
const rvOf = (call: Promise<unknown>): Promise<number> => call.then(
  () => CKR.CKR_OK,
  (e: { rv?: number }) => e.rv ?? -1,
);

const privateData = (label: string) => [
  { type: CKA.CKA_CLASS, value: CKO.CKO_DATA },
  { type: CKA.CKA_TOKEN, value: false },
  { type: CKA.CKA_PRIVATE, value: true },
  { type: CKA.CKA_LABEL, value: label },
  { type: CKA.CKA_VALUE, value: Uint8Array.of(1, 2, 3) },
];

/** Two clients of the server at `address`, each with a read-write session on the token. */
async function twoClients<T>(address: string, body: (a: RpcClient, sa: number, b: RpcClient, sb: number) => Promise<T>): Promise<T> {
  const a = await connect(address);
  const b = await connect(address);
  try {
    const slot = await slotOf(a, LABEL);
    return await body(a, await a.openSession(slot, RW), b, await b.openSession(slot, RW));
  } finally {
    await a.close();
    await b.close();
  }
}

/**
 * The attack: A logs in and makes a private object; B, on the same token, never logs in and
 * tries to see private objects, make one, and end the token's login.
 */
const attack = (address: string) => twoClients(address, async (a, sa, b, sb) => {
  await a.login(sa, CKU.CKU_USER, USER_PIN);
  await a.createObject(sa, privateData('a-secret'));
  return {
    aPrivate: await labels(a, sa, PRIVATE),
    bState: (await b.getSessionInfo(sb)).state,
    bPrivate: await labels(b, sb, PRIVATE),
    bCreates: await rvOf(b.createObject(sb, privateData('b-secret'))),
    bLogout: await rvOf(b.logout(sb)),
    aStateAfter: (await a.getSessionInfo(sa)).state,
  };
});

/** Both log in; each logs out in turn while the other's login is watched. */
const twoLogins = (address: string) => twoClients(address, async (a, sa, b, sb) => {
  const view = async (c: RpcClient, s: number) => ({ state: (await c.getSessionInfo(s)).state, keys: await labels(c, s, PRIVATE) });
  const aLogin = await rvOf(a.login(sa, CKU.CKU_USER, USER_PIN));
  const bLogin = await rvOf(b.login(sb, CKU.CKU_USER, USER_PIN));
  await a.logout(sa);
  const bAfterALogout = await view(b, sb);
  const aAfterALogout = await view(a, sa);
  const aAgain = await rvOf(a.login(sa, CKU.CKU_USER, USER_PIN));
  await b.logout(sb);
  return { aLogin, bLogin, bAfterALogout, aAfterALogout, aAgain, aAfterBLogout: await view(a, sa), bAfterBLogout: await view(b, sb) };
});

beforeAll(async () => {
  store = makeSoftHsmToken(LABEL);
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'marked', '--so-pin', '12345678', '--pin', MARKED_PIN], { env: store.env, stdio: 'ignore' });
  makeKey(store, LABEL, 'EC:prime256v1', KEY, '01');
  pair = await startServerPair(store);
  ({ ours, theirs } = pair);
}, 60_000);

afterAll(async () => {
  await pair?.close();
  store?.cleanup();
});

describe('a process per client (the default)', () => {
  it('a client that never logged in sees none of a logged-in client\'s private objects and is refused as not logged in, as with p11-kit server', async () => {
    expect(ours.isolation).toBe('process');
    const [mine, oracle] = [await attack(ours.address), await attack(theirs.address)];
    expect(mine).toEqual(oracle);
    expect(mine).toEqual({
      aPrivate: ['a-secret', KEY],
      bState: CKS_RW_PUBLIC_SESSION,
      bPrivate: [],
      bCreates: CKR.CKR_USER_NOT_LOGGED_IN,
      bLogout: CKR.CKR_OK, // SoftHSM2 answers a logout without a login so, behind p11-kit server too; A stays logged in
      aStateAfter: CKS_RW_USER_FUNCTIONS,
    });
  }, 120_000);

  it('one client\'s logout leaves the other\'s login, each way, as with p11-kit server', async () => {
    const [mine, oracle] = [await twoLogins(ours.address), await twoLogins(theirs.address)];
    expect(mine).toEqual(oracle);
    const loggedIn = { state: CKS_RW_USER_FUNCTIONS, keys: [KEY] };
    const loggedOut = { state: CKS_RW_PUBLIC_SESSION, keys: [] };
    expect(mine).toEqual({ aLogin: CKR.CKR_OK, bLogin: CKR.CKR_OK, bAfterALogout: loggedIn, aAfterALogout: loggedOut, aAgain: CKR.CKR_OK, aAfterBLogout: loggedIn, bAfterBLogout: loggedOut });
  }, 120_000);

  it('each connection is one child process, started as `node child-main.js` with no PIN in its command line or environment', async () => {
    const before = serverChildren();
    const c = await connect(ours.address);
    try {
      const [pid] = serverChildren().filter((p) => !before.includes(p));
      expect(pid).toBeDefined();
      const slot = await slotOf(c, 'marked');
      const s = await c.openSession(slot, RW);
      await c.login(s, CKU.CKU_USER, MARKED_PIN);
      expect((await c.getSessionInfo(s)).state).toBe(CKS_RW_USER_FUNCTIONS);
      const argv = listing(pid!).split('\n')[0]!.split('\0').filter(Boolean);
      expect(argv.length).toBe(2);
      expect(argv[1]).toContain(CHILD_ENTRY);
      for (const p of [process.pid, pid!]) expect(listing(p)).not.toContain(MARKED_PIN);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('a client closing its connection ends its process', async () => {
    const before = serverChildren();
    const c = await connect(ours.address);
    const [pid] = serverChildren().filter((p) => !before.includes(p));
    expect(pid).toBeDefined();
    await c.close();
    expect(await waitFor(() => !pidAlive(pid!), 30_000)).toBe(true);
  }, 60_000);

  it('a frame that breaks the protocol ends that client\'s process only', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsm], onClientError: (r) => reasons.push(r) });
    const before = serverChildren();
    const good = await connect(srv.address);
    try {
      const kept = serverChildren().filter((p) => !before.includes(p));
      expect(kept.length).toBe(1);
      // The handshake, then a frame header announcing a 2 GiB payload.
      const sock = connectRaw(srv.socketPath);
      const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      sock.on('error', () => undefined).resume(); // read, or the end never shows
      sock.write(Uint8Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff));
      await closed;
      expect(await waitFor(() => srv.clients === 1 && reasons.length === 1, 30_000)).toBe(true);
      expect(kept.every(pidAlive)).toBe(true);
      expect(reasons[0]).toMatch(/payload|limit/i);
      expect((await good.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await good.close();
      await srv.close();
    }
  }, 60_000);

  it('maxClients bounds the child processes: one more connection is closed at once and starts none', async () => {
    const srv = await serveTokens({ modules: [softhsm], limits: { maxClients: 2 } });
    const before = serverChildren();
    const started = () => serverChildren().filter((p) => !before.includes(p));
    const a = await connect(srv.address);
    const b = await connect(srv.address);
    try {
      expect(started().length).toBe(2);
      const extra = new RpcClient({ remote: srv.address });
      await expect(extra.initialize()).rejects.toThrow();
      await extra.close();
      expect(started().length).toBe(2);
      expect(srv.clients).toBe(2);
      expect((await a.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await a.close();
      await b.close();
      await srv.close();
    }
  }, 60_000);
});

describe('no child outlives its server', () => {
  it('close() ends every client\'s process (one with a slow call on its way) and reaps them', async () => {
    const srv = await serveTokens({ modules: [softhsm] });
    const before = serverChildren();
    const clients = [await connect(srv.address), await connect(srv.address), await connect(srv.address)];
    try {
      const pids = serverChildren().filter((p) => !before.includes(p));
      expect(pids.length).toBe(3);
      const [c] = clients;
      const s = await c!.openSession(await slotOf(c!, LABEL), RW);
      await c!.login(s, CKU.CKU_USER, USER_PIN);
      const slow = c!.generateKeyPair(s, { mechanism: 0 /* CKM_RSA_PKCS_KEY_PAIR_GEN */ }, [{ type: CKA.CKA_MODULUS_BITS, value: 2048 }, { type: CKA.CKA_TOKEN, value: false }], [{ type: CKA.CKA_TOKEN, value: false }]);
      slow.catch(() => undefined);
      await srv.close();
      expect(srv.clients).toBe(0);
      expect(pids.filter(pidAlive)).toEqual([]);
      // Reaped, not zombies: pidAlive counts a zombie as dead, the parent's list of children does not.
      expect(childrenOf(process.pid).filter((p) => pids.includes(p))).toEqual([]);
    } finally {
      for (const c of clients) await c.close();
    }
  }, 120_000);

  it('a server killed with SIGKILL leaves no child: they see their channel close and exit', async () => {
    const path = join(store.dir, 'killed.sock');
    const server = spawn(process.execPath, [CLI, 'server', '-p', SOFTHSM, '-n', path], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const clients: RpcClient[] = [];
    try {
      let out = '';
      let err = '';
      server.stdout.on('data', (d: Buffer) => (out += d.toString()));
      server.stderr.on('data', (d: Buffer) => (err += d.toString()));
      expect(await waitFor(() => out.includes('P11_KIT_SERVER_PID') && err.includes('\n'), 30_000)).toBe(true);
      // stdout stays p11-kit's shell assignments; the isolation is said on stderr.
      expect(err).toBe('p11kit server: isolation process: each client is served by a process of its own, with its own login\n');
      for (let i = 0; i < 2; i++) clients.push(await connect(`unix:path=${path}`));
      const pids = serverChildren(server.pid);
      expect(pids.length).toBe(2);
      server.kill('SIGKILL');
      expect(await waitFor(() => !pids.some(pidAlive), 30_000)).toBe(true);
      for (const c of clients) await expect(c.getSlotList(true)).rejects.toThrow();
    } finally {
      for (const c of clients) await c.close();
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  }, 120_000);

  it('SIGINT to the whole process group (a terminal\'s Ctrl-C): the server closes its children and exits 0 (-q: nothing on stderr)', async () => {
    const path = join(store.dir, 'group.sock');
    // setsid: a process group of its own, as a shell job has, for a group-wide signal.
    const server = spawn('setsid', ['--wait', process.execPath, CLI, 'server', '-q', '-p', SOFTHSM, '-n', path], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    let c: RpcClient | undefined;
    let err = '';
    server.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      let out = '';
      server.stdout.on('data', (d: Buffer) => (out += d.toString()));
      expect(await waitFor(() => out.includes('P11_KIT_SERVER_PID'), 30_000)).toBe(true);
      const pid = Number(/P11_KIT_SERVER_PID=(\d+)/.exec(out)![1]);
      c = await connect(`unix:path=${path}`);
      const pids = serverChildren(pid);
      expect(pids.length).toBe(1);
      process.kill(-pid, 'SIGINT');
      expect(await exited).toBe(0);
      expect(await waitFor(() => !pids.some(pidAlive), 30_000)).toBe(true);
      expect(err).toBe('');
    } finally {
      await c?.close();
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  }, 120_000);
});

describe('isolation shared (one process for every client)', () => {
  let shared: TokenServer;
  beforeAll(async () => {
    shared = await serveTokens({ modules: [softhsm], isolation: 'shared' });
  });
  afterAll(async () => {
    await shared?.close();
  });

  it('starts no child process; the clients share the token\'s login, as the README says (a client that never logged in sees the private objects)', async () => {
    expect(shared.isolation).toBe('shared');
    const before = serverChildren();
    const seen = await attack(shared.address);
    expect(serverChildren().filter((p) => !before.includes(p))).toEqual([]);
    // One application: B sees A's login and what it made; B cannot end A's login, though.
    expect(seen).toEqual({
      aPrivate: ['a-secret', KEY],
      bState: CKS_RW_USER_FUNCTIONS,
      bPrivate: ['a-secret', KEY],
      bCreates: CKR.CKR_OK,
      bLogout: CKR.CKR_USER_NOT_LOGGED_IN,
      aStateAfter: CKS_RW_USER_FUNCTIONS,
    });
  }, 60_000);

  it('a client\'s logout ends the token\'s login only when no other logged-in client is left', async () => {
    const a = await connect(shared.address);
    const b = await connect(shared.address);
    try {
      const slot = await slotOf(a, LABEL);
      const sa = await a.openSession(slot, RW);
      const sb = await b.openSession(slot, RW);
      await a.login(sa, CKU.CKU_USER, USER_PIN);
      expect(await rvOf(b.login(sb, CKU.CKU_USER, USER_PIN))).toBe(CKR.CKR_USER_ALREADY_LOGGED_IN);
      await a.logout(sa);
      expect((await b.getSessionInfo(sb)).state).toBe(CKS_RW_USER_FUNCTIONS); // b still counts
      await b.logout(sb);
      expect((await a.getSessionInfo(sa)).state).toBe(CKS_RW_PUBLIC_SESSION);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);

  it('ends a dead client\'s login when no other client logged in', async () => {
    const a = await connect(shared.address);
    const b = await connect(shared.address);
    try {
      const slot = await slotOf(a, LABEL);
      const sa = await a.openSession(slot, CKF.CKF_SERIAL_SESSION);
      const sb = await b.openSession(slot, CKF.CKF_SERIAL_SESSION);
      await a.login(sa, CKU.CKU_USER, USER_PIN);
      const CKS_RO_USER_FUNCTIONS = 1;
      expect((await b.getSessionInfo(sb)).state).toBe(CKS_RO_USER_FUNCTIONS); // PKCS#11 login is per process
      await a.close();
      expect(await waitFor(() => shared.clients === 1, 10_000)).toBe(true);
      let state = -1;
      for (let i = 0; i < 200 && state !== 0; i++) {
        state = (await b.getSessionInfo(sb)).state;
        if (state !== 0) await new Promise((r) => setTimeout(r, 25));
      }
      expect(state).toBe(0); // CKS_RO_PUBLIC_SESSION
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);

  it('p11kit server --isolation shared serves from one process (--json names it); a value other than process or shared is a usage error', async () => {
    const path = join(store.dir, 'shared-cli.sock');
    const server = spawn(process.execPath, [CLI, 'server', '--isolation', 'shared', '--json', '-p', SOFTHSM, '-n', path], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    let c: RpcClient | undefined;
    try {
      let out = '';
      let err = '';
      server.stdout.on('data', (d: Buffer) => (out += d.toString()));
      server.stderr.on('data', (d: Buffer) => (err += d.toString()));
      expect(await waitFor(() => out.endsWith('\n'), 30_000)).toBe(true);
      expect(JSON.parse(out)).toEqual({ address: `unix:path=${path}`, pid: server.pid, isolation: 'shared', limits: DEFAULT_SERVER_LIMITS });
      expect(err).toBe('');
      c = await connect(`unix:path=${path}`);
      expect((await c.getSlotList(true)).length).toBeGreaterThan(0);
      expect(serverChildren(server.pid)).toEqual([]);
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      await c?.close();
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
    const bad = spawn(process.execPath, [CLI, 'server', '--isolation', 'threads', '-p', SOFTHSM], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
    expect(await new Promise((resolve) => bad.once('exit', resolve))).toBe(2);
    expect(err).toContain("--isolation: 'threads'");
  }, 120_000);
});
