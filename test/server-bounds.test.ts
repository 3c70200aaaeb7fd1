// What a hostile or stuck client can hold of `serveTokens` / `p11kit server`: a connection that
// never sends its protocol version is closed after `limits.handshakeMs` (with isolation
// `process`, its child exits), an idle one after `limits.idleMs` when asked; a flood of
// connections never runs more child processes than `limits.maxClients` (the extra ones are
// closed at accept, and the server says why); and what another user can read of a child in
// /proc (its command line; its environment is refused) holds no PIN.
import { execFileSync, spawnSync } from 'node:child_process';
import { connect as connectRaw, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF, CKU } from '../ts/rpc/constants.js';
import { serveTokens, type Isolation } from '../ts/server/index.js';
import { pidAlive, waitFor } from './helpers/rpc-procs.js';
import { connectClient as connect, makeSoftHsmToken, softhsmEntry, type SoftHsmToken } from './helpers/rpc-softhsm.js';
import { CHILD_ENTRY, serverChildren } from './helpers/server-children.js';

/** A PIN no process listing may show. */
const MARKED_PIN = 'pin-7c2a90e4-never-listed';
const softhsm = softhsmEntry;

let store: SoftHsmToken;

beforeAll(() => {
  store = makeSoftHsmToken('bounds');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'marked', '--so-pin', '12345678', '--pin', MARKED_PIN], { env: store.env, stdio: 'ignore' });
  process.env.SOFTHSM2_CONF = store.conf; // the servers' children inherit it
});
afterAll(() => store?.cleanup());

/** A connection that never sends a byte; `closed` tells whether the server closed it. */
function silent(path: string): { socket: Socket; closed: () => boolean } {
  let closed = false;
  const socket = connectRaw(path);
  socket.on('error', () => undefined).on('close', () => (closed = true)).resume();
  return { socket, closed: () => closed };
}

/** Children started since `before`, alive. */
const startedSince = (before: number[]) => serverChildren().filter((p) => !before.includes(p));

describe.each(['process', 'shared'] as Isolation[])('isolation %s', (isolation) => {
  it('closes a connection that never sends its protocol version after handshakeMs (and its process ends); one that did is kept', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsm], isolation, limits: { handshakeMs: 1000 }, onClientError: (r) => reasons.push(r) });
    const before = serverChildren();
    const good = await connect(srv.address);
    const mute = silent(srv.socketPath);
    try {
      expect(await waitFor(() => srv.clients === 2, 30_000)).toBe(true);
      // (a child shows its entry once it has exec'd)
      if (isolation === 'process') expect(await waitFor(() => startedSince(before).length === 2, 30_000)).toBe(true);
      const pids = startedSince(before);
      expect(pids.length).toBe(isolation === 'process' ? 2 : 0);
      expect(await waitFor(mute.closed, 30_000)).toBe(true);
      expect(await waitFor(() => srv.clients === 1, 30_000)).toBe(true);
      expect(reasons).toEqual(['no protocol version within 1000 ms of connecting']);
      if (isolation === 'process') expect(await waitFor(() => pids.filter(pidAlive).length === 1, 30_000)).toBe(true);
      // Past the handshake deadline the client that shook hands is still served.
      expect((await good.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      mute.socket.destroy();
      await good.close();
      await srv.close();
    }
  }, 90_000);

  it('with idleMs, closes a client that makes no call for that long (one that keeps calling stays); by default an idle client stays', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsm], isolation, limits: { idleMs: 1500 }, onClientError: (r) => reasons.push(r) });
    const patient = await serveTokens({ modules: [softhsm], isolation, limits: { handshakeMs: 500 } });
    const idle = await connect(srv.address);
    const busy = await connect(srv.address);
    const kept = await connect(patient.address);
    try {
      expect((await idle.getSlotList(true)).length).toBeGreaterThan(0);
      // While the idle one times out, the other calls back to back: every call starts its idle time over.
      let calls = 0;
      for (let i = 0; i < 100_000 && srv.clients === 2; i++, calls++) await busy.getSlotList(true);
      expect(await waitFor(() => srv.clients === 1, 30_000)).toBe(true);
      expect(calls).toBeGreaterThan(0);
      expect(reasons).toEqual(['idle for 1500 ms']);
      expect((await busy.getSlotList(true)).length).toBeGreaterThan(0);
      await busy.close();
      expect(await waitFor(() => srv.clients === 0, 30_000)).toBe(true);
      await expect(idle.getSlotList(true)).rejects.toThrow();
      // Meanwhile the other server's client (idleMs 0, past its 500 ms handshake deadline) was left alone.
      expect(patient.clients).toBe(1);
      expect((await kept.getSlotList(true)).length).toBeGreaterThan(0);
    } finally {
      await idle.close();
      await busy.close();
      await kept.close();
      await srv.close();
      await patient.close();
    }
  }, 90_000);
});

