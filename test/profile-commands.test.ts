// list-profiles, add-profile and delete-profile where they succeed: SoftHSM2, NSS softokn and
// p11-kit's trust module all refuse CKO_PROFILE objects (test/object-commands.test.ts covers the
// refusal), so the tokens here are test/fixtures/profile-module.c's: "first" and "second"
// writable, "sealed" write-protected with a public-certificates-token profile. The CLI runs on a
// configuration tree; the fixture keeps token objects in a file, so each run sees the last one's.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKO, openProxyAsync, type ModuleEntry } from '../ts/index.js';
import { addProfile, deleteProfile, listProfiles, ObjectsError } from '../ts/objects/index.js';
import { addProfileModule, createConfTree, FIXTURES, treeArgs, type ConfTree } from './helpers/proxy-tree.js';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist/lib/cli.js');
const PIN = '1234';
const ALL = 'pkcs11:model=profile%20fixture';
const FIRST = 'pkcs11:token=first';
const SEALED = 'pkcs11:token=sealed';

let tree: ConfTree;
let store: string;

beforeEach(() => {
  tree = createConfTree();
  store = join(tree.dir, 'profiles.store');
  addProfileModule(tree, store);
});
afterEach(() => tree.cleanup());

async function p11kit(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, ...treeArgs(tree)], { timeout: 60_000 });
    return { out: r.stdout, err: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { out: x.stdout, err: x.stderr, code: x.code };
  }
}

/** list-profiles --json, as { token label: profile names }. */
async function profilesByToken(uri = 'pkcs11:'): Promise<Record<string, string[]>> {
  const r = await p11kit('list-profiles', '--json', uri);
  expect(r.code, r.err).toBe(0);
  const found = JSON.parse(r.out) as { token: string; profiles: { id: number; name: string }[] }[];
  return Object.fromEntries(found.map((t) => [/token=([^;]*)/.exec(t.token)![1]!, t.profiles.map((p) => p.name)]));
}

