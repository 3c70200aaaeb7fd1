// The URI API's contract: p11-kit's own test-uri.c behaviours (reference §8) and match vectors
// (§5.4), the typed errors, options, validation of formatted fields, and the JSON form.
import { afterEach, describe, expect, test } from 'vitest';
import {
  formatUri,
  matchAttributes,
  matchModuleInfo,
  matchSlot,
  matchTokenInfo,
  normalizeUri,
  parseUri,
  uriFromJson,
  uriToJson,
  UriError,
  UriType,
  type UriFields,
} from '../ts/index.js';

function uriError(fn: () => unknown): UriError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UriError) return e;
    throw e;
  }
  throw new Error('expected a UriError');
}

const pad = (s: string, width: number) => s.padEnd(width, ' ');
const token = (label: string, extra: Partial<Record<'manufacturerID' | 'model' | 'serialNumber', string>> = {}) => ({
  label: pad(label, 32),
  manufacturerID: pad(extra.manufacturerID ?? 'Maker', 32),
  model: pad(extra.model ?? 'Model', 16),
  serialNumber: pad(extra.serialNumber ?? '0001', 16),
});

describe('parsing (p11-kit test-uri.c behaviours)', () => {
  test('empty URI, scheme case, bad schemes', () => {
    expect(parseUri('pkcs11:')).toEqual({ vendor: [], unrecognized: false, ignored: [] });
    expect(parseUri('PKCS11:token=a').token).toBe('a');
    for (const bad of ['http:token=a', 'pkcs11', 'pkcs1:', 'pkcs111:', '']) {
      const e = uriError(() => parseUri(bad));
      expect([e.code, e.result]).toEqual(['BAD_SCHEME', -2]);
    }
  });

  test('object attributes', () => {
    expect(parseUri('pkcs11:object=Test%20Label').object).toBe('Test Label');
    expect(parseUri('pkcs11:object-type=cert').type).toBe('cert');
    expect(parseUri('pkcs11:type=private').type).toBe('private');
    expect(parseUri('pkcs11:type=secret-key').type).toBe('secret-key');
    expect(parseUri('pkcs11:objecttype=secretkey').type).toBe('secret-key');
    expect(parseUri('pkcs11:id=%54%45%53%54%00').id).toEqual(new Uint8Array([0x54, 0x45, 0x53, 0x54, 0]));
    const empty = parseUri('pkcs11:object=;id=');
    expect([empty.object, empty.id]).toEqual(['', new Uint8Array(0)]);
  });

  test('encoding and syntax errors', () => {
    for (const bad of ['pkcs11:object=Test%', 'pkcs11:object=T%xxest', 'pkcs11:token=Token%', 'pkcs11:?pin-source=%']) {
      expect(uriError(() => parseUri(bad)).code).toBe('BAD_ENCODING');
    }
    for (const bad of ['pkcs11:token', 'pkcs11:=a', 'pkcs11:?&', 'pkcs11:slot-id=123^456', 'pkcs11:token=a??']) {
      expect(uriError(() => parseUri(bad)).code).toBe('BAD_SYNTAX');
    }
    expect(uriError(() => parseUri('pkcs11:?X-Vendor=1')).code).toBe('UNEXPECTED');
  });

  test('whitespace (not tab) is deleted anywhere, even inside the scheme and names', () => {
    const uri = parseUri(' pkc\ns11: lib rary-description=My\r\n Lib;token=a\tb\v');
    expect([uri.libraryDescription, uri.token]).toEqual(['MyLib', 'a\tb']);
  });

  test('library-version', () => {
    expect(parseUri('pkcs11:library-version=2.101').libraryVersion).toEqual({ major: 2, minor: 101 });
    expect(parseUri('pkcs11:library-version=23').libraryVersion).toEqual({ major: 23, minor: 0 });
    for (const bad of ['23.', 'a.a', '.23', '1000', '2.1000', '', '255', '1.2.3']) {
      expect(uriError(() => parseUri(`pkcs11:library-version=${bad}`)).code).toBe('BAD_VERSION');
    }
  });

  test('unknown and too-long values set unrecognized and say why', () => {
    expect(parseUri('pkcs11:type=unknown')).toMatchObject({ unrecognized: true, ignored: [{ name: 'type', reason: 'unknown object type' }] });
    expect(parseUri('pkcs11:x-blah=1')).toMatchObject({ unrecognized: true, ignored: [{ name: 'x-blah' }] });
    const long = parseUri('pkcs11:model=12345678901234567;token=ok');
    expect(long).toMatchObject({ token: 'ok', unrecognized: true, ignored: [{ name: 'model', reason: 'value is longer than the 16-byte field' }] });
    expect(long.model).toBeUndefined();
    const typed = parseUri('pkcs11:token=t;object=o', { type: 'object' });
    expect(typed).toMatchObject({ object: 'o', unrecognized: true, ignored: [{ name: 'token', reason: 'not accepted for this URI type' }] });
  });

  test('query attributes', () => {
    expect(parseUri('pkcs11:?pin-source=blah%2Fblah').pinSource).toBe('blah/blah');
    expect(parseUri('pkcs11:pinfile=x').pinSource).toBe('x');
    expect(parseUri('pkcs11:?module-name=1%2A%26%23%25%26%40%28').moduleName).toBe('1*&#%&@(');
    expect(parseUri('pkcs11:?module-path=%2Fusr%2Flib%2Fx.so&pin-value=a;b').modulePath).toBe('/usr/lib/x.so');
    expect(parseUri('pkcs11:?pin-value=a;b').pinValue).toBe('a;b');
    expect(parseUri('pkcs11:?bbb=zzz&aaa=xxx&aaa=yyy').vendor).toEqual([
      { name: 'aaa', value: 'xxx' }, { name: 'aaa', value: 'yyy' }, { name: 'bbb', value: 'zzz' },
    ]);
  });

  test('slot-id is 64-bit, with 0.24.1 wrap-around and an empty value meaning 0', () => {
    expect(parseUri('pkcs11:slot-id=67890').slotId).toBe(67890n);
    expect(parseUri('pkcs11:slot-id=').slotId).toBe(0n);
    expect(parseUri('pkcs11:slot-id=18446744073709551614').slotId).toBe(2n ** 64n - 2n);
    expect(parseUri('pkcs11:slot-id=18446744073709551617').slotId).toBe(1n);
    expect(parseUri('pkcs11:slot-id=18446744073709551615').slotId).toBeUndefined();
  });

  test("quirks: ';' after an empty segment starts the query; %00 first byte unsets a field", () => {
    expect(parseUri('pkcs11:;token=a')).toMatchObject({ vendor: [{ name: 'token', value: 'a' }] });
    expect(normalizeUri('pkcs11:token=a;;b=c')).toBe('pkcs11:token=a?b=c');
    expect(parseUri('pkcs11:token=%00abc').token).toBeUndefined();
    expect(normalizeUri('pkcs11:token=a%00b')).toBe('pkcs11:token=a%00b');
    expect(parseUri('pkcs11:?x=a%00b').vendor).toEqual([{ name: 'x', value: 'a' }]);
  });

  test('normalizing keeps working when a URI grows the core memory (its views are re-made)', () => {
    // Several MiB in and out: the input block and the formatted string each grow the memory.
    const big = `pkcs11:object=${'a'.repeat(3 << 20)}`;
    expect(normalizeUri('pkcs11:token=before%2c', { lowercase: false })).toBe('pkcs11:token=before%2C');
    expect(normalizeUri(big, { lowercase: false })).toBe(big);
    expect(normalizeUri(`${big}%2c`, { lowercase: false })).toBe(`${big}%2C`);
    expect(normalizeUri('pkcs11:token=after%2c', { lowercase: false })).toBe('pkcs11:token=after%2C');
    expect(uriError(() => normalizeUri(`${big}%zz`)).offset).toBe(big.length);
  });
});

