// The PKCS#11 service in real worker threads against SoftHSM2: eight service workers and an
// in-thread user at once (one C_Initialize between them), errors that keep their class across
// the boundary, a worker killed with calls in flight, and restarts as new generations.
// The workers run the built library: `npx tsc -p .` (make ts) first.
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKM,
  CKO,
  CKU,
  createPkcs11Worker,
  LifecycleError,
  openModule,
  Pkcs11Error,
  ServiceDeadError,
  type ManagedModule,
  type Pkcs11Client,
} from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const PIN = '1234';

let hsm: SoftHsm;
let slot: number;
let errSlot: number;
/** The in-thread user: holds SoftHSM2 for the whole file, as an application's main thread would. */
let local: ManagedModule;
let tokenKey: { publicKey: number; privateKey: number };

beforeAll(() => {
  hsm = createSoftHsm();
  slot = hsm.initToken('service', '12345678', PIN);
  errSlot = hsm.initToken('errors', '12345678', PIN);
  local = openModule(SOFTHSM_MODULE);
  const s = local.openSession(slot, { rw: true });
  s.login(CKU.CKU_USER, PIN);
  // A token key pair every worker finds by label (token objects are shared by all sessions).
  tokenKey = s.generateKeyPair(
    CKM.CKM_EC_KEY_PAIR_GEN,
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_EC_PARAMS, value: P256_OID },
      { type: CKA.CKA_VERIFY, value: true },
      { type: CKA.CKA_LABEL, value: 'shared' },
    ],
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_SIGN, value: true },
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_LABEL, value: 'shared' },
    ],
  );
});
afterAll(() => {
  local.release();
  hsm.cleanup();
});

/** The P-256 public key as Node sees it, from CKA_EC_POINT (DER OCTET STRING around the point). */
function nodeKey(ecPoint: Uint8Array) {
  const point = ecPoint[0] === 0x04 && ecPoint.length === 67 ? ecPoint.subarray(2) : ecPoint;
  const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), point]);
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

/** A raw r||s ECDSA signature as DER, for node:crypto. */
function derSignature(raw: Uint8Array): Buffer {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return Buffer.concat([Buffer.from([0x02, v.length + (v[0] & 0x80 ? 1 : 0)]), v[0] & 0x80 ? Buffer.from([0]) : Buffer.alloc(0), v]);
  };
  const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

