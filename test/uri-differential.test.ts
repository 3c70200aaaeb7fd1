// Differential tests of the URI core against the real libp11-kit 0.24.1 (test/oracle/uri-oracle.c):
// hand-picked edge cases plus seeded random URIs over the grammar, valid and invalid. For each:
// the parse result code, every parsed field, the formatted string (several types, both hex
// cases), and matching against token, slot, module and object information.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  formatUri,
  matchAttributes,
  matchModuleInfo,
  matchSlot,
  matchTokenInfo,
  normalizeUri,
  parseUri,
  UriError,
  UriType,
  URI_RESULT_CODES,
  type Uri,
} from '../ts/uri/index.js';
import { mulberry32 } from './helpers/mulberry32.js';

const ORACLE = 'dist/native/oracle/uri-oracle';
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lossyUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

type OracleLine = Record<string, unknown>;

function runOracle(commands: string[]): OracleLine[] {
  if (!existsSync(ORACLE)) throw new Error(`${ORACLE} is not built: run 'make native'`);
  const res = spawnSync(ORACLE, { input: `${commands.join('\n')}\n`, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (res.status !== 0) throw new Error(`uri-oracle failed: ${res.stderr}`);
  const lines = res.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as OracleLine);
  expect(lines.length).toBe(commands.length);
  return lines;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex') || '-';
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const textHex = (s: string) => hex(utf8.encode(s));

// ---- inputs --------------------------------------------------------------------------------

const HAND_PICKED: string[] = [
  'pkcs11:', 'PKCS11:', 'Pkcs11:token=a', 'pkcs12:', 'pkcs11', 'pkcs1:', 'pkcs111:', ':', '', 'x:pkcs11:',
  'pkcs11:token=My%20Token', 'pkcs11:token=My%20Token%20', 'pkcs11:token=my%20token', 'pkcs11:token=',
  'pkcs11:token=%20', 'pkcs11:token=%20a%20', 'pkcs11:token=%00abc', 'pkcs11:token=a%00b', 'pkcs11:token=%00',
  'pkcs11:token=a;manufacturer=B', 'pkcs11:foo=bar', 'pkcs11:token=A;x-unknown=1', 'pkcs11:token=A?x-vendor=1',
  'pkcs11:slot-id=5', 'pkcs11:slot-id=', 'pkcs11:slot-id=%31', 'pkcs11:slot-id=-1', 'pkcs11:slot-id=+1',
  'pkcs11:slot-id=00012', 'pkcs11:slot-id=67890', 'pkcs11:slot-id=123^456', 'pkcs11:slot-id=18446744073709551614',
  'pkcs11:slot-id=18446744073709551615', 'pkcs11:slot-id=18446744073709551616', 'pkcs11:slot-id=36893488147419103231',
  'pkcs11:slot-id=99999999999999999999999',
  'pkcs11:library-version=1.2', 'pkcs11:library-version=1', 'pkcs11:library-version=2.101', 'pkcs11:library-version=23',
  'pkcs11:library-version=23.', 'pkcs11:library-version=a.a', 'pkcs11:library-version=.23', 'pkcs11:library-version=1000',
  'pkcs11:library-version=2.1000', 'pkcs11:library-version=', 'pkcs11:library-version=254.254',
  'pkcs11:library-version=255', 'pkcs11:library-version=0255', 'pkcs11:library-version=1.255',
  'pkcs11:library-version=00000000000000001.2', 'pkcs11:library-version=1.2.3', 'pkcs11:library-version=+1',
  'pkcs11:library-version=%31', 'pkcs11:library-version=4294967296', 'pkcs11:library-version=4294967297.1',
  'pkcs11:library-version=2147483648', 'pkcs11:library-version=4294967551', 'pkcs11:library-version=1.4294967296',
  'pkcs11:library-version=8589934593', 'pkcs11:library-version=4294967301.4294967302', 'pkcs11:library-version=1.-1',
  'pkcs11:library-manufacturer=Maker', 'pkcs11:library-description=Soft%20HSM;library-manufacturer=M',
  'pkcs11:library-manufacturer=abcdefghijklmnopqrstuvwxyz0123456', 'pkcs11:library-manufacturer=abcdefghijklmnopqrstuvwxyz012345',
  'pkcs11:slot-description=S1', 'pkcs11:slot-manufacturer=%ff%fe', 'pkcs11:slot-description=%00x',
  `pkcs11:slot-description=${'d'.repeat(64)}`, `pkcs11:slot-description=${'d'.repeat(65)}`,
  'pkcs11:object=foo;type=cert', 'pkcs11:id=%78%78', 'pkcs11:id=', 'pkcs11:id=abc', 'pkcs11:id=%54%45%53%54%00',
  'pkcs11:type=bogus', 'pkcs11:type=', 'pkcs11:type=%63ert', 'pkcs11:type=Cert', 'pkcs11:type=secretkey;object-type=cert',
  'pkcs11:type=cert;type=bogus', 'pkcs11:objecttype=data', 'pkcs11:type=private', 'pkcs11:type=public',
  'pkcs11:type=secret-key', 'pkcs11:object-type=secretkey', 'pkcs11:object=Test%20Label', 'pkcs11:object=',
  'pkcs11:object=Test%', 'pkcs11:object=T%xxest', 'pkcs11:object=a/b~c', 'pkcs11:object=%00', 'pkcs11:token=Token%',
  'pkcs11:token', 'pkcs11:token;x=1', 'pkcs11:=a', 'pkcs11:token=%4', 'pkcs11:token=%4g', 'pkcs11:token=%',
  'pkcs11:token=%4A%4a', 'pkcs11:token=%4;a=1', 'pkcs11:model=%zz', 'pkcs11:model=12345678901234567',
  'pkcs11:model=1234567890123456', 'pkcs11:model=1234567890123456%zz', 'pkcs11:model=12345678901234567%zz',
  'pkcs11:serial=0001;model=Giselle', 'pkcs11:foo=%zz', 'pkcs11:type=%zz', 'pkcs11:?X-a=%zz', 'pkcs11:?x-a=%zz',
  'pkcs11:?x=1&x=%41&a=2&x=0', 'pkcs11:?X-a', 'pkcs11:?x-a', 'pkcs11:?pin-source', 'pkcs11:?a=1&', 'pkcs11:?a=1&&b=2',
  'pkcs11:?', 'pkcs11:?&', 'pkcs11:?=1', 'pkcs11:;', 'pkcs11:;;', 'pkcs11:;;;', 'pkcs11:;?a=1', 'pkcs11:?a=1?b=2',
  'pkcs11:?a=b=c', 'pkcs11:token=a=b', 'pkcs11:token=a?', 'pkcs11:token=a??', 'pkcs11:;a=1;b=2', 'pkcs11:;a=1&b=2',
  'pkcs11:token=;', 'pkcs11:token=a;', 'pkcs11:token=a;?', 'pkcs11:token=a?;', 'pkcs11:token=a?x=1;y=2',
  'pkcs11:;token=a', 'pkcs11:token=a;;b=c', 'pkcs11:token=a&b', 'pkcs11:token=a/b', "pkcs11:token=a'b,c",
  'pkcs11:?ab=1&a=2&a-=3&a_=4&a0=5', 'pkcs11:?bbb=zzz&aaa=xxx&aaa=yyy', 'pkcs11:?1=2', 'pkcs11:?x.y=2', 'pkcs11:?x_y-1=2',
  'pkcs11:?x=', 'pkcs11:?x=%00', 'pkcs11:?x=a%00b', 'pkcs11:?pin-value=', 'pkcs11:?pin-source=a%00b',
  'pkcs11:?pin-source=a&pinfile=b', 'pkcs11:pin-value=a;pin-source=b', 'pkcs11:pinfile=x', 'pkcs11:?pinfile=x',
  'pkcs11:pin-source=%zz', 'pkcs11:pin-source', 'pkcs11:module-name=x', 'pkcs11:?module-name=x/y&module-path=/a/b',
  'pkcs11:?pin-source=blah%2Fblah', 'pkcs11:?module-name=1%2A%26%23%25%26%40%28', 'pkcs11:?pin-value=%zz',
  'pkcs11:?module-path=%', 'pkcs11:pin-value=1?pin-value=2', 'pkcs11:?pin-value=2;pin-value=1',
  'pkcs11:x-vendor=1;token=a?x-vendor=2', 'pkcs11:x:y=1', 'Pkcs11:a:b=c', 'pkcs11:ID=1', 'pkcs11:Token=a',
  'pkc\ns11: lib rary-description=a b', 'pkcs11:token=a\tb', 'pkcs11:token=a\fb', 'pkcs11:token=a\vb',
  'pkcs11:token =a', ' pkcs11:token=a ', 'pkcs11:token=a\r\n', 'pkcs11:token=\u00e9', 'pkcs11:token=%C3%A9%20%20;serial=x%20',
  'pkcs11:object=\u{1F511}', 'pkcs11:?x-emoji=\u{1F511}', 'pkcs11:token=a;token=%zz', 'pkcs11:token=%zz;foo',
  'pkcs11:foo;token=%zz', 'pkcs11:?a=%zz&B=1', 'pkcs11:?B=1&a=%zz', 'pkcs11:library-version=x;token=%zz',
  'pkcs11:token=%zz;library-version=x', 'pkcs11:token=%zz;id=1', 'pkcs11:slot-id=x', 'pkcs11:token=a,b;id=%2c',
  'pkcs11:object=a;type=cert;token=t;model=m;library-description=d;library-version=1.2;slot-id=3;slot-description=s?pin-value=p&x=1',
  'pkcs11:model=Model;manufacturer=Maker;serial=0001;token=Tok;slot-description=Slot;slot-manufacturer=SM;library-description=LD;library-manufacturer=LM',
];

const PATH_NAMES = [
  'token', 'manufacturer', 'serial', 'model', 'library-description', 'library-manufacturer', 'library-version',
  'slot-description', 'slot-manufacturer', 'slot-id', 'object', 'id', 'type', 'object-type', 'objecttype',
  'pin-source', 'pinfile', 'pin-value', 'module-name', 'foo', 'x-vendor', 'Token', 'ID', '',
];
const QUERY_NAMES = ['pin-source', 'pinfile', 'pin-value', 'module-name', 'module-path', 'x-a', 'x-b', 'aaa', 'z_9', 'X-Up', 'a.b', 'ü', ''];
const CLASSES = ['cert', 'public', 'private', 'secret-key', 'secretkey', 'data', 'bogus', 'Cert', '%63ert', ''];
const VERSIONS = ['1', '1.2', '0.0', '254.254', '255', '2.101', '1.', '.1', '1.2.3', 'a', '', '007.010', '4294967297.3'];
const SLOT_IDS = ['0', '5', '', '18446744073709551614', '18446744073709551615', '18446744073709551617', '-1', '1a', '%31'];
const PIECES = [
  'a', 'Z', '0', '9', '_', '-', '.', '~', '/', ',', ':', '=', '&', "'", '@', '!', '*', '(', ')', '+', '\t', '\u00e9', '\u{1F511}',
  ' ', '\n', '%20', '%2F', '%2f', '%00', '%ff', '%C3%A9', '%41', '%4', '%', '%zz', '%g1', 'My', 'Token', 'abc', 'x y',
];

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)];
}

