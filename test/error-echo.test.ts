// Error messages repeat at most a bounded part of what a caller (or a config file) handed in: a
// megabyte argument gives a short message saying its size, an object is described by its type
// (its toString never runs), control characters are escaped. Through the real bridge on SoftHSM2,
// the URI API and loadRegistry over a real tree.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKF_SESSION } from '../ts/bridge/ckf.js';
import { CKA } from '../ts/bridge/cka.js';
import { encodeTemplate } from '../ts/bridge/attributes.js';
import { ecParams, rsaKeyPair } from '../ts/bridge/key-templates.js';
import { Arena } from '../ts/bridge/memory.js';
import type { ModuleLoadError } from '../ts/bridge/errors.js';
import type { Pkcs11Module } from '../ts/bridge/module.js';
import { loadModule } from '../ts/bridge/modules.js';
import { padText } from '../ts/bridge/strings.js';
import { UnknownModuleError } from '../ts/registry/errors.js';
import { loadRegistry } from '../ts/registry/load.js';
import { remoteProblem, remoteTuning } from '../ts/registry/remote.js';
import { normalizeUri, uriFromJson } from '../ts/uri/index.js';
import { clip, echo } from '../ts/wasm/echo.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const HUGE = 4 << 20;
const huge = 'A'.repeat(HUGE);
const hostile = {
  toString() {
    throw new Error('toString ran');
  },
  [Symbol.toPrimitive]() {
    throw new Error('toPrimitive ran');
  },
};

/** The message `fn` throws: short, saying the size, never the value itself. */
function thrownMessage(fn: () => unknown): string {
  let message: string | undefined;
  try {
    fn();
  } catch (e) {
    message = (e as Error).message;
  }
  if (message === undefined) throw new Error('did not throw');
  expect(message.length).toBeLessThan(600);
  expect(message).not.toContain('A'.repeat(200));
  expect(message).not.toMatch(/ran$/);
  return message;
}

describe('echo and clip', () => {
  it('show short values whole, long ones cut with their length, objects by type', () => {
    expect(echo('P-999')).toBe("'P-999'");
    expect(echo(huge)).toBe(`'${'A'.repeat(64)}…' (${HUGE} characters)`);
    expect(echo(-1n)).toBe('-1');
    expect(echo(1n << 100000n)).toBe('a bigint beyond ±2^200');
    expect(echo(hostile)).toBe('an object');
    expect(echo([1, 2, 3])).toBe('an array of 3');
    expect(echo(new Uint8Array(7))).toBe('a view of 7 bytes');
    expect(echo(NaN)).toBe('NaN');
    expect(clip('a\nb\u001b[2J\u2028')).toBe('a\\x0ab\\x1b[2J\\u2028');
    expect(clip(`${'x'.repeat(63)}😀`)).toBe(`${'x'.repeat(63)}… (65 characters)`); // never half a pair
  });
});