describe('formatting (p11-kit test-uri.c behaviours)', () => {
  test('building URIs', () => {
    expect(formatUri({})).toBe('pkcs11:');
    expect(formatUri({ token: 'The Label' })).toBe('pkcs11:token=The%20Label');
    expect(formatUri({ token: '', serial: '' })).toBe('pkcs11:serial=;token=');
    expect(formatUri({ object: 'The Label', type: 'data', id: new TextEncoder().encode('HELLO') })).toBe(
      'pkcs11:id=%48%45%4C%4C%4F;object=The%20Label;type=data',
    );
    for (const type of ['cert', 'public', 'private', 'secret-key', 'data'] as const) {
      expect(formatUri({ type })).toBe(`pkcs11:type=${type}`);
    }
    const module: UriFields = { libraryDescription: 'The Description', libraryManufacturer: 'Me', libraryVersion: { major: 2, minor: 10 } };
    expect(formatUri(module, { type: 'module' })).toBe('pkcs11:library-description=The%20Description;library-manufacturer=Me');
    expect(formatUri(module, { type: 'module-with-version' })).toBe(
      'pkcs11:library-description=The%20Description;library-manufacturer=Me;library-version=2.10',
    );
    expect(formatUri({ slotDescription: 'Slot', slotManufacturer: 'SM', slotId: 3 }, { type: UriType.SLOT })).toBe(
      'pkcs11:slot-description=Slot;slot-manufacturer=SM;slot-id=3',
    );
    expect(formatUri({ token: 'a', object: 'b' }, { type: 0 })).toBe('pkcs11:');
  });

  test('canonical order, escapes, query after path, vendor in name order', () => {
    const all: UriFields = {
      object: 'o/1', token: 't', model: 'm', libraryDescription: 'l', slotId: 5n, pinValue: '12 34', pinSource: 'file:/p',
      moduleName: 'm~', modulePath: '/x', vendor: [{ name: 'z', value: '1' }, { name: 'a', value: '=' }],
    };
    expect(formatUri(all)).toBe(
      'pkcs11:library-description=l;slot-id=5;model=m;token=t;object=o%2F1?pin-source=file%3A%2Fp&pin-value=12%2034&module-name=m%7E&module-path=%2Fx&a=%3D&z=1',
    );
    expect(formatUri(all, { lowercase: true })).toContain('object=o%2f1');
    expect(formatUri({ token: 'padded   ' })).toBe('pkcs11:token=padded');
  });

  describe('P11_KIT_URI_LOWERCASE decides the default, as in p11-kit', () => {
    const saved = process.env.P11_KIT_URI_LOWERCASE;
    afterEach(() => {
      if (saved === undefined) delete process.env.P11_KIT_URI_LOWERCASE;
      else process.env.P11_KIT_URI_LOWERCASE = saved;
    });
    test('set, empty, and overridden', () => {
      process.env.P11_KIT_URI_LOWERCASE = '1';
      expect(formatUri({ token: ',' })).toBe('pkcs11:token=%2c');
      expect(formatUri({ token: ',' }, { lowercase: false })).toBe('pkcs11:token=%2C');
      process.env.P11_KIT_URI_LOWERCASE = '';
      expect(normalizeUri('pkcs11:token=%2c')).toBe('pkcs11:token=%2C');
    });
  });

  test('values p11-kit could not hold are refused with typed errors', () => {
    expect(uriError(() => formatUri({ token: 'x'.repeat(33) }))).toMatchObject({ code: 'BAD_SYNTAX', attribute: 'token' });
    expect(uriError(() => formatUri({ model: '\u00e9'.repeat(9) }))).toMatchObject({ code: 'BAD_SYNTAX', attribute: 'model' });
    expect(uriError(() => formatUri({ libraryVersion: { major: 255, minor: 0 } })).code).toBe('BAD_VERSION');
    expect(uriError(() => formatUri({ pinSource: 'a\0b' })).code).toBe('BAD_ENCODING');
    expect(uriError(() => formatUri({ vendor: [{ name: 'X-Up', value: '1' }] })).code).toBe('UNEXPECTED');
    expect(uriError(() => formatUri({ vendor: [{ name: 'pin-value', value: '1' }] })).code).toBe('BAD_SYNTAX');
    expect(uriError(() => formatUri({ slotId: 2n ** 64n - 1n })).code).toBe('BAD_SYNTAX');
    expect(uriError(() => formatUri({ slotId: -1 })).code).toBe('BAD_SYNTAX');
    expect(() => formatUri({ slotId: 1.5 })).toThrow(TypeError);
    expect(() => formatUri({ type: 'bogus' as never })).toThrow(TypeError);
    expect(() => formatUri({ type: '__proto__' as never })).toThrow(TypeError);
    expect(() => formatUri({ id: [1, 2] as never })).toThrow(TypeError);
    expect(() => formatUri({ token: 5 as never })).toThrow(TypeError);
    expect(() => formatUri(null as never)).toThrow(TypeError);
  });
});