describe('the CLI', () => {
  it('add-profile adds the profile to the token named; a later list-profiles shows it, plain and --json', async () => {
    const a = await p11kit('add-profile', '--profile', 'baseline-provider', '--json', FIRST, '--pin-value', PIN);
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out)).toEqual({ profile: 'baseline-provider', addedTo: [expect.stringMatching(/serial=P1;token=first$/)] });
    expect(await p11kit('list-profiles', FIRST)).toEqual({ out: 'baseline-provider\n', err: '', code: 0 });
    const l = await p11kit('list-profiles', '--json', FIRST);
    expect(JSON.parse(l.out)).toEqual([{ token: 'pkcs11:model=profile%20fixture;manufacturer=p11kit-wasm%20tests;serial=P1;token=first', profiles: [{ id: 1, name: 'baseline-provider' }] }]);
    expect(await profilesByToken()).toEqual({ first: ['baseline-provider'], second: [], sealed: ['public-certificates-token'] });
  });

  it('adding a profile the token has adds nothing and succeeds, whether named or numbered', async () => {
    expect((await p11kit('add-profile', '--profile', 'authentication-token', FIRST)).code).toBe(0);
    for (const profile of ['authentication-token', 'AUTHENTICATION-TOKEN', '3', '0x3']) {
      const again = await p11kit('add-profile', '--profile', profile, '--json', FIRST);
      expect(again.code, profile).toBe(0);
      expect(JSON.parse(again.out)).toEqual({ profile, addedTo: [] });
    }
    expect((await profilesByToken(FIRST)).first).toEqual(['authentication-token']);
  });

  it('delete-profile removes the profile; deleting it again removes nothing', async () => {
    await p11kit('add-profile', '--profile', 'complete-provider', FIRST);
    await p11kit('add-profile', '--profile', 'extended-provider', FIRST);
    const d = await p11kit('delete-profile', '--profile', 'complete-provider', '--json', FIRST);
    expect([d.code, JSON.parse(d.out)]).toEqual([0, { profile: 'complete-provider', deleted: 1 }]);
    expect((await profilesByToken(FIRST)).first).toEqual(['extended-provider']);
    expect(JSON.parse((await p11kit('delete-profile', '--profile', '5', '--json', FIRST)).out)).toEqual({ profile: '5', deleted: 0 });
    const plain = await p11kit('delete-profile', '--profile', 'extended-provider', FIRST);
    expect([plain.code, plain.out]).toEqual([0, '']);
    expect((await profilesByToken(FIRST)).first).toEqual([]);
  });

  it('a profile p11-kit has no name for is given by number and listed as p11-kit 0.25 lists it (0xAB (unknown))', async () => {
    expect((await p11kit('add-profile', '--profile', '0xab', FIRST)).code).toBe(0);
    expect(JSON.parse((await p11kit('add-profile', '--profile', '171', '--json', FIRST)).out).addedTo).toEqual([]);
    expect((await p11kit('add-profile', '--profile', 'hkdf-tls-token', FIRST)).code).toBe(0);
    expect((await p11kit('list-profiles', FIRST)).out.split('\n').sort()).toEqual(['', '0xAB (unknown)', 'hkdf-tls-token']);
    expect((await profilesByToken(FIRST)).first!.sort()).toEqual(['0xAB', 'hkdf-tls-token']);
    expect(JSON.parse((await p11kit('delete-profile', '--profile', '0xAB', '--json', FIRST)).out).deleted).toBe(1);
    for (const bad of ['0', '-1', '0x', 'baseline', '1.5']) expect((await p11kit('add-profile', '--profile', bad, FIRST)).code, bad).toBe(2);
  });

  it('p11-kit\'s other two names: vendor-defined (CKP_VENDOR_DEFINED) is added and listed by name; invalid-id (0) is listed but not added', async () => {
    const a = await p11kit('add-profile', '--profile', 'vendor-defined', FIRST);
    expect(a.code, a.err).toBe(0);
    expect(await p11kit('list-profiles', FIRST)).toEqual({ out: 'vendor-defined\n', err: '', code: 0 });
    expect(JSON.parse((await p11kit('list-profiles', '--json', FIRST)).out)[0].profiles).toEqual([{ id: 0x80000000, name: 'vendor-defined' }]);
    expect((await p11kit('add-profile', '--profile', 'invalid-id', FIRST)).code).toBe(2);
    // A token may still hold one (the fixture's store, written here as a module could have it).
    writeFileSync(store, '1 0:0900000000000000 601:0000000000000000 1:01 2:00\n');
    expect(await p11kit('list-profiles', 'pkcs11:token=second')).toEqual({ out: 'invalid-id\n', err: '', code: 0 });
  });

  it('list-profiles of a URI no token matches exits 3 (never a silent 0); of all tokens, lists what there is', async () => {
    const r = await p11kit('list-profiles', 'pkcs11:token=nothing');
    expect([r.code, r.out, r.err]).toEqual([3, '', 'p11kit: no token matches pkcs11:token=nothing\n']);
    expect((await p11kit('list-profiles', '--json', 'pkcs11:token=nothing;pin-value=1234')).err).not.toContain('1234');
    expect(await p11kit('list-profiles')).toEqual({ out: 'public-certificates-token\n', err: '', code: 0 });
  });

  it('a URI selecting several tokens adds to and deletes from each writable one, passing over the write-protected one', async () => {
    const a = await p11kit('add-profile', '--profile', 'public-certificates-token', '--json', ALL, '--pin-value', PIN);
    expect(a.code, a.err).toBe(0);
    expect((JSON.parse(a.out) as { addedTo: string[] }).addedTo.map((u) => /token=(\w+)$/.exec(u)![1])).toEqual(['first', 'second']);
    expect(await profilesByToken(ALL)).toEqual({ first: ['public-certificates-token'], second: ['public-certificates-token'], sealed: ['public-certificates-token'] });
    expect((await p11kit('list-profiles', ALL)).out).toBe('public-certificates-token\n'.repeat(3));
    const d = await p11kit('delete-profile', '--profile', 'public-certificates-token', '--json', ALL);
    expect(JSON.parse(d.out).deleted).toBe(2);
    expect(await profilesByToken()).toEqual({ first: [], second: [], sealed: ['public-certificates-token'] });
  });

  it('a write-protected token is refused: no writable token matches (exit 3), and it keeps its profile', async () => {
    for (const command of ['add-profile', 'delete-profile']) {
      const r = await p11kit(command, '--profile', 'public-certificates-token', SEALED, '--pin-value', PIN);
      expect(r.code, command).toBe(3);
      expect(r.err).toBe('p11kit: no writable token matches pkcs11:token=sealed\n');
      expect(r.out).toBe('');
    }
    expect((await profilesByToken(SEALED)).sealed).toEqual(['public-certificates-token']);
    expect((await p11kit('list-profiles', SEALED)).out).toBe('public-certificates-token\n');
  });

  it('a wrong PIN is refused (exit 4) before anything is added or deleted', async () => {
    await p11kit('add-profile', '--profile', 'baseline-provider', FIRST);
    for (const command of ['add-profile', 'delete-profile']) {
      const r = await p11kit(command, '--profile', command === 'add-profile' ? 'extended-provider' : 'baseline-provider', FIRST, '--pin-value', '9999');
      expect(r.code, command).toBe(4);
      expect(r.err).toContain('CKR_PIN_INCORRECT');
      expect(r.err).not.toContain('9999');
    }
    expect((await profilesByToken(FIRST)).first).toEqual(['baseline-provider']);
  });
});

