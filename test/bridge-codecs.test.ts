// The bridge's encoders and decoders on their own: the arena, CK_ULONGs, padded strings,
// attribute templates (round trips over random templates) and mechanism parameter layouts.
import fc from 'fast-check';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { Arena, MAX_BUFFER } from '../ts/bridge/memory.js';
import { L } from '../ts/bridge/layout.js';
import { paddedText, padText } from '../ts/bridge/strings.js';
import { ModuleInfoView, TokenInfoView } from '../ts/bridge/info.js';
import { decodeValue, encodeTemplate, type Attribute, type AttributeValue } from '../ts/bridge/attributes.js';
import { attributeKind } from '../ts/bridge/attribute-kinds.js';
import { encodeMechanism } from '../ts/bridge/mechanisms.js';
import { BridgeError, CKA, CKM, CKG } from '../ts/bridge/index.js';

const A = L.attribute;

/** Reads back a CK_ATTRIBUTE array the way a module would: type, then len bytes at pValue. */
function readTemplate(mem: Arena, base: number, count: number): { type: number; bytes: Uint8Array; ptr: number }[] {
  return Array.from({ length: count }, (_, i) => {
    const at = base + i * A.size;
    const ptr = Number(mem.ulong(at + A.pValue));
    const len = Number(mem.ulong(at + A.ulValueLen));
    return { type: Number(mem.ulong(at + A.type)), bytes: mem.read(ptr, len), ptr };
  });
}

describe('arena and CK_ULONG', () => {
  it('allocates zeroed, aligned memory and zeroes it again on reset', () => {
    const mem = new Arena(64);
    const a = mem.alloc(3);
    const b = mem.alloc(5);
    expect(b - a).toBe(8);
    mem.view(a, 3).fill(0xff);
    mem.reset();
    expect([...mem.view(mem.alloc(3), 3)]).toEqual([0, 0, 0]);
    const big = mem.alloc(1000); // beyond the primary chunk
    mem.view(big, 1000).fill(1);
    expect(mem.read(big, 1000).every((x) => x === 1)).toBe(true);
    expect(() => mem.alloc(MAX_BUFFER + 1)).toThrow(BridgeError);
    expect(() => mem.read(12345, 4)).toThrow(RangeError);
  });

  it('round-trips CK_ULONGs as numbers below 2^53 and bigints above', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** BigInt(L.ulong * 8) - 1n }), (v) => {
        const mem = new Arena(64);
        const at = mem.alloc(L.ulong);
        mem.setUlong(at, v);
        const back = mem.ulong(at);
        expect(BigInt(back)).toBe(v);
        expect(typeof back).toBe(v <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'bigint');
      }),
    );
    const mem = new Arena(64);
    expect(() => mem.setUlong(mem.alloc(8), -1)).toThrow(BridgeError);
    expect(() => mem.setUlong(mem.alloc(8), 1.5)).toThrow(BridgeError);
    expect(() => mem.setUlong(mem.alloc(8), 2n ** 64n)).toThrow(BridgeError);
  });
});

describe('padded strings', () => {
  it('trim blanks, stop at NUL, and never throw on any bytes', () => {
    expect(paddedText(Buffer.from('SoftHSM   '), 0, 10)).toBe('SoftHSM');
    expect(paddedText(Buffer.from('ab\0cd  '), 0, 7)).toBe('ab');
    expect(paddedText(Buffer.from('xx  héllo  '), 2, 10)).toBe('  héllo');
    expect(paddedText(Buffer.from('short'), 0, 32)).toBe('short'); // a field past the end is cut at the buffer
    expect(paddedText(Buffer.from([0x41, 0xff, 0x20]), 0, 3)).toBe('A\ufffd');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = paddedText(Buffer.from(bytes), 0, bytes.length);
        expect(text.endsWith(' ')).toBe(false);
        expect(text.includes('\0')).toBe(false);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(bytes.length * 3);
      }),
    );
  });

  it('pads to the field and refuses text that does not fit', () => {
    expect(Buffer.from(padText('tok', 6)).toString()).toBe('tok   ');
    expect(() => padText('x'.repeat(33), 32)).toThrow(RangeError);
  });
});