describe('PKCS#11 service workers on SoftHSM2', () => {
  it('8 workers × mixed operations, plus in-thread calls, share one C_Initialize', { timeout: 120_000 }, async () => {
    const lc = local.lifecycle;
    const initsBefore = lc.callCounts.initialize;
    const workers = Array.from({ length: 8 }, () => createPkcs11Worker());
    const hash = createHash('sha256').update('eight workers').digest();
    const pubPoint = local
      .openSession(slot)
      .getAttributeValue(tokenKey.publicKey, [CKA.CKA_EC_POINT])[0].value as Uint8Array;
    const pub = nodeKey(pubPoint);
    const inThread = local.openSession(slot);
    let inThreadSigns = 0;

    const results = await Promise.all(
      workers.map(async (p11, w) => {
        const mod = await p11.openModule(SOFTHSM_MODULE);
        const s = await mod.openSession(slot, { rw: true, pin: PIN }); // others are logged in already: fine
        const [found] = await s.findAndRead(
          [
            { type: CKA.CKA_LABEL, value: 'shared' },
            { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY },
          ],
          [CKA.CKA_LABEL, CKA.CKA_SIGN],
        );
        expect(found.attributes.map((a) => a.value)).toEqual(['shared', true]);
        const own = await s.generateKeyPair(
          CKM.CKM_EC_KEY_PAIR_GEN,
          [
            { type: CKA.CKA_EC_PARAMS, value: P256_OID },
            { type: CKA.CKA_VERIFY, value: true },
          ],
          [{ type: CKA.CKA_SIGN, value: true }],
        );
        let verified = 0;
        for (let round = 0; round < 10; round++) {
          // 32 in flight at once: random, digests, signatures with the shared and the own key.
          const ops = await Promise.all([
            ...Array.from({ length: 8 }, (_, i) => s.generateRandom(16 + i)),
            ...Array.from({ length: 8 }, () => s.digest(CKM.CKM_SHA256, Buffer.from(`w${w} r${round}`))),
            ...Array.from({ length: 8 }, () => s.sign(CKM.CKM_ECDSA, found.handle, hash)),
            ...Array.from({ length: 8 }, () => s.sign(CKM.CKM_ECDSA, own.privateKey, hash)),
          ]);
          ops.slice(0, 8).forEach((r, i) => expect(r.length).toBe(16 + i));
          // Exact-size copies: no view into a larger (pooled) buffer of the worker crosses over.
          for (const r of ops) expect(r.byteOffset === 0 && r.buffer.byteLength === r.byteLength).toBe(true);
          const want = createHash('sha256').update(`w${w} r${round}`).digest();
          for (const d of ops.slice(8, 16)) expect(Buffer.from(d)).toEqual(want);
          for (const sig of ops.slice(16, 24)) {
            expect(nodeVerify('sha256', Buffer.from('eight workers'), { key: pub, dsaEncoding: 'der' }, derSignature(sig))).toBe(true);
            verified++;
          }
          for (const sig of ops.slice(24)) expect(await s.verify(CKM.CKM_ECDSA, own.publicKey, hash, sig)).toBe(true);
          // Meanwhile the main thread keeps using the same module directly.
          inThread.signInit(CKM.CKM_ECDSA, tokenKey.privateKey);
          inThread.sign(hash);
          inThreadSigns++;
        }
        const state = await mod.state();
        return { verified, state, pid: (await p11.ping()).pid };
      }),
    );
    for (const r of results) {
      expect(r.verified).toBe(80);
      expect(r.pid).toBe(process.pid);
      expect(r.state.phase).toBe('ready');
    }
    expect(inThreadSigns).toBe(80);
    // 8 workers + this thread hold it; nobody made a second C_Initialize.
    expect(lc.state.holders).toBe(9);
    expect(lc.callCounts.initialize).toBe(initsBefore);
    await Promise.all(workers.map((p) => p.close()));
    expect(lc.state.holders).toBe(1);
    expect(lc.state.phase).toBe('ready');
    inThread.close();
  });

  it('errors cross intact: Pkcs11Error and LifecycleError keep class, rv, name, function and module', async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(SOFTHSM_MODULE);
      const wrongPin = await mod.openSession(errSlot, { pin: '0000' }).catch((e: unknown) => e);
      expect(wrongPin).toBeInstanceOf(Pkcs11Error);
      expect(wrongPin).toMatchObject({ name: 'Pkcs11Error', rv: 0xa0, code: 'CKR_PIN_INCORRECT', fn: 'C_Login', module: 'libsofthsm2.so' });
      expect((wrongPin as Error).message).toBe('C_Login failed in libsofthsm2.so: CKR_PIN_INCORRECT');
      const s = await mod.openSession(errSlot);
      const badKey = await s.sign(CKM.CKM_ECDSA, 0x7777, new Uint8Array(32)).catch((e: unknown) => e);
      expect(badKey).toMatchObject({ rv: 0x82, code: 'CKR_OBJECT_HANDLE_INVALID', fn: 'C_SignInit' });
      expect(badKey).toBeInstanceOf(Pkcs11Error);
      const gone = await p11.supervisor.batch('generateRandom', 987654, 8).catch((e: unknown) => e);
      expect(gone).toMatchObject({ name: 'Pkcs11Error', rv: 0xb3, fn: 'C_GenerateRandom' });

      // A C_Finalize behind the lifecycle's back (from this thread, raw): the worker's next
      // call is refused with a LifecycleError, not sent to a module that forgot everything.
      local.module.finalize();
      const refused = await s.generateRandom(8).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(LifecycleError);
      expect(refused).toMatchObject({ name: 'LifecycleError', rv: 0x190, reason: 'finalized-behind-our-back', module: 'libsofthsm2.so' });
      local.reinitialize();
      await mod.reinitialize();
      const again = await mod.openSession(errSlot);
      expect((await again.generateRandom(8)).length).toBe(8);
      // The old session belongs to the earlier lifecycle generation: refused before the module.
      const stale = await s.generateRandom(8).catch((e: unknown) => e);
      expect(stale).toBeInstanceOf(Pkcs11Error); // the service forgot it on reinitialize
    } finally {
      await p11.close();
    }
  });

  it('a worker killed mid-call: every pending call rejects, the restart is a new generation, owners reclaimed', { timeout: 60_000 }, async () => {
    const lc = local.lifecycle;
    const initsBefore = lc.callCounts.initialize;
    const p11: Pkcs11Client = createPkcs11Worker({ restart: true });
    const deaths: unknown[] = [];
    const generations: number[] = [];
    const reclaimed: number[] = [];
    p11.on('death', (d) => deaths.push(d));
    p11.on('generation', (g) => generations.push(g));
    p11.on('reclaimed', (g) => reclaimed.push(g));
    const mod = await p11.openModule(SOFTHSM_MODULE);
    const s = await mod.openSession(slot, { rw: true, pin: PIN });
    expect(lc.state.holders).toBe(2);
    // An RSA key pair keeps the worker's dedicated thread busy; 32 signatures queue behind nothing.
    const keygen = s.generateKeyPair(
      CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
      [
        { type: CKA.CKA_MODULUS_BITS, value: 4096 },
        { type: CKA.CKA_PUBLIC_EXPONENT, value: new Uint8Array([1, 0, 1]) },
      ],
      [{ type: CKA.CKA_SIGN, value: true }],
    );
    const signs = Array.from({ length: 32 }, () => s.sign(CKM.CKM_ECDSA, tokenKey.privateKey, new Uint8Array(32)));
    const randoms = Array.from({ length: 32 }, () => s.generateRandom(32));
    const settled = Promise.allSettled([keygen, ...signs, ...randoms]);
    await new Promise((r) => setTimeout(r, 20));
    expect(p11.supervisor.pending).toBeGreaterThan(0);
    await p11.kill('test kill');
    const all = await settled;
    const rejected = all.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    // Whatever had not answered before the kill rejected, typed; the keygen certainly had not.
    expect(all[0].status).toBe('rejected');
    for (const r of rejected) expect(r.reason).toMatchObject({ name: 'ServiceDeadError', generation: 1, pending: true });
    expect(rejected[0].reason).toBeInstanceOf(ServiceDeadError);
    expect(deaths).toMatchObject([{ generation: 1, reason: 'test kill', restarting: true }]);
    expect(generations).toEqual([2]);
    expect(p11.generation).toBe(2);
    // Handles of generation 1 are refused at once, without a message.
    await expect(s.generateRandom(8)).rejects.toMatchObject({ name: 'ServiceDeadError', generation: 1, pending: false });
    await expect(mod.slots()).rejects.toThrow(/restarted as generation 2/);
    // The dead worker's owner and sessions are reclaimed; the module stayed initialized for us.
    for (let i = 0; i < 500 && !reclaimed.includes(1); i++) await new Promise((r) => setTimeout(r, 10));
    expect(reclaimed).toContain(1);
    expect(lc.state.holders).toBe(1);
    // Generation 2 works, and still no second C_Initialize.
    const mod2 = await p11.openModule(SOFTHSM_MODULE);
    const s2 = await mod2.openSession(slot);
    expect((await s2.generateRandom(12)).length).toBe(12);
    expect(lc.callCounts.initialize).toBe(initsBefore);
    expect(await p11.restart()).toBe(3);
    await expect(s2.generateRandom(1)).rejects.toBeInstanceOf(ServiceDeadError);
    await p11.close();
    await expect(p11.openModule(SOFTHSM_MODULE)).rejects.toMatchObject({ name: 'ServiceDeadError', pending: false });
    expect(lc.state.holders).toBe(1);
  });

  it('killed while opening a module: the open rejects at once, the worker is terminated after it answered, nothing aborts', { timeout: 60_000 }, async () => {
    const lc = local.lifecycle;
    for (let i = 0; i < 8; i++) {
      const p11 = createPkcs11Worker();
      const opening = p11.openModule(SOFTHSM_MODULE).then(
        () => 'opened',
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, i * 3));
      const t0 = performance.now();
      await p11.kill('killed while opening');
      const outcome = await opening;
      if (outcome !== 'opened') expect(outcome).toMatchObject({ name: 'ServiceDeadError', pending: true, method: 'openModule' });
      expect(performance.now() - t0).toBeLessThan(5000);
      await p11.close();
    }
    // Every killed worker's owner is gone: only this thread holds the module.
    lc.sweep();
    expect(lc.state.holders).toBe(1);
  });
});
