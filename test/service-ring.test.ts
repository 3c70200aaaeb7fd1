// The shared-memory ring (ring-client.ts, ring-host.ts): the single-part byte operations of a
// client in the same process travel through a SharedArrayBuffer instead of messages. Through it,
// results and errors are those of the message path; a service that dies or closes with calls in
// the ring rejects them; and a hostile client scribbling over its ring gets errors naming the
// slot (or its ring closed), while the service keeps serving everyone, itself included.
import { createHash, randomBytes } from 'node:crypto';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKK,
  CKM,
  CKO,
  CKR,
  connectPkcs11,
  createPkcs11Worker,
  FULL_GRANT,
  nodePortEndpoint,
  Pkcs11Error,
  ServiceDeadError,
  servePkcs11,
  type ManagedModule,
  type Pkcs11Client,
  type RemoteSession,
} from '../ts/index.js';
import {
  CLOSED, CONTROL_BYTES, DATA_BYTE, DATA_BYTES, DONE, FAILED, HOST_ASLEEP, KEY_BYTE, LEN1, LEN2, MAGIC, MECHANISM, OP, OUT_LEN,
  RING_BYTES, RING_MAGIC, SESSION, SLOT_BYTES, SLOTS, STATUS, SUBMITTED, opCode, slotByte,
} from '../ts/service/ring-layout.js';
import { RingClient } from '../ts/service/ring-client.js';
import { serveRing, type RingHandlers } from '../ts/service/ring-host.js';
import { mulberry32 } from './helpers/mulberry32.js';
import { ecToken } from './helpers/ec-token.js';
import { SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const PIN = '1234';
let hsm: SoftHsm;
let slot: number;
let local: ManagedModule;

beforeAll(() => {
  const t = ecToken('ring', PIN);
  ({ hsm, slot, local } = t);
  t.session.generateKey(CKM.CKM_AES_KEY_GEN, [
    { type: CKA.CKA_TOKEN, value: true },
    { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
    { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_AES },
    { type: CKA.CKA_VALUE_LEN, value: 32 },
    { type: CKA.CKA_ENCRYPT, value: true },
    { type: CKA.CKA_DECRYPT, value: true },
    { type: CKA.CKA_LABEL, value: 'aes' },
  ]);
});
afterAll(() => {
  local.release();
  hsm.cleanup();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A worker service (ring on by default) and a logged-in session, with the test keys' handles. */
async function worker(opts: { ring?: boolean; restart?: boolean } = {}) {
  const client = createPkcs11Worker(opts);
  cleanups.push(() => client.close());
  return { client, ...(await session(client)) };
}

async function session(client: Pkcs11Client) {
  const m = await client.openModule(SOFTHSM_MODULE);
  const s = await m.openSession(slot, { pin: PIN });
  const handle = async (label: string, cls: number) => (await s.findAndRead([{ type: CKA.CKA_LABEL, value: label }, { type: CKA.CKA_CLASS, value: cls }], []))[0]!.handle;
  return { s, priv: await handle('ec', CKO.CKO_PRIVATE_KEY), pub: await handle('ec', CKO.CKO_PUBLIC_KEY), aes: await handle('aes', CKO.CKO_SECRET_KEY) };
}

/** Resolves once `cond` holds; polls, bounded (never a fixed sleep). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The ring is set up shortly after the service starts; until then calls go by message. */
async function ringReady(client: Pkcs11Client, s: RemoteSession): Promise<void> {
  for (let i = 0; i < 2000 && !client.supervisor.ringAnswered; i++) {
    await s.generateRandom(1);
    await new Promise((r) => setTimeout(r, 2));
  }
  expect(client.supervisor.ringAnswered).toBeGreaterThan(0);
}

describe('shared-memory ring: results', () => {
  it('random bytes, digests (against node:crypto), sign + verify and encrypt + decrypt equal the message path', async () => {
    const ring = await worker();
    const msg = await worker({ ring: false });
    await ringReady(ring.client, ring.s);
    expect(msg.client.supervisor.ringAnswered).toBeUndefined();
    const rnd = mulberry32(17);
    const before = ring.client.supervisor.ringAnswered!;

    // Random: every length that fits a slot comes through the ring; longer ones by message.
    const lengths = [0, 1, 31, 32, 33, DATA_BYTES, DATA_BYTES + 1, 10_000, ...Array.from({ length: 40 }, () => Math.floor(rnd() * 5000))];
    const randoms = await Promise.all(lengths.map((n) => ring.s.generateRandom(n)));
    randoms.forEach((r, i) => {
      expect(r).toBeInstanceOf(Uint8Array);
      expect(r.buffer).toBeInstanceOf(ArrayBuffer); // a copy, never a view of the ring
      expect(r.length).toBe(lengths[i]);
    });
    expect(new Set(randoms.filter((r) => r.length >= 16).map((r) => Buffer.from(r).toString('hex'))).size).toBe(randoms.filter((r) => r.length >= 16).length);
    // Up to the first that does not fit: after it, calls follow it by message (a ring call never overtakes one).
    const viaRing = (sizes: number[]) => Math.min(SLOTS, sizes.findIndex((n) => n > DATA_BYTES));
    let expected = viaRing(lengths);
    expect(ring.client.supervisor.ringAnswered! - before).toBe(expected);

    // Digests of inputs of every size around the slot's capacity, one tick at a time.
    for (const [mech, alg] of [[CKM.CKM_SHA256, 'sha256'], [CKM.CKM_SHA_1, 'sha1'], [CKM.CKM_SHA512, 'sha512']] as const) {
      const sizes = [0, 1, 64, DATA_BYTES, DATA_BYTES + 1, ...Array.from({ length: 20 }, () => Math.floor(rnd() * 6000))];
      expected += viaRing(sizes);
      const inputs = sizes.map((n) => randomBytes(n));
      const [throughRing, viaMsg] = await Promise.all([Promise.all(inputs.map((d) => ring.s.digest(mech, d))), Promise.all(inputs.map((d) => msg.s.digest(mech, d)))]);
      inputs.forEach((d, i) => {
        const want = createHash(alg).update(d).digest('hex');
        expect(Buffer.from(throughRing[i]!).toString('hex')).toBe(want);
        expect(Buffer.from(viaMsg[i]!).toString('hex')).toBe(want);
      });
    }

    // ECDSA: signed through the ring, verified through both paths; a tampered one verifies false on both.
    const hash = createHash('sha256').update('ring').digest();
    const sigs = await Promise.all(Array.from({ length: 40 }, () => ring.s.sign(CKM.CKM_ECDSA, ring.priv, hash)));
    const bad = Uint8Array.from(sigs[0]!);
    bad[5] ^= 1;
    const checks = await Promise.all([
      ...sigs.map((sig) => ring.s.verify(CKM.CKM_ECDSA, ring.pub, hash, sig)),
      ...sigs.map((sig) => msg.s.verify(CKM.CKM_ECDSA, msg.pub, hash, sig)),
      ring.s.verify(CKM.CKM_ECDSA, ring.pub, hash, bad),
      msg.s.verify(CKM.CKM_ECDSA, msg.pub, hash, bad),
    ]);
    expect(checks).toEqual([...sigs.map(() => true), ...sigs.map(() => true), false, false]);
    expected += 2 * sigs.length + 1;

    // AES-ECB is deterministic: the same ciphertext on both paths, and back again.
    const plain = randomBytes(DATA_BYTES - (DATA_BYTES % 16));
    const [c1, c2] = await Promise.all([ring.s.encrypt(CKM.CKM_AES_ECB, ring.aes, plain), msg.s.encrypt(CKM.CKM_AES_ECB, msg.aes, plain)]);
    expect(Buffer.from(c1).equals(Buffer.from(c2))).toBe(true);
    expect(Buffer.from(await ring.s.decrypt(CKM.CKM_AES_ECB, ring.aes, c1)).equals(plain)).toBe(true);
    expect(ring.client.supervisor.ringAnswered! - before).toBe(expected + 2);
  });

  it('errors arrive as the same classes with the same CKR codes as on the message path', async () => {
    const ring = await worker();
    const msg = await worker({ ring: false });
    await ringReady(ring.client, ring.s);
    const outcome = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'resolved';
      } catch (e) {
        return { cls: (e as Error).constructor.name, rv: (e as Pkcs11Error).rv, fn: (e as Pkcs11Error).fn, pkcs11: e instanceof Pkcs11Error };
      }
    };
    const hash = createHash('sha256').update('x').digest();
    for (const call of [
      (t: typeof ring) => t.s.digest(0x7ffffff0, hash), // no such mechanism
      (t: typeof ring) => t.s.sign(CKM.CKM_ECDSA, 0xdead, hash), // no such key
      (t: typeof ring) => t.s.encrypt(CKM.CKM_AES_ECB, t.aes, randomBytes(15)), // not a whole block
      (t: typeof ring) => t.s.sign(CKM.CKM_ECDSA, t.pub, hash), // a public key cannot sign
    ]) {
      const answered = ring.client.supervisor.ringAnswered!;
      const [a, b] = [await outcome(call(ring)), await outcome(call(msg))];
      expect(a).toEqual(b);
      expect(a).toMatchObject({ cls: 'Pkcs11Error', pkcs11: true });
      expect(ring.client.supervisor.ringAnswered).toBe(answered + 1);
    }
    // A closed session: the service's own refusal, on both paths.
    await ring.s.close();
    await msg.s.close();
    const [a, b] = [await outcome(ring.s.generateRandom(8)), await outcome(msg.s.generateRandom(8))];
    expect(a).toEqual(b);
    expect(a).toMatchObject({ rv: CKR.CKR_SESSION_HANDLE_INVALID, pkcs11: true });
  });

  it('keeps the order of calls: ring calls run before a message sent after them; none overtakes a message in flight', async () => {
    const { client, s } = await worker();
    await ringReady(client, s);
    const before = client.supervisor.ringAnswered!;
    // Made before the close, so they run before it (the service drains the ring before each message).
    const early = Array.from({ length: 8 }, () => s.generateRandom(8));
    const closing = s.close();
    const late = s.generateRandom(8); // a message is in flight: this one goes by message, after the close
    expect((await Promise.all(early)).map((r) => r.length)).toEqual(Array(8).fill(8));
    await closing;
    await expect(late).rejects.toMatchObject({ rv: CKR.CKR_SESSION_HANDLE_INVALID });
    expect(client.supervisor.ringAnswered).toBe(before + 8);
  });
});

describe('shared-memory ring: the transport', () => {
  it('an output too big for a slot is asked again by message; an answer that waits holds back only the answers after it', async () => {
    const { port1, port2 } = new MessageChannel();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);
    // Handlers of the transport's own (no module): one answer waits, one does not fit a slot.
    const stopHost = serveRing(nodePortEndpoint(port2), {
      generateRandom: (_sid: unknown, n: unknown) => (n === 7 ? gate.then(() => bytes(7, 7)) : bytes(n as number, 1)),
      digest: () => bytes(DATA_BYTES + 1, 2),
      sign: () => bytes(DATA_BYTES, 3),
      verify: () => false,
      encrypt: () => bytes(0, 0),
      decrypt: () => bytes(1, 4),
    } satisfies RingHandlers);
    const fallbacks: unknown[] = [];
    const ring = new RingClient(nodePortEndpoint(port1), {
      fallback: async (method, args) => {
        fallbacks.push([method, args[0]]);
        return 'by message';
      },
    });
    cleanups.push(() => {
      ring.fail(() => new Error('test over'));
      stopHost();
      port1.close();
      port2.close();
    });
    let first: Promise<unknown> | undefined;
    await until(() => (first = ring.call('generateRandom', [1, 4])) !== undefined, 'the ring to be set up');
    expect(await first).toEqual(bytes(4, 1));
    const order: string[] = [];
    const waits = ring.call('generateRandom', [1, 7])!.then((v) => order.push(`waited ${(v as Uint8Array).length}`));
    const quick = ring.call('generateRandom', [1, 3])!.then((v) => order.push(`quick ${(v as Uint8Array).length}`));
    const big = ring.call('digest', [1, 0x250, bytes(10, 0)])!;
    const rest = [ring.call('sign', [1, 1, 5, bytes(1, 0)])!, ring.call('verify', [1, 1, 5, bytes(1, 0), bytes(2, 0)])!, ring.call('decrypt', [1, 1, 5, bytes(16, 0)])!];
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]); // the quick one is done, but answers are read in order
    expect(ring.pending).toBe(6);
    open();
    await Promise.all([waits, quick]);
    expect(order).toEqual(['waited 7', 'quick 3']);
    expect(await big).toBe('by message');
    expect(fallbacks).toEqual([['digest', 1]]);
    expect(await Promise.all(rest)).toEqual([bytes(DATA_BYTES, 3), false, bytes(1, 4)]);
    // Calls that do not fit a slot, or a mechanism with parameters, are not the ring's.
    expect(ring.call('generateRandom', [1, DATA_BYTES + 1])).toBeUndefined();
    expect(ring.call('digest', [1, { mechanism: 1, parameter: bytes(8, 0) }, bytes(1, 0)])).toBeUndefined();
    expect(ring.call('verify', [1, 1, 5, bytes(DATA_BYTES, 0), bytes(1, 0)])).toBeUndefined();
    expect(ring.call('findObjects', [1, []])).toBeUndefined();
  });
});