const values: Record<string, fc.Arbitrary<Attribute>> = {
  bool: fc.constantFrom(CKA.CKA_TOKEN, CKA.CKA_SIGN, CKA.CKA_PRIVATE).chain((type) => fc.boolean().map((value) => ({ type, value }))),
  ulong: fc.constantFrom(CKA.CKA_CLASS, CKA.CKA_KEY_TYPE, CKA.CKA_VALUE_LEN).chain((type) => fc.nat().map((value) => ({ type, value }))),
  string: fc.constantFrom(CKA.CKA_LABEL, CKA.CKA_APPLICATION).chain((type) => fc.string().map((value) => ({ type, value }))),
  bytes: fc.constantFrom(CKA.CKA_ID, CKA.CKA_VALUE, 0x80001234).chain((type) => fc.uint8Array().map((value) => ({ type, value }))),
  date: fc.constantFrom(CKA.CKA_START_DATE, CKA.CKA_END_DATE).chain((type) =>
    fc.record({ year: fc.integer({ min: 1970, max: 2999 }), month: fc.integer({ min: 1, max: 12 }), day: fc.integer({ min: 1, max: 31 }) }).map((value) => ({ type, value })),
  ),
  mechanisms: fc.array(fc.nat(0xffff)).map((value) => ({ type: CKA.CKA_ALLOWED_MECHANISMS, value })),
};
const flat = fc.oneof(...Object.values(values));
const attribute = fc.oneof(flat, fc.array(flat, { maxLength: 4 }).map((value) => ({ type: CKA.CKA_WRAP_TEMPLATE, value })));

function decoded(type: number, bytes: Uint8Array, mem: Arena, ptr: number, len: number): AttributeValue {
  if (attributeKind(type) !== 'attributes') return decodeValue(attributeKind(type), bytes);
  return readTemplate(mem, ptr, len / A.size).map((inner) => ({ type: inner.type, value: decodeValue(attributeKind(inner.type), inner.bytes) }));
}

describe('attribute templates', () => {
  it('encode values by attribute kind and decode back to the same values', () => {
    fc.assert(
      fc.property(fc.array(attribute, { maxLength: 8 }), (template) => {
        const mem = new Arena(256);
        const base = encodeTemplate(mem, template);
        const back = readTemplate(mem, base, template.length);
        template.forEach((attr, i) => {
          expect(back[i].type).toBe(attr.type);
          const value = decoded(attr.type, back[i].bytes, mem, back[i].ptr, back[i].bytes.length);
          expect(value).toEqual(attr.value instanceof Uint8Array || attributeKind(attr.type) !== 'bytes' ? attr.value : value);
        });
      }),
    );
  });

  it('gives CK_BBOOL one byte, CK_ULONG its native width, dates 8 ASCII digits', () => {
    const mem = new Arena(256);
    const base = encodeTemplate(mem, [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_MODULUS_BITS, value: 2048 },
      { type: CKA.CKA_START_DATE, value: { year: 2024, month: 2, day: 9 } },
      { type: CKA.CKA_END_DATE, value: new Date(Date.UTC(2030, 11, 31)) },
    ]);
    const [b, u, d, e] = readTemplate(mem, base, 4);
    expect([...b.bytes]).toEqual([1]);
    expect(u.bytes.length).toBe(L.ulong);
    expect(Buffer.from(d.bytes).toString()).toBe('20240209');
    expect(Buffer.from(e.bytes).toString()).toBe('20301231');
  });

  it('refuses values that do not fit the attribute with BAD_ARGUMENT', () => {
    const bad: Attribute[][] = [
      [{ type: CKA.CKA_TOKEN, value: 'yes' }],
      [{ type: CKA.CKA_CLASS, value: 'private' }],
      [{ type: CKA.CKA_START_DATE, value: '2024-01-01' }],
      [{ type: CKA.CKA_WRAP_TEMPLATE, value: true }],
      [{ type: CKA.CKA_VALUE_LEN, value: -1 }],
      [{ value: 1 } as unknown as Attribute],
    ];
    for (const t of bad) expect(() => encodeTemplate(new Arena(), t), JSON.stringify(t)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });

  it('decodes sizes that do not fit the kind as bytes rather than guessing', () => {
    expect(decodeValue('bool', new Uint8Array([1, 0]))).toEqual(new Uint8Array([1, 0]));
    expect(decodeValue('ulong', new Uint8Array(3))).toEqual(new Uint8Array(3));
    const notDate = new Uint8Array(Buffer.from('2024AB01'));
    expect(decodeValue('date', notDate)).toBe(notDate);
    expect(decodeValue('date', new Uint8Array(Buffer.from('20240101')))).toEqual({ year: 2024, month: 1, day: 1 });
  });
});