function value(rand: () => number, maxPieces: number): string {
  const n = Math.floor(rand() * maxPieces);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rand, PIECES);
  return s;
}

function randomUri(rand: () => number): string {
  const scheme = rand() < 0.93 ? pick(rand, ['pkcs11', 'pkcs11', 'pkcs11', 'PKCS11', 'PkCs11']) : pick(rand, ['pkcs12', 'pkcs', '', 'p k c s 1 1']);
  let s = rand() < 0.98 ? `${scheme}:` : scheme;
  const nPath = Math.floor(rand() * 6);
  for (let i = 0; i < nPath; i++) {
    if (i) s += rand() < 0.95 ? ';' : ';;';
    const name = pick(rand, PATH_NAMES);
    let v: string;
    if (name === 'type' || name === 'object-type' || name === 'objecttype') v = pick(rand, CLASSES);
    else if (name === 'library-version') v = pick(rand, VERSIONS);
    else if (name === 'slot-id') v = pick(rand, SLOT_IDS);
    else if (rand() < 0.08) v = 'x'.repeat(14 + Math.floor(rand() * 56));
    else v = value(rand, 6);
    s += rand() < 0.97 ? `${name}=${v}` : name;
  }
  if (rand() < 0.5) {
    s += '?';
    const nQuery = Math.floor(rand() * 4);
    for (let i = 0; i < nQuery; i++) {
      if (i) s += '&';
      s += `${pick(rand, QUERY_NAMES)}=${value(rand, 5)}`;
    }
    if (rand() < 0.05) s += '&';
  }
  return s;
}