describe('shared-memory ring: the service going away', () => {
  it('kill() with calls in the ring rejects each with ServiceDeadError; a restarted service gets a ring of its own', async () => {
    const { client, s } = await worker({ restart: true });
    await ringReady(client, s);
    const calls = Array.from({ length: 200 }, (_, i) => s.generateRandom(1 + (i % 64)));
    const settled = Promise.allSettled(calls);
    await client.kill('test kill');
    const results = await settled;
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ServiceDeadError);
    // Generation 2: its own ring.
    await until(() => client.generation === 2 && client.alive, 'the restart');
    const again = await session(client);
    await ringReady(client, again.s);
    expect((await again.s.generateRandom(32)).length).toBe(32);
  });

  it('close() with calls in the ring settles every one of them (answered, or ServiceDeadError), and later calls reject at once', async () => {
    const client = createPkcs11Worker();
    const { s } = await session(client);
    await ringReady(client, s);
    const calls = Promise.allSettled(Array.from({ length: 300 }, () => s.digest(CKM.CKM_SHA256, randomBytes(100))));
    await client.close();
    for (const r of await calls) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ServiceDeadError);
      else expect(r.value.length).toBe(32);
    }
    await expect(s.generateRandom(8)).rejects.toBeInstanceOf(ServiceDeadError);
  });
});