describe('a flood of connections (isolation process)', () => {
  it('never runs more children than maxClients: the rest are closed at accept and reported; once the silent ones time out, a client is served', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsm], limits: { maxClients: 4, handshakeMs: 3000 }, onClientError: (r) => reasons.push(r) });
    const before = serverChildren();
    const flood = Array.from({ length: 16 }, () => silent(srv.socketPath));
    let most = 0;
    const watch = () => {
      most = Math.max(most, startedSince(before).length);
      return false;
    };
    try {
      // 12 are refused at once, without a process; the 4 served ones are closed by the handshake deadline.
      expect(await waitFor(() => (watch(), flood.filter((f) => f.closed()).length >= 12), 30_000)).toBe(true);
      expect(reasons.filter((r) => r === 'a client was refused: 4 are connected, the most allowed (limits.maxClients)').length).toBe(12);
      expect(await waitFor(() => (watch(), flood.every((f) => f.closed()) && startedSince(before).length === 0), 60_000)).toBe(true);
      expect(most).toBeLessThanOrEqual(4);
      expect(most).toBeGreaterThan(0);
      expect(reasons.filter((r) => r.startsWith('no protocol version')).length).toBe(4);
      // A child gone from /proc is counted until the server has seen its exit: poll for that too.
      expect(await waitFor(() => srv.clients === 0, 30_000)).toBe(true);
      const c = await connect(srv.address);
      expect((await c.getSlotList(true)).length).toBeGreaterThan(0);
      await c.close();
    } finally {
      for (const f of flood) f.socket.destroy();
      await srv.close();
    }
  }, 120_000);
});

describe('what another user sees of a client\'s process', () => {
  it('its command line (node and the child entry, no PIN) and not its environment', async () => {
    const srv = await serveTokens({ modules: [softhsm] });
    const before = serverChildren();
    const c = await connect(srv.address);
    try {
      const [pid] = startedSince(before);
      expect(pid).toBeDefined();
      let slot: number | undefined;
      for (const s of await c.getSlotList(true)) if ((await c.getTokenInfo(s)).label === 'marked') slot = s;
      const session = await c.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      await c.login(session, CKU.CKU_USER, MARKED_PIN);
      const asNobody = (file: string) => spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'cat', `/proc/${pid}/${file}`], { encoding: 'latin1' });
      const cmdline = asNobody('cmdline');
      expect(cmdline.status).toBe(0);
      expect(cmdline.stdout.split('\0').filter(Boolean)).toEqual([process.execPath, expect.stringContaining(CHILD_ENTRY)]);
      expect(cmdline.stdout).not.toContain(MARKED_PIN);
      const environ = asNobody('environ');
      expect(environ.status).not.toBe(0);
      expect(environ.stderr).toContain('Permission denied');
      expect(environ.stdout).not.toContain(MARKED_PIN);
    } finally {
      await c.close();
      await srv.close();
    }
  }, 60_000);
});