const TYPES = [UriType.ANY, UriType.OBJECT, UriType.TOKEN, UriType.MODULE, UriType.MODULE_WITH_VERSION, UriType.SLOT,
  UriType.OBJECT_ON_TOKEN, UriType.OBJECT_ON_TOKEN_AND_MODULE, 0];

// ---- parse + format ------------------------------------------------------------------------

interface Case {
  text: string;
  parseType: number;
  formatType: number;
}

function cases(): Case[] {
  const rand = mulberry32(0x7512);
  const out: Case[] = HAND_PICKED.map((text) => ({ text, parseType: UriType.ANY, formatType: UriType.ANY }));
  for (const text of HAND_PICKED.slice(0, 60)) {
    out.push({ text, parseType: pick(rand, TYPES), formatType: pick(rand, TYPES) });
  }
  for (let i = 0; i < 700; i++) {
    const parseType = rand() < 0.7 ? UriType.ANY : pick(rand, TYPES);
    out.push({ text: randomUri(rand), parseType, formatType: rand() < 0.7 ? UriType.ANY : pick(rand, TYPES) });
  }
  return out;
}

const TEXT_KEYS: [string, keyof Uri][] = [
  ['ld', 'libraryDescription'], ['lm', 'libraryManufacturer'], ['sd', 'slotDescription'], ['sm', 'slotManufacturer'],
  ['tl', 'token'], ['tm', 'manufacturer'], ['to', 'model'], ['ts', 'serial'],
];
const STRING_KEYS: [string, keyof Uri][] = [['ps', 'pinSource'], ['pv', 'pinValue'], ['mn', 'moduleName'], ['mp', 'modulePath']];
const CLASS_NAMES: Record<number, string> = { 0: 'data', 1: 'cert', 2: 'public', 3: 'private', 4: 'secret-key' };