describe('UriError', () => {
  test('carries the code, p11-kit result, attribute and offset, and says so', () => {
    const e = uriError(() => parseUri('pkcs11:token=ok;object=b%zz'));
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'UriError', code: 'BAD_ENCODING', result: -3, attribute: 'object', offset: 24 });
    expect(e.message).toBe("URI encoding invalid or corrupted: '%' must be followed by two hex digits (attribute 'object', at offset 24)");
  });

  test('offsets count JavaScript characters of the text as given (deleted whitespace, non-ASCII)', () => {
    const text = 'pkcs11: token=\u00e9\u{1F511}\n;x';
    const e = uriError(() => parseUri(text));
    expect(e.code).toBe('BAD_SYNTAX');
    expect(text[e.offset as number]).toBe('x');
  });

  test('never quotes values (a pin-value may be among them)', () => {
    const e = uriError(() => parseUri('pkcs11:?pin-value=Secret123%zz'));
    expect(e.attribute).toBe('pin-value');
    expect(e.message).not.toContain('Secret');
  });

  test('NUL, which p11-kit cannot even receive, is BAD_ENCODING; wrong types are TypeError', () => {
    expect(uriError(() => parseUri('pkcs11:token=a\0b'))).toMatchObject({ code: 'BAD_ENCODING', offset: 14 });
    expect(() => parseUri(42 as never)).toThrow(TypeError);
    expect(() => parseUri('pkcs11:', { type: 'nonsense' })).toThrow(/unknown URI type 'nonsense'/);
    expect(() => parseUri('pkcs11:', { type: -1 })).toThrow(TypeError);
  });
});

