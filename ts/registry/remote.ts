// Which `remote:` values p11-kit 0.24.1 accepts when it builds the RPC client module
// (spec §1.4). A refused value is a load failure: skipped, or fatal when critical.
// Observed against libp11-kit with the differential suite (test/registry-diff.test.ts).
import { clip, echo } from '../wasm/echo.js';

/** How much of a config value a reason repeats (p11-kit's own messages stop at 512 bytes). */
const SHOWN = 256;

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

/** Why p11-kit refuses the value, in its words; undefined when it is accepted. */
export function remoteProblem(value: string): string | undefined {
  if (value.startsWith('|')) {
    const command = value.slice(1);
    return commandLineWords(command) > 0 ? undefined : `invalid remote command line: ${clip(command, SHOWN)}`;
  }
  if (value.startsWith('unix:path=')) {
    // Absolute before percent-decoding, and every % followed by two hex digits.
    const path = value.slice('unix:path='.length);
    if (!path.startsWith('/')) return `remote not supported: ${clip(value, SHOWN)}`;
    return /%(?![0-9A-Fa-f]{2})/.test(path) ? `invalid unix socket path: ${clip(value, SHOWN)}` : undefined;
  }
  if (value.startsWith('vsock:')) {
    const address = value.slice('vsock:'.length);
    return vsockAccepted(address) ? undefined : `failed to parse vsock address: '${clip(address, SHOWN)}'`;
  }
  return `remote not supported: ${clip(value, SHOWN)}`;
}

/**
 * How many words a shell-like split yields (quotes '…' "…", backslash escapes; every
 * blank outside quotes ends a word, even an empty one); -1 when a backslash ends the line.
 */
function commandLineWords(s: string): number {
  let words = 0;
  let current = 0;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = '';
      else {
        if (c === '\\' && ++i >= s.length) return -1;
        current++;
      }
    } else if (isSpace(c)) {
      words++;
      current = 0;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else {
      if (c === '\\' && ++i >= s.length) return -1;
      current++;
    }
  }
  return words + (current > 0 ? 1 : 0);
}

/** `cid=N;port=M` in any order (last wins, one optional trailing ';'); both needed; cid not -1U. */
function vsockAccepted(address: string): boolean {
  let cid: bigint | undefined;
  let port: bigint | undefined;
  let at = 0;
  while (at < address.length) {
    const key = address.startsWith('cid=', at) ? 'cid' : address.startsWith('port=', at) ? 'port' : undefined;
    if (!key) return false;
    at += key.length + 1;
    const n = strtoul(address, at);
    if (!n || n.value > 0xffffffffn) return false;
    if (key === 'cid') cid = n.value;
    else port = n.value;
    at = n.end;
    if (at < address.length) {
      if (address[at] !== ';') return false;
      at++;
    }
  }
  return cid !== undefined && port !== undefined && cid !== 0xffffffffn;
}

const ULONG_MAX = (1n << 64n) - 1n;

/** C strtoul(s + at, &end, 0) on a 64-bit long; undefined when no digits were converted. */
function strtoul(s: string, at: number): { value: bigint; end: number } | undefined {
  let i = at;
  while (i < s.length && isSpace(s[i])) i++;
  const negative = s[i] === '-';
  if (s[i] === '+' || s[i] === '-') i++;
  let base = 10n;
  let digits = /[0-9]/;
  if (s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9A-Fa-f]/.test(s[i + 2] ?? '')) {
    base = 16n;
    digits = /[0-9A-Fa-f]/;
    i += 2;
  } else if (s[i] === '0') {
    base = 8n;
    digits = /[0-7]/;
  }
  const start = i;
  let value = 0n;
  for (; i < s.length && digits.test(s[i]); i++) value = value * base + BigInt(parseInt(s[i], 16));
  if (i === start) return undefined;
  if (value > ULONG_MAX) value = ULONG_MAX;
  else if (negative) value = (-value) & ULONG_MAX;
  return { value, end: i };
}

/**
 * Our `x-` options tuning a remote module's deadlines, limits and restarts (all integers;
 * times in milliseconds). p11-kit ignores them; they are read where the module is opened.
 */
export const REMOTE_TUNING_KEYS = {
  'x-rpc-call-timeout-ms': 'callTimeoutMs',
  'x-rpc-connect-timeout-ms': 'connectTimeoutMs',
  'x-rpc-release-timeout-ms': 'releaseTimeoutMs',
  'x-rpc-exit-grace-ms': 'exitGraceMs',
  'x-rpc-max-reply-bytes': 'maxPayload',
  'x-rpc-restart-delay-ms': 'restartDelayMs',
  'x-rpc-restart-max-delay-ms': 'restartMaxDelayMs',
} as const;

type TuningField = (typeof REMOTE_TUNING_KEYS)[keyof typeof REMOTE_TUNING_KEYS];
export type RemoteTuningValues = Partial<Record<TuningField, number>>;

/** A module option that is not what its key needs. */
export class RemoteTuningError extends Error {
  override name = 'RemoteTuningError';
}

/** The tuning a module's options ask for; throws RemoteTuningError naming a bad value. */
export function remoteTuning(module: string, options: Record<string, string>): RemoteTuningValues {
  const out: RemoteTuningValues = {};
  for (const [key, field] of Object.entries(REMOTE_TUNING_KEYS)) {
    const text = options[key]?.trim();
    if (text === undefined) continue;
    const n = /^\d{1,13}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || (field === 'maxPayload' && (n < 1 || n > 0xffffffff))) {
      throw new RemoteTuningError(`module '${module}': ${key} must be a non-negative integer${field === 'maxPayload' ? ' from 1 to 4294967295' : ''}, not ${echo(options[key])}`);
    }
    out[field] = n;
  }
  return out;
}
