// `p11kit uri …` end to end: the built CLI (dist/lib/cli.js) in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';

const CLI = 'dist/lib/cli.js';

function p11kit(args: string[], input?: string) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is not built: run 'make ts'`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, env: { ...process.env, P11_KIT_URI_LOWERCASE: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('p11kit uri', () => {
  test('parse lists the attributes, hides pin-value, and shows what was ignored', () => {
    const r = p11kit(['uri', 'parse', 'pkcs11:token=My%20Token;id=%01%02;foo=1?pin-value=Secret&x-a=%09b']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        'token: My Token',
        'id: 01:02',
        'pin-value: (hidden; --show-pin prints it)',
        'query x-a: "\\tb"',
        'ignored: foo (unknown path attribute)',
        'unrecognized: yes (p11-kit matches nothing with this URI)',
        'uri: pkcs11:token=My%20Token;id=%01%02?x-a=%09b',
        '',
      ].join('\n'),
    );
    expect(r.out + r.err).not.toContain('Secret');
    expect(p11kit(['uri', 'parse', '--show-pin', 'pkcs11:?pin-value=Secret']).out).toContain('pin-value: Secret');
  });

  test('parse --json, and --type', () => {
    const r = p11kit(['uri', 'parse', '--json', 'pkcs11:token=T;slot-id=7;object=o?pin-value=1234']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ token: 'T', object: 'o', slotId: '7', vendor: [], unrecognized: false });
    expect(r.err).toContain('pin-value left out');
    const typed = JSON.parse(p11kit(['uri', 'parse', '--json', '--type', 'object', 'pkcs11:token=T;object=o']).out);
    expect(typed).toMatchObject({ object: 'o', unrecognized: true, ignored: [{ name: 'token', reason: 'not accepted for this URI type' }] });
  });

  test('a bad URI exits 2 (usage) with what and where, no stack trace', () => {
    const r = p11kit(['uri', 'parse', 'pkcs11:token=%zz']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe("p11kit: URI encoding invalid or corrupted: '%' must be followed by two hex digits (attribute 'token', at offset 13)\n");
    expect(p11kit(['uri', 'parse', '--type', 'bogus', 'pkcs11:']).err).toMatch(/unknown URI type 'bogus'/);
  });

  test('format builds a URI from JSON fields, from an argument or stdin; bad JSON is explained; --json is the output', () => {
    expect(p11kit(['uri', 'format', '{"token":"My Token","id":"01ab","vendor":[{"name":"b","value":"/"}]}']).out).toBe(
      'pkcs11:token=My%20Token;id=%01%AB?b=%2F\n',
    );
    expect(p11kit(['uri', 'format', '--lowercase', '-'], '{"object":"a,b","type":"cert"}').out).toBe('pkcs11:object=a%2cb;type=cert\n');
    expect(JSON.parse(p11kit(['uri', 'format', '--json', '{"token":"A"}']).out)).toEqual({ uri: 'pkcs11:token=A' });
    expect(JSON.parse(p11kit(['uri', 'normalize', '--json', 'pkcs11:token=A']).out)).toEqual({ uri: 'pkcs11:token=A' });
    const bad = p11kit(['uri', 'format', '{token:1}']);
    expect([bad.code, bad.err]).toEqual([2, expect.stringMatching(/^p11kit: the fields are not valid JSON/)]);
    expect(p11kit(['uri', 'format', '{"token":"' + 'x'.repeat(33) + '"}']).err).toMatch(/longer than the PKCS#11 field holds \(attribute 'token'\)/);
    expect(p11kit(['uri', 'format']).code).toBe(2); // commander: the fields are missing
  });

  test('parse --json --show-pin | format - gives the canonical form, as normalize does', () => {
    const text = 'pkcs11:object=k;token=t%2Fx;library-version=3;type=secretkey?pinfile=%2Fp&pin-value=1&x-z=1&x-a=2';
    const json = p11kit(['uri', 'parse', '--json', '--show-pin', text]).out;
    const formatted = p11kit(['uri', 'format', '-'], json).out;
    expect(formatted).toBe(p11kit(['uri', 'normalize', text]).out);
    expect(formatted).toBe('pkcs11:library-version=3.0;token=t%2Fx;object=k;type=secret-key?pin-source=%2Fp&pin-value=1&x-a=2&x-z=1\n');
    expect(p11kit(['uri', 'normalize', '--type', 'object', '--lowercase', text]).out).toBe(
      'pkcs11:object=k;type=secret-key?pin-source=%2fp&pin-value=1&x-a=2&x-z=1\n',
    );
  });

  test('values that are not UTF-8 keep their bytes: parse prints the exact URI, and the JSON round trip too', () => {
    const text = 'pkcs11:token=%FF%FE;object=a%C3?pin-value=%FF&x-v=%80';
    expect(p11kit(['uri', 'parse', text]).out).toContain('uri: pkcs11:token=%FF%FE;object=a%C3?x-v=%80\n');
    const json = p11kit(['uri', 'parse', '--json', '--show-pin', text]).out;
    expect(p11kit(['uri', 'format', '-'], json).out).toBe(p11kit(['uri', 'normalize', text]).out);
  });
});
