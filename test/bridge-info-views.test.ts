// Info views' text fields, as the fast typed calls build them: several results in one slab, each
// read in place, strings decoded once and then served from a per-field cache of the last bytes
// seen. Whatever the cache holds, every field must decode exactly as the stateless decoder
// (paddedText) decodes the same bytes: non-ASCII, invalid UTF-8 and fields with no padding left.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L } from '../ts/bridge/layout.js';
import { Arena, ResultSlab } from '../ts/bridge/memory.js';
import { paddedText } from '../ts/bridge/strings.js';
import { ModuleInfoView, SlotInfoView, TokenInfoView } from '../ts/bridge/info.js';
import { loadModule } from '../ts/bridge/modules.js';
import type { Pkcs11Module } from '../ts/bridge/module.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const i = L.info;
const t = L.tokenInfo;

/** A CK_INFO in a fresh region of `slab`, its two text fields set to `manufacturer` and `description`. */
function infoIn(slab: ResultSlab, manufacturer: Uint8Array, description: Uint8Array): ModuleInfoView {
  const at = slab.take(i.size);
  slab.u8.set(manufacturer.subarray(0, 32), at + i.manufacturerID);
  slab.u8.set(description.subarray(0, 32), at + i.libraryDescription);
  return new ModuleInfoView(slab.u8, at, slab.dv);
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const padded = (s: string, n = 32) => {
  const b = new Uint8Array(n).fill(0x20);
  b.set(utf8(s));
  return b;
};

describe('info views over a shared slab', () => {
  it('decode non-ASCII, invalid UTF-8 and full-length fields as paddedText does', () => {
    const slab = new ResultSlab();
    const full = utf8('Clé € 日本 — 32 bytes, ok');
    expect(full.length).toBe(32); // no blank left: the whole field is text
    const cut = utf8('thirty-one ASCII characters ok é').subarray(0, 32); // é cut after its first byte
    const invalid = Uint8Array.from([0x41, 0xff, 0x80, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x20, 0x20, ...new Array(22).fill(0x20)]);
    const nulInside = padded('ab\0cd');
    const views = [infoIn(slab, full, padded('Société Générale')), infoIn(slab, cut, invalid), infoIn(slab, nulInside, full)];
    expect(views[0].manufacturerID).toBe('Clé € 日本 — 32 bytes, ok');
    expect(views[0].libraryDescription).toBe('Société Générale');
    expect(views[1].manufacturerID).toBe('thirty-one ASCII characters ok \ufffd');
    expect(views[1].libraryDescription).toBe(paddedText(invalid, 0, 32));
    expect(views[1].libraryDescription.startsWith('A\ufffd')).toBe(true);
    expect(views[2].manufacturerID).toBe('ab');
    expect(views[2].libraryDescription).toBe(views[0].manufacturerID);
    // Each view reads its own region, read again after its neighbours were decoded.
    expect(views.map((v) => v.toJSON().manufacturerID)).toEqual(['Clé € 日本 — 32 bytes, ok', 'thirty-one ASCII characters ok \ufffd', 'ab']);
  });

  it('never serve a string decoded from other bytes, however the fields repeat or differ in one byte', () => {
    const bases = [padded('SoftHSM'), padded('Mozilla Foundation'), utf8('Clé € 日本 — 32 bytes, ok')];
    const field = fc.tuple(fc.nat(bases.length - 1), fc.option(fc.tuple(fc.nat(31), fc.integer({ min: 0, max: 255 })), { nil: undefined }));
    fc.assert(
      fc.property(fc.array(fc.tuple(field, field), { minLength: 1, maxLength: 40 }), (pairs) => {
        const slab = new ResultSlab(512); // a few results per slab: new slabs along the way too
        const bytesOf = ([base, change]: [number, [number, number] | undefined]) => {
          const b = bases[base].slice();
          if (change) b[change[0]] = change[1];
          return b;
        };
        for (const [m, d] of pairs) {
          const [mb, db] = [bytesOf(m), bytesOf(d)];
          const v = infoIn(slab, mb, db);
          expect(v.manufacturerID).toBe(paddedText(mb, 0, 32));
          expect(v.libraryDescription).toBe(paddedText(db, 0, 32));
        }
      }),
    );
  });

  it('read every other field of its own region: versions, flags, CK_ULONGs', () => {
    const slab = new ResultSlab();
    const regions = [1, 2].map((n) => {
      const at = slab.take(t.size);
      slab.u8.fill(0x20, at, at + t.size);
      slab.dv.setUint32(at + t.flags, 0x80000000 + n, true);
      slab.dv.setUint32(at + t.flags + 4, 0, true);
      slab.dv.setBigUint64(at + t.ulMaxSessionCount, n === 1 ? 2n ** 64n - 1n : BigInt(n), true);
      slab.u8[at + t.hardwareVersion] = n;
      slab.u8[at + t.firmwareVersion + 1] = 10 + n;
      return new TokenInfoView(slab.u8, at, slab.dv);
    });
    expect(regions.map((v) => [v.flags, v.maxSessionCount, v.hardwareVersion.major, v.firmwareVersion.minor, v.label])).toEqual([
      [0x80000001, 2n ** 64n - 1n, 1, 11, ''],
      [0x80000002, 2, 2, 12, ''],
    ]);
  });

  it('a view made by hand over a short array decodes what is there and reads nothing past it', () => {
    const b = padded('Short', 20); // CK_SLOT_INFO's description is 64 bytes
    expect(new SlotInfoView(b).slotDescription).toBe('Short');
  });

  it('a slab refuses a region larger than itself', () => {
    expect(() => new ResultSlab(64).take(65)).toThrow(RangeError);
  });
});

describe('token labels through SoftHSM2: the fast call and the generic path agree', () => {
  let hsm: SoftHsm;
  let m: Pkcs11Module;
  beforeAll(() => {
    hsm = createSoftHsm();
    m = loadModule(SOFTHSM_MODULE);
    m.initialize();
  });
  afterAll(() => {
    try {
      m.finalize();
    } finally {
      hsm.cleanup();
    }
  });

  it('a 32-byte UTF-8 label, and one whose last character is cut and whose bytes are not UTF-8', async () => {
    const labels = [utf8('Clé € 日本 — 32 bytes, ok'), Uint8Array.from([...utf8('Étiquette coupée '), 0xff, 0x41, 0xc0, 0x80, ...utf8('tail 日'), 0xe2])];
    const labelsSeen: string[] = [];
    for (const label of labels) {
      expect(label.length).toBe(32);
      const [free] = m.getSlotList(true).filter((s) => !(m.getTokenInfo(s).flags & 0x400)); // CKF_TOKEN_INITIALIZED
      const mem = new Arena(128);
      // C_InitToken by hand: the label's bytes as they are (the typed initToken takes a string).
      expect(m.raw.C_InitToken(free, mem.put(utf8('5678')), 4, mem.put(label))).toBe(0);
      // SoftHSM moves the new token to a slot of its own: found by its label.
      const slot = m.getSlotList(true).find((s) => m.getTokenInfo(s).label === paddedText(label, 0, 32));
      expect(slot).toBeDefined();
      const fast = m.getTokenInfo(slot!);
      const generic = await m.async.getTokenInfo(slot!);
      expect(fast.label).toBe(paddedText(label, 0, 32));
      expect(fast.toJSON()).toEqual(generic.toJSON());
      labelsSeen.push(fast.label);
    }
    expect(labelsSeen[0]).toBe('Clé € 日本 — 32 bytes, ok');
    expect(labelsSeen[1]).toMatch(/^Étiquette coupée \ufffdA\ufffd+tail 日\ufffd$/);
  });
});
