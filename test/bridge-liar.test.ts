// A module that lies about lengths and counts, returns garbage strings and NULL function
// pointers (test/fixtures/liar-module.c): every lie becomes a typed error, garbage decodes
// without throwing, and - checked under valgrind in a bare node process - no byte outside
// the bridge's own buffers is read or written.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bridge from '../ts/bridge/index.js';
import { runLiarScenarios, type Outcome } from './fixtures/liar-scenarios.mjs';

const ROOT = process.cwd();
const LIAR = `${ROOT}/dist/native/fixtures/liar-module.so`;
const U = '\ufffd';

const refused = (name: string, code: string) => ({ error: expect.objectContaining({ name, code }) });

/** What the bridge must do in each scenario, sync and async alike. */
const EXPECTED: Record<string, unknown> = {
  '/info': {
    ok: {
      cryptokiVersion: { major: 2, minor: 40 },
      // 'Liar', two invalid bytes, an invalid two-byte sequence, then a NUL ends the text.
      manufacturerID: `Liar${U}${U}${U}(x`,
      flags: 0xffffffff,
      libraryDescription: 'A'.repeat(32),
      libraryVersion: { major: 255, minor: 255 },
    },
  },
  '/slots': { ok: [1, 2] },
  '/token': { ok: expect.objectContaining({ label: U.repeat(32), model: U.repeat(16), maxPinLen: `${2n ** 64n - 1n}n`, flags: 0x400 }) },
  '/label': { ok: [{ type: 3, value: U.repeat(8) }] },
  '/find': { ok: [] },
  '/digestKey': { error: expect.objectContaining({ name: 'Pkcs11Error', code: 'CKR_FUNCTION_NOT_SUPPORTED', message: expect.stringContaining('NULL') }) },
  '/seedRandom': { error: expect.objectContaining({ name: 'Pkcs11Error', rv: 0x54 }) },
  '/rawSeedRandom': { ok: 0x54 },
  'slot-count-huge/slots': refused('BridgeError', 'UNTRUSTED_COUNT'),
  'slot-count-over/slots': refused('BridgeError', 'UNTRUSTED_COUNT'),
  'slot-too-small/slots': refused('BridgeError', 'RETRY_EXHAUSTED'),
  'mech-count-over/mechanisms': refused('BridgeError', 'UNTRUSTED_COUNT'),
  'sign-len-over/sign': refused('BridgeError', 'UNTRUSTED_LENGTH'),
  'attr-len-over/label': refused('BridgeError', 'UNTRUSTED_LENGTH'),
  'attr-len-huge/label': refused('BridgeError', 'UNTRUSTED_LENGTH'),
  'attr-array-odd/template': refused('BridgeError', 'UNTRUSTED_LENGTH'),
  'find-count-over/find': refused('BridgeError', 'UNTRUSTED_COUNT'),
  // Bounded: stops at MAX_FOUND_OBJECTS (100 000 handles) with an error that says why.
  'find-endless/find': { error: expect.objectContaining({ name: 'BridgeError', code: 'UNTRUSTED_COUNT', message: expect.stringContaining('keeps finding more') }) },
  // Session handles only go back to their module: one beyond 2^53 is kept exact, as a bigint (libtpm2_pkcs11 makes such handles).
  'handle-huge/session': { ok: `${(1n << 60n) + 1n}n` },
};

function checkAll(results: Record<string, Outcome>): void {
  for (const [key, expected] of Object.entries(EXPECTED)) {
    for (const form of ['sync', 'async']) expect(results[`${key}/${form}`], `${key}/${form}`).toEqual(expected);
  }
  expect(Object.keys(results).length).toBe(Object.keys(EXPECTED).length * 2);
}

const VALGRIND = ['--tool=memcheck', '--undef-value-errors=no', '--leak-check=no', '--error-exitcode=99'];

/** Runs a script in node under valgrind; returns its exit status, stdout and valgrind's report. */
function underValgrind(script: string) {
  const r = spawnSync('valgrind', [...VALGRIND, process.execPath, '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, report: r.stderr };
}

describe('a lying module', () => {
  beforeAll(() => {
    expect(existsSync(LIAR), 'run make native').toBe(true);
  });

  it('is refused call by call with typed errors; garbage strings decode', async () => {
    checkAll(await runLiarScenarios(bridge, LIAR));
  });

  it('has NULL entries the bridge knows about', () => {
    const m = bridge.loadModule(LIAR);
    expect(m.has('C_DigestKey')).toBe(false);
    expect(m.has('C_SignRecoverInit')).toBe(false);
    expect(m.has('C_Sign')).toBe(true);
  });

  it('never reads or writes outside the bridge buffers (valgrind memcheck, compiled library)', () => {
    const lib = `${ROOT}/dist/lib/bridge/index.js`;
    expect(existsSync(lib), 'run make ts').toBe(true);
    const script = `
      import * as bridge from ${JSON.stringify(lib)};
      import { runLiarScenarios } from ${JSON.stringify(`${ROOT}/test/fixtures/liar-scenarios.mjs`)};
      process.stdout.write(JSON.stringify(await runLiarScenarios(bridge, ${JSON.stringify(LIAR)})));`;
    const run = underValgrind(script);
    expect(run.report).toMatch(/ERROR SUMMARY: 0 errors/);
    expect(run.status).toBe(0);
    checkAll(JSON.parse(run.stdout));
  }, 300_000);

  it('valgrind does catch a caller that claims more buffer than it has (control)', () => {
    // A raw call that says 5 slots fit where 2 do: the liar fills all 5, past the ArrayBuffer.
    const script = `
      import koffi from 'koffi';
      const lib = koffi.load(${JSON.stringify(LIAR)});
      const out = [null];
      lib.func('unsigned long C_GetFunctionList(_Out_ void **l)')(out);
      const at = (i) => koffi.decode(out[0], 8 + 8 * i, 'void *');
      const init = koffi.decode(at(0), koffi.proto('unsigned long f0(void *)'));
      const slots = koffi.decode(at(4), koffi.proto('unsigned long f4(uint8_t, void *, void *)'));
      init(null);
      const list = new ArrayBuffer(16);
      const count = new BigUint64Array([5n]);
      console.log(slots(0, list, count));`;
    const run = underValgrind(script);
    expect(run.report).toMatch(/Invalid write of size/);
    expect(run.status).toBe(99);
  }, 300_000);
});
