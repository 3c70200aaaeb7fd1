#!/usr/bin/env node
// The p11kit command line. Each command group lives in ts/cli/ and registers itself here.
import { Command, CommanderError } from 'commander';
import { registerRegistryCommands } from './cli/registry-commands.js';
import { registerUriCommands } from './cli/uri.js';
import { registerTokenCommands } from './cli/token-commands.js';
import { registerCryptoCommands } from './cli/crypto-commands.js';
import { registerTraceCommand } from './cli/trace-command.js';
import { EXIT_CODES_HELP } from './cli/exit-codes.js';
import { installSignalHandlers } from './cli/signals.js';

export function buildProgram(): Command {
  const program = new Command('p11kit')
    .description('p11-kit-compatible PKCS#11 module manager (p11kit-wasm)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerRegistryCommands(program);
  registerUriCommands(program);
  registerTokenCommands(program);
  registerCryptoCommands(program);
  registerTraceCommand(program, buildProgram);
  program.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

installSignalHandlers();
buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // Usage errors exit 2 like p11-kit's tools; commander has already printed them.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`p11kit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
