// A SoftHSM2 token of its own for each test file: a temp token directory, a softhsm2.conf
// pointing at it, and the environment that makes SoftHSM2 (in a host process or in-process) use it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModuleEntry } from '../../ts/registry/types.js';
import { RpcClient } from '../../ts/rpc/index.js';

export const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
export const SO_PIN = '12345678';
export const USER_PIN = '1234';
/** DER of the P-256 curve OID, CKA_EC_PARAMS of an EC P-256 key. */
export const P256 = Uint8Array.of(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07);

export interface SoftHsmToken {
  /** The temp directory; its name also marks every process started for this token. */
  dir: string;
  conf: string;
  label: string;
  /** process.env plus SOFTHSM2_CONF. */
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export function makeSoftHsmToken(label = 'rpc-test'): SoftHsmToken {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-rpc-'));
  const tokens = join(dir, 'tokens');
  execFileSync('mkdir', ['-p', tokens]);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', SO_PIN, '--pin', USER_PIN], { env, stdio: 'ignore' });
  return { dir, conf, label, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** SoftHSM2 as the one critical module of a server or proxy under test. */
export const softhsmEntry: ModuleEntry = { name: 'softhsm', options: { module: SOFTHSM }, path: SOFTHSM, settings: { critical: true, trustPolicy: false, managed: true, logCalls: false, priority: 0 } };

/** An initialized RPC client of the server at `address`. */
export async function connectClient(address: string): Promise<RpcClient> {
  const c = new RpcClient({ remote: address });
  await c.initialize();
  return c;
}

/** The slot of the token with this label (SoftHSM2 orders its slots by a random id). */
export async function slotOf(client: RpcClient, label: string): Promise<number> {
  for (const slot of await client.getSlotList(true)) if ((await client.getTokenInfo(slot)).label === label) return slot;
  throw new Error(`no token ${label}`);
}
