// A private software TPM (swtpm, loopback ports, state in a temp dir) with a TPM-backed PKCS#11
// token made by pkcs11-tool through libtpm2_pkcs11: a token, its user PIN and a P-256 key pair.
// libtpm2_pkcs11 is loaded by path from dist/cache (build/fetch-tpm2-pkcs11.sh), never
// registered with p11-kit; its store is the temp dir (TPM2_PKCS11_STORE), not ~/.tpm2_pkcs11.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adopt, freePorts, stop, whenListening } from './daemons.mjs';

export const SWTPM = '/usr/bin/swtpm';

/** The library's path, fetched on first use; null when it cannot be had (no swtpm, no apt). */
export function tpm2Module(): string | null {
  if (!existsSync(SWTPM)) return null;
  const r = spawnSync('bash', [join(process.cwd(), 'build/fetch-tpm2-pkcs11.sh')], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

export type TpmToken = { label: string; soPin: string; pin: string; keyLabel: string; keyId: string };
export type Swtpm = {
  module: string;
  /** What a process loading the module needs in its environment. */
  env: { TPM2_PKCS11_TCTI: string; TPM2_PKCS11_STORE: string; TPM2_PKCS11_LOG_LEVEL: string };
  token: TpmToken;
  stop(): Promise<void>;
};

const run = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<void>((resolve, reject) => {
    const c = spawn('pkcs11-tool', args, { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`pkcs11-tool ${args.find((a) => a.startsWith('--') && a !== '--module')} failed (${code ?? signal}): ${err}`))));
  });

/** Starts swtpm and makes the token (a few seconds at most). */
export async function startSwtpm(module: string, token: TpmToken): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-swtpm-'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'store'));
  const port = await freePorts(2);
  const child = spawn('setpriv', [
    '--pdeathsig', 'KILL', SWTPM, 'socket', '--tpm2',
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${join(dir, 'state')}`, '--flags', 'not-need-init,startup-clear',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  adopt(child);
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  const cleanup = async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const env = { TPM2_PKCS11_TCTI: `swtpm:host=127.0.0.1,port=${port}`, TPM2_PKCS11_STORE: join(dir, 'store'), TPM2_PKCS11_LOG_LEVEL: '0' };
  try {
    await whenListening(child, [port, port + 1], () => log);
    const e = { ...process.env, ...env };
    const m = ['--module', module];
    // The PINs go to pkcs11-tool's argv: a throwaway token in a private TPM, not a secret.
    await run([...m, '--init-token', '--label', token.label, '--so-pin', token.soPin], e);
    await run([...m, '--token-label', token.label, '--init-pin', '--so-pin', token.soPin, '--pin', token.pin], e);
    await run([...m, '--token-label', token.label, '--login', '--pin', token.pin, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', token.keyLabel, '--id', token.keyId], e);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { module, env, token, stop: cleanup };
}
