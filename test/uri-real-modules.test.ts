// Matching URIs against what real modules report: SoftHSM2 (two tokens in a temporary store),
// p11-kit's trust module and OpenSC, loaded and described by the real libp11-kit
// (test/oracle/uri-oracle.c, command D). URIs built from those fields, and variations of them,
// must match exactly when p11-kit's own p11_kit_uri_match_* say so.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatUri, matchModuleInfo, matchSlot, matchTokenInfo, parseUri, type UriFields } from '../ts/uri/index.js';

const ORACLE = 'dist/native/oracle/uri-oracle';
const MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so',
  '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so',
];

const dir = mkdtempSync(join(tmpdir(), 'uri-real-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'tokens'));
writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\n`);
const env = { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') };
for (const label of ['URI Test Token', 'T\u00f8ken/2;a=b']) {
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '12345678', '--pin', '1234'], { env });
  if (r.status !== 0) throw new Error(`softhsm2-util failed: ${r.stderr}`);
}

function oracle(lines: string[]): Record<string, unknown>[] {
  if (!existsSync(ORACLE)) throw new Error(`${ORACLE} is not built: run 'make native'`);
  const r = spawnSync(ORACLE, { input: `${lines.join('\n')}\n`, encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`uri-oracle failed: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
}

const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hexOf = (s: string) => Buffer.from(s, 'utf8').toString('hex') || '-';
const trimmed = (h: string) => Buffer.from(h, 'hex').toString('utf8').replace(/ +$/, '');

interface Described {
  path: string;
  ld: string;
  lm: string;
  lv: [number, number];
  slots: { id: string; sd: string; sm: string; token: { tl: string; tm: string; to: string; ts: string } | null }[];
}

const described = oracle(MODULES.map((m) => `D ${m}`)).map((d, i) => {
  if (d.ok !== 1) throw new Error(`${MODULES[i]} could not be described: rv ${String(d.rv)}`);
  return { path: MODULES[i], ...d } as unknown as Described;
});
const tokens = described.flatMap((m) => m.slots.flatMap((s) => (s.token ? [s.token] : [])));
const slots = described.flatMap((m) => m.slots);

const WIDTHS: Record<string, number> = {
  token: 32, manufacturer: 32, model: 16, serial: 16, libraryDescription: 32, libraryManufacturer: 32,
  slotDescription: 64, slotManufacturer: 32,
};

/** URIs built from real fields, one field at a time and all together, plus near misses. */
function variants(fields: Record<string, string>): UriFields[] {
  const out: UriFields[] = [fields, {}];
  for (const [k, v] of Object.entries(fields)) {
    out.push({ [k]: v }, { [k]: v.toLowerCase() }, { [k]: v.slice(0, -1) }, { [k]: '' });
    // A trailing space is padding, when the field has room for it.
    if (Buffer.byteLength(v) < WIDTHS[k]) out.push({ [k]: `${v} ` });
  }
  out.push({ ...fields, unrecognized: true });
  return out;
}

describe('URIs against real modules (SoftHSM2, p11-kit-trust, OpenSC)', () => {
  test('the modules report what the test needs', () => {
    expect(described).toHaveLength(3);
    expect(tokens.map((t) => trimmed(t.tl))).toEqual(expect.arrayContaining(['URI Test Token', 'T\u00f8ken/2;a=b', 'System Trust']));
  });

  test('token matching agrees with p11_kit_uri_match_token_info', () => {
    const uris = tokens.flatMap((t) =>
      variants({ token: trimmed(t.tl), manufacturer: trimmed(t.tm), model: trimmed(t.to), serial: trimmed(t.ts) }),
    );
    const texts = uris.map((u) => formatUri(u));
    const cmds = texts.flatMap((text) => tokens.map((t) => `T ${hexOf(text)} ${t.tl} ${t.tm} ${t.to} ${t.ts}`));
    const expected = oracle(cmds).map((r) => r.match);
    let i = 0;
    let hits = 0;
    for (const text of texts) {
      for (const t of tokens) {
        const raw = { label: bytes(t.tl), manufacturerID: bytes(t.tm), model: bytes(t.to), serialNumber: bytes(t.ts) };
        const asText = { label: trimmed(t.tl), manufacturerID: trimmed(t.tm), model: trimmed(t.to), serialNumber: trimmed(t.ts) };
        const want = expected[i++] === 1;
        hits += Number(want);
        expect([text, matchTokenInfo(text, raw), matchTokenInfo(parseUri(text), asText)]).toEqual([text, want, want]);
      }
    }
    expect(hits).toBeGreaterThan(tokens.length * 2);
    expect(hits).toBeLessThan(texts.length * tokens.length);
  });

  test('module matching agrees with p11_kit_uri_match_module_info', () => {
    const uris = described.flatMap((m) => [
      ...variants({ libraryDescription: trimmed(m.ld), libraryManufacturer: trimmed(m.lm) }),
      { libraryVersion: { major: m.lv[0], minor: m.lv[1] } },
      { libraryVersion: { major: m.lv[0], minor: 0 } },
    ]);
    const texts = uris.map((u) => formatUri(u));
    const cmds = texts.flatMap((text) => described.map((m) => `M ${hexOf(text)} ${m.ld} ${m.lm} ${m.lv[0]} ${m.lv[1]}`));
    const expected = oracle(cmds).map((r) => r.match === 1);
    const got = texts.flatMap((text) =>
      described.map((m) =>
        matchModuleInfo(text, { libraryDescription: bytes(m.ld), manufacturerID: bytes(m.lm), libraryVersion: { major: m.lv[0], minor: m.lv[1] } }),
      ),
    );
    expect(got).toEqual(expected);
    expect(got.filter(Boolean).length).toBeGreaterThan(described.length * 3);
  });

  test('slot matching agrees with p11_kit_uri_match_slot_info; slot-id narrows it when given', () => {
    const uris = slots.flatMap((s) => variants({ slotDescription: trimmed(s.sd), slotManufacturer: trimmed(s.sm) }));
    const texts = uris.map((u) => formatUri(u));
    const expected = oracle(texts.flatMap((text) => slots.map((s) => `S ${hexOf(text)} ${s.sd} ${s.sm}`))).map((r) => r.match === 1);
    const got = texts.flatMap((text) => slots.map((s) => matchSlot(text, { slotDescription: bytes(s.sd), manufacturerID: bytes(s.sm) })));
    expect(got).toEqual(expected);
    for (const s of slots) {
      const info = { slotDescription: bytes(s.sd), manufacturerID: bytes(s.sm) };
      const chosen = slots.filter((o) => matchSlot(`pkcs11:slot-id=${s.id}`, info, BigInt(o.id)));
      expect(chosen.map((o) => o.id)).toEqual([s.id]);
    }
  });
});
