// import-object, export-object, delete-object, list-profiles, add-profile, delete-profile
// (p11-kit 0.25's commands; 0.24.1, the oracle here, has none of them): behaviour against
// SoftHSM2 through the CLI and the library, checked with independent tools — OpenSSL made the
// inputs and reads the exports, pkcs11-tool reads what landed on the token — and hostile files.
import { execFile, execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKO, openProxyAsync, type ModuleEntry } from '../ts/index.js';
import { deleteObject, exportObject, importObject, listProfiles, ObjectsError, readObjects } from '../ts/objects/index.js';
import { createNssDb, NSS_SOFTOKN_MODULE } from './helpers/nss.js';
import { SOFTHSM, USER_PIN, makeSoftHsmToken, type SoftHsmToken } from './helpers/rpc-softhsm.js';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist/lib/cli.js');
let store: SoftHsmToken;
let certPem: string;
let ecPubPem: string;
let rsaPubDer: Buffer;

const file = (name: string, data: string | Uint8Array) => {
  const path = join(store.dir, name);
  writeFileSync(path, data);
  return path;
};

/** The CLI on our token store: stdout, stderr and the exit code. */
async function p11kit(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, '--provider', SOFTHSM, '--pin-value', USER_PIN], { env: store.env, timeout: 60_000 });
    return { out: r.stdout, err: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { out: x.stdout, err: x.stderr, code: x.code };
  }
}

