// Our server and p11-kit server (0.24.1, the oracle) side by side on one SoftHSM2 store, as the
// server suites compare them.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { serveTokens, type TokenServer } from '../../ts/server/index.js';
import { startServer, type ServerHandle } from './rpc-procs.js';
import { SOFTHSM, USER_PIN, softhsmEntry, type SoftHsmToken } from './rpc-softhsm.js';

export interface ServerPair {
  ours: TokenServer;
  theirs: ServerHandle;
  close(): Promise<void>;
}

export async function startServerPair(store: SoftHsmToken): Promise<ServerPair> {
  process.env.SOFTHSM2_CONF = store.conf; // our server, and its client processes, read the same store
  const theirs = await startServer(SOFTHSM, join(store.dir, 'theirs.sock'), store.env);
  const ours = await serveTokens({ modules: [softhsmEntry], socketPath: join(store.dir, 'ours.sock') });
  return {
    ours,
    theirs,
    close: async () => {
      await ours.close();
      await theirs.stop();
    },
  };
}

/** A key made on the token with pkcs11-tool (logged in with the user PIN): `EC:prime256v1`, `AES:16`… */
export function makeKey(store: SoftHsmToken, token: string, keyType: string, label: string, id: string): void {
  const gen = keyType.startsWith('EC:') || keyType.startsWith('rsa:') ? '--keypairgen' : '--keygen';
  execFileSync('pkcs11-tool', ['--module', SOFTHSM, '--token-label', token, '--login', '--pin', USER_PIN, gen, '--key-type', keyType, '--label', label, '--id', id], { env: store.env, stdio: 'ignore' });
}
