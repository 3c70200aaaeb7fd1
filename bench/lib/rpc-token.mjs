// What the RPC benches (bench/rpc.mjs, bench/server.mjs) share: the modules they load, a
// SoftHSM2 token of their own in a temp dir, p11-kit-style servers started on it, and timeOp —
// a time-boxed loop for a client that cannot be sampled in interleaved rounds (p11-kit's blocking
// client in a child process of its own, bench/server.mjs).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
export const P11_KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
export const PIN = '1234';
export const CKF_RW_SERIAL = 0x6;
export const CKU_USER = 1;
export const CKM_EC_KEY_PAIR_GEN = 0x1040;
export const CKM_ECDSA = 0x1041;
export const CKA_EC_PARAMS = 0x180;
export const CKA_SIGN = 0x108;
/** The P-256 curve's OID, DER. */
export const P256 = Uint8Array.from(Buffer.from('06082a8648ce3d030107', 'hex'));
/** A SHA-256-sized digest to sign. */
export const DIGEST = new Uint8Array(32).fill(0x5a);

/** timeOp's settings: warm-up and measuring time per call, and how many times each is repeated. */
export const TIMED_WARM_MS = Number(process.env.BENCH_WARM_MS ?? 150);
export const TIMED_MS = Number(process.env.BENCH_MS ?? 500);
export const TIMED_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** A fresh SoftHSM2 token ('bench', user PIN 1234) in a temp dir; env carries SOFTHSM2_CONF. */
export function makeToken(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `p11kit-bench-${prefix}-`));
  const conf = join(dir, 'softhsm2.conf');
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', PIN], { env, stdio: 'ignore' });
  return { dir, conf, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts a server that prints P11_KIT_SERVER_ADDRESS=…; (p11-kit server -f, or ours) and waits
 * for its socket. Resolves to { name, child, address, stop() }.
 */
export async function startServer(name, argv, socket, env) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /P11_KIT_SERVER_ADDRESS=([^;]+);/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
  while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 10));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { name, child, address, stop };
}

/** p11-kit server (0.24.1) exporting SoftHSM2's token(s) on `socket`. */
export const p11kitServerArgv = (socket) => ['p11-kit', 'server', '-f', '--provider', SOFTHSM, '-n', socket, 'pkcs11:'];

let sink = 0;
/**
 * µs per operation of fn() called for about ms milliseconds (in batches of 32 between clock
 * reads); a promise it returns is awaited. `batch`: operations per call of fn.
 */
export async function timeOp(fn, ms, batch = 1) {
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 32; i++) {
      const r = fn();
      const v = r instanceof Promise ? await r : r;
      sink += v ? (v.length ?? 1) : 0;
      ops += batch;
    }
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / ops;
}
export const timedSink = () => sink;
