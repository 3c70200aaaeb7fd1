// Property tests of the URI API over the wasm core (fast-check): formatting is a fixed point,
// parsing throws only UriError, nothing crashes or hangs the instance, and nothing leaks.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { core } from '../ts/wasm/core.js';
import { formatUri, normalizeUri, parseUri, UriError, uriFromJson, uriToJson, type UriFields } from '../ts/uri/index.js';
import { uriCore } from '../ts/uri/wasm.js';

const PATH_NAMES = ['token', 'manufacturer', 'serial', 'model', 'library-description', 'library-manufacturer',
  'library-version', 'slot-description', 'slot-manufacturer', 'slot-id', 'object', 'id', 'type', 'pin-source',
  'pin-value', 'pinfile', 'x-path', 'Token', ''];
const QUERY_NAMES = ['pin-source', 'pin-value', 'module-name', 'module-path', 'pinfile', 'x-a', 'b_2', 'X', ''];
const PIECES = ['a', 'Z', '9', '.', '-', '_', '~', '/', '%20', '%2f', '%00', '%ff', '%C3%A9', '%', '%4', '%zz',
  '=', '&', ';', '?', ':', ' ', '\n', '\t', '\u00e9', '\u{1F511}', '1', '1.2', '255', 'cert', 'private', 'secretkey'];

const value = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { maxLength: 8 }).map((p) => p.join('')),
  fc.string({ maxLength: 40 }),
);
const attribute = (names: string[]) =>
  fc.tuple(fc.constantFrom(...names), value, fc.boolean()).map(([n, v, eq]) => (eq || n === '' ? `${n}=${v}` : n));

/** Strings shaped like PKCS#11 URIs, valid and invalid. */
const uriText = fc
  .tuple(
    fc.constantFrom('pkcs11:', 'PKCS11:', 'pkcs11:', 'pkcs12:', 'pkcs11', ' pk cs11:'),
    fc.array(attribute(PATH_NAMES), { maxLength: 6 }),
    fc.constantFrom(';', ';;'),
    fc.option(fc.array(attribute(QUERY_NAMES), { maxLength: 4 })),
  )
  .map(([scheme, path, sep, query]) => `${scheme}${path.join(sep)}${query ? `?${query.join('&')}` : ''}`);

const anyText = fc.oneof(uriText, fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => `pkcs11:${s}`));

function parsesOrUriError(text: string): void {
  try {
    parseUri(text);
  } catch (e) {
    if (!(e instanceof UriError)) throw e;
    expect(['BAD_SCHEME', 'BAD_ENCODING', 'BAD_SYNTAX', 'BAD_VERSION', 'UNEXPECTED']).toContain(e.code);
  }
}

