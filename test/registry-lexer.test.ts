// The config line lexer, through the wasm core: p11-kit 0.24.1's syntax (spec §1.2, the
// test-lexer checklist of §8, the config items of §9) and the diagnostics of refused files.
import { describe, expect, it } from 'vitest';
import { PATHS, lexGlobal } from './helpers/registry-core.js';

const fields = (text: string | Uint8Array) => {
  const out = lexGlobal(text);
  expect(out.errors, 'no error expected').toEqual([]);
  return out.globals;
};

const refusal = (text: string | Uint8Array) => {
  const out = lexGlobal(text);
  expect(out.failed).toBe(true);
  expect(out.errors).toHaveLength(1);
  const [e] = out.errors;
  return { file: e.a, line: e.num, reason: e.b, globals: out.globals };
};

describe('fields', () => {
  it('splits at the first colon and trims around name and value only', () => {
    expect(
      fields('key1:value1\nwith-whitespace : value-with-whitespace\nwith-colon: value:of:colon\na b  :  inner  spaces  \n'),
    ).toEqual({
      key1: 'value1',
      'with-whitespace': 'value-with-whitespace',
      'with-colon': 'value:of:colon',
      'a b': 'inner  spaces',
    });
  });

  it('gives "number" for every spacing around the colon', () => {
    for (const line of ['number:    2', 'number    :3', 'number  :  4', '\t number\t:\t5\t']) {
      expect(Object.keys(fields(`${line}\n`))).toEqual(['number']);
    }
  });

  it('treats CRLF, blank lines and all six C isspace() characters as whitespace', () => {
    expect(fields('\r\n  \r\n\v\fa: 1\r\n\t\r\nb:\v2\f\r\n')).toEqual({ a: '1', b: '2' });
  });

  it('accepts a last line without newline, and an empty file', () => {
    expect(fields('a: 1\nb: 2')).toEqual({ a: '1', b: '2' });
    expect(fields('')).toEqual({});
  });

  it('keeps empty values and empty names, which are not absent', () => {
    expect(fields('module:\n: no name\nx:   \n')).toEqual({ module: '', '': 'no name', x: '' });
  });

  it('is case-sensitive in names', () => {
    expect(fields('Module: a\nmodule: b\n')).toEqual({ Module: 'a', module: 'b' });
  });

  it('lets the last of duplicate names win, keeping first-seen order', () => {
    const out = lexGlobal('a: 1\nb: 2\na: 3\n');
    expect(out.globals).toEqual({ a: '3', b: '2' });
    expect(out.globalKeys).toEqual(['a', 'b']);
  });

  it('cuts names and values at a NUL byte, as C strings do', () => {
    expect(fields(new TextEncoder().encode('x-nul: before\0after\nk\0ey: v\n'))).toEqual({ 'x-nul': 'before', k: 'v' });
  });

  it('passes bytes through untouched (no encoding validation)', () => {
    const out = lexGlobal(new Uint8Array([...new TextEncoder().encode('x: caf'), 0xc3, 0xa9, 0x0a]));
    expect(out.globals).toEqual({ x: 'café' });
  });
});

describe('comments', () => {
  it('skips whole-line comments, indented ones too', () => {
    expect(fields('# a comment\n   # A comment \n\t#x: y\na: 1\n')).toEqual({ a: '1' });
  });

  it('has no inline comments: # after a value is part of it (§9.4)', () => {
    expect(fields('not-a-comment: # value\nembedded-comment: this is # not a comment\nmodule: foo.so # note\n')).toEqual({
      'not-a-comment': '# value',
      'embedded-comment': 'this is # not a comment',
      module: 'foo.so # note',
    });
  });
});

describe('refused files name the file, the line and the reason', () => {
  it('a line without a colon', () => {
    expect(refusal('a: 1\n\njust words\nb: 2\n')).toMatchObject({
      file: PATHS.system,
      line: 3,
      reason: 'invalid field line: no colon',
    });
  });

  it('a section header, even indented, is not allowed in config', () => {
    expect(refusal('a: 1\n  [the header]  \n')).toMatchObject({ line: 2, reason: 'unexpected section header' });
    expect(refusal('[]\n')).toMatchObject({ line: 1, reason: 'unexpected section header' });
  });

  it('a header without its closing brace', () => {
    for (const bad of ['[section', '[', '  [a b']) {
      expect(refusal(`x: y\r\n${bad}\r\n`)).toMatchObject({ line: 2, reason: 'invalid section header: missing braces' });
    }
  });

  it('a PEM block, with or without a newline at the end of the file', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    expect(refusal(`a: 1\n${pem}\n`)).toMatchObject({ line: 2, reason: 'unexpected pem block' });
    expect(refusal(`a: 1\n${pem}`)).toMatchObject({ line: 2, reason: 'unexpected pem block' });
  });

  it('a PEM BEGIN without END', () => {
    expect(refusal('a: 1\nb: 2\n-----BEGIN CERTIFICATE-----\nMIIB\nc: 3\n')).toMatchObject({
      line: 3,
      reason: 'invalid pem block: no ending line',
    });
  });

  it('only at the very start of a raw line is BEGIN a PEM block', () => {
    expect(refusal(' -----BEGIN CERTIFICATE-----\n')).toMatchObject({ line: 1, reason: 'invalid field line: no colon' });
    // "-----BEGIN" followed by a colon-bearing header is still a PEM block, not a field.
    expect(refusal('-----BEGIN X: Y-----\n-----END X-----\n')).toMatchObject({ reason: 'unexpected pem block' });
  });

  it('counts lines after a CRLF file and after blank and comment lines', () => {
    expect(refusal('# c\r\n\r\n\r\na: 1\r\n\r\nbroken\r\n')).toMatchObject({ line: 6 });
  });

  it('an error anywhere rejects the whole file: nothing of it is kept', () => {
    expect(refusal('a: 1\nb: 2\nbroken\n').globals).toEqual({});
  });
});
