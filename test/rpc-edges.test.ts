// The remote client at its edges, against real `p11-kit remote` hosts: releasing a host that
// stopped answering (kill -STOP) is bounded and lets the process exit; a host killed while a
// grandchild holds its stdout is noticed at its exit; a 65 MiB reply gets through, and one over
// the reply limit fails its own call while the host serves on; the auto policy retries a
// failed restart after a back-off and says how many attempts failed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProxyAsync } from '../ts/index.js';
import { CKF } from '../ts/rpc/constants.js';
import { HostConnectError, HostLostError, RemoteModule, RpcClient, StaleHandleError, RpcReplyTooLargeError, isolateModule, openAsyncModule, type HostLostEvent } from '../ts/rpc/index.js';
import { loadRegistry } from '../ts/registry/load.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { pidAlive, processesMarked, waitFor } from './helpers/rpc-procs.js';
import { SOFTHSM, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

let token: SoftHsmToken;
let tree: ConfTree;
const clients: { close(): Promise<void> }[] = [];

beforeAll(() => {
  token = makeSoftHsmToken('rpc-edges');
  tree = createConfTree();
  tree.module('far', `remote: |env SOFTHSM2_CONF=${token.conf} p11-kit remote ${SOFTHSM}\nx-rpc-release-timeout-ms: 2000\n`);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const pid of processesMarked(token.dir)) process.kill(pid, 'SIGKILL');
  tree?.cleanup();
  token?.cleanup();
});

/** The one host process started for this test's token (`env` execs into p11-kit remote). */
async function hostPid(): Promise<number> {
  let pids: number[] = [];
  await waitFor(() => (pids = processesMarked(token.conf).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(SOFTHSM))).length > 0);
  expect(pids).toHaveLength(1);
  return pids[0]!;
}

