#!/usr/bin/env node
// The p11kit command line. Each command group lives in ts/cli/ and registers itself here.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerRegistryCommands } from './cli/registry-commands.js';
import { registerUriCommands } from './cli/uri.js';
import { registerTokenCommands } from './cli/token-commands.js';
import { registerCryptoCommands } from './cli/crypto-commands.js';
import { registerTraceCommand } from './cli/trace-command.js';
import { registerServerCommand } from './cli/server-command.js';
import { registerObjectCommands } from './cli/object-commands.js';
import { cliMessage, EXIT, EXIT_CODES_HELP } from './cli/exit-codes.js';
import { installSignalHandlers } from './cli/signals.js';
import { tolerateBrokenStdout } from './cli/broken-pipe.js';
import { applyGlobalFlags, withGlobalFlags } from './cli/global-flags.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Usage errors in one or two lines: commander's message, then where the full usage is. */
function shortUsageErrors(cmd: Command, path: string): void {
  cmd.showHelpAfterError(`(see '${path} --help')`);
  for (const sub of cmd.commands) shortUsageErrors(sub, `${path} ${sub.name()}`);
}

export function buildProgram(): Command {
  const program = new Command('p11kit')
    .description('p11-kit-compatible PKCS#11 module manager (p11kit-wasm)')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerRegistryCommands(program);
  registerUriCommands(program);
  registerTokenCommands(program);
  registerCryptoCommands(program);
  registerTraceCommand(program, buildProgram);
  registerServerCommand(program);
  registerObjectCommands(program);
  withGlobalFlags(program);
  shortUsageErrors(program, program.name());
  program.hook('preAction', (_self, action) => applyGlobalFlags(program, action));
  program.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

installSignalHandlers();
tolerateBrokenStdout();
buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // Usage errors exit 2 like p11-kit's tools; commander has already printed them.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.USAGE;
      return;
    }
    process.stderr.write(`p11kit: ${cliMessage(err instanceof Error ? err.message : String(err))}\n`);
    process.exitCode = EXIT.TOKEN;
  });