describe('bridge arguments', () => {
  let hsm: SoftHsm;
  let m: Pkcs11Module;
  let session: number;
  beforeAll(() => {
    hsm = createSoftHsm();
    const slot = hsm.initToken('echo', '5678', '1234');
    m = loadModule(SOFTHSM_MODULE);
    m.initialize();
    session = m.openSession(slot, CKF_SESSION.CKF_SERIAL_SESSION);
  });
  afterAll(() => {
    try {
      m.finalize();
    } finally {
      hsm.cleanup();
    }
  });

  it("generateRandom's refusal describes the length it was given, not all of it", () => {
    expect(thrownMessage(() => m.generateRandom(session, huge as unknown as number))).toMatch(/cannot generate 'A{64}…' \(4194304 characters\) random bytes/);
    expect(thrownMessage(() => m.generateRandom(session, -1))).toMatch(/cannot generate -1 random bytes \(a length is an integer from 0 to \d+\)/);
    expect(m.generateRandom(session, 8).length).toBe(8); // the session still works
  });

  it('a module path that cannot load is shown up to any real path length', () => {
    const path = `/${'p'.repeat(HUGE)}`;
    const message = (() => {
      try {
        loadModule(path);
      } catch (e) {
        return (e as ModuleLoadError).message;
      }
      throw new Error('loaded');
    })();
    expect(message.length).toBeLessThan(9000);
    expect(message).toMatch(/^couldn't load module \/p{4095}… \(4194305 characters\): /);
  });

  it('CK_ULONGs, padded text, dates, curves and key sizes', () => {
    const mem = new Arena(64);
    const at = mem.alloc(8);
    expect(thrownMessage(() => mem.setUlong(at, 1n << 100000n))).toMatch(/not a CK_ULONG: a bigint beyond/);
    expect(thrownMessage(() => padText(huge, 32))).toMatch(/'A{64}…' \(4194304 characters\) is 4194304 bytes; the field holds 32/);
    expect(thrownMessage(() => encodeTemplate(mem, [{ type: CKA.CKA_START_DATE, value: huge }]))).toMatch(/not a date: 'A{64}…' \(4194304 characters\)/);
    expect(thrownMessage(() => ecParams(huge as never))).toMatch(/unknown curve 'A{64}…' \(4194304 characters\)/);
    expect(thrownMessage(() => ecParams(hostile as never))).toMatch(/unknown curve an object/);
    expect(thrownMessage(() => ecParams('toString' as never))).toMatch(/unknown curve 'toString' \(one of P-256/); // own names only
    expect(thrownMessage(() => rsaKeyPair(huge as never))).toMatch(/not an RSA key size: 'A{64}…'/);
  });
});

describe('URI API arguments', () => {
  it('a URI type, unknown JSON fields and raw names', () => {
    expect(thrownMessage(() => normalizeUri('pkcs11:', { type: huge as never }))).toMatch(/unknown URI type 'A{64}…' \(4194304 characters\)/);
    expect(thrownMessage(() => normalizeUri('pkcs11:', { type: hostile as never }))).toMatch(/a URI type is a name or a number, not an object/);
    expect(thrownMessage(() => uriFromJson({ [huge]: 'x', tokne: 'y' }))).toMatch(/unknown field\(s\) A{64}… \(4194311 characters\); known:/);
    expect(thrownMessage(() => uriFromJson({ raw: { [`x${huge}`]: '00' } }))).toMatch(/raw\.xA{63}… \(4194305 characters\) is not a text field/);
  });
});

describe('registry values', () => {
  const work = mkdtempSync(join(tmpdir(), 'p11kit-error-echo-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('a module name asked for, remote values and tuning options', () => {
    const names = Array.from({ length: 2000 }, (_, i) => `module-${i}`);
    const err = new UnknownModuleError(huge, names);
    expect(err.message.length).toBeLessThan(1400);
    expect(err.message).toMatch(/^no module named 'A{64}…' \(4194304 characters\) is configured for this program; configured: module-0, module-1, .*… \(\d+ characters\)$/);
    expect(err.available).toHaveLength(2000); // the whole list stays on the error
    expect(remoteProblem(`unix:path=${huge}`)).toMatch(/^remote not supported: unix:path=A{246}… \(4194314 characters\)$/);
    expect(remoteProblem(`|${huge}\\`)).toMatch(/^invalid remote command line: A{256}… \(4194305 characters\)$/);
    expect(thrownMessage(() => remoteTuning('tuned', { 'x-rpc-call-timeout-ms': `soon${huge}` }))).toMatch(/x-rpc-call-timeout-ms must be a non-negative integer, not 'soonA{60}…' \(4194308 characters\)/);
  });

  it('a config value in a diagnostic or a load failure (a 4 MiB module path, a 1 MiB reinit policy)', () => {
    const modules = join(work, 'modules');
    mkdirSync(modules);
    writeFileSync(join(modules, 'longpath.module'), `module: /${'p'.repeat(HUGE - 100)}\n`);
    writeFileSync(join(modules, 'policy.module'), `remote: unix:path=/nowhere\nx-reinit-policy: ${'q'.repeat(1 << 20)}\n`);
    const reg = loadRegistry({ systemConfig: '/nonexistent', userConfig: '/nonexistent', packageModules: '/nonexistent', systemModules: modules, userModules: '/nonexistent', program: 'x' });
    const messages = reg.diagnostics.map((d) => d.message);
    const skipped = messages.find((t) => t.startsWith("module 'longpath' skipped: couldn't load module: /ppp"));
    expect(skipped, messages.join('\n').slice(0, 2000)).toBeDefined();
    expect(skipped!.length).toBeLessThan(9000);
    expect(skipped).toMatch(/… \(4194205 characters\): cannot open shared object file: File name too long$/);
    const policy = messages.find((t) => t.includes("for 'x-reinit-policy'"));
    expect(policy).toMatch(/^module 'policy': invalid setting 'q{64}…' \(1048576 characters\) for 'x-reinit-policy', defaulting to 'explicit'$/);
  });
});
