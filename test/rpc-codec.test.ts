// The wire codec on its own: primitives, frames, signatures, attributes, mechanisms, the
// remote-address grammar. Encodings are pinned to bytes captured from p11-kit 0.24.1 (spec §7.2);
// random inputs to the decoders must end in a typed error, never an exception of another kind.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedCapacity, readAttribute, valueKind, wireKind, writeTemplate } from '../ts/rpc/attributes.js';
import { allCalls, callSpec } from '../ts/rpc/calls.js';
import { CKA, CKR } from '../ts/rpc/constants.js';
import { Pkcs11Error, RpcProtocolError, RpcUnsupportedError, RpcUsageError } from '../ts/rpc/errors.js';
import { FrameDecoder, FramingError, HEADER_BYTES, encodeFrame, writeFrameHead } from '../ts/rpc/frame.js';
import { writeMechanism } from '../ts/rpc/mechanism.js';
import { RequestBuilder, ResponseParser } from '../ts/rpc/message.js';
import { parseRemote, splitCommandLine, RemoteAddressError } from '../ts/rpc/address.js';
import { WireReader, WireWriter } from '../ts/rpc/wire.js';
import { readInfo } from '../ts/rpc/info.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string) => hex(new TextEncoder().encode(s));

describe('wire primitives', () => {
  it('writes big-endian integers and byte arrays with the NULL marker', () => {
    const w = new WireWriter('t').byte(0xab).u32(0x01020304).u64(0x0a0b0c0d0e0fn).byteArray(Uint8Array.of(9, 8)).byteArray(null);
    expect(hex(w.finish())).toBe('ab' + '01020304' + '00000a0b0c0d0e0f' + '00000002' + '0908' + 'ffffffff');
  });

  it('grows its buffer without losing what was written', () => {
    const w = new WireWriter('t');
    const big = new Uint8Array(1000).map((_, i) => i & 0xff);
    w.byte(1).byteArray(big).u32(7);
    const r = new WireReader(w.finish(), 't');
    expect(r.byte()).toBe(1);
    expect(r.byteArray()).toEqual(big);
    expect(r.u32()).toBe(7);
    expect(r.remaining).toBe(0);
  });

  it('grows at every offset without losing a value written across the boundary', () => {
    // A writer starts small (a pool slice) and reallocates: each primitive must land in the new buffer.
    for (let pad = 100; pad < 300; pad++) {
      const w = new WireWriter('t', undefined, 20).raw(new Uint8Array(pad).fill(0xee)).u32(0x01020304).u64(2 ** 40 + 5).u64(0x1_0000_0001n).byte(0x7f);
      expect(hex(w.finish().subarray(pad))).toBe('01020304' + '0000010000000005' + '0000000100000001' + '7f');
      expect(w.frame().length).toBe(20 + pad + 21);
    }
  });

  it('maps CK_ULONG ~0 to -1 both ways and refuses values a double cannot hold', () => {
    const w = new WireWriter('t').u64(-1).u64(2 ** 53 - 1);
    expect(hex(w.finish())).toBe('ffffffffffffffff' + '001fffffffffffff');
    const r = new WireReader(unhex('ffffffffffffffff 0020000000000000'), 'C_X');
    expect(r.ulong()).toBe(-1);
    expect(() => r.ulong()).toThrow(RpcProtocolError);
    expect(() => new WireWriter('C_X').u64(-2)).toThrow(RpcUsageError);
    expect(() => new WireWriter('C_X').u64(1.5)).toThrow(RpcUsageError);
  });

  it('never reads past the end, and says what it was reading', () => {
    expect(() => new WireReader(unhex('000000'), 'C_GetInfo').u32('slot count')).toThrow(/C_GetInfo.*truncated message reading slot count/);
    expect(() => new WireReader(unhex('00000005 0102'), 'C_X').byteArray()).toThrow(RpcProtocolError);
    expect(() => new WireReader(unhex('7fffffff'), 'C_X').byteArray()).toThrow(/out of range/);
    expect(new WireReader(unhex('ffffffff'), 'C_X').byteArray()).toBeNull();
  });

  it('byte arrays read from a reply are copies, small and large, never views of the reply', () => {
    for (const len of [0, 1, 63, 64, 65, 300]) {
      const reply = new Uint8Array(4 + len + 1);
      reply.set([len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]);
      for (let i = 0; i < len; i++) reply[4 + i] = (i * 7 + 1) & 0xff;
      const got = new WireReader(reply, 'C_X').byteArray()!;
      const want = reply.slice(4, 4 + len);
      reply.fill(0xee);
      expect(got.length).toBe(len);
      expect(got).toEqual(want);
    }
  });
});

