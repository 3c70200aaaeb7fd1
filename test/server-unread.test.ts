// A client that sends requests and never reads the replies (write backpressure): once the
// socket's kernel buffer is full its replies wait in the server, and a client that takes none
// of them for `limits.unreadMs` is dropped — its place among maxClients (and, isolated, its
// process) freed and the reason reported — so a local client cannot hold every place by
// connecting maxClients times and not reading. The other clients are served throughout.
import { connect as connectRaw } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF } from '../ts/rpc/constants.js';
import { serveTokens, type Isolation } from '../ts/server/index.js';
import { waitFor } from './helpers/rpc-procs.js';
import { connectClient as connect, makeSoftHsmToken, softhsmEntry, type SoftHsmToken } from './helpers/rpc-softhsm.js';
import { serverChildren } from './helpers/server-children.js';
import { UnreadClient } from './helpers/unread-client.js';

/** Long enough that the attackers still hold their places while the test checks they do, even on a loaded machine. */
const UNREAD_MS = 2000;
const MAX_OUTPUT = 1024 * 1024;

let store: SoftHsmToken;

beforeAll(() => {
  store = makeSoftHsmToken('unread');
  process.env.SOFTHSM2_CONF = store.conf; // the servers' children inherit it
});
afterAll(() => store?.cleanup());

const droppedUnread = (reasons: string[]) => reasons.filter((r) => r.startsWith(`replies left unread for ${UNREAD_MS} ms (`) && /\(\d+ bytes waiting\)$/.test(r));

describe.each(['process', 'shared'] as Isolation[])('isolation %s', (isolation) => {
  it('drops the clients that stop reading (a C_GetInfo flood, C_GenerateRandom of maxOutput bytes): their places free, an honest client is then served, the one already connected throughout', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsmEntry], isolation, limits: { maxClients: 3, unreadMs: UNREAD_MS, maxOutput: MAX_OUTPUT }, onClientError: (r) => reasons.push(r) });
    const before = serverChildren();
    const honest = await connect(srv.address);
    const attackers: UnreadClient[] = [];
    try {
      const slots = await honest.getSlotList(true);
      const [slot] = slots;
      const flooder = await UnreadClient.open(srv.socketPath);
      const hoarder = await UnreadClient.open(srv.socketPath);
      attackers.push(flooder, hoarder);
      const session = (await hoarder.call('C_OpenSession', (b) => b.ulong(slot!).ulong(CKF.CKF_SERIAL_SESSION))).ulong();
      // Attacker 1: many small requests, none of their replies read.
      flooder.flood('C_GetInfo', 20_000);
      // Attacker 2: 1 MiB of random bytes, four times, unread.
      hoarder.flood('C_GenerateRandom', 4, (b) => b.ulong(session).byteBuffer(MAX_OUTPUT));
      // Every place is taken now: a fourth client is refused at accept.
      expect(srv.clients).toBe(3);
      let refused = false;
      const probe = connectRaw(srv.socketPath).on('error', () => undefined).on('close', () => (refused = true)).resume();
      expect(await waitFor(() => refused, 30_000)).toBe(true);
      expect(reasons).toContain('a client was refused: 3 are connected, the most allowed (limits.maxClients)');
      // The client that reads is served while the attackers stall.
      expect((await honest.generateRandom(await honest.openSession(slot!, CKF.CKF_SERIAL_SESSION), 64)).length).toBe(64);
      // Both attackers are dropped, each reported once; their places (and processes) free.
      expect(await waitFor(() => droppedUnread(reasons).length === 2 && srv.clients === 1, 30_000)).toBe(true);
      if (isolation === 'process') expect(await waitFor(() => serverChildren().filter((p) => !before.includes(p)).length === 1, 30_000)).toBe(true);
      // Reading again, an attacker finds its connection closed.
      for (const a of attackers) a.socket.resume();
      expect(await waitFor(() => attackers.every((a) => a.socket.destroyed || a.socket.readableEnded), 30_000)).toBe(true);
      const newcomer = await connect(srv.address);
      expect(await newcomer.getSlotList(true)).toEqual(slots);
      await newcomer.close();
      expect(await honest.getSlotList(true)).toEqual(slots);
      expect(droppedUnread(reasons).length).toBe(2);
    } finally {
      for (const a of attackers) a.destroy();
      await honest.close();
      await srv.close();
    }
  }, 120_000);

  it('a client that reads its replies is never dropped by unreadMs, however large they are', async () => {
    const reasons: string[] = [];
    const srv = await serveTokens({ modules: [softhsmEntry], isolation, limits: { unreadMs: UNREAD_MS, maxOutput: MAX_OUTPUT }, onClientError: (r) => reasons.push(r) });
    const c = await connect(srv.address);
    try {
      const [slot] = await c.getSlotList(true);
      const s = await c.openSession(slot!, CKF.CKF_SERIAL_SESSION);
      for (let i = 0; i < 8; i++) expect((await c.generateRandom(s, MAX_OUTPUT)).length).toBe(MAX_OUTPUT);
      expect(srv.clients).toBe(1);
      expect(reasons).toEqual([]);
    } finally {
      await c.close();
      await srv.close();
    }
  }, 120_000);
});
