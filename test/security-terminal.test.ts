// Hostile labels reach the human listings escaped: a token (SoftHSM2) whose label carries a
// newline that would forge a "uri:" line, an ESC sequence and a BEL, and a key labelled the same
// way. --json keeps the exact strings; ordinary labels are untouched (list-modules-diff.test.ts).
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeForTerminal } from '../ts/cli/escape.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '31415926';
const TOKEN_LABEL = 'a\nuri: pkcs11:token=bank\x1b[2J\x07';
const KEY_LABEL = 'k\r\n    label: forged\x9b1m\u202e';
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/; // any control but the line feeds between lines

describe('security: control characters from tokens and modules in human output', () => {
  let hsm: SoftHsm;
  let tree: ConfTree;
  let where: string[];
  let pinFile: string;
  beforeAll(() => {
    hsm = createSoftHsm();
    hsm.initToken(TOKEN_LABEL, '11112222', PIN);
    tree = createConfTree();
    tree.module('softhsm', `module: ${SOFTHSM_MODULE}\n`);
    const r = tree.registry;
    where = ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
    pinFile = join(hsm.dir, 'pin');
    writeFileSync(pinFile, PIN);
    chmodSync(pinFile, 0o600);
    const made = cli('generate-keypair', `pkcs11:token=${encodeURIComponent(TOKEN_LABEL)}`, '--type', 'ec', '--label', KEY_LABEL, '--pin-source', pinFile);
    if (made.status !== 0) throw new Error(made.stderr);
  });
  afterAll(() => {
    tree?.cleanup();
    hsm?.cleanup();
  });

  function cli(...args: string[]) {
    return spawnSync(process.execPath, [CLI, ...args, ...where], { encoding: 'utf8', env: hsm.env, timeout: 60_000 });
  }

  it('escapes C0, DEL, C1, line separators and bidi controls; leaves printable text, non-ASCII and backslashes', () => {
    expect(escapeForTerminal('a\nb\x1b[31m\x07\x00\x7f\x9b\u2028\u202e')).toBe('a\\x0ab\\x1b[31m\\x07\\x00\\x7f\\x9b\\u{2028}\\u{202e}');
    expect(escapeForTerminal('Bank token é € 🔑 C:\\path')).toBe('Bank token é € 🔑 C:\\path');
  });

  it('list-tokens, list-modules and list-objects show the labels on their own line, escaped', () => {
    for (const args of [['list-tokens'], ['list-modules'], ['list-objects', 'pkcs11:', '--pin-source', pinFile]]) {
      const r = cli(...args);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout, args[0]).not.toMatch(RAW);
      expect(r.stdout).not.toMatch(/^\s*uri: pkcs11:token=bank/m); // the forged line
      expect(r.stdout).not.toMatch(/^\s*label: forged/m);
      if (args[0] !== 'list-objects') expect(r.stdout).toContain('a\\x0auri: pkcs11:token=bank\\x1b[2J\\x07');
      else expect(r.stdout).toContain('label: k\\x0d\\x0a    label: forged\\x9b1m\\u{202e}');
    }
  });

  it('--json keeps the exact strings', () => {
    const tokens = JSON.parse(cli('list-tokens', '--json').stdout).tokens;
    expect(tokens.map((t: { label: string }) => t.label)).toContain(TOKEN_LABEL.padEnd(32, ' ').trimEnd());
    const objects = JSON.parse(cli('list-objects', 'pkcs11:', '--pin-source', pinFile, '--json').stdout).objects;
    expect(objects.map((o: { label: string }) => o.label)).toContain(KEY_LABEL);
  });
});