describe('frames', () => {
  it('encodes header, options and payload', () => {
    const f = encodeFrame(0x10, new TextEncoder().encode('client'), unhex('00000003 00000000'));
    expect(hex(f)).toBe('00000010' + '00000006' + '00000008' + ascii('client') + '0000000300000000');
  });

  it('a request built with headroom becomes the same frame in its own buffer', () => {
    const options = new TextEncoder().encode('client');
    const spec = callSpec('C_GetSlotList');
    const plain = new RequestBuilder(spec).byte(1).ulongBuffer(4).finish();
    const built = new RequestBuilder(spec, undefined, HEADER_BYTES + options.length).byte(1).ulongBuffer(4);
    const frame = built.finishFrame();
    expect(hex(built.finish())).toBe(hex(plain));
    expect(writeFrameHead(frame, 0xfffffffe, options)).toBe(frame);
    expect(hex(frame)).toBe(hex(encodeFrame(0xfffffffe, options, plain)));
  });

  it('decodes the handshake byte, then frames split at every possible point', () => {
    const stream = Uint8Array.from([0, ...encodeFrame(0x10, new Uint8Array(0), unhex('aabb')), ...encodeFrame(0x11, unhex('01'), unhex('cc'))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(d.version).toBe(0);
      expect(frames.map((f) => [f.code, hex(f.options), hex(f.payload)])).toEqual([
        [0x10, '', 'aabb'],
        [0x11, '01', 'cc'],
      ]);
      expect(d.midFrame).toBe(false);
    }
  });

  it('keeps no reference to a chunk it was given: a transport may read every chunk into one buffer', () => {
    const stream = Uint8Array.from([0, ...encodeFrame(0x10, unhex('01'), new Uint8Array(40).fill(0xaa)), ...encodeFrame(0x11, new Uint8Array(0), unhex('cc'))]);
    for (let cut = 1; cut < stream.length; cut++) {
      const shared = Buffer.alloc(stream.length);
      const d = new FrameDecoder();
      const frames = [];
      let at = 0;
      for (const end of [cut, stream.length]) {
        shared.fill(0x55); // what the previous read left behind is overwritten
        shared.set(stream.subarray(at, end));
        frames.push(...d.push(shared.subarray(0, end - at)));
        at = end;
      }
      expect(frames.map((f) => [f.code, hex(f.options), hex(f.payload)])).toEqual([
        [0x10, '01', 'aa'.repeat(40)],
        [0x11, '', 'cc'],
      ]);
    }
  });

  it('after the handshake, whole frames come straight out of a chunk and a frame cut short after them is kept as a copy', () => {
    const frames = [encodeFrame(0x10, new Uint8Array(0), new Uint8Array(70).fill(0xaa)), encodeFrame(0x11, unhex('0102'), unhex('bb')), encodeFrame(0x12, new Uint8Array(0), new Uint8Array(0))];
    const stream = Buffer.concat(frames);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      expect(d.push(Uint8Array.of(0))).toEqual([]);
      const shared = Buffer.alloc(stream.length);
      const got = [];
      let at = 0;
      for (const end of [cut, stream.length]) {
        shared.fill(0x55); // the previous read's bytes are overwritten, as a transport's reused buffer is
        shared.set(stream.subarray(at, end));
        got.push(...d.push(shared.subarray(0, end - at)));
        at = end;
      }
      expect(got.map((f) => [f.code, hex(f.options), hex(f.payload)])).toEqual([
        [0x10, '', 'aa'.repeat(70)],
        [0x11, '0102', 'bb'],
        [0x12, '', ''],
      ]);
      expect(d.midFrame).toBe(false);
    }
  });

  it('refuses code 0 and lengths beyond the limits before buffering them', () => {
    expect(() => new FrameDecoder().push(unhex('00 00000000 00000000 00000000'))).toThrow(FramingError);
    const d = new FrameDecoder({ maxOptions: 16, maxPayload: 1024 });
    expect(() => d.push(unhex('00 00000010 00000000 00000401'))).toThrow(/exceeds the limit/);
    expect(() => new FrameDecoder({ maxOptions: 16, maxPayload: 1024 }).push(unhex('00 00000010 00000011 00000000'))).toThrow(/options/);
  });

  it("skip mode: a frame over the limit becomes a marker and its bytes are dropped, wherever the chunks break", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ size: fc.integer({ min: 0, max: 300 }), options: fc.integer({ min: 0, max: 8 }) }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        (frames, cuts) => {
          const stream = Buffer.concat([
            Uint8Array.of(0),
            ...frames.map((f, i) => encodeFrame(i + 1, new Uint8Array(f.options).fill(1), new Uint8Array(f.size).fill(i + 1))),
          ]);
          const d = new FrameDecoder({ maxOptions: 16, maxPayload: 100 }, 'skip');
          const got: { code: number; size: number; oversized?: number }[] = [];
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const next = Math.min(stream.length, at + cuts[i % cuts.length]!);
            for (const f of d.push(stream.subarray(at, next))) got.push({ code: f.code, size: f.payload.length, ...(f.oversized !== undefined && { oversized: f.oversized }) });
            at = next;
          }
          expect(got).toEqual(frames.map((f, i) => (f.size > 100 ? { code: i + 1, size: 0, oversized: f.size } : { code: i + 1, size: f.size })));
          expect(d.midFrame).toBe(false);
        },
      ),
    );
  });

  it('turns arbitrary byte streams into frames or a FramingError, nothing else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (chunks) => {
        const d = new FrameDecoder({ maxOptions: 64, maxPayload: 4096 });
        try {
          for (const c of chunks) for (const f of d.push(c)) expect(f.code).not.toBe(0);
        } catch (err) {
          expect(err).toBeInstanceOf(FramingError);
        }
      }),
    );
  });
});