describe('release is bounded (D1)', () => {
  it('a stopped host: release() returns within 10 s and the host is reaped', async () => {
    const proxy = await openProxyAsync({ registry: tree.registry });
    const pid = await hostPid();
    process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    await proxy.async.release();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(pidAlive(pid)).toBe(false);
  }, 20_000);

  it('openProxyAsync({ remote }) passes the deadlines on: a stopped host misses callTimeoutMs and is lost', async () => {
    const proxy = await openProxyAsync({ registry: tree.registry, remote: { callTimeoutMs: 500 } });
    const pid = await hostPid();
    const [slot] = await proxy.async.getSlotList(true);
    process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    await expect(proxy.async.getTokenInfo(slot!)).rejects.toMatchObject({ name: 'HostLostError', message: expect.stringMatching(/no reply within 500 ms/) });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(proxy.failures.map((f) => f.stage)).toContain('host-lost');
    expect(await waitFor(() => !pidAlive(pid), 5000)).toBe(true);
    await proxy.async.release();
  }, 20_000);

  it('a script ending in release() exits although its host is stopped', async () => {
    const script = `
      import { openProxyAsync } from ${JSON.stringify(join(process.cwd(), 'dist/lib/index.js'))};
      import { readFileSync, readdirSync } from 'node:fs';
      const proxy = await openProxyAsync({ registry: ${JSON.stringify(tree.registry)} });
      const host = readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).find((p) => {
        try {
          return readFileSync('/proc/' + p + '/environ', 'latin1').includes(${JSON.stringify(token.conf)}) && readFileSync('/proc/' + p + '/cmdline', 'latin1').includes(${JSON.stringify(SOFTHSM)});
        } catch { return false; }
      });
      process.kill(Number(host), 'SIGSTOP');
      await proxy.async.release();
      console.log('released');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => resolve('still running after 20 s'), 20_000);
      child.once('exit', (c, s) => (clearTimeout(timer), resolve(c ?? String(s))));
    });
    if (code !== 0) child.kill('SIGKILL');
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'released' });
  }, 30_000);
});

describe('host loss (D2)', () => {
  it('a host killed while a grandchild holds its stdout is noticed within 3 s', async () => {
    const client = new RpcClient({ remote: `|sh -c "sleep 30 & exec p11-kit remote ${SOFTHSM}"`, env: token.env });
    clients.push(client);
    await client.initialize();
    const [slot] = (await client.getSlotList(true)) as [number];
    const session = await client.openSession(slot, CKF.CKF_SERIAL_SESSION);
    const lost = new Promise<HostLostEvent>((r) => client.once('hostLost', r));
    const started = Date.now();
    process.kill(client.pid!, 'SIGKILL');
    const event = await Promise.race([lost, new Promise<'late'>((r) => setTimeout(() => r('late'), 3000))]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(event).toMatchObject({ generation: 1, reason: expect.stringMatching(/SIGKILL/) });
    await expect(client.generateRandom(session, 16)).rejects.toBeInstanceOf(StaleHandleError);
    await expect(client.getSlotList(true)).rejects.toBeInstanceOf(HostLostError);
    // The grandchild still runs; it is no longer ours to wait for.
    expect(processesMarked(token.dir).length).toBeGreaterThan(0);
    await client.close();
  }, 15_000);
});

describe('a failed write (D2)', () => {
  it('a host that stops reading is lost at the first write, not at a deadline', async () => {
    // The host reads our handshake byte, closes its input, answers the handshake and lingers: the
    // C_Initialize frame that follows the answer cannot be written (EPIPE). Answering only after the
    // close keeps the order fixed however slow the host is to start.
    const client = new RpcClient({
      remote: `|sh -c 'head -c1 >/dev/null; exec 0<&-; printf "\\000"; exec sleep 20'`,
      env: token.env,
      connectTimeoutMs: 15_000,
    });
    clients.push(client);
    const started = Date.now();
    const err = await client.initialize().then(
      () => new Error('resolved'),
      (e: Error) => e,
    );
    // Well before the 15 s handshake deadline (the lingering child gets its 3 s exit grace).
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(HostLostError);
    expect(err.message).toMatch(/writing to the host failed \(EPIPE\)/);
    expect(client.state).toBe('closed');
  }, 20_000);
});

describe('big replies (D3)', () => {
  it('65 MiB of random bytes through isolateModule', async () => {
    const m = isolateModule(SOFTHSM, { env: token.env });
    clients.push(m);
    await m.async.initialize();
    const [slot] = (await m.async.getSlotList(true)) as [number];
    const session = await m.async.openSession(slot);
    const bytes = await m.async.generateRandom(session, 65 * 1024 * 1024);
    expect(bytes.length).toBe(65 * 1024 * 1024);
    expect(bytes.subarray(-4096).some((b) => b !== 0)).toBe(true);
    await m.async.finalize();
  }, 60_000);

  it('a reply over the limit fails its own call; the host and its other sessions serve on', async () => {
    const m = isolateModule(SOFTHSM, { env: token.env, limits: { maxPayload: 1024 * 1024 } });
    clients.push(m);
    const losses: HostLostEvent[] = [];
    m.client.on('hostLost', (e) => losses.push(e));
    await m.async.initialize();
    const [slot] = (await m.async.getSlotList(true)) as [number];
    const [one, two] = [await m.async.openSession(slot), await m.async.openSession(slot)];
    const big = m.async.generateRandom(one, 2 * 1024 * 1024);
    const small = m.async.generateRandom(two, 32);
    await expect(big).rejects.toBeInstanceOf(RpcReplyTooLargeError);
    await expect(big).rejects.toThrow(/exceeds the limit of 1048576/);
    expect((await small).length).toBe(32);
    expect((await m.async.generateRandom(one, 64)).length).toBe(64);
    expect(losses).toEqual([]);
    expect(m.generation).toBe(1);
    await m.async.finalize();
  }, 30_000);
});

describe('x-rpc-* module options', () => {
  const entryWith = (options: Record<string, string>) => {
    const t = createConfTree();
    t.module('tuned', `remote: |p11-kit remote ${SOFTHSM}\n` + Object.entries(options).map(([k, v]) => `${k}: ${v}\n`).join(''));
    const [entry] = loadRegistry({ ...t.registry, env: token.env }).modules;
    t.cleanup();
    return entry!;
  };

  it("carry the reply limit and deadlines to the module; the caller's options win", async () => {
    const m = openAsyncModule(entryWith({ 'x-rpc-max-reply-bytes': '4096', 'x-rpc-call-timeout-ms': '60000' }), { env: token.env }) as RemoteModule;
    clients.push(m);
    await m.async.initialize();
    const [slot] = (await m.async.getSlotList(true)) as [number];
    const session = await m.async.openSession(slot);
    await expect(m.async.generateRandom(session, 8192)).rejects.toMatchObject({ name: 'RpcReplyTooLargeError', limit: 4096 });
    expect((await m.async.generateRandom(session, 1024)).length).toBe(1024);
    await m.async.finalize();

    const wider = openAsyncModule(entryWith({ 'x-rpc-max-reply-bytes': '4096' }), { env: token.env, limits: { maxPayload: 65536 } }) as RemoteModule;
    clients.push(wider);
    await wider.async.initialize();
    const s2 = await wider.async.openSession(slot);
    expect((await wider.async.generateRandom(s2, 8192)).length).toBe(8192);
    await wider.async.finalize();
  }, 30_000);

  it('a bad value is refused naming the option', () => {
    expect(() => openAsyncModule(entryWith({ 'x-rpc-call-timeout-ms': 'soon' }))).toThrow(/module 'tuned': x-rpc-call-timeout-ms must be a non-negative integer, not 'soon'/);
    expect(() => openAsyncModule(entryWith({ 'x-rpc-max-reply-bytes': '0' }))).toThrow(/x-rpc-max-reply-bytes must be .* from 1 to 4294967295/);
  });
});

describe('auto re-entry (D4)', () => {
  it('a failed restart is retried by a later call after a back-off; the error counts the attempts', async () => {
    const flag = join(token.dir, 'fail-next-start');
    const command = `|sh -c "if [ -e ${flag} ]; then rm ${flag}; echo refusing >&2; exit 3; fi; exec p11-kit remote ${SOFTHSM}"`;
    const client = new RpcClient({ remote: command, env: token.env, policy: 'auto', restartDelayMs: 200 });
    clients.push(client);
    await client.initialize();
    writeFileSync(flag, '');
    const lost = new Promise((r) => client.once('hostLost', r));
    process.kill(client.pid!, 'SIGKILL');
    await lost;

    const err = await client.getSlotList(true).then(
      () => new Error('resolved'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(HostConnectError);
    expect(err).toMatchObject({ attempts: 1 });
    expect(err.message).toMatch(/restart attempt 1 failed.*status 3.*refusing.*tries again after 200 ms/);
    expect(client.state).toBe('lost');
    expect(existsSync(flag)).toBe(false);

    // The host can start again: the next call waits out the back-off and gets a fresh host.
    expect((await client.getSlotList(true)).length).toBeGreaterThan(0);
    expect(client.state).toBe('ready');
    expect(client.generation).toBe(3);
  }, 30_000);
});
