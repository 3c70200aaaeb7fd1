// The one exit-code table of every command, the typed error that carries a code, and the
// action wrapper that turns any failure into `p11kit: message` plus its code. verify needs 1
// for "does not verify"; the only other 1 is list-modules' and print-config's refused
// configuration, where p11-kit 0.24 itself exits 1 (and the differential suite holds us to it).
import { CommanderError } from 'commander';
import { Pkcs11Error, CKR } from '../bridge/index.js';
import { ProxyError } from '../proxy/index.js';
import { UriError } from '../uri/index.js';
import { PinError } from './pin.js';

export const EXIT = {
  OK: 0,
  /** verify: the signature does not verify; list-modules/print-config: as p11-kit, configuration refused. */
  INVALID: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  LOGIN: 4,
  TOKEN: 5,
  IO: 6,
  CONFIG: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `
Exit codes:
  0  success; verify: the signature is valid
  1  verify: the signature is not valid; list-modules, print-config: as p11-kit, exit 7's cases
  2  usage: bad option or argument (URI, JSON, hex, mechanism, key type)
  3  not found: no token, key or object matches the URI, or several do where one is needed
  4  login: no PIN where one is needed, wrong or locked PIN, PIN source refused
  5  the module or token failed the operation (a PKCS#11 error)
  6  a file could not be read or written
  7  configuration refused, or a critical module failed to start`;

/** A failure with the exit code it means. An empty message: already reported. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

const LOGIN_RVS = new Set<number>([
  CKR.CKR_PIN_INCORRECT, CKR.CKR_PIN_INVALID, CKR.CKR_PIN_LEN_RANGE, CKR.CKR_PIN_EXPIRED, CKR.CKR_PIN_LOCKED,
  CKR.CKR_USER_NOT_LOGGED_IN, CKR.CKR_USER_PIN_NOT_INITIALIZED,
]);
const IO_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM', 'EEXIST', 'ENOSPC', 'EROFS', 'EPIPE', 'EIO', 'ELOOP', 'ENAMETOOLONG', 'EFBIG', 'EDQUOT']);

/** The library's own prefix is redundant after the CLI's: `p11kit: p11kit-wasm: …` reads as a stutter. */
export function cliMessage(message: string): string {
  return message.replace(/^p11kit-wasm: /, '');
}

function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Pkcs11Error) return new CliError(LOGIN_RVS.has(err.rv) ? EXIT.LOGIN : EXIT.TOKEN, message);
  if (err instanceof PinError) return new CliError(EXIT.LOGIN, message);
  if (err instanceof UriError) return new CliError(EXIT.USAGE, message);
  if (err instanceof ProxyError && err.code === 'CRITICAL_MODULE_FAILED') return new CliError(EXIT.CONFIG, message);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && IO_CODES.has(code)) return new CliError(EXIT.IO, message);
  return new CliError(EXIT.TOKEN, message);
}

/** Wraps a command action: failures print one line on stderr and set their exit code. */
export function cliAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      // A nested program's usage error (p11kit trace ...) is commander's to report.
      if (err instanceof CommanderError) throw err;
      const e = toCliError(err);
      if (e.message) process.stderr.write(`p11kit: ${cliMessage(e.message)}\n`);
      process.exitCode = e.exitCode;
    }
  };
}