describe('the library', () => {
  const entry = (initReserved?: string): ModuleEntry => ({
    name: 'profiles',
    options: {},
    path: join(FIXTURES, 'profile-module.so'),
    settings: { critical: true, trustPolicy: false, managed: true, logCalls: false, priority: 0, ...(initReserved ? { initReserved } : {}) },
  });

  it('addProfile creates a public token object of class CKO_PROFILE; listProfiles and deleteProfile see it', async () => {
    const proxy = await openProxyAsync({ modules: [entry()] });
    try {
      const asked: string[] = [];
      const pin = (t: { token: { label: string } }) => (asked.push(t.token.label), PIN);
      expect(await addProfile(proxy, ALL, 'extended-provider', { pin })).toEqual([expect.stringContaining('token=first'), expect.stringContaining('token=second')]);
      expect(asked).toEqual(['first', 'second']);
      const [made] = await proxy.async.findObjects(FIRST, { attributes: [CKA.CKA_CLASS, CKA.CKA_PROFILE_ID, CKA.CKA_TOKEN, CKA.CKA_PRIVATE] });
      expect(made!.attributes.map((a) => a.value)).toEqual([CKO.CKO_PROFILE, 2, true, false]);
      expect(await addProfile(proxy, FIRST, 2)).toEqual([]);
      expect((await listProfiles(proxy, ALL)).map((t) => t.profiles)).toEqual([[{ id: 2, name: 'extended-provider' }], [{ id: 2, name: 'extended-provider' }], [{ id: 4, name: 'public-certificates-token' }]]);
      expect(await deleteProfile(proxy, FIRST, 'extended-provider')).toBe(1);
      expect((await listProfiles(proxy, FIRST))[0]!.profiles).toEqual([]);
      expect((await listProfiles(proxy, 'pkcs11:token=second'))[0]!.profiles).toEqual([{ id: 2, name: 'extended-provider' }]);
    } finally {
      await proxy.async.release();
    }
  });

  it('the object outlives the session and the proxy (a token object, where p11-kit 0.25 makes a session object)', async () => {
    const first = await openProxyAsync({ modules: [entry(store)] });
    try {
      await addProfile(first, FIRST, 'hkdf-tls-token');
    } finally {
      await first.async.release();
    }
    const second = await openProxyAsync({ modules: [entry(store)] });
    try {
      expect((await listProfiles(second, FIRST))[0]!.profiles).toEqual([{ id: 6, name: 'hkdf-tls-token' }]);
    } finally {
      await second.async.release();
    }
  });

  it('refuses what it cannot do with ObjectsError: a write-protected or missing token (NOT_FOUND), an unknown profile (BAD_INPUT)', async () => {
    const proxy = await openProxyAsync({ modules: [entry()] });
    try {
      await expect(addProfile(proxy, SEALED, 'baseline-provider')).rejects.toMatchObject({ name: 'ObjectsError', code: 'NOT_FOUND' });
      await expect(deleteProfile(proxy, SEALED, 4)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(addProfile(proxy, 'pkcs11:token=nothing', 1)).rejects.toBeInstanceOf(ObjectsError);
      await expect(addProfile(proxy, FIRST, 'no-such')).rejects.toMatchObject({ code: 'BAD_INPUT' });
      await expect(addProfile(proxy, FIRST, 1, { pin: '0000' })).rejects.toThrow('CKR_PIN_INCORRECT');
      expect((await listProfiles(proxy, SEALED))[0]!.profiles).toEqual([{ id: 4, name: 'public-certificates-token' }]);
      expect((await listProfiles(proxy, FIRST))[0]!.profiles).toEqual([]);
    } finally {
      await proxy.async.release();
    }
  });
});
