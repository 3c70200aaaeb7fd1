// Where a remote module lives, read from a `remote:` value or P11_KIT_SERVER_ADDRESS (spec §7.1):
//   |command args…       run the command, speak over its stdin/stdout
//   unix:path=/abs/path  connect to a unix socket (the path percent-decoded)
// The command line is split the way p11-kit 0.24.1 splits it (common/argv.c behaviour): no
// shell; whitespace separates words (each whitespace character ends one, so doubled spaces
// give empty words); quotes group; a backslash keeps itself and protects the next character.

export type RemoteAddress =
  | { kind: 'exec'; argv: string[] }
  | { kind: 'unix'; path: string };

export class RemoteAddressError extends Error {
  override name = 'RemoteAddressError';
}

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

/** Splits a command line as p11-kit does; undefined where p11-kit's parser fails (a trailing backslash). */
export function splitCommandLine(line: string): string[] | undefined {
  const words: string[] = [];
  let quote = '';
  let word = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote && c === quote) {
      quote = '';
    } else if (quote) {
      if (c === '\\') {
        const next = line[i + 1];
        if (next === undefined) return undefined;
        word += '\\';
        if (next !== quote) word += '\\';
        word += next;
        i++;
      } else {
        word += c;
      }
    } else if (isSpace(c)) {
      words.push(word);
      word = '';
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '\\') {
      const next = line[i + 1];
      if (next === undefined) return undefined;
      word += '\\' + next;
      i++;
    } else {
      word += c;
    }
  }
  if (word !== '') words.push(word);
  return words;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RemoteAddressError(`bad percent-encoding in unix socket path: ${s}`);
  }
}

export function parseRemote(remote: string): RemoteAddress {
  if (remote.startsWith('|')) {
    const argv = splitCommandLine(remote.slice(1));
    if (!argv || argv.length < 1) throw new RemoteAddressError(`invalid remote command line: ${remote.slice(1)}`);
    if (argv[0] === '') throw new RemoteAddressError(`invalid remote command line: empty program name in '${remote.slice(1)}'`);
    return { kind: 'exec', argv };
  }
  if (remote.startsWith('unix:path=')) {
    // p11-kit wants the path absolute before decoding (ts/registry/remote.ts checks the same).
    const raw = remote.slice('unix:path='.length);
    if (!raw.startsWith('/')) throw new RemoteAddressError(`remote not supported: ${remote}`);
    return { kind: 'unix', path: percentDecode(raw) };
  }
  if (remote.startsWith('vsock:')) throw new RemoteAddressError(`vsock remotes are not supported: ${remote}`);
  throw new RemoteAddressError(`remote not supported: ${remote}`);
}

/** The `p11-kit remote <module>` command that hosts one local module out of process. */
export function isolatedModuleAddress(modulePath: string, p11kit = 'p11-kit'): RemoteAddress {
  return { kind: 'exec', argv: [p11kit, 'remote', modulePath] };
}

export function describeAddress(a: RemoteAddress): string {
  return a.kind === 'exec' ? `|${a.argv.join(' ')}` : `unix:path=${a.path}`;
}
