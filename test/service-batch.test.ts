// The batched path: calls made in the same tick travel to the service as one message and come
// back as one (batch.ts). Each call still settles on its own — a failing call fails alone — and
// a hostile client (a compromised renderer) sending batches by hand gets a clear error per call
// (or per batch, when the batch is too big to start), never a host that crashes, hangs or builds
// an answer far bigger than a single call could ask for.
import { createHash } from 'node:crypto';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKM,
  CKO,
  connectPkcs11,
  createPkcs11Worker,
  FULL_GRANT,
  nodePortEndpoint,
  Pkcs11Error,
  servePkcs11,
  type ManagedModule,
  type Pkcs11Client,
} from '../ts/index.js';
import { ecToken } from './helpers/ec-token.js';
import { SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const PIN = '1234';
const MiB = 1 << 20;

let hsm: SoftHsm;
let slot: number;
let local: ManagedModule;

beforeAll(() => {
  ({ hsm, slot, local } = ecToken('batch', PIN));
});
afterAll(() => {
  local.release();
  hsm.cleanup();
});

const open: { client: Pkcs11Client; ports: MessagePort[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.client.close();
    for (const p of o.ports) p.close();
  }
});

/** A service in this thread (an uncaught throw in its listener would fail the test run), its typed client, and the client's raw port. */
async function serve() {
  const { port1, port2 } = new MessageChannel();
  servePkcs11(nodePortEndpoint(port2), { grant: { ...FULL_GRANT, paths: [SOFTHSM_MODULE] } });
  const client = connectPkcs11(nodePortEndpoint(port1));
  open.push({ client, ports: [port1, port2] });
  const m = await client.openModule(SOFTHSM_MODULE);
  const s = await m.openSession(slot, { pin: PIN });
  return { client, port: port1, s };
}

interface Reply {
  p11wBatchDone: number;
  from?: number;
  more?: boolean;
  results: unknown[];
  failed?: [number, { name: string; message: string; fields: Record<string, unknown> }][];
  spans?: number[];
  packed?: ArrayBuffer;
  refused?: { name: string; message: string };
}
let nextId = 5_000_000;

/** Sends a batch by hand; resolves with every reply part, in the order they came. */
function rawBatch(port: MessagePort, methods: unknown, calls: unknown): Promise<Reply[]> {
  const id = nextId++;
  const parts: Reply[] = [];
  return new Promise((resolve) => {
    const l = (d: Reply) => {
      if (d?.p11wBatchDone !== id) return;
      parts.push(d);
      if (!d.more) {
        port.off('message', l);
        resolve(parts);
      }
    };
    port.on('message', l);
    port.postMessage({ p11wBatch: id, methods, calls });
  });
}

/** Per call of a one-part reply: 'ok' or the error's name and message. */
function outcomes(parts: Reply[], count: number): (string | { name: string; message: string })[] {
  expect(parts).toHaveLength(1);
  const [r] = parts;
  const failed = new Map((r.failed ?? []).map(([j, e]) => [j, { name: e.name, message: e.message }]));
  return Array.from({ length: count }, (_, j) => failed.get(j) ?? (j < r.results.length ? 'ok' : 'missing'));
}

