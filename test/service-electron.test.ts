// The Electron wiring, without Electron (its package downloads a binary; nothing here can run
// it): a worker thread plays the utility process that hosts the service, Node MessageChannel
// ports dressed as Electron's MessagePortMain (portMainFromNodePort: `{ data }` message events,
// start(), close) play the main process's ports, and a plain port through the DOM-style
// EventTarget API plays the renderer's MessagePort. The protocol on the wire is the same.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CKA,
  CKM,
  CKO,
  connectPkcs11,
  openModule,
  Pkcs11Error,
  portMainEndpoint,
  portMainFromNodePort,
  ServiceDeadError,
  webPortEndpoint,
} from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const lib = pathToFileURL(join(new URL('..', import.meta.url).pathname, 'dist/lib')).href;

// What examples/electron/pkcs11-host.js does in a utility process, with worker_threads'
// parentPort standing in for Electron's process.parentPort.
const UTILITY = `
import { parentPort } from 'node:worker_threads';
import { servePkcs11, portMainEndpoint, portMainFromNodePort, FULL_GRANT } from '${lib}/service/index.js';
// The main process is trusted; a renderer may use the one module the host allows, nothing more.
const grants = { main: FULL_GRANT, renderer: { operations: ['read', 'use'], paths: ['/usr/lib/softhsm/libsofthsm2.so'] } };
parentPort.on('message', (m) => {
  if (m && m.type === 'pkcs11-connect') servePkcs11(portMainEndpoint(portMainFromNodePort(m.port)), { grant: grants[m.role] });
});
parentPort.postMessage('ready');
`;

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
let hsm: SoftHsm;
let slot: number;
beforeAll(() => {
  hsm = createSoftHsm();
  slot = hsm.initToken('electron', '12345678', '1234');
});
afterAll(() => hsm.cleanup());