function trimPadding(bytes: Uint8Array): Uint8Array {
  let n = bytes.length;
  while (n > 0 && bytes[n - 1] === 0x20) n--;
  return bytes.subarray(0, n);
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** What our typed object should hold, from the oracle's raw fields. */
function expectedUri(o: OracleLine): { fields: Partial<Uri> } {
  const fields: Record<string, unknown> = {};
  const raw: Record<string, Uint8Array> = {};
  // Bytes that are not UTF-8 read as U+FFFD in the string, and come back exactly in `raw`.
  const text = (bytes: Uint8Array, key: string) => {
    if (!isUtf8(bytes)) raw[key] = new Uint8Array(bytes);
    return lossyUtf8.decode(bytes);
  };
  for (const [k, key] of TEXT_KEYS) {
    const bytes = fromHex(o[k] as string);
    if (bytes[0] !== 0) fields[key] = text(trimPadding(bytes), key);
  }
  for (const [k, key] of STRING_KEYS) if (o[k] !== null) fields[key] = text(fromHex(o[k] as string), key);
  if (o.id !== null) fields.id = fromHex(o.id as string);
  if (o.label !== null) fields.object = text(fromHex(o.label as string), 'object');
  if (o.class !== null) fields.type = CLASS_NAMES[o.class as number];
  const [major, minor] = o.lv as number[];
  if (major !== 255 || minor !== 255) fields.libraryVersion = { major, minor };
  if (o.sid !== '18446744073709551615') fields.slotId = BigInt(o.sid as string);
  fields.unrecognized = o.unrec === 1;
  if (Object.keys(raw).length) fields.raw = raw;
  return { fields: fields as Partial<Uri> };
}

function ours(fn: () => unknown): { rc: number; value?: unknown; error?: unknown } {
  try {
    return { rc: 0, value: fn() };
  } catch (e) {
    if (!(e instanceof UriError)) return { rc: 99, error: e };
    return { rc: URI_RESULT_CODES[e.code], error: e };
  }
}

describe('URIs vs libp11-kit 0.24.1', () => {
  const all = cases();
  const commands: string[] = [];
  for (const c of all) {
    const h = textHex(c.text);
    commands.push(`P ${c.parseType} ${c.formatType} ${h}`, `P ${c.parseType} ${UriType.ANY} ${h}`);
  }
  commands.push('L 1');
  for (const c of all) commands.push(`P ${c.parseType} ${c.formatType} ${textHex(c.text)}`);
  const results = runOracle(commands);
  const lowerBase = 2 * all.length + 1;

  test(`covers at least 300 URIs, valid and invalid (${all.length})`, () => {
    const distinct = new Set(all.map((c) => c.text));
    expect(distinct.size).toBeGreaterThanOrEqual(300);
    const failing = all.filter((_, i) => results[2 * i].rc !== 0).length;
    expect(failing).toBeGreaterThan(50);
    expect(all.length - failing).toBeGreaterThan(300);
  });

  test('parse result codes agree', () => {
    const diffs: string[] = [];
    all.forEach((c, i) => {
      const mine = ours(() => parseUri(c.text, { type: c.parseType }));
      if (mine.rc === 99) throw mine.error;
      if (mine.rc !== results[2 * i].rc) diffs.push(`${JSON.stringify(c.text)} type ${c.parseType}: ours ${mine.rc}, p11-kit ${results[2 * i].rc}`);
    });
    expect(diffs).toEqual([]);
  });

  test('every parsed field agrees', () => {
    const diffs: string[] = [];
    all.forEach((c, i) => {
      const o = results[2 * i];
      if (o.rc !== 0) return;
      const uri = parseUri(c.text, { type: c.parseType });
      const { fields } = expectedUri(o);
      const got: Record<string, unknown> = { ...uri };
      delete got.vendor;
      delete got.ignored;
      try {
        expect(got).toEqual(fields);
        expect(uri.ignored.length > 0).toBe(uri.unrecognized);
      } catch (e) {
        diffs.push(`${JSON.stringify(c.text)}: ${(e as Error).message.split('\n').slice(0, 12).join(' ')}`);
      }
    });
    expect(diffs).toEqual([]);
  });

  test('formatted strings agree (normalizeUri, byte-exact, both hex cases)', () => {
    const diffs: string[] = [];
    all.forEach((c, i) => {
      const o = results[2 * i];
      if (o.rc !== 0) return;
      // The oracle parses with parseType and formats with formatType; normalizeUri uses one type.
      const upper = ours(() => normalizeUri(c.text, { type: c.parseType, lowercase: false }));
      const viaObject = formatUri(parseUri(c.text, { type: c.parseType }), { type: c.formatType, lowercase: false });
      const viaObjectLower = formatUri(parseUri(c.text, { type: c.parseType }), { type: c.formatType, lowercase: true });
      // Exact for every value: bytes that are not UTF-8 travel in Uri.raw / rawValue.
      if (c.parseType === c.formatType && upper.value !== o.fmt) diffs.push(`normalize ${JSON.stringify(c.text)}: ${String(upper.value)} vs ${String(o.fmt)}`);
      if (viaObject !== o.fmt) diffs.push(`object ${JSON.stringify(c.text)}: ${viaObject} vs ${String(o.fmt)}`);
      if (viaObjectLower !== results[lowerBase + i].fmt) diffs.push(`lower ${JSON.stringify(c.text)}: ${viaObjectLower} vs ${String(results[lowerBase + i].fmt)}`);
      const any = ours(() => normalizeUri(c.text, { type: UriType.ANY, lowercase: false }));
      if (c.parseType === UriType.ANY && any.value !== results[2 * i + 1].fmt) diffs.push(`any ${JSON.stringify(c.text)}`);
    });
    expect(diffs).toEqual([]);
  });
});

// ---- matching ------------------------------------------------------------------------------

const POOL = ['', 'A', 'My Token', 'my token', 'Maker', 'SoftHSM', 'x/y', 'e\u0301', '\u00e9', 'A ', ' A'];

function pooled(rand: () => number, width: number): string {
  const v = pick(rand, POOL);
  return utf8.encode(v).length <= width ? v : '';
}

function enc(v: string): string {
  return Array.from(utf8.encode(v), (b) => (needsEscape(b) ? `%${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b))).join('');
}
// Escape the bytes a URI value cannot hold raw; letters stay raw.
function needsEscape(b: number): boolean {
  return !((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
}

function matchUri(rand: () => number): string {
  const parts: string[] = [];
  const maybe = (name: string, width: number) => {
    if (rand() < 0.35) parts.push(`${name}=${enc(pooled(rand, width))}`);
  };
  maybe('token', 32);
  maybe('manufacturer', 32);
  maybe('model', 16);
  maybe('serial', 16);
  maybe('slot-description', 64);
  maybe('slot-manufacturer', 32);
  maybe('library-description', 32);
  maybe('library-manufacturer', 32);
  if (rand() < 0.3) parts.push(`library-version=${pick(rand, ['1', '1.0', '1.2', '2.0'])}`);
  if (rand() < 0.3) parts.push(`object=${enc(pick(rand, POOL))}`);
  if (rand() < 0.3) parts.push(`id=${pick(rand, ['', '%01', '%01%02', 'x'])}`);
  if (rand() < 0.3) parts.push(`type=${pick(rand, ['cert', 'private', 'data', 'bogus'])}`);
  if (rand() < 0.05) parts.push('x-unknown=1');
  let s = `pkcs11:${parts.join(';')}`;
  if (rand() < 0.1) s += '?x-vendor=1';
  return s;
}

describe('matching vs libp11-kit 0.24.1', () => {
  const rand = mulberry32(0x11);
  const uris = Array.from({ length: 320 }, () => matchUri(rand));
  uris.push('pkcs11:', 'pkcs11:token=%00abc', 'pkcs11:foo=bar', 'pkcs11:token=A?x-vendor=1', 'pkcs11:token=', 'pkcs11:id=');
  type Probe = { cmd: string; run: (uri: string | Uri) => boolean };
  const probes: Probe[] = [];
  for (const uri of uris) {
    const h = textHex(uri);
    const token = { label: pooled(rand, 32), manufacturerID: pooled(rand, 32), model: pooled(rand, 16), serialNumber: pooled(rand, 16) };
    probes.push({
      cmd: `T ${h} ${textHex(token.label)} ${textHex(token.manufacturerID)} ${textHex(token.model)} ${textHex(token.serialNumber)}`,
      run: (u) => matchTokenInfo(u, token),
    });
    const slot = { slotDescription: pooled(rand, 64), manufacturerID: pooled(rand, 32) };
    probes.push({ cmd: `S ${h} ${textHex(slot.slotDescription)} ${textHex(slot.manufacturerID)}`, run: (u) => matchSlot(u, slot) });
    const module = {
      libraryDescription: pooled(rand, 32),
      manufacturerID: pooled(rand, 32),
      libraryVersion: { major: pick(rand, [1, 2]), minor: pick(rand, [0, 2]) },
    };
    probes.push({
      cmd: `M ${h} ${textHex(module.libraryDescription)} ${textHex(module.manufacturerID)} ${module.libraryVersion.major} ${module.libraryVersion.minor}`,
      run: (u) => matchModuleInfo(u, module),
    });
    const attrs: { type: number; value: Uint8Array }[] = [];
    if (rand() < 0.6) attrs.push({ type: 3, value: utf8.encode(pick(rand, POOL)) });
    if (rand() < 0.6) attrs.push({ type: 0x102, value: pick(rand, [new Uint8Array([1]), new Uint8Array([1, 2]), new Uint8Array(0), utf8.encode('x')]) });
    if (rand() < 0.6) {
      const cls = new Uint8Array(8);
      cls[0] = pick(rand, [0, 1, 3]);
      attrs.push({ type: 0, value: cls });
    }
    if (rand() < 0.2) attrs.push({ type: 0x11, value: utf8.encode('v') });
    probes.push({
      cmd: `A ${h} ${attrs.length}${attrs.map((a) => ` ${a.type} ${hex(a.value)}`).join('')}`,
      run: (u) => matchAttributes(u, attrs),
    });
  }
  const results = runOracle(probes.map((p) => p.cmd));

  test(`${probes.length} match queries agree, URI given as text`, () => {
    const diffs = probes.filter((p, i) => Number(p.run(uris[Math.floor(i / 4)])) !== results[i].match).map((p) => p.cmd);
    expect(results.every((r) => r.rc === 0)).toBe(true);
    expect(diffs).toEqual([]);
    // Both outcomes occur, or the comparison says little.
    const hits = results.filter((r) => r.match === 1).length;
    expect(hits).toBeGreaterThan(probes.length / 10);
    expect(hits).toBeLessThan(probes.length * 0.9);
  });

  test('the same with the URI as a parsed object', () => {
    const diffs = probes
      .filter((p, i) => Number(p.run(parseUri(uris[Math.floor(i / 4)]))) !== results[i].match)
      .map((p) => p.cmd);
    expect(diffs).toEqual([]);
  });
});