describe('mechanism parameters', () => {
  const mech = (m: Parameters<typeof encodeMechanism>[1]) => {
    const mem = new Arena(256);
    const at = encodeMechanism(mem, m);
    const o = L.mechanism;
    return { mem, type: Number(mem.ulong(at + o.mechanism)), p: Number(mem.ulong(at + o.pParameter)), len: Number(mem.ulong(at + o.ulParameterLen)) };
  };

  it('lays out RSA-PSS, OAEP, ECDH1 and GCM parameters', () => {
    const pss = mech({ mechanism: CKM.CKM_RSA_PKCS_PSS, parameter: { hashAlg: CKM.CKM_SHA256, mgf: CKG.CKG_MGF1_SHA256, saltLength: 32 } });
    expect(pss.len).toBe(L.pssParams.size);
    expect([pss.mem.ulong(pss.p + L.pssParams.hashAlg), pss.mem.ulong(pss.p + L.pssParams.mgf), pss.mem.ulong(pss.p + L.pssParams.sLen)]).toEqual([CKM.CKM_SHA256, CKG.CKG_MGF1_SHA256, 32]);

    const label = Buffer.from('label');
    const oaep = mech({ mechanism: CKM.CKM_RSA_PKCS_OAEP, parameter: { hashAlg: CKM.CKM_SHA_1, mgf: CKG.CKG_MGF1_SHA1, sourceData: label } });
    const o = L.oaepParams;
    expect(oaep.mem.ulong(oaep.p + o.source)).toBe(1);
    expect(Buffer.from(oaep.mem.read(Number(oaep.mem.ulong(oaep.p + o.pSourceData)), Number(oaep.mem.ulong(oaep.p + o.ulSourceDataLen)))).toString()).toBe('label');

    const pub = new Uint8Array(65).fill(4);
    const ecdh = mech({ mechanism: CKM.CKM_ECDH1_DERIVE, parameter: { kdf: 1, publicData: pub } });
    const e = L.ecdh1Params;
    expect(ecdh.mem.ulong(ecdh.p + e.ulSharedDataLen)).toBe(0);
    expect(ecdh.mem.ulong(ecdh.p + e.pSharedData)).toBe(0);
    expect(ecdh.mem.read(Number(ecdh.mem.ulong(ecdh.p + e.pPublicData)), 65)).toEqual(pub);

    const gcm = mech({ mechanism: CKM.CKM_AES_GCM, parameter: { iv: new Uint8Array(12).fill(9), tagBits: 96 } });
    const g = L.gcmParams;
    expect([gcm.mem.ulong(gcm.p + g.ulIvLen), gcm.mem.ulong(gcm.p + g.ulIvBits), gcm.mem.ulong(gcm.p + g.ulTagBits), gcm.mem.ulong(gcm.p + g.pAAD)]).toEqual([12, 96, 96, 0]);
  });

  it('takes bytes and CK_ULONG parameters for any mechanism, typed ones only where known', () => {
    // Parameterless mechanisms are built once and shared (immutable, valid on any thread).
    const bare = encodeMechanism(new Arena(), CKM.CKM_SHA256);
    expect(encodeMechanism(new Arena(), { mechanism: CKM.CKM_SHA256 })).toBe(bare);
    expect([...(koffi.decode(bare, koffi.array('unsigned long', 3)) as ArrayLike<bigint>)].map(Number)).toEqual([CKM.CKM_SHA256, 0, 0]);
    const iv = mech({ mechanism: CKM.CKM_AES_CBC, parameter: new Uint8Array(16) });
    expect(iv.len).toBe(16);
    expect(mech({ mechanism: CKM.CKM_SHA256_HMAC_GENERAL, parameter: 16 }).len).toBe(L.ulong);
    expect(() => mech({ mechanism: CKM.CKM_AES_CBC, parameter: { iv: new Uint8Array(16), tagBits: 1 } })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => mech({ mechanism: CKM.CKM_RSA_PKCS_PSS, parameter: { hashAlg: 1 } as never })).toThrow(/saltLength|mgf/);
  });
});

describe('info views', () => {
  it('decode each view from its own bytes, whatever another view of the same field decoded last', () => {
    const info = (manufacturer: string, flags: number) => {
      const b = new Uint8Array(L.info.size).fill(0x20);
      b.set(Buffer.from(manufacturer), L.info.manufacturerID);
      b.fill(0, L.info.flags, L.info.flags + L.ulong);
      b[L.info.flags] = flags;
      b[L.info.flags + 3] = 0x80; // the top bit of the low word: still a positive number
      return new ModuleInfoView(b);
    };
    const a = info('Alpha Corp', 1);
    const b = info('Beta', 2);
    const c = info('Alpha Corp', 3);
    expect([b.manufacturerID, a.manufacturerID, c.manufacturerID, info('Alpha Corx', 0).manufacturerID]).toEqual(['Beta', 'Alpha Corp', 'Alpha Corp', 'Alpha Corx']);
    expect([a.flags, b.flags]).toEqual([0x80000001, 0x80000002]);
  });

  it('read CK_ULONGs as numbers below 2^53 and bigints above (CK_UNAVAILABLE_INFORMATION included)', () => {
    const t = L.tokenInfo;
    const b = new Uint8Array(t.size);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(t.ulMaxSessionCount, 2n ** 53n - 1n, true);
    dv.setBigUint64(t.ulSessionCount, 2n ** 53n, true);
    dv.setBigUint64(t.ulMaxRwSessionCount, 2n ** 64n - 1n, true);
    const v = new TokenInfoView(b);
    expect([v.maxSessionCount, v.sessionCount, v.maxRwSessionCount, v.rwSessionCount]).toEqual([2 ** 53 - 1, 2n ** 53n, 2n ** 64n - 1n, 0]);
  });
});
