// A TPM-backed token: libtpm2_pkcs11 (loaded by path, never registered with p11-kit) on a
// private swtpm, with a token, PIN and P-256 key made by pkcs11-tool. The key signs through
// every path — a managed module in this thread, the proxy (sync and async) found by URI, the
// service in a worker thread, the p11kit CLI — and every signature verifies outside the token
// (node:crypto with the token's public point). Then 16 workers cycle the lifecycle on it.
import { spawnSync } from 'node:child_process';
import { createPublicKey, createHash, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKM, CKO, CKU, createPkcs11Worker, openModule, openProxy } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { expectCleanRun, runStress } from './helpers/stress-run.js';
import { startSwtpm, tpm2Module, type Swtpm } from './devices/swtpm.js';

const TOKEN = { label: 'tpm token', soPin: '87654321', pin: '246810', keyLabel: 'tpm signer', keyId: '5a' };
const TOKEN_URI = `pkcs11:token=${encodeURIComponent(TOKEN.label)}`;
const KEY_URI = `${TOKEN_URI};object=${encodeURIComponent(TOKEN.keyLabel)}`;
const DATA = Buffer.from('signed inside a (software) TPM');
const DIGEST = createHash('sha256').update(DATA).digest();
const PRIVATE = [{ type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }, { type: CKA.CKA_LABEL, value: TOKEN.keyLabel }];
const PUBLIC = [{ type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY }, { type: CKA.CKA_LABEL, value: TOKEN.keyLabel }];

const module = tpm2Module();
let tpm: Swtpm;
let tree: ConfTree;
let work: string;
let publicKey: KeyObject;
beforeAll(async () => {
  if (!module) return;
  tpm = await startSwtpm(module, TOKEN);
  Object.assign(process.env, tpm.env); // read by libtpm2_pkcs11 at C_Initialize, in every thread
  tree = createConfTree();
  tree.module('tpm2', `module: ${module}\n`);
  work = mkdtempSync(join(tmpdir(), 'p11kit-tpmtest-'));
});
afterAll(async () => {
  await tpm?.stop();
  tree?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The token's P-256 public key as node:crypto sees it (from its CKA_EC_POINT). */
function spki(ecPoint: Uint8Array): KeyObject {
  // CKA_EC_POINT is the DER OCTET STRING around the uncompressed point.
  const point = ecPoint[0] === 0x04 && ecPoint[1] === ecPoint.length - 2 ? ecPoint.subarray(2) : ecPoint;
  const prefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
  return createPublicKey({ key: Buffer.concat([prefix, point]), format: 'der', type: 'spki' });
}

const verifiesOutside = (sig: Uint8Array) => nodeVerify('sha256', DATA, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);

describe.skipIf(!module)('a TPM-backed token (libtpm2_pkcs11 on a private swtpm)', { timeout: 180_000 }, () => {
  it('in-thread: a managed module logs in, signs with the TPM key and verifies', () => {
    const m = openModule(module!);
    try {
      const [slot] = m.getSlotList(true);
      expect(m.getTokenInfo(slot).label).toBe(TOKEN.label);
      const s = m.openSession(slot);
      s.login(CKU.CKU_USER, TOKEN.pin);
      const [key] = s.findAllObjects(PRIVATE);
      const [pub] = s.findAllObjects(PUBLIC);
      expect(key).toBeDefined();
      const [point] = s.getAttributeValue(pub, [CKA.CKA_EC_POINT]);
      publicKey = spki(point.value as Uint8Array);
      s.signInit(CKM.CKM_ECDSA, key);
      const sig = s.sign(DIGEST);
      expect(sig.length).toBe(64);
      expect(verifiesOutside(sig)).toBe(true);
      s.verifyInit(CKM.CKM_ECDSA, pub);
      expect(s.verify(DIGEST, sig)).toBe(true);
      s.close();
    } finally {
      m.release();
    }
  });

  it('proxy: the token found by URI in a config tree signs, sync and async', async () => {
    const p = openProxy({ registry: tree.registry });
    try {
      expect(p.findTokens(TOKEN_URI).map((t) => t.module)).toEqual(['tpm2']);
      const s = p.openSession(TOKEN_URI);
      s.login(CKU.CKU_USER, TOKEN.pin);
      const [key] = s.findAllObjects(PRIVATE);
      s.signInit(CKM.CKM_ECDSA, key);
      expect(verifiesOutside(s.sign(DIGEST))).toBe(true);
      await s.async.signInit(CKM.CKM_ECDSA, key);
      expect(verifiesOutside(await s.async.sign(DIGEST))).toBe(true);
      // A session opened by the async path shares the login (closing the last session would end it).
      const a = await p.async.openSession(TOKEN_URI);
      s.close();
      await a.async.signInit(CKM.CKM_ECDSA, key);
      expect(verifiesOutside(await a.async.sign(DIGEST))).toBe(true);
      await a.async.close();
    } finally {
      p.release();
    }
  });

  it('service: a worker thread signs with the TPM key and verifies', async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(module!);
      const [entry] = await mod.slots(true);
      expect(entry.token?.label).toBe(TOKEN.label);
      const s = await mod.openSession(entry.slot, { pin: TOKEN.pin });
      const [key] = await s.findObjects(PRIVATE);
      const [pub] = await s.findObjects(PUBLIC);
      const sig = await s.sign(CKM.CKM_ECDSA, key, DIGEST);
      expect(verifiesOutside(sig)).toBe(true);
      expect(await s.verify(CKM.CKM_ECDSA, pub, DIGEST, sig)).toBe(true);
      await s.close();
    } finally {
      await p11.close();
    }
  });

  it('CLI: p11kit sign and verify with the key named by URI, from the config tree', () => {
    const data = join(work, 'data');
    const pinFile = join(work, 'pin');
    writeFileSync(data, DATA);
    writeFileSync(pinFile, TOKEN.pin, { mode: 0o600 });
    const where = [
      '--system-config', tree.registry.systemConfig!, '--system-modules', tree.registry.systemModules!, '--package-modules', tree.registry.packageModules!,
      '--user-config', tree.registry.userConfig!, '--user-modules', tree.registry.userModules!,
    ];
    const cli = (args: string[]) => spawnSync(process.execPath, [join(process.cwd(), 'dist/lib/cli.js'), ...args, ...where], { encoding: 'utf8', timeout: 60_000 });
    const signed = cli(['sign', KEY_URI, '--in', data, '--pin-source', pinFile]);
    expect(signed.status, signed.stderr).toBe(0);
    const hex = signed.stdout.trim();
    expect(verifiesOutside(Buffer.from(hex, 'hex'))).toBe(true);
    // libtpm2_pkcs11 wants a logged-in user even for C_VerifyInit with a public key.
    const checked = cli(['verify', KEY_URI, '--in', data, '--signature', hex, '--pin-source', pinFile]);
    expect(checked.status, checked.stderr).toBe(0);
    expect(checked.stdout).toBe('signature: valid\n');
  });

  it('lifecycle: 16 workers cycling libtpm2_pkcs11, everything reclaimed', async () => {
    // swtpm serves one connection at a time: nothing in this process holds the module now.
    const r = await runStress({ path: module, cycles: 5 }, process.env);
    expectCleanRun(r, { cycles: 5 });
  });
});
