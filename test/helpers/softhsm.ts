// A SoftHSM2 token store in a fresh temp dir. SoftHSM reads SOFTHSM2_CONF when C_Initialize
// runs, so createSoftHsm() also points this process's environment at the new config (vitest
// runs each test file in its own process). Tokens can be made with the real softhsm2-util
// (initToken) or through PKCS#11 C_InitToken on the free slot.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  /** The temp dir holding the config and the token directory. */
  dir: string;
  /** The config file; also set as process.env.SOFTHSM2_CONF. */
  conf: string;
  tokenDir: string;
  /** Environment for child processes that should see the same tokens. */
  env: NodeJS.ProcessEnv;
  /** softhsm2-util --init-token --free; returns the new token's slot ID. */
  initToken(label: string, soPin: string, userPin: string): number;
  /** Removes the temp dir. */
  cleanup(): void;
}

export function createSoftHsm(opts: { setEnv?: boolean } = {}): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  if (opts.setEnv !== false) process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    tokenDir,
    env,
    initToken(label, soPin, userPin) {
      const out = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin], {
        env,
        encoding: 'utf8',
      });
      const m = /reassigned to slot (\d+)/.exec(out);
      if (!m) throw new Error(`softhsm2-util did not report a slot: ${out}`);
      return Number(m[1]);
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