describe('URI properties', () => {
  test('parse never throws anything but UriError', () => {
    fc.assert(fc.property(anyText, parsesOrUriError), { seed: 7512, numRuns: 4000 });
  });

  test('format(parse(x)) is a fixed point, through the object and byte-exact', () => {
    fc.assert(
      fc.property(uriText, fc.boolean(), (text, lowercase) => {
        let uri;
        try {
          uri = parseUri(text);
        } catch (e) {
          if (e instanceof UriError) return;
          throw e;
        }
        const once = formatUri(uri, { lowercase });
        expect(formatUri(parseUri(once), { lowercase })).toBe(once);
        const exact = normalizeUri(text, { lowercase });
        expect(normalizeUri(exact, { lowercase })).toBe(exact);
        // The two agree for every value, UTF-8 or not (Uri.raw keeps the bytes).
        expect(once).toBe(exact);
      }),
      { seed: 11, numRuns: 3000 },
    );
  });

  test('arbitrary bytes in every text attribute and query value survive the object exactly', () => {
    const enc = (b: Uint8Array) => Array.from(b, (x) => `%${x.toString(16).padStart(2, '0')}`).join('');
    const bytes = (max: number) => fc.uint8Array({ maxLength: max });
    fc.assert(
      fc.property(bytes(32), bytes(16), bytes(64), bytes(64), bytes(64), fc.boolean(), (token, serial, object, pin, vendor, lowercase) => {
        const text = `pkcs11:token=${enc(token)};serial=${enc(serial)};object=${enc(object)}?pin-value=${enc(pin)}&x-v=${enc(vendor)}`;
        const uri = parseUri(text);
        expect(formatUri(uri, { lowercase })).toBe(normalizeUri(text, { lowercase }));
        expect(formatUri(uriFromJson(JSON.parse(JSON.stringify(uriToJson(uri, { includePinValue: true })))))).toBe(normalizeUri(text));
      }),
      { seed: 13, numRuns: 1500 },
    );
  });

  test('formatting arbitrary fields gives a URI that parses back to the same fields', () => {
    const text = (max: number) => fc.string({ maxLength: max }).filter((s) => new TextEncoder().encode(s).length <= max);
    const fields: fc.Arbitrary<UriFields> = fc.record(
      {
        token: text(32),
        manufacturer: text(32),
        model: text(16),
        serial: text(16),
        slotDescription: text(64),
        libraryVersion: fc.record({ major: fc.integer({ min: 0, max: 254 }), minor: fc.integer({ min: 0, max: 254 }) }),
        slotId: fc.bigInt({ min: 0n, max: 2n ** 64n - 2n }),
        id: fc.uint8Array({ maxLength: 20 }),
        object: fc.string({ maxLength: 50 }),
        type: fc.constantFrom('cert', 'public', 'private', 'secret-key', 'data' as const),
        pinSource: fc.string({ maxLength: 30 }).filter((s) => !s.includes('\0')),
        vendor: fc.array(
          fc.record({ name: fc.stringMatching(/^[a-z0-9_-]{1,8}$/), value: fc.string({ maxLength: 10 }).filter((s) => !s.includes('\0')) }),
          { maxLength: 4 },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fields, (f) => {
        const back = parseUri(formatUri(f));
        expect(back.unrecognized).toBe(false);
        // Text fields are blank-padded: trailing spaces are padding. A leading NUL means unset.
        for (const key of ['token', 'manufacturer', 'model', 'serial', 'slotDescription'] as const) {
          const v = f[key]?.replace(/ +$/, '');
          expect(back[key]).toBe(v === undefined || v.startsWith('\0') ? undefined : v);
        }
        expect(back.libraryVersion).toEqual(f.libraryVersion);
        expect(back.slotId).toBe(f.slotId);
        expect(back.id).toEqual(f.id);
        expect(back.object).toBe(f.object);
        expect(back.type).toBe(f.type);
        expect(back.pinSource).toBe(f.pinSource);
        const sorted = [...(f.vendor ?? [])].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
        expect(back.vendor).toEqual(sorted);
      }),
      { seed: 3, numRuns: 1500 },
    );
  });

  test('hostile inputs neither crash nor hang the instance, which stays usable', () => {
    const huge = [
      `pkcs11:${'token=a;'.repeat(100_000)}`,
      `pkcs11:?${'x=%41&'.repeat(50_000)}`,
      `pkcs11:object=${'%ff'.repeat(300_000)}`,
      `pkcs11:${' '.repeat(1_000_000)}token=a`,
      `pkcs11:${';'.repeat(1_000_000)}`,
      `pkcs11:id=${'%'.repeat(1_000_000)}`,
      `pkcs11:slot-id=${'9'.repeat(500_000)}`,
      `pkcs11:library-version=${'9'.repeat(500_000)}.1`,
      '\0'.repeat(10_000),
      'pkcs11:\uD800token=\uDFFF',
    ];
    const started = Date.now();
    for (const text of huge) parsesOrUriError(text);
    expect(Date.now() - started).toBeLessThan(20_000); // linear work; a hang would blow far past this
    expect(parseUri('pkcs11:token=after').token).toBe('after');
    expect(normalizeUri(`pkcs11:?${'x=%41&'.repeat(50_000)}`).length).toBe('pkcs11:?'.length + 50_000 * 4 - 1);
  });

  test('100,000 parses (valid and failing) leave the heap as they found it', () => {
    const texts = [...fc.sample(uriText, { seed: 100, numRuns: 900 }), ...fc.sample(anyText, { seed: 101, numRuns: 100 })];
    texts.push('pkcs11:token=warm', `pkcs11:object=${'a'.repeat(4000)}`);
    for (const t of texts) {
      parsesOrUriError(t); // grows the scratch block (and the normalizer's buffers) to their final size
      try {
        normalizeUri(t);
      } catch (e) {
        if (!(e instanceof UriError)) throw e;
      }
    }
    const heapBefore = uriCore().heapInUse();
    const memoryBefore = core().exports.memory.buffer.byteLength;
    let failures = 0;
    for (let i = 0; i < 100_000; i++) {
      const t = texts[i % texts.length];
      try {
        if (i % 10 === 5) normalizeUri(t);
        const uri = parseUri(t);
        if (i % 10 === 0) formatUri(uri);
      } catch (e) {
        if (!(e instanceof UriError)) throw e;
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(10_000);
    expect(failures).toBeLessThan(95_000);
    expect(uriCore().heapInUse()).toBe(heapBefore);
    expect(core().exports.memory.buffer.byteLength).toBe(memoryBefore);
    expect(heapBefore).toBeGreaterThan(0); // the probe does measure the allocator
  });
});