describe('the call table', () => {
  it('has the 65 calls of protocol 0 in PKCS#11 v2 function-list order', () => {
    const calls = allCalls();
    expect(calls).toHaveLength(65);
    expect(calls[0]).toMatchObject({ id: 1, name: 'C_Initialize', request: 'ayyay', response: '' });
    expect(callSpec('C_GetInfo')).toMatchObject({ id: 3, request: '', response: 'vsusv' });
    expect(callSpec('C_OpenSession').id).toBe(10);
    expect(callSpec('C_GetAttributeValue')).toMatchObject({ id: 24, request: 'uufA', response: 'aAu' });
    expect(callSpec('C_GenerateRandom')).toMatchObject({ id: 64, request: 'ufy', response: 'ay' });
    expect(callSpec('C_WaitForSlotEvent')).toMatchObject({ id: 65, request: 'u', response: 'u' });
    expect(new Set(calls.map((c) => c.id)).size).toBe(65);
  });
});

describe('messages', () => {
  it('builds the C_GetInfo request p11-kit sends (spec §7.2)', () => {
    expect(hex(new RequestBuilder(callSpec('C_GetInfo')).finish())).toBe('00000003' + '00000000');
  });

  it('refuses to build out of signature order or incomplete (a library bug, not user input)', () => {
    expect(() => new RequestBuilder(callSpec('C_Login')).bytes(Uint8Array.of(1))).toThrow(/signature/);
    expect(() => new RequestBuilder(callSpec('C_Login')).ulong(1).finish()).toThrow(/incomplete/);
  });

  it('reads the C_GetInfo reply captured from p11-kit remote', () => {
    const pad = (s: string, n: number) => ascii(s.padEnd(n, ' '));
    const payload = unhex(
      '00000003 00000005' + ascii('vsusv') + '0228' + '00000020' + pad('Mock', 32) + '0000000000000000' + '00000020' + pad('mock-alpha.so', 32) + '0100',
    );
    const p = new ResponseParser(payload, callSpec('C_GetInfo'));
    const info = readInfo(p);
    p.done();
    expect(info).toEqual({
      cryptokiVersion: { major: 2, minor: 40 },
      manufacturerID: 'Mock',
      flags: 0,
      libraryDescription: 'mock-alpha.so',
      libraryVersion: { major: 1, minor: 0 },
    });
  });

  it('turns an error reply into Pkcs11Error with its CK_RV (second C_Initialize → 0x191)', () => {
    const payload = unhex('00000000 00000001' + ascii('u') + '0000000000000191');
    let caught: unknown;
    try {
      new ResponseParser(payload, callSpec('C_Initialize'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Pkcs11Error);
    expect(caught).not.toBeInstanceOf(RpcProtocolError);
    expect((caught as Pkcs11Error).rv).toBe(CKR.CKR_CRYPTOKI_ALREADY_INITIALIZED);
  });

  it('refuses wrong call ids, wrong signatures, short error replies and stray bytes', () => {
    const info = callSpec('C_GetInfo');
    const bad = [
      '00000004 00000002' + ascii('au') + '00 00000000', // reply to another call
      '00000003 00000002' + ascii('au') + '00 00000000', // wrong signature
      '00000003 ffffffff', // NULL signature
      '00000000 00000001' + ascii('u') + '00000000', // short error reply
      '00000000 00000001' + ascii('u') + '0000000000000000', // error reply carrying CKR_OK
      '00000000 00000002' + ascii('uu') + '0000000000000005', // error reply with another signature
      '000000', // no call id
    ];
    for (const b of bad) expect(() => new ResponseParser(unhex(b), info), b).toThrow(RpcProtocolError);
    const p = new ResponseParser(unhex('0000000b 00000000 ff'), callSpec('C_CloseSession'));
    expect(() => p.done()).toThrow(/stray bytes/);
  });

  it('answers random reply payloads with a result or a Pkcs11Error, for every call', () => {
    const calls = allCalls();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: calls.length - 1 }), fc.uint8Array({ maxLength: 64 }), fc.boolean(), (i, tail, honest) => {
        const spec = calls[i]!;
        // Half the time a well-formed head (right id and signature), so the body decoders are reached.
        const head = honest ? new WireWriter('t').u32(spec.id).byteArray(new TextEncoder().encode(spec.response)).finish() : new Uint8Array(0);
        const payload = Uint8Array.from([...head, ...tail]);
        try {
          const p = new ResponseParser(payload, spec);
          if (spec.response === 'aAu') p.attributes([CKA.CKA_LABEL]);
        } catch (err) {
          expect(err).toBeInstanceOf(Pkcs11Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('attributes', () => {
  it("types values by 0.24.1's table", () => {
    expect(wireKind(CKA.CKA_TOKEN)).toBe('byte');
    expect(wireKind(CKA.CKA_CLASS)).toBe('ulong');
    expect(wireKind(CKA.CKA_START_DATE)).toBe('date');
    expect(wireKind(CKA.CKA_ALLOWED_MECHANISMS)).toBe('mechanisms');
    expect(wireKind(CKA.CKA_WRAP_TEMPLATE)).toBe('template');
    // Not in 0.24.1's table: travels as raw bytes, though we still know its C type.
    expect(wireKind(CKA.CKA_DESTROYABLE)).toBe('bytes');
    expect(valueKind(CKA.CKA_DESTROYABLE)).toBe('bool');
    expect(wireKind(0x80001234)).toBe('bytes');
  });

  it('encodes a template as p11-kit does', () => {
    const w = new WireWriter('C_CreateObject');
    writeTemplate(w, [
      { type: CKA.CKA_CLASS, value: 3 },
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_LABEL, value: 'ab' },
      { type: CKA.CKA_START_DATE, value: '20240131' },
      { type: CKA.CKA_ALLOWED_MECHANISMS, value: [0x1041] },
      { type: CKA.CKA_DESTROYABLE, value: false },
      { type: CKA.CKA_NAME_HASH_ALGORITHM, value: 0x250 },
    ]);
    expect(hex(w.finish())).toBe(
      '00000007' +
        '00000000 01 00000008 0000000000000003'.replace(/ /g, '') +
        '00000001 01 00000001 01'.replace(/ /g, '') +
        '00000003 01 00000002 00000002 6162'.replace(/ /g, '') +
        ('00000110 01 00000008 00000008' + ascii('20240131')).replace(/ /g, '') +
        '40000600 01 00000008 00000001 0000000000001041'.replace(/ /g, '') +
        '00000172 01 00000001 00000001 00'.replace(/ /g, '') +
        '0000008c 01 00000008 00000008 5002000000000000'.replace(/ /g, ''),
    );
  });

  it('refuses what 0.24.1 cannot carry, and values of the wrong shape, before sending', () => {
    const enc = (type: number, value: unknown) => () => writeTemplate(new WireWriter('C_CreateObject'), [{ type, value } as never]);
    expect(enc(CKA.CKA_WRAP_TEMPLATE, [])).toThrow(RpcUnsupportedError);
    expect(enc(CKA.CKA_START_DATE, '')).toThrow(RpcUnsupportedError);
    expect(enc(CKA.CKA_START_DATE, '2024')).toThrow(RpcUsageError);
    expect(enc(CKA.CKA_TOKEN, 'yes')).toThrow(RpcUsageError);
    expect(enc(CKA.CKA_CLASS, true)).toThrow(RpcUsageError);
    expect(enc(CKA.CKA_LABEL, 5)).toThrow(RpcUsageError);
    expect(enc(2 ** 32, Uint8Array.of(1))).toThrow(RpcUnsupportedError);
    expect(() => fixedCapacity('C_GetAttributeValue', CKA.CKA_UNWRAP_TEMPLATE)).toThrow(RpcUnsupportedError);
  });

  it('asks fixed sizes for fixed-size values and sizes byte arrays first', () => {
    const fn = 'C_GetAttributeValue';
    expect([CKA.CKA_TOKEN, CKA.CKA_CLASS, CKA.CKA_END_DATE, CKA.CKA_DESTROYABLE, CKA.CKA_VALUE].map((t) => fixedCapacity(fn, t))).toEqual([1, 8, 8, 1, 0]);
  });

  it('decodes reply attributes: typed values, size-only answers, unavailable ones', () => {
    const r = new WireReader(
      unhex(
        '00000001 01 00000001 01' + // CKA_TOKEN true
          '00000000 01 00000008 0000000000000002' + // CKA_CLASS 2
          '00000011 01 00000040 ffffffff' + // CKA_VALUE: size only, 64 bytes
          '00000011 00' + // unavailable
          '00000172 01 00000001 00000001 01' + // CKA_DESTROYABLE from raw bytes
          '40000600 01 00000010 00000002 0000000000001041 0000000000001044',
      ),
      'C_GetAttributeValue',
    );
    expect(readAttribute(r)).toEqual({ type: 1, valid: true, length: 1, value: true });
    expect(readAttribute(r)).toEqual({ type: 0, valid: true, length: 8, value: 2 });
    expect(readAttribute(r)).toEqual({ type: 0x11, valid: true, length: 64, value: undefined });
    expect(readAttribute(r)).toEqual({ type: 0x11, valid: false, length: -1 });
    expect(readAttribute(r)).toEqual({ type: 0x172, valid: true, length: 1, value: true });
    expect(readAttribute(r)).toEqual({ type: 0x40000600, valid: true, length: 16, value: [0x1041, 0x1044] });
    expect(r.remaining).toBe(0);
    expect(() => readAttribute(new WireReader(unhex('40000600 01 00000010 ffffffff 00'), 'C_X'))).toThrow(/truncated/);
  });
});

describe('mechanisms', () => {
  const enc = (m: Parameters<typeof writeMechanism>[1]) => {
    const w = new WireWriter('C_SignInit');
    writeMechanism(w, m);
    return hex(w.finish());
  };

  it('sends no parameter as a NULL byte array, flat parameters as bytes', () => {
    expect(enc({ mechanism: 0x1041 })).toBe('00001041ffffffff');
    expect(enc({ mechanism: 0x1082, parameter: new Uint8Array(16).fill(0xaa) })).toBe('00001082' + '00000010' + 'aa'.repeat(16));
  });

  it('structures RSA-PSS and RSA-OAEP as 0.24.1 reads them', () => {
    expect(enc({ mechanism: 0x0d, parameter: { hashAlg: 0x250, mgf: 2, sLen: 32 } })).toBe('0000000d' + '0000000000000250' + '0000000000000002' + '0000000000000020');
    expect(enc({ mechanism: 0x09, parameter: { hashAlg: 0x220, mgf: 1 } })).toBe('00000009' + '0000000000000220' + '0000000000000001' + '0000000000000001' + 'ffffffff');
    // The hashed PSS variants travel as the host's C struct (LP64, little-endian).
    expect(enc({ mechanism: 0x43, parameter: { hashAlg: 0x250, mgf: 2, sLen: 32 } })).toBe('00000043' + '00000018' + '5002000000000000' + '0200000000000000' + '2000000000000000');
  });

  it('refuses parameters the host would misread', () => {
    expect(() => enc({ mechanism: 0x1087, parameter: new Uint8Array(40) })).toThrow(RpcUnsupportedError); // GCM
    expect(() => enc({ mechanism: 0x1050, parameter: new Uint8Array(40) })).toThrow(RpcUnsupportedError); // ECDH1_DERIVE
    expect(() => enc({ mechanism: 0x09 })).toThrow(RpcUsageError);
    expect(() => enc({ mechanism: 0x0d, parameter: new Uint8Array(24) })).toThrow(RpcUsageError);
    expect(() => enc({ mechanism: 2 ** 32 })).toThrow(RpcUnsupportedError);
    expect(() => enc({ mechanism: -1 })).toThrow(RpcUsageError);
  });
});

describe('remote addresses', () => {
  it('reads |command and unix:path= as p11-kit does', () => {
    expect(parseRemote('|p11-kit remote /usr/lib/softhsm/libsofthsm2.so')).toEqual({ kind: 'exec', argv: ['p11-kit', 'remote', '/usr/lib/softhsm/libsofthsm2.so'] });
    expect(parseRemote('unix:path=/run/user/1000/p11-kit/pkcs11%20x')).toEqual({ kind: 'unix', path: '/run/user/1000/p11-kit/pkcs11 x' });
    for (const bad of ['|', '| x', 'tcp:host=x', 'vsock:cid=3', 'unix:path=', 'unix:path=/a%zz', 'unix:path=relative/sock', '|a\\']) {
      expect(() => parseRemote(bad), bad).toThrow(RemoteAddressError);
    }
  });

  it("splits command lines with p11-kit's quirks", () => {
    expect(splitCommandLine(`a 'b c' "d e"`)).toEqual(['a', 'b c', 'd e']);
    expect(splitCommandLine('a  b')).toEqual(['a', '', 'b']); // each blank ends a word
    expect(splitCommandLine('a\\ b')).toEqual(['a\\ b']); // the backslash stays
    expect(splitCommandLine(`"a\\"b"`)).toEqual(['a\\"b']);
    expect(splitCommandLine(`'a\\qb'`)).toEqual(['a\\\\qb']);
    expect(splitCommandLine('x ""')).toEqual(['x']);
    expect(splitCommandLine('trailing\\')).toBeUndefined();
  });
});
