// The renderer side in a real browser engine: Debian's Chromium (headless, driven by
// playwright-core with the system binary — nothing downloaded) loads a bundle of the library's
// browser entry under a CSP like a sandboxed renderer's, and talks to a real service host (a
// process of its own, serving SoftHSM2 under a renderer's grant) through a test-only WebSocket
// relay on loopback. It proves: no Node built-in in the bundle or the page, sign + verify on
// SoftHSM2, typed errors as their classes (wrong PIN, refused grant), bytes intact both ways, and
// ServiceDeadError when the host dies. Electron itself is not run (see examples/electron).
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { CKA, CKM, CKO, CKU, openModule } from '../ts/index.js';
import { decodeWire, encodeWire } from './browser/wire.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const ROOT = new URL('..', import.meta.url).pathname;
const PIN = '1234';
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const CHROMIUM = '/usr/bin/chromium';

let hsm: SoftHsm;
let slot: number;
let work: string;
let bundle: string;
let bundleInputs: string[];
let shim: string;
let server: Server;
let wss: WebSocketServer;
let origin: string;
let context: BrowserContext;
let page: Page;
let host: ChildProcess | undefined;
let publicPoint: Uint8Array;
const requests: string[] = [];
const cspViolations: string[] = [];

/** The page's CSP: what a sandboxed renderer would get — our own scripts, our relay, nothing else. */
const csp = (wsOrigin: string) =>
  `default-src 'none'; script-src 'self'; connect-src ${wsOrigin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

beforeAll(async () => {
  hsm = createSoftHsm();
  slot = hsm.initToken('chromium', '12345678', PIN);
  // Keys the page will use, made in-thread; then SoftHSM2 is finalized again here (its login
  // state is per process, and the host is another process anyway).
  const local = openModule(SOFTHSM_MODULE);
  const s = local.openSession(slot, { rw: true });
  s.login(CKU.CKU_USER, PIN);
  const kp = s.generateKeyPair(
    CKM.CKM_EC_KEY_PAIR_GEN,
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_EC_PARAMS, value: P256_OID },
      { type: CKA.CKA_VERIFY, value: true },
      { type: CKA.CKA_LABEL, value: 'browser' },
    ],
    [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_SIGN, value: true },
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_LABEL, value: 'browser' },
    ],
  );
  publicPoint = s.getAttributeValue(kp.publicKey, [CKA.CKA_EC_POINT])[0].value as Uint8Array;
  s.generateKey(CKM.CKM_AES_KEY_GEN, [
    { type: CKA.CKA_TOKEN, value: true },
    { type: CKA.CKA_VALUE_LEN, value: 32 },
    { type: CKA.CKA_ENCRYPT, value: true },
    { type: CKA.CKA_DECRYPT, value: true },
    { type: CKA.CKA_LABEL, value: 'aes' },
  ]);
  s.logout();
  s.close();
  local.release();

  work = mkdtempSync(join(tmpdir(), 'p11kit-chromium-'));
  const built = await build({
    entryPoints: [join(ROOT, 'test/browser/page.ts')],
    outfile: join(work, 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    metafile: true,
    logLevel: 'silent',
    alias: { 'p11kit-wasm/service/browser': join(ROOT, 'dist/lib/service/browser.js') },
  });
  bundle = readFileSync(join(work, 'page.js'), 'utf8');
  shim = (await build({ entryPoints: [join(ROOT, 'test/browser/preload-shim.ts')], bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'silent' })).outputFiles[0].text;
  const { bundleRenderer } = await import('../examples/electron/build.mjs' as string);
  await bundleRenderer(); // what `make build` does (examples/electron/dist/renderer.js)
  bundleInputs = Object.keys(built.metafile.inputs);

  // One loopback server: the page and its script over HTTP, the relay over WebSocket.
  server = createServer((req, res) => {
    const wsOrigin = origin.replace('http:', 'ws:');
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html', 'content-security-policy': csp(wsOrigin) });
      res.end('<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="/page.js"></script>');
    } else if (req.url === '/electron/index.html' || req.url === '/electron/dist/renderer.js') {
      // The example as shipped: its own index.html (with its own CSP) and the bundle make build made.
      const file = join(ROOT, 'examples', req.url);
      res.writeHead(200, { 'content-type': req.url.endsWith('.html') ? 'text/html' : 'text/javascript' });
      res.end(readFileSync(file));
    } else if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
  wss = new WebSocketServer({ server, maxPayload: 32 << 20 });
  wss.on('connection', (ws: WebSocket) => relay(ws));

  context = await chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.title === 'p11test ready');
}, 120_000);

afterAll(async () => {
  await context?.close();
  host?.kill('SIGKILL');
  wss?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  hsm?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The relay: one host process per connection; frames decoded into structured-clone messages and back. */
function relay(ws: WebSocket): void {
  const child = fork(join(ROOT, 'test/browser/host.mjs'), [new URL('../dist/lib/index.js', import.meta.url).href], {
    env: hsm.env,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  host = child;
  const queue: unknown[] = [];
  let ready = false;
  child.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && 'hostReady' in m) {
      ready = true;
      for (const q of queue.splice(0)) child.send(q as never);
      return;
    }
    ws.send(encodeWire(m));
  });
  child.on('exit', () => ws.close(1011, 'service host gone'));
  ws.on('message', (data) => {
    const m = decodeWire(String(data));
    if (ready) child.send(m as never);
    else queue.push(m);
  });
  ws.on('close', () => child.kill('SIGKILL'));
}

type P11Test = typeof import('./browser/page.js') extends never ? never : Record<string, (...a: unknown[]) => Promise<unknown>>;
const call = <T>(name: string, ...args: unknown[]): Promise<T> =>
  page.evaluate(([n, a]) => (globalThis as unknown as { p11test: P11Test }).p11test[n as string](...(a as unknown[])), [name, args] as const) as Promise<T>;

describe('the Electron example page in headless Chromium', () => {
  it('index.html and its renderer bundle run as shipped, under their own CSP, with a port from a preload stand-in', async () => {
    const example = await context.newPage();
    const violations: string[] = [];
    example.on('console', (m) => /Content Security Policy/i.test(m.text()) && violations.push(m.text()));
    try {
      await example.addInitScript({ content: shim });
      await example.goto(`${origin}/electron/index.html`);
      await example.waitForFunction(() => /refused as expected|Error:/.test(document.getElementById('out')?.textContent ?? ''), undefined, { timeout: 60_000 });
      const out = await example.textContent('#out');
      expect(out).toMatch(/connected to service generation 1/);
      expect(out).toMatch(/token "chromium": 16 random bytes [0-9a-f]{32}/);
      expect(out).toContain(`SHA-256("hello") = ${createHash('sha256').update('hello').digest('hex')}`);
      expect(out).toMatch(/0 private key\(s\) visible without logging in/);
      expect(out).toMatch(/refused as expected: .*not granted 'manage'/);
      expect(violations).toEqual([]);
    } finally {
      await example.close();
    }
  });
});

describe('the browser entry in headless Chromium, against a real service host', () => {
  it('the bundle and the page hold no Node built-in; the page loads only from its own origin', async () => {
    expect(bundleInputs.some((i) => i.endsWith('dist/lib/service/browser.js'))).toBe(true);
    expect(bundleInputs.filter((i) => /^node:|koffi|bridge\/(loader|module|modules|memory)\.js/.test(i))).toEqual([]);
    expect(bundle).not.toMatch(/from\s*['"]node:|\brequire\(['"]/);
    // No Node in the page, and its CSP in force: eval and a fetch anywhere but the relay are refused.
    expect(await call('env')).toEqual({ eval: 'blocked', fetchElsewhere: 'blocked', process: 'undefined', require: 'undefined', Buffer: 'undefined', module: 'undefined' });
    expect(await call('connect', `${origin.replace('http:', 'ws:')}/relay`)).toBe(0);
    expect(requests).toContain(`${origin}/page.js`);
    expect(requests.every((u) => u.startsWith(origin) || u.startsWith(origin.replace('http:', 'ws:')))).toBe(true);
    cspViolations.length = 0; // the page's own probes (eval, a fetch elsewhere) were meant to be refused
  });

  it('typed errors arrive as their classes: wrong PIN, refused path, refused manage, unknown module', async () => {
    const e = await call<Record<string, Record<string, unknown>>>('errors', slot);
    expect(e.wrongPin).toMatchObject({ name: 'Pkcs11Error', isPkcs11Error: true, code: 'CKR_PIN_INCORRECT', callerStack: true });
    expect(e.path).toMatchObject({ name: 'ServiceRefusedError', isRefused: true });
    expect(e.manage).toMatchObject({ name: 'ServiceRefusedError', isRefused: true, needs: 'manage' });
    expect(e.rw).toMatchObject({ isRefused: true, needs: 'manage' });
    expect(e.unknown).toMatchObject({ name: 'UnknownModuleError', isUnknownModule: true, available: [] });
  });

  it('signs and verifies on SoftHSM2; node:crypto accepts the signature', async () => {
    const message = Buffer.from('signed in Chromium');
    const hash = createHash('sha256').update(message).digest();
    const r = await call<{ signature: number[]; verifies: boolean; tamperedVerifies: boolean }>('signVerify', slot, PIN, 'browser', [...hash]);
    expect(r.verifies).toBe(true);
    expect(r.tamperedVerifies).toBe(false);
    const point = publicPoint.subarray(2);
    const key = createPublicKey({ key: Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), point]), format: 'der', type: 'spki' });
    // CKM_ECDSA signed SHA-256(message): node:crypto checks it as an ECDSA-SHA256 signature of the message.
    expect(r.signature).toHaveLength(64);
    expect(nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(r.signature))).toBe(true);
  });

  it('moves binary data intact both ways', async () => {
    const r = await call<{ cipher: number[]; roundTrip: boolean; digest1MiB: string; digestStream8MiB: string; random: number }>('binary', slot, PIN, 'aes');
    expect(r.roundTrip).toBe(true);
    expect(r.random).toBe(33);
    const mib = Buffer.alloc(1 << 20);
    for (let i = 0; i < mib.length; i++) mib[i] = (i * 7 + 3) & 0xff;
    expect(r.digest1MiB).toBe(createHash('sha256').update(mib).digest('hex'));
    const eight = createHash('sha256');
    for (let n = 0; n < 8; n++) eight.update(mib);
    expect(r.digestStream8MiB).toBe(eight.digest('hex'));
    // The ciphertext the page got decrypts here, in-thread, to every byte value in order.
    const local = openModule(SOFTHSM_MODULE);
    const s = local.openSession(slot);
    try {
      s.login(CKU.CKU_USER, PIN);
      const [aes] = s.findAllObjects([{ type: CKA.CKA_LABEL, value: 'aes' }, { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY }]);
      s.decryptInit({ mechanism: CKM.CKM_AES_CBC_PAD, parameter: new Uint8Array(16).fill(9) }, aes);
      const plain = s.decrypt(new Uint8Array(r.cipher));
      expect([...plain]).toEqual(Array.from({ length: 4096 }, (_, i) => i & 0xff));
    } finally {
      s.close();
      local.release();
    }
  });

  it('the host dies under a pending call: ServiceDeadError, in flight and after', async () => {
    expect(await call('startPending')).toBe(true);
    const victim = host!;
    const gone = new Promise((r) => victim.once('exit', r));
    victim.kill('SIGKILL');
    await gone;
    const r = await call<Record<string, Record<string, unknown> | boolean>>('afterDeath', slot);
    expect(r.pending).toMatchObject({ name: 'ServiceDeadError', isDead: true, pending: true });
    expect(r.later).toMatchObject({ name: 'ServiceDeadError', isDead: true, pending: false });
    expect(r.alive).toBe(false);
    expect(cspViolations).toEqual([]);
  });
});
