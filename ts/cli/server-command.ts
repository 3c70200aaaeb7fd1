// `p11kit server [uri]`: p11-kit server's command — the tokens the URI selects served over
// p11-kit's RPC protocol on a Unix socket, the address printed as shell assignments. Each client
// is served by a process of its own, as p11-kit server does (--isolation shared: all in this
// one). It always runs in the foreground (-f is accepted) and stops cleanly on SIGINT or
// SIGTERM, its clients' processes with it.
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { ModuleEntry } from '../registry/types.js';
import { serveTokens, type Isolation, type ServerLimits, type TokenServer } from '../server/index.js';
import { parseDuration } from './duration.js';
import { cliAction, CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { globalFlags } from './global-flags.js';
import { takeOverSignals } from './signals.js';
import { loadForCommand, registryOptions, withRegistryOptions, type RegistryFlags } from './registry-options.js';

interface ServerFlags extends RegistryFlags {
  foreground?: boolean;
  name?: string;
  provider?: string;
  sh?: boolean;
  csh?: boolean;
  mode?: string;
  isolation?: string;
  handshakeTimeout?: string;
  idleTimeout?: string;
  unreadTimeout?: string;
}

/** A module given by path (--provider), outside the configuration: critical, as p11-kit treats it. */
export function providerEntry(path: string): ModuleEntry {
  return { name: basename(path), options: { module: path }, path, settings: { critical: true, trustPolicy: false, managed: true, logCalls: false, priority: 0 } };
}

function parseMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{3}$/.test(text)) throw new CliError(EXIT.USAGE, `--mode: '${text}' is not an octal permission like 600 or 660`);
  const mode = parseInt(text, 8);
  if (mode & 0o111) throw new CliError(EXIT.USAGE, '--mode: a socket needs no execute bits');
  return mode;
}

function parseIsolation(text: string | undefined): Isolation {
  if (text === undefined || text === 'process' || text === 'shared') return text ?? 'process';
  throw new CliError(EXIT.USAGE, `--isolation: '${text}' is neither 'process' nor 'shared'`);
}

/** The timeouts given as flags (the others keep serveTokens' defaults). */
function parseTimeouts(flags: ServerFlags): Partial<ServerLimits> {
  const limits: Partial<ServerLimits> = {};
  if (flags.handshakeTimeout !== undefined) limits.handshakeMs = parseDuration('--handshake-timeout', flags.handshakeTimeout);
  if (flags.idleTimeout !== undefined) limits.idleMs = parseDuration('--idle-timeout', flags.idleTimeout);
  if (flags.unreadTimeout !== undefined) limits.unreadMs = parseDuration('--unread-timeout', flags.unreadTimeout);
  return limits;
}

/** What each isolation means for the clients, for the note on stderr. */
const ISOLATION_NOTE: Record<Isolation, string> = {
  process: 'isolation process: each client is served by a process of its own, with its own login',
  shared: "isolation shared: every client is served by this process and shares each token's login",
};

/** stdout as p11-kit server prints it (shell assignments), or with --json one object that also gives the isolation and the limits. */
function announce(server: TokenServer, flags: ServerFlags): string {
  const { address, isolation, limits } = server;
  const pid = process.pid;
  if (flags.json) return `${JSON.stringify({ address, pid, isolation, limits })}\n`;
  if (flags.csh) return `setenv P11_KIT_SERVER_ADDRESS ${address};\nsetenv P11_KIT_SERVER_PID ${pid};\n`;
  return `P11_KIT_SERVER_ADDRESS=${address}; export P11_KIT_SERVER_ADDRESS;\nP11_KIT_SERVER_PID=${pid}; export P11_KIT_SERVER_PID;\n`;
}

async function runServer(uri: string | undefined, flags: ServerFlags): Promise<void> {
  const mode = parseMode(flags.mode);
  const isolation = parseIsolation(flags.isolation);
  const limits = parseTimeouts(flags);
  let modules: ModuleEntry[];
  if (flags.provider) {
    modules = [providerEntry(flags.provider)];
  } else {
    const registry = loadForCommand(flags, { forProxy: true });
    if (!registry) throw new CliError(EXIT.CONFIG, '');
    modules = registry.modules;
  }
  let server;
  try {
    server = await serveTokens({
      uri: uri ?? 'pkcs11:',
      socketPath: flags.name,
      mode,
      isolation,
      limits,
      modules,
      registry: registryOptions(flags),
      onClientError: flags.verbose ? (reason) => process.stderr.write(`p11kit server: client: ${reason}\n`) : undefined,
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EEXIST') throw new CliError(EXIT.IO, `socket ${flags.name}: already exists`);
    throw err;
  }
  process.stdout.write(announce(server, flags));
  // Shell output stays p11-kit's, for eval; the isolation is said on stderr (-q: not).
  if (!flags.json && !globalFlags.quiet) process.stderr.write(`p11kit server: ${ISOLATION_NOTE[server.isolation]}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop).off('SIGTERM', stop);
      resolve();
    };
    takeOverSignals(['SIGINT', 'SIGTERM']);
    process.on('SIGINT', stop).on('SIGTERM', stop);
  });
  await server.close();
}

export function registerServerCommand(program: Command): void {
  withRegistryOptions(program.command('server'))
    .description('serve the tokens a PKCS#11 URI selects (default all) to other processes over p11-kit\'s RPC protocol')
    .argument('[uri]', 'PKCS#11 URI selecting the tokens (default pkcs11:, every slot)')
    .option('-f, --foreground', 'run in the foreground (always the case)')
    .option('-n, --name <path>', 'socket path (default: a private directory, pkcs11-<pid>)')
    .option('-p, --provider <module>', 'serve this module (a shared object path) instead of the configured ones')
    .option('-s, --sh', 'print Bourne shell commands (default)')
    .option('-c, --csh', 'print C shell commands')
    .option('--mode <octal>', 'socket permissions (default 600: its owner only)')
    .option('--isolation <how>', "process: each client served by a process of its own, with its own login (default); shared: all clients in this process, sharing each token's login")
    .option('--handshake-timeout <duration>', 'close a connection that has not sent its protocol version this long after connecting (default 10s; 0: never). Durations: 500ms, 10s, 2m, 1h; a bare number is milliseconds')
    .option('--idle-timeout <duration>', 'close a client that has no call in progress and sent nothing for this long (default 0: never, as p11-kit-client.so stays connected while its application runs)')
    .option('--unread-timeout <duration>', 'drop a client that takes none of its replies for this long: it stopped reading (default 10s; 0: never)')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(cliAction(runServer));
}