/** What pkcs11-tool (OpenSC, an independent reader) lists on the token. */
function pkcs11Tool(): string {
  return execFileSync('pkcs11-tool', ['--module', SOFTHSM, '--login', '--pin', USER_PIN, '-O'], { env: store.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

beforeAll(() => {
  store = makeSoftHsmToken('objects');
  process.env.SOFTHSM2_CONF = store.conf;
  const key = join(store.dir, 'ec.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', key, '-out', join(store.dir, 'cert.pem'), '-days', '2', '-nodes', '-subj', '/CN=import test/O=p11kit'], { stdio: 'ignore' });
  certPem = readFileSync(join(store.dir, 'cert.pem'), 'utf8');
  ecPubPem = execFileSync('openssl', ['pkey', '-in', key, '-pubout'], { encoding: 'utf8' });
  const rsa = join(store.dir, 'rsa.key');
  execFileSync('openssl', ['genrsa', '-out', rsa, '2048'], { stdio: 'ignore' });
  rsaPubDer = execFileSync('openssl', ['pkey', '-in', rsa, '-pubout', '-outform', 'DER']);
});

afterAll(() => store?.cleanup());

describe('import-object', () => {
  it('imports a PEM certificate with its subject, prints its URI, and export-object gives the same PEM back', async () => {
    const r = await p11kit('import-object', '--file', file('cert.pem', certPem), '--label', 'the-cert', 'pkcs11:token=objects');
    expect(r.code).toBe(0);
    expect(r.out.trim()).toMatch(/^pkcs11:.*token=objects;object=the-cert;type=cert$/);
    expect(pkcs11Tool()).toContain('the-cert');
    const back = await p11kit('export-object', r.out.trim());
    expect(back.code).toBe(0);
    expect(back.out).toBe(certPem);
  });

  it('imports an EC public key (PEM) with --id, and an RSA public key (DER); exports match OpenSSL\'s', async () => {
    const ec = await p11kit('import-object', '--file', file('ec.pub', ecPubPem), '--label', 'ec-pub', '--id', '0a:0b', 'pkcs11:token=objects');
    expect(ec.code).toBe(0);
    expect(ec.out).toContain('id=%0A%0B;object=ec-pub;type=public');
    const rsa = await p11kit('import-object', '--file', file('rsa.der', rsaPubDer), '--label', 'rsa-pub', '--json', 'pkcs11:token=objects');
    expect(rsa.code).toBe(0);
    expect(JSON.parse(rsa.out)).toEqual([{ kind: 'public', uri: expect.stringContaining('object=rsa-pub;type=public') }]);
    expect((await p11kit('export-object', 'pkcs11:token=objects;object=ec-pub')).out).toBe(ecPubPem);
    const rsaPem = (await p11kit('export-object', 'pkcs11:token=objects;object=rsa-pub')).out;
    expect(createPublicKey(rsaPem).export({ type: 'spki', format: 'der' })).toEqual(rsaPubDer);
    expect(pkcs11Tool()).toMatch(/Public Key Object; RSA 2048 bits\s+label:\s+rsa-pub/);
  });

  it('imports a secret key (--secret aes), sensitive: export-object refuses it (exit 5)', async () => {
    const r = await p11kit('import-object', '--file', file('aes.bin', new Uint8Array(16).fill(7)), '--secret', 'aes', '--label', 'aes-key', 'pkcs11:token=objects');
    expect(r.code).toBe(0);
    expect(r.out).toContain('object=aes-key;type=secret-key');
    const e = await p11kit('export-object', 'pkcs11:token=objects;object=aes-key');
    expect(e.code).toBe(5);
    expect(e.err).toContain('unsupported object class');
  });

  it('refuses what it cannot read, naming it (exit 2), and imports nothing', async () => {
    const before = pkcs11Tool();
    const cases: [string, string | Uint8Array, string][] = [
      ['key.pem', readFileSync(join(store.dir, 'ec.key'), 'utf8'), 'unrecognized PEM label: PRIVATE KEY'],
      ['junk.bin', new Uint8Array([0x30, 0x82, 0xff, 0xff, 1, 2]), 'DER length runs past the end'],
      ['text.txt', 'hello', 'neither PEM nor DER'],
      ['bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'not a valid X.509 certificate'],
    ];
    for (const [name, data, message] of cases) {
      const r = await p11kit('import-object', '--file', file(name, data), 'pkcs11:token=objects');
      expect(r.code, name).toBe(2);
      expect(r.err).toContain(message);
    }
    expect((await p11kit('import-object', '--file', join(store.dir, 'missing'), 'pkcs11:token=objects')).code).toBe(6);
    expect((await p11kit('import-object', '--file', file('c2.pem', certPem), 'pkcs11:token=nosuch')).code).toBe(3);
    expect(pkcs11Tool()).toBe(before);
  });
});

describe('export-object and delete-object', () => {
  it('refuse a URI matching several objects (exit 3, listing them) and one matching none', async () => {
    const many = await p11kit('export-object', 'pkcs11:token=objects;type=public');
    expect(many.code).toBe(3);
    expect(many.err).toMatch(/2 objects match/);
    expect(many.err).toContain('object=ec-pub');
    expect(many.err).toContain('object=rsa-pub');
    expect((await p11kit('delete-object', 'pkcs11:token=objects;object=nothing')).code).toBe(3);
  });

  it('delete-object destroys the one object named, and only it', async () => {
    const r = await p11kit('delete-object', '--json', 'pkcs11:token=objects;object=rsa-pub');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).deleted).toContain('object=rsa-pub');
    const left = pkcs11Tool();
    expect(left).not.toContain('rsa-pub');
    expect(left).toContain('ec-pub');
    expect((await p11kit('delete-object', 'pkcs11:token=objects;object=rsa-pub')).code).toBe(3);
  });
});

describe('profiles', () => {
  it('list-profiles lists none on SoftHSM2 (PKCS#11 2.40), add-profile reports the module refusing CKO_PROFILE (exit 5)', async () => {
    const l = await p11kit('list-profiles', '--json', 'pkcs11:token=objects');
    expect(l.code).toBe(0);
    expect(JSON.parse(l.out)).toEqual([{ token: expect.stringContaining('token=objects'), profiles: [] }]);
    const a = await p11kit('add-profile', '--profile', 'public-certificates-token', 'pkcs11:token=objects');
    expect(a.code).toBe(5);
    expect(a.err).toContain('CKR_');
    expect((await p11kit('add-profile', '--profile', 'no-such-profile', 'pkcs11:token=objects')).code).toBe(2);
    const d = await p11kit('delete-profile', '--profile', '4', '--json', 'pkcs11:token=objects');
    expect(JSON.parse(d.out)).toEqual({ profile: '4', deleted: 0 });
  });
});

describe('the library', () => {
  const softhsm: ModuleEntry = { name: 'softhsm', options: { module: SOFTHSM }, path: SOFTHSM, settings: { critical: true, trustPolicy: false, managed: true, logCalls: false, priority: 0 } };

  it('importObject and exportObject round-trip a certificate; the token holds p11-kit\'s attributes', async () => {
    const proxy = await openProxyAsync({ modules: [softhsm] });
    try {
      const [made] = await importObject(proxy, 'pkcs11:token=objects', new TextEncoder().encode(certPem), { label: 'lib-cert', pin: USER_PIN });
      expect(made!.kind).toBe('cert');
      expect((await exportObject(proxy, made!.uri, { pin: USER_PIN })).pem).toBe(certPem);
      const [found] = await proxy.async.findObjects('pkcs11:token=objects;object=lib-cert', { attributes: [CKA.CKA_CLASS, CKA.CKA_SUBJECT, CKA.CKA_TOKEN, CKA.CKA_PRIVATE] });
      const x509 = new X509Certificate(certPem);
      expect(found!.attributes.map((a) => a.value)).toEqual([CKO.CKO_CERTIFICATE, expect.any(Uint8Array), true, false]);
      // CKA_SUBJECT is the DER Name: it names the same subject OpenSSL reads.
      expect(Buffer.from(found!.attributes[1]!.value as Uint8Array).toString('latin1')).toContain('import test');
      expect(x509.subject).toContain('CN=import test');
      expect((await listProfiles(proxy, 'pkcs11:token=objects'))[0]!.profiles).toEqual([]);
    } finally {
      await proxy.async.release();
    }
  });

  it('readObjects bounds its input and throws ObjectsError BAD_INPUT', () => {
    expect(() => readObjects(new Uint8Array(2 * 1024 * 1024))).toThrow(ObjectsError);
    expect(() => readObjects(new Uint8Array([0x30, 0x03, 0x30, 0x01, 0x06, 0]))).toThrow(/BAD_INPUT|DER|certificate|runs past/);
    expect(() => readObjects(new Uint8Array(0), { secret: 'generic' })).toThrow('an empty secret');
    expect(() => readObjects(new Uint8Array(5), { secret: 'aes' })).toThrow('16, 24 or 32');
    expect(readObjects(new TextEncoder().encode(certPem + ecPubPem)).map((o) => o.kind)).toEqual(['cert', 'public']);
  });
});

describe('NSS softokn', () => {
  it('imports a certificate into the NSS database (certutil lists it), exports and deletes it', async () => {
    const db = createNssDb();
    const nss: ModuleEntry = {
      name: 'nss',
      options: { module: NSS_SOFTOKN_MODULE },
      path: NSS_SOFTOKN_MODULE,
      settings: { critical: true, trustPolicy: false, managed: true, logCalls: false, priority: 0, initReserved: db.reservedString },
    };
    const proxy = await openProxyAsync({ modules: [nss] });
    try {
      const token = 'pkcs11:token=NSS%20Certificate%20DB';
      const [made] = await importObject(proxy, token, new TextEncoder().encode(certPem), { label: 'nss-cert' });
      expect(made!.uri).toContain('object=nss-cert;type=cert');
      expect(execFileSync('certutil', ['-L', '-d', `sql:${db.dir}`], { encoding: 'utf8' })).toContain('nss-cert');
      expect((await exportObject(proxy, `${token};object=nss-cert;type=cert`)).pem).toBe(certPem);
      await deleteObject(proxy, `${token};object=nss-cert;type=cert`);
      expect(execFileSync('certutil', ['-L', '-d', `sql:${db.dir}`], { encoding: 'utf8' })).not.toContain('nss-cert');
    } finally {
      await proxy.async.release();
      db.cleanup();
    }
  });
});