// ---- a hostile client: it shares the service's thread with an honest one (both served here, in
// this thread, so that a throw out of the host's code would fail the run) and writes its ring by hand.

interface HostileRing {
  sab: SharedArrayBuffer;
  ctl: Int32Array;
  words: Uint32Array;
  port: MessagePort;
}

/** Serves a client on a fresh channel; returns the client's raw port (for the hostile one). */
function serveHere(): MessagePort {
  const { port1, port2 } = new MessageChannel();
  servePkcs11(nodePortEndpoint(port2), { grant: { ...FULL_GRANT, paths: [SOFTHSM_MODULE] } });
  cleanups.push(() => {
    port1.close();
    port2.close();
  });
  return port1;
}

async function hostileRing(): Promise<HostileRing> {
  const port = serveHere();
  const sab = new SharedArrayBuffer(RING_BYTES);
  const ctl = new Int32Array(sab, 0, CONTROL_BYTES / 4);
  Atomics.store(ctl, MAGIC, RING_MAGIC);
  const ready = new Promise<unknown>((resolve) => port.once('message', resolve));
  port.postMessage({ p11wRing: sab });
  expect(await ready).toEqual({ p11wRingReady: true });
  return { sab, ctl, words: new Uint32Array(sab), port };
}

/** Submits the slots written since `from` (up to `to`) and waits for the host to finish them. */
async function submit(h: HostileRing, to: number): Promise<void> {
  Atomics.store(h.ctl, SUBMITTED, to);
  Atomics.store(h.ctl, HOST_ASLEEP, 0);
  Atomics.notify(h.ctl, HOST_ASLEEP);
  await until(() => Atomics.load(h.ctl, DONE) === to || Atomics.load(h.ctl, CLOSED) !== 0, 'the host to answer');
}