describe('matching (p11-kit §5.4 vectors)', () => {
  test('tokens', () => {
    const cases: [string, ReturnType<typeof token>, boolean][] = [
      ['pkcs11:', token('Any'), true],
      ['pkcs11:token=My%20Token', token('My Token'), true],
      ['pkcs11:token=My%20Token', token('My Token2'), false],
      ['pkcs11:token=my%20token', token('My Token'), false],
      ['pkcs11:token=My%20Token%20', token('My Token'), true],
      ['pkcs11:token=', token(''), true],
      ['pkcs11:token=', token('X'), false],
      ['pkcs11:token=A;manufacturer=B', token('A', { manufacturerID: 'C' }), false],
      ['pkcs11:foo=bar', token('A'), false],
      ['pkcs11:token=A;x-unknown=1', token('A'), false],
      ['pkcs11:token=A?x-vendor=1', token('A'), true],
      ['pkcs11:slot-id=5', token('A'), true],
      ['pkcs11:model=Giselle', token('A', { model: 'Giselle' }), true],
      ['pkcs11:model=Giselle', token('A', { model: 'Zoe' }), false],
      ['pkcs11:token=%00abc', token('anything'), true],
    ];
    for (const [uri, info, want] of cases) {
      expect([uri, matchTokenInfo(uri, info)]).toEqual([uri, want]);
      expect([uri, matchTokenInfo(parseUri(uri), info)]).toEqual([uri, want]);
    }
  });

  test('modules and slots', () => {
    const mod = (minor: number) => ({ libraryDescription: 'Desc', manufacturerID: 'Maker', libraryVersion: { major: 1, minor } });
    expect(matchModuleInfo('pkcs11:library-version=1.2', mod(2))).toBe(true);
    expect(matchModuleInfo('pkcs11:library-version=1.2', mod(3))).toBe(false);
    expect(matchModuleInfo('pkcs11:library-version=1', mod(0))).toBe(true);
    expect(matchModuleInfo('pkcs11:library-version=1', mod(5))).toBe(false);
    expect(matchModuleInfo('pkcs11:library-manufacturer=Maker', mod(9))).toBe(true);
    expect(matchModuleInfo({ libraryManufacturer: 'Maker', unrecognized: true }, mod(9))).toBe(false);
    const slot = (d: string) => ({ slotDescription: d, manufacturerID: 'M' });
    expect(matchSlot('pkcs11:slot-description=S1', slot('S1'))).toBe(true);
    expect(matchSlot('pkcs11:slot-description=S1', slot('S2'))).toBe(false);
    // p11_kit_uri_match_slot_info ignores slot-id; given a slot id, we compare it as p11-kit's iterator does.
    expect(matchSlot('pkcs11:slot-id=5', slot('S1'))).toBe(true);
    expect(matchSlot('pkcs11:slot-id=5', slot('S1'), 5)).toBe(true);
    expect(matchSlot('pkcs11:slot-id=5', slot('S1'), 6n)).toBe(false);
    expect(matchSlot({ slotId: 6 }, slot('S1'), 6)).toBe(true);
    expect(matchSlot('pkcs11:', slot('S1'), 2n ** 64n - 2n)).toBe(true);
  });

  test('object attributes', () => {
    const CLASS = 0;
    const LABEL = 3;
    const ID = 0x102;
    const uri = 'pkcs11:object=foo;type=cert';
    expect(matchAttributes(uri, [{ type: LABEL, value: 'foo' }, { type: CLASS, value: 1 }])).toBe(true);
    expect(matchAttributes(uri, [{ type: LABEL, value: 'foo' }, { type: CLASS, value: 3 }])).toBe(false);
    expect(matchAttributes(uri, [{ type: ID, value: new Uint8Array([1]) }])).toBe(true);
    expect(matchAttributes(uri, [])).toBe(true);
    expect(matchAttributes('pkcs11:id=%78%78', [{ type: ID, value: 'xx' }])).toBe(true);
    expect(matchAttributes('pkcs11:id=%78%78', [{ type: ID, value: 'xy' }])).toBe(false);
    expect(matchAttributes('pkcs11:id=', [{ type: ID, value: 'xy' }])).toBe(false);
    expect(matchAttributes('pkcs11:type=bogus', [])).toBe(false);
    expect(matchAttributes('pkcs11:token=T', [{ type: LABEL, value: 'foo' }, { type: CLASS, value: 1n }])).toBe(true);
    // CKA_CLASS bytes are the module's CK_ULONG: 8 bytes little-endian on 64-bit Linux.
    expect(matchAttributes(uri, [{ type: CLASS, value: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]) }])).toBe(true);
    expect(matchAttributes(uri, [{ type: CLASS, value: new Uint8Array([1, 0, 0, 0]) }])).toBe(false);
  });

  test('bytes that are not UTF-8 survive a parsed Uri: U+FFFD in the string, the bytes in raw', () => {
    const label = [{ type: 3, value: new Uint8Array([0xff]) }];
    expect(matchAttributes('pkcs11:object=%FF', label)).toBe(true);
    const uri = parseUri('pkcs11:object=%FF;token=ok?x-v=%FE%C3');
    expect(uri.object).toBe('\uFFFD');
    expect(uri.raw).toEqual({ object: new Uint8Array([0xff]) });
    expect(uri.vendor).toEqual([{ name: 'x-v', value: '\uFFFD\uFFFD', rawValue: new Uint8Array([0xfe, 0xc3]) }]);
    expect(matchAttributes(uri, label)).toBe(true);
    expect(formatUri(uri)).toBe('pkcs11:token=ok;object=%FF?x-v=%FE%C3');
    // A string changed after parsing wins over its stale bytes.
    expect(formatUri({ ...uri, object: 'new' })).toBe('pkcs11:token=ok;object=new?x-v=%FE%C3');
    // Valid UTF-8 carries no raw bytes; a leading BOM is part of the value.
    expect(parseUri('pkcs11:object=%EF%BB%BFa%C3%A9').raw).toBeUndefined();
    expect(formatUri(parseUri('pkcs11:object=%EF%BB%BFa'))).toBe('pkcs11:object=%EF%BB%BFa');
    // The JSON form carries them as hex, both ways.
    expect(formatUri(uriFromJson(JSON.parse(JSON.stringify(uriToJson(uri)))))).toBe(formatUri(uri));
  });

  test('bad structures are typed errors', () => {
    expect(() => matchTokenInfo('pkcs11:', token('x'.repeat(33)))).toThrow(RangeError);
    expect(() => matchTokenInfo('pkcs11:', { ...token('a'), model: 7 as never })).toThrow(TypeError);
    expect(() => matchModuleInfo('pkcs11:', { libraryDescription: '', manufacturerID: '', libraryVersion: { major: 256, minor: 0 } })).toThrow(TypeError);
    expect(() => matchSlot('pkcs11:', { slotDescription: '', manufacturerID: '' }, -1)).toThrow(TypeError);
    expect(() => matchAttributes('pkcs11:', [{ type: 3, value: 5 }])).toThrow(TypeError);
    expect(() => matchAttributes('pkcs11:', 'x' as never)).toThrow(TypeError);
    expect(uriError(() => matchTokenInfo('pkcs11:token=%', token('a'))).code).toBe('BAD_ENCODING');
  });
});

describe('JSON form', () => {
  test('round-trips through formatUri, leaving pin-value out unless asked', () => {
    const uri = parseUri('pkcs11:token=T;id=%01%ab;slot-id=18446744073709551614;library-version=1.2?pin-value=1234&x-a=b');
    const json = uriToJson(uri);
    expect(json).toMatchObject({ token: 'T', id: '01ab', slotId: '18446744073709551614', libraryVersion: { major: 1, minor: 2 } });
    expect(json).not.toHaveProperty('pinValue');
    expect(formatUri(uriFromJson(JSON.parse(JSON.stringify(uriToJson(uri, { includePinValue: true })))))).toBe(formatUri(uri));
    expect(() => uriFromJson({ tokne: 'x' })).toThrow(/unknown field\(s\) tokne/);
    expect(() => uriFromJson({ id: 'xyz' })).toThrow(/hex/);
    expect(() => uriFromJson([])).toThrow(TypeError);
  });
});
