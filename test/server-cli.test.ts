// `p11kit server`'s timeout flags: --handshake-timeout, --idle-timeout and --unread-timeout set
// the server's limits (durations with a unit, or bare milliseconds), are refused with a usage
// error naming the flag and the value when they are not durations, show in --help and in the
// limits --json prints, and take effect (-v says why a client was closed). Also the library's
// own check of the limits it is given.
import { spawn, spawnSync } from 'node:child_process';
import { connect as connectRaw } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_LIMITS, serveTokens } from '../ts/server/index.js';
import { waitFor } from './helpers/rpc-procs.js';
import { connectClient as connect, makeSoftHsmToken, SOFTHSM, softhsmEntry, type SoftHsmToken } from './helpers/rpc-softhsm.js';
import { serverChildren } from './helpers/server-children.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const FLAGS = ['--handshake-timeout', '--idle-timeout', '--unread-timeout'];

let store: SoftHsmToken;

beforeAll(() => {
  store = makeSoftHsmToken('server cli');
  process.env.SOFTHSM2_CONF = store.conf;
});
afterAll(() => store?.cleanup());

const p11kit = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: store.env, encoding: 'utf8', timeout: 60_000 });

describe('p11kit server timeout flags', () => {
  it('--help shows each flag with its default', () => {
    const help = p11kit('server', '--help');
    expect(help.status).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' '); // as wrapped to the terminal's width
    expect(text).toContain('--handshake-timeout <duration> close a connection that has not sent its protocol version this long after connecting (default 10s; 0: never).');
    expect(text).toContain('--idle-timeout <duration> close a client that has no call in progress and sent nothing for this long (default 0: never,');
    expect(text).toContain('--unread-timeout <duration> drop a client that takes none of its replies for this long: it stopped reading (default 10s; 0: never)');
  });

  it('a value that is not a duration, or longer than a timer holds, is a usage error naming the flag and the value (before any module is opened)', () => {
    for (const flag of FLAGS) {
      for (const bad of ['10x', '-5', '', '1.5s', '2d', 'ten']) {
        const r = p11kit('server', `${flag}=${bad}`, '-p', '/nonexistent/module.so');
        expect(r.status, `${flag}=${bad}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toBe(`p11kit: ${flag}: '${bad}' is not a duration like 500ms, 10s or 2m (a bare number is milliseconds)\n`);
      }
      const long = p11kit('server', flag, '600h', '-p', '/nonexistent/module.so');
      expect(long.status).toBe(2);
      expect(long.stderr).toBe(`p11kit: ${flag}: '600h' is longer than the longest timer, 2147483647 ms (about 24 days)\n`);
    }
  });

  it('--json prints the limits in force; the flags close a silent connection, an idle client (-v says why), and the server keeps serving', async () => {
    const path = join(store.dir, 'timeouts.sock');
    const server = spawn(process.execPath, [CLI, 'server', '-v', '--json', '--handshake-timeout', '1s', '--idle-timeout', '1500ms', '--unread-timeout', '2m', '-p', SOFTHSM, '-n', path], { env: store.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    let out = '';
    let err = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      expect(await waitFor(() => out.endsWith('\n'), 30_000)).toBe(true);
      expect(JSON.parse(out)).toEqual({
        address: `unix:path=${path}`,
        pid: server.pid,
        isolation: 'process',
        limits: { ...DEFAULT_SERVER_LIMITS, handshakeMs: 1000, idleMs: 1500, unreadMs: 120_000 },
      });
      let silentClosed = false;
      const silent = connectRaw(path).on('error', () => undefined).on('close', () => (silentClosed = true)).resume();
      const idle = await connect(`unix:path=${path}`);
      expect((await idle.getSlotList(true)).length).toBeGreaterThan(0);
      expect(await waitFor(() => silentClosed && serverChildren(server.pid!).length === 0, 30_000)).toBe(true);
      silent.destroy();
      await idle.close();
      expect(err).toContain('p11kit server: client: no protocol version within 1000 ms of connecting\n');
      expect(err).toContain('p11kit server: client: idle for 1500 ms\n');
      const again = await connect(`unix:path=${path}`);
      expect((await again.getSlotList(true)).length).toBeGreaterThan(0);
      await again.close();
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  }, 120_000);

  it('without the flags, --json prints the defaults', async () => {
    const server = spawn(process.execPath, [CLI, 'server', '--json', '--isolation', 'shared', '-p', SOFTHSM], { env: store.env, stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      expect(await waitFor(() => out.endsWith('\n'), 30_000)).toBe(true);
      expect(JSON.parse(out).limits).toEqual(DEFAULT_SERVER_LIMITS);
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  }, 60_000);
});

describe('serveTokens limits', () => {
  it('refuses a limit that is not a whole number in range, or a name that is no limit, naming it', async () => {
    await expect(serveTokens({ modules: [softhsmEntry], limits: { idleMs: -1 } })).rejects.toThrow('serveTokens: limits.idleMs -1 is not a whole number from 0 to 2147483647');
    await expect(serveTokens({ modules: [softhsmEntry], limits: { unreadMs: 2 ** 31 } })).rejects.toThrow('limits.unreadMs 2147483648 is not a whole number from 0 to 2147483647');
    await expect(serveTokens({ modules: [softhsmEntry], limits: { maxClients: 1.5 } })).rejects.toThrow('limits.maxClients 1.5 is not a whole number');
    await expect(serveTokens({ modules: [softhsmEntry], limits: { idleMS: 1000 } as never })).rejects.toThrow('serveTokens: limits.idleMS is not a limit');
    const srv = await serveTokens({ modules: [softhsmEntry], isolation: 'shared', limits: { idleMs: undefined, unreadMs: 0 } });
    try {
      expect(srv.limits).toEqual({ ...DEFAULT_SERVER_LIMITS, unreadMs: 0 });
    } finally {
      await srv.close();
    }
  });
});