/** The error the host wrote into slot k. */
function slotError(h: HostileRing, k: number): { name: string; message: string; fields: Record<string, unknown> } {
  const w = slotByte(k) >> 2;
  expect(h.words[w + STATUS]).toBe(FAILED);
  const len = h.words[w + OUT_LEN]!;
  expect(len).toBeLessThanOrEqual(DATA_BYTES);
  return JSON.parse(Buffer.from(new Uint8Array(h.sab, slotByte(k) + DATA_BYTE, len)).toString('utf8'));
}

describe('shared-memory ring: a hostile client', () => {
  it('garbage in a slot fails that call with an error naming the slot; another client\'s session is not reachable', async () => {
    const honest = connectPkcs11(nodePortEndpoint(serveHere()), { ring: true });
    cleanups.push(() => honest.close());
    const { s } = await session(honest);
    await ringReady(honest, s);
    const h = await hostileRing();
    const w = (k: number) => slotByte(k) >> 2;
    const f64 = new Float64Array(h.sab);
    const write = (k: number, op: number, sid: number, n1: number, n2 = 0, key = 1, mech = CKM.CKM_SHA256) => {
      h.words[w(k) + OP] = op;
      h.words[w(k) + SESSION] = sid;
      h.words[w(k) + MECHANISM] = mech;
      h.words[w(k) + LEN1] = n1;
      h.words[w(k) + LEN2] = n2;
      h.words[w(k) + STATUS] = 0xffffffff;
      h.words[w(k) + OUT_LEN] = 0xffffffff;
      f64[(slotByte(k) + KEY_BYTE) >> 3] = key;
    };
    write(0, 0, 1, 0);
    write(1, 99, 1, 0);
    write(2, opCode('generateRandom'), 1, 0xffffffff);
    write(3, opCode('digest'), 1, DATA_BYTES + 1);
    write(4, opCode('verify'), 1, 16, 0xfffffff8);
    write(5, opCode('sign'), 1, 16, 0, -1);
    write(6, opCode('sign'), 1, 16, 0, Number.NaN);
    write(7, opCode('encrypt'), 1, 16, 0, 2 ** 60);
    write(8, opCode('generateRandom'), 1, 8); // the honest client's first session id: not this client's
    await submit(h, 9);
    for (const k of [0, 1, 2, 3, 4, 5, 6, 7]) expect(slotError(h, k).message).toContain(`ring slot ${k}`);
    expect(slotError(h, 8).fields.rv).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    // A call submitted without waking the host (a lost wake-up) is still answered: its safety poll drains it.
    write(9, 99, 1, 0);
    Atomics.store(h.ctl, SUBMITTED, 10);
    await until(() => Atomics.load(h.ctl, DONE) === 10, 'the safety poll');
    expect(slotError(h, 9).message).toContain('ring slot 9');
    // The honest client is served all along, through its ring and by message.
    const before = honest.supervisor.ringAnswered!;
    expect((await Promise.all([s.generateRandom(16), s.digest(CKM.CKM_SHA256, Buffer.from('ok'))])).map((r) => r.length)).toEqual([16, 32]);
    expect(honest.supervisor.ringAnswered).toBe(before + 2);
    expect((await honest.ping()).sessions).toBe(1);
  });

  it('random bytes over the whole ring, and counters out of range, never crash or stall the service: the ring closes, everyone else is served', async () => {
    const honest = connectPkcs11(nodePortEndpoint(serveHere()), { ring: true });
    cleanups.push(() => honest.close());
    const { s } = await session(honest);
    await ringReady(honest, s);
    const h = await hostileRing();
    const rnd = mulberry32(99);
    const bytes = new Uint8Array(h.sab);
    let done = 0;
    for (let round = 0; round < 100; round++) {
      // Slots full of noise (the control words left alone), then a valid count of them.
      for (let i = CONTROL_BYTES; i < RING_BYTES; i += 4) new DataView(h.sab).setUint32(i, (rnd() * 2 ** 32) >>> 0, true);
      // Ops that exist, now and then, so that noise reaches the handlers too.
      for (let k = 0; k < SLOTS; k++) if (rnd() < 0.5) new Uint32Array(h.sab, slotByte(k), 1)[0] = 1 + Math.floor(rnd() * 6);
      const n = 1 + Math.floor(rnd() * SLOTS);
      done = (done + n) | 0;
      await submit(h, done);
      expect(Atomics.load(h.ctl, CLOSED)).toBe(0);
      // The honest client, meanwhile.
      if (round % 10 === 0) expect((await s.generateRandom(8)).length).toBe(8);
    }
    expect(bytes.length).toBe(RING_BYTES);
    // A count that runs past what the ring holds: the host stops serving this ring, and says so.
    Atomics.store(h.ctl, SUBMITTED, (done + SLOTS * 3) | 0);
    Atomics.notify(h.ctl, HOST_ASLEEP);
    await until(() => Atomics.load(h.ctl, CLOSED) !== 0, 'the ring to close');
    // The hostile client's message path and the honest client still work.
    const reply = new Promise<unknown>((resolve) => h.port.once('message', resolve));
    h.port.postMessage({ id: 1, type: 'APPLY', path: ['ping'], argumentList: [] });
    expect(await reply).toMatchObject({ id: 1, type: 'RAW' });
    const before = honest.supervisor.ringAnswered!;
    expect((await s.sign(CKM.CKM_ECDSA, (await s.findObjects([{ type: CKA.CKA_LABEL, value: 'ec' }, { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]))[0]!, Buffer.alloc(32))).length).toBe(64);
    expect(honest.supervisor.ringAnswered).toBe(before + 1);
  });

  it('a client that keeps its ring full from another thread does not keep the service from its messages', async () => {
    const honest = connectPkcs11(nodePortEndpoint(serveHere()), { ring: true });
    cleanups.push(() => honest.close());
    const { s } = await session(honest);
    const h = await hostileRing(); // every slot's OP is 0: each call fails at once, as fast as it can be resubmitted
    const flags = new Int32Array(new SharedArrayBuffer(8)); // [0]: stop, [1]: rounds the hammer made
    const hammer = new Worker(
      `const { workerData: { sab, flags } } = require('node:worker_threads');
       const ctl = new Int32Array(sab, 0, ${CONTROL_BYTES / 4});
       const f = new Int32Array(flags);
       while (Atomics.load(f, 0) === 0) {
         Atomics.store(ctl, ${SUBMITTED}, (Atomics.load(ctl, ${DONE}) + ${SLOTS}) | 0);
         Atomics.store(ctl, ${HOST_ASLEEP}, 0);
         Atomics.notify(ctl, ${HOST_ASLEEP});
         Atomics.add(f, 1, 1);
       }`,
      { eval: true, workerData: { sab: h.sab, flags: flags.buffer } },
    );
    cleanups.push(async () => {
      Atomics.store(flags, 0, 1);
      await hammer.terminate();
    });
    await until(() => Atomics.load(h.ctl, DONE) > 10 * SLOTS, 'the hammer to get going');
    // The honest client, by message and through its ring, and the hostile one's own port, answered while the hammer runs.
    expect((await s.findObjects([{ type: CKA.CKA_LABEL, value: 'ec' }])).length).toBe(2);
    expect((await s.generateRandom(8)).length).toBe(8);
    const reply = new Promise<unknown>((resolve) => h.port.once('message', resolve));
    h.port.postMessage({ id: 2, type: 'APPLY', path: ['ping'], argumentList: [] });
    expect(await reply).toMatchObject({ id: 2, type: 'RAW' });
    expect(Atomics.load(flags, 0)).toBe(0); // still hammering
    expect(Atomics.load(h.ctl, CLOSED)).toBe(0);
  });

  it('a second ring, or one of the wrong size or version, is refused', async () => {
    const h = await hostileRing();
    const answer = () => new Promise<unknown>((resolve) => h.port.once('message', resolve));
    let a = answer();
    h.port.postMessage({ p11wRing: new SharedArrayBuffer(RING_BYTES) });
    expect(await a).toMatchObject({ p11wRingReady: false, reason: expect.stringContaining('already') });
    const port = serveHere();
    for (const bad of [new SharedArrayBuffer(SLOT_BYTES), new ArrayBuffer(RING_BYTES), 42, new SharedArrayBuffer(RING_BYTES)]) {
      a = new Promise<unknown>((resolve) => port.once('message', resolve));
      port.postMessage({ p11wRing: bad });
      expect(await a).toMatchObject({ p11wRingReady: false });
    }
  });
});