describe('service batches', () => {
  it('calls made in one tick come back each with its own result; a failing call fails alone', async () => {
    const { s } = await serve();
    const [{ handle: key }] = await s.findAndRead([{ type: CKA.CKA_LABEL, value: 'ec' }, { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }], []);
    const [{ handle: pub }] = await s.findAndRead([{ type: CKA.CKA_LABEL, value: 'ec' }, { type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY }], []);
    const data = createHash('sha256').update('batch').digest();
    const calls = Array.from({ length: 100 }, (_, i) =>
      i % 4 === 0 ? s.generateRandom(1 + i)
      : i % 4 === 1 ? s.digest(CKM.CKM_SHA256, Buffer.from(`m${i}`))
      : i % 4 === 2 ? s.sign(CKM.CKM_ECDSA, i === 50 ? 0xdead : key, data)
      : s.generateRandom(0));
    const settled = await Promise.allSettled(calls);
    const verified: Promise<boolean>[] = [];
    settled.forEach((r, i) => {
      if (i === 50) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(Pkcs11Error);
        return;
      }
      expect(r.status, `call ${i}`).toBe('fulfilled');
      const v = (r as PromiseFulfilledResult<Uint8Array>).value;
      expect(v).toBeInstanceOf(Uint8Array);
      if (i % 4 === 0) expect(v.byteLength).toBe(1 + i);
      if (i % 4 === 1) expect(Buffer.from(v)).toEqual(createHash('sha256').update(`m${i}`).digest());
      if (i % 4 === 2) {
        expect(v.byteLength).toBe(64);
        verified.push(s.verify(CKM.CKM_ECDSA, pub, data, v));
      }
      if (i % 4 === 3) expect(v.byteLength).toBe(0);
    });
    expect(await Promise.all(verified)).toEqual(Array(24).fill(true));
    // Byte results are copies of exactly their bytes, not views of one shared reply buffer.
    const r = (await Promise.all([s.generateRandom(8), s.generateRandom(8)])).map((x) => x.buffer.byteLength);
    expect(r).toEqual([8, 8]);
    expect((await s.generateRandom(8)).buffer.byteLength).toBe(8);
  });

  it('a batch asking for more output than one reply part holds is answered in parts, in order', async () => {
    const { s, port } = await serve();
    const lengths = [5, 7, 1, 6, 3, 4].map((n) => n * MiB);
    // Through the typed client: every call gets its own bytes.
    const got = await Promise.all(lengths.map((n) => s.generateRandom(n)));
    expect(got.map((b) => b.byteLength)).toEqual(lengths);
    // By hand: more than one part, each starting where the one before ended.
    const parts = await rawBatch(port, ['generateRandom'], lengths.flatMap((n) => [0, 2, s.id, n]));
    expect(parts.length).toBeGreaterThan(1);
    let next = 0;
    for (const p of parts) {
      expect(p.from ?? 0).toBe(next);
      expect(p.failed).toBeUndefined();
      next += p.results.length;
    }
    expect(next).toBe(lengths.length);
    expect(parts.at(-1)!.more).toBeUndefined();
    expect(parts.slice(0, -1).every((p) => p.more === true)).toBe(true);
  });

  describe('a hostile client', () => {
    it('a batch too big to start is refused whole, with a clear error, and none of its calls runs', async () => {
      const { s, port, client } = await serve();
      const call = [0, 2, s.id, 16];
      const cases: [unknown, unknown, RegExp][] = [
        [['generateRandom'], Array.from({ length: 1025 }, () => call).flat(), /at most 1024 calls/],
        [['generateRandom'], Array.from({ length: 1025 }, () => [0, 0]).flat(), /at most 1024 calls/],
        [['generateRandom'], new Array(1024 * 18 + 1).fill(0), /at most 1024 calls/],
        [Array.from({ length: 65 }, () => 'generateRandom'), call, /at most 64 methods/],
        ['generateRandom', call, /methods and calls are arrays/],
        [['generateRandom'], { 0: 0, 1: 2, length: 2 }, /methods and calls are arrays/],
      ];
      for (const [methods, calls, message] of cases) {
        const parts = await rawBatch(port, methods, calls);
        expect(parts).toHaveLength(1);
        expect(parts[0].refused?.message).toMatch(message);
        expect(parts[0].results).toEqual([]);
      }
      // The largest a client may send is answered.
      const full = await rawBatch(port, ['generateRandom'], Array.from({ length: 1024 }, () => call).flat());
      expect(outcomes(full, 1024).every((o) => o === 'ok')).toBe(true);
      expect(await s.generateRandom(4)).toHaveLength(4);
      expect(await client.ping()).toMatchObject({ sessions: 1 });
    });

    it('malformed entries and wrong types fail call by call with a clear error; the calls around them still run', async () => {
      const { s, port, client } = await serve();
      const methods = ['generateRandom', 'sign', 'digest', 'sessionCall', 'createObject', 'x'.repeat(MiB), 7];
      const ok = [0, 2, s.id, 8];
      const calls = [
        ...ok,
        9, 0, //                               no such method index
        '0', 2, s.id, 8, //                     index not a number
        6, 0, //                                the method's name is not a string
        5, 0, //                                a 1 MiB name: not batched (named, cut short)
        4, 2, s.id, [], //                      a method that is not batched
        0, 17, ...new Array(17).fill(1), //     more arguments than a call may take
        ...ok,
        0, 2, 'sid', 8, //                      wrong types reach the service's own checks
        0, 2, { toString: 1 }, 8,
        0, 2, s.id, -1,
        0, 2, s.id, 2 ** 40,
        0, 2, s.id, 'many',
        1, 4, s.id, { mechanism: 'junk' }, 'key', 'data',
        2, 2, s.id, null,
        3, 3, s.id, 'generateRandom', 'not an array',
        3, 3, s.id, '__proto__', [],
        3, 3, s.id, 'constructor', [],
        ...ok,
        0, 1.5, //                              a count that is no count: the rest cannot be read
        ...ok,
      ];
      const parts = await rawBatch(port, methods, calls);
      const o = outcomes(parts, 21);
      expect(o[0]).toBe('ok');
      expect(o.slice(1, 4)).toEqual(Array(3).fill({ name: 'TypeError', message: 'malformed batched call: no method' }));
      expect(o[4]).toMatchObject({ name: 'TypeError', message: `no batched method '${'x'.repeat(64)}' in this service` });
      expect(o[5]).toMatchObject({ name: 'TypeError', message: "no batched method 'createObject' in this service" });
      expect(o[6]).toEqual({ name: 'TypeError', message: 'malformed batched call: more than 16 arguments' });
      expect(o[7]).toBe('ok');
      for (const [i, e] of o.slice(8, 18).entries()) {
        expect(e, `call ${8 + i}`).toMatchObject({ name: expect.stringMatching(/^(Pkcs11Error|TypeError|RangeError|ServiceRefusedError|BridgeError)$/) });
        expect((e as { message: string }).message.length, `call ${8 + i}`).toBeLessThan(300);
      }
      expect(o[8]).toMatchObject({ name: 'Pkcs11Error', message: expect.stringContaining('no open session with id "sid"') });
      expect(o[18]).toBe('ok');
      expect(o[19]).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/^malformed batched call: no argument count/) });
      expect(o[20]).toBe('missing'); // the client rejects it: 'the service did not answer this call of the batch'
      // The host is alive and the session usable.
      expect(await s.generateRandom(4)).toHaveLength(4);
      expect(await client.ping()).toMatchObject({ sessions: 1 });
    });

    it('batches whose id is not ours are not answered; replies to calls nobody made are ignored by the client', async () => {
      const { s, port } = await serve();
      const seen: unknown[] = [];
      const l = (d: { p11wBatchDone?: unknown }) => void (d && 'p11wBatchDone' in d && seen.push(d.p11wBatchDone));
      port.on('message', l);
      for (const id of [{ big: 'x'.repeat(1000) }, 'str', null]) port.postMessage({ p11wBatch: id, methods: ['generateRandom'], calls: [0, 2, s.id, 8] });
      // The service answers in order, so once this answer is here the ones above would have been.
      expect(await s.generateRandom(3)).toHaveLength(3);
      port.off('message', l);
      expect(seen.filter((x) => typeof x !== 'number')).toEqual([]);
    });

    it('in a service worker: a hostile batch leaves the worker running, the same generation', async () => {
      const p11 = createPkcs11Worker({ grant: { ...FULL_GRANT, paths: [SOFTHSM_MODULE] } });
      try {
        const m = await p11.openModule(SOFTHSM_MODULE);
        const s = await m.openSession(slot, {});
        const generation = p11.supervisor.generation;
        const ep = (p11.supervisor as unknown as { current: { host: { endpoint: { postMessage(m: unknown): void } } } }).current.host.endpoint;
        ep.postMessage({ p11wBatch: 1e9, methods: ['generateRandom'], calls: Array.from({ length: 5000 }, () => [0, 2, s.id, 64 * MiB]).flat() });
        ep.postMessage({ p11wBatch: 1e9 + 1, methods: ['generateRandom', 'sign'], calls: [0, 2, 'x', 8, 1, -1, 0, 99, 1] });
        ep.postMessage({ p11wBatch: 1e9 + 2, methods: ['__proto__', 'constructor'], calls: [0, 0, 1, 1, 'return 1'] });
        expect(await s.generateRandom(16)).toHaveLength(16);
        expect(p11.supervisor.alive).toBe(true);
        expect(p11.supervisor.generation).toBe(generation);
      } finally {
        await p11.close();
      }
    });
  });
});
