// C_Initialize's pReserved crosses the RPC boundary: NSS softokn, which will not start without
// its configuration string there, isolated in a `p11-kit remote` child and configured by a
// module file's `x-init-reserved`, exactly as p11-kit passes it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../ts/registry/load.js';
import { CKR } from '../ts/rpc/constants.js';
import { RemoteModule, isolateModule, openAsyncModule } from '../ts/rpc/index.js';
import { createConfTree } from './helpers/proxy-tree.js';
import { processesMarked, waitFor } from './helpers/rpc-procs.js';

const SOFTOKN = '/usr/lib/x86_64-linux-gnu/libsoftokn3.so';
let dir: string;
let reserved: string;
const opened: RemoteModule[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'p11kit-rpc-nss-'));
  mkdirSync(join(dir, 'db'));
  execFileSync('certutil', ['-N', '-d', `sql:${join(dir, 'db')}`, '--empty-password'], { stdio: 'ignore' });
  reserved = `configdir='sql:${join(dir, 'db')}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=noModDB`;
});

afterAll(async () => {
  await Promise.all(opened.map((m) => m.close()));
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, P11KIT_RPC_TEST_MARK: dir });

describe('NSS softokn out of process', () => {
  it('starts with its configuration in pReserved, and refuses to without it (as in-process)', async () => {
    const bare = isolateModule(SOFTOKN, { env: env() });
    opened.push(bare);
    await expect(bare.async.initialize()).rejects.toMatchObject({ rv: CKR.CKR_ARGUMENTS_BAD });

    const nss = isolateModule(SOFTOKN, { env: env(), initReserved: reserved });
    opened.push(nss);
    await nss.async.initialize();
    const slots = await nss.async.getSlotList(true);
    expect(slots).toEqual([1, 2]);
    const labels = await Promise.all(slots.map(async (s) => (await nss.async.getTokenInfo(s)).label));
    expect(labels).toEqual(['NSS Generic Crypto Services', 'NSS Certificate DB']);
    const s = await nss.async.openSession(1);
    expect(await nss.async.generateRandom(s, 32)).toHaveLength(32);
    await nss.async.finalize();
  });

  it("takes x-init-reserved from the module's config when opened with isolate: true", async () => {
    const tree = createConfTree();
    tree.module('nss', `module: ${SOFTOKN}\nx-init-reserved: ${reserved}\n`);
    const registry = loadRegistry({ ...tree.registry, probe: false });
    tree.cleanup();
    const [entry] = registry.modules;
    expect(entry!.settings.initReserved).toBe(reserved);
    const nss = openAsyncModule(entry!, { isolate: true, env: env() }) as RemoteModule;
    opened.push(nss);
    expect(nss).toBeInstanceOf(RemoteModule);
    await nss.async.initialize();
    expect(await nss.async.getSlotList(true)).toEqual([1, 2]);
    await nss.async.finalize();
  });

  it('leaves no host processes behind', async () => {
    await Promise.all(opened.map((m) => m.close()));
    expect(await waitFor(() => processesMarked(dir).length === 0)).toBe(true);
  });
});