describe('Electron adapter (MessagePortMain shape over Node MessageChannel)', () => {
  it('main-process and renderer clients share one utility-process service; its death rejects both', async () => {
    const utility = new Worker(new URL(`data:text/javascript,${encodeURIComponent(UTILITY)}`));
    await new Promise((r) => utility.once('message', r));
    const connect = (role: 'main' | 'renderer') => {
      const { port1, port2 } = new MessageChannel();
      utility.postMessage({ type: 'pkcs11-connect', port: port2, role }, [port2]);
      return port1;
    };
    // The main process talks MessagePortMain; the renderer gets a DOM-style MessagePort from its preload.
    const main = connectPkcs11(portMainEndpoint(portMainFromNodePort(connect('main'))));
    const renderer = connectPkcs11(webPortEndpoint(connect('renderer') as unknown as MessagePort));

    const mm = await main.openModule(SOFTHSM_MODULE);
    const ms = await mm.openSession(slot, { rw: true, pin: '1234' });
    const kp = await ms.generateKeyPair(
      CKM.CKM_EC_KEY_PAIR_GEN,
      [
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_EC_PARAMS, value: P256_OID },
        { type: CKA.CKA_VERIFY, value: true },
        { type: CKA.CKA_LABEL, value: 'from-main' },
      ],
      [
        { type: CKA.CKA_TOKEN, value: true },
        { type: CKA.CKA_SIGN, value: true },
        { type: CKA.CKA_LABEL, value: 'from-main' },
      ],
    );

    const rm = await renderer.openModule(SOFTHSM_MODULE);
    // Each client has its own service (own ids) in the one utility process: the renderer cannot
    // touch the main process's session by guessing its id.
    expect(rm.id).toBe(mm.id);
    await expect(renderer.supervisor.call('sign', ms.id, CKM.CKM_ECDSA, kp.privateKey, new Uint8Array(32))).rejects.toMatchObject({
      code: 'CKR_SESSION_HANDLE_INVALID',
    });
    await expect(rm.openSession(slot, { rw: true })).rejects.toMatchObject({ name: 'ServiceRefusedError', needs: 'manage' });
    const rs = await rm.openSession(slot, { pin: '1234' });
    const [key] = await rs.findAndRead(
      [
        { type: CKA.CKA_LABEL, value: 'from-main' },
        { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY },
      ],
      [CKA.CKA_LABEL],
    );
    expect(key).toMatchObject({ handle: kp.privateKey, attributes: [{ type: CKA.CKA_LABEL, value: 'from-main' }] });
    const hash = new Uint8Array(32).fill(7);
    const sigs = await Promise.all(Array.from({ length: 16 }, () => rs.sign(CKM.CKM_ECDSA, key.handle, hash)));
    for (const sig of sigs) expect(await ms.verify(CKM.CKM_ECDSA, kp.publicKey, hash, sig)).toBe(true);

    const err = await rs.sign(CKM.CKM_ECDSA, 0x4242, hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err).toMatchObject({ rv: 0x82, code: 'CKR_OBJECT_HANDLE_INVALID', fn: 'C_SignInit', module: 'libsofthsm2.so' });

    // The utility process goes away with calls in flight from both sides.
    const inFlight = [
      ...Array.from({ length: 8 }, () => rs.sign(CKM.CKM_ECDSA, key.handle, hash)),
      ...Array.from({ length: 8 }, () => ms.generateRandom(32)),
    ].map((p) => p.then(() => 'answered', (e: unknown) => e));
    await utility.terminate();
    const outcomes = await Promise.all(inFlight);
    const dead = outcomes.filter((o) => o instanceof ServiceDeadError);
    expect(dead.length + outcomes.filter((o) => o === 'answered').length).toBe(16);
    expect(dead.length).toBeGreaterThan(0); // posted as the worker was being terminated: never answered
    for (const d of dead) expect(d).toMatchObject({ reason: 'port closed', pending: true });
    await expect(rs.generateRandom(1)).rejects.toMatchObject({ name: 'ServiceDeadError', pending: false });
    await expect(ms.generateRandom(1)).rejects.toMatchObject({ name: 'ServiceDeadError', pending: false });
    expect(main.alive).toBe(false);
    expect(renderer.alive).toBe(false);

    // The dead "utility process" was a thread of this process: the next lifecycle step reclaims it.
    const local = openModule(SOFTHSM_MODULE);
    expect(local.state.holders).toBe(1);
    local.release();
    expect(local.state.phase).toBe('uninitialized');
  });

  it("the renderer's entry ('p11kit-wasm/service/browser') loads no Node built-in and no native code", () => {
    const root = join(new URL('..', import.meta.url).pathname, 'dist/lib');
    const seen = new Set<string>();
    const external: string[] = [];
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:^|;)\s*(?:import|export)(?!\s+type)[^;]*?from\s*['"]([^'"]+)['"]/gm)) {
        if (m[1].startsWith('.')) walk(resolve(dirname(file), m[1]));
        else external.push(`${relative(root, file)} -> ${m[1]}`);
      }
    };
    walk(join(root, 'service/browser.js'));
    expect(seen.size).toBeGreaterThan(5);
    expect(external.every((e) => /-> comlink(\/dist\/esm\/node-adapter\.mjs)?$/.test(e)), external.join('\n')).toBe(true);
    const pkg = JSON.parse(readFileSync(join(root, '../../package.json'), 'utf8'));
    expect(pkg.exports['./service/browser'].import).toBe('./dist/lib/service/browser.js');
  });

  it('the example app (examples/electron) parses and imports only what the library exports', async () => {
    const dir = new URL('../examples/electron/', import.meta.url).pathname;
    const files = readdirSync(dir).filter((f) => /\.m?js$/.test(f));
    expect(files.sort()).toEqual(['build.mjs', 'main.js', 'pkcs11-host.mjs', 'preload.js', 'renderer.mjs']);
    for (const f of files) execFileSync(process.execPath, ['--check', join(dir, f)]);
    const main = await import('../dist/lib/index.js' as string);
    const browser = await import('../dist/lib/service/browser.js' as string);
    for (const [f, mod] of [
      ['pkcs11-host.mjs', main],
      ['main.js', main],
      ['renderer.mjs', browser],
    ] as const) {
      const src = readFileSync(join(dir, f), 'utf8');
      const names = [...src.matchAll(/\{([^{}]*)\}\s*(?:=\s*await lib|from 'p11kit-wasm[^']*')/g)].flatMap((m) => m[1].split(',').map((n) => n.trim()));
      expect(names.length, f).toBeGreaterThan(1);
      for (const n of names) expect(typeof (mod as Record<string, unknown>)[n], `${f}: ${n}`).toMatch(/^(function|object)$/);
    }
  });

  it("the example type-checks against Electron's own type definitions (and the type-check catches a wrong API)", () => {
    const root = new URL('..', import.meta.url).pathname;
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    for (const config of ['tsconfig.json', 'tsconfig.renderer.json']) {
      execFileSync(process.execPath, [tsc, '-p', join(root, 'examples/electron', config)], { cwd: root, stdio: 'pipe' });
    }
    const electronTypes = readFileSync(join(root, 'node_modules/electron/electron.d.ts'), 'utf8');
    expect(electronTypes).toContain('utilityProcess');
    expect(electronTypes).toContain('parentPort');
    // The same check on a copy of main.js that uses an API Electron does not have fails.
    const bad = join(root, 'examples/electron/.typecheck-bad.js');
    const badConfig = join(root, 'examples/electron/.typecheck-bad.json');
    try {
      writeFileSync(bad, "const { app } = require('electron');\napp.whenReady().then(() => app.openTheWindow());\n");
      writeFileSync(badConfig, JSON.stringify({ extends: './tsconfig.json', files: ['.typecheck-bad.js', '../../node_modules/electron/electron.d.ts'] }));
      const r = (() => {
        try {
          execFileSync(process.execPath, [tsc, '-p', badConfig], { cwd: root, stdio: 'pipe' });
          return '';
        } catch (e) {
          return String((e as { stdout?: Buffer }).stdout);
        }
      })();
      expect(r).toContain("Property 'openTheWindow' does not exist on type 'App'");
    } finally {
      rmSync(bad, { force: true });
      rmSync(badConfig, { force: true });
    }
  }, 120_000);

  it('the renderer bundle (make build: esbuild, browser platform) holds no Node built-in and no native code', async () => {
    const { bundleRenderer } = await import('../examples/electron/build.mjs' as string);
    const outfile = join(tmpdir(), `p11kit-renderer-${process.pid}.js`);
    try {
      const { inputs } = (await bundleRenderer({ outfile })) as { inputs: string[] };
      expect(inputs.some((i) => i.includes('service/browser.js'))).toBe(true);
      expect(inputs.filter((i) => /^node:|koffi|bridge\/(loader|module|modules)\.js/.test(i))).toEqual([]);
      const code = readFileSync(outfile, 'utf8');
      expect(code).not.toMatch(/from\s*['"]node:|require\(['"]/);
    } finally {
      rmSync(outfile, { force: true });
      rmSync(`${outfile}.map`, { force: true });
    }
  });
});
