// The location and program options every registry-reading command takes.
import type { Command } from 'commander';
import { loadRegistry } from '../registry/load.js';
import { RegistryError, formatDiagnostic, type Registry, type RegistryOptions } from '../registry/types.js';

export interface RegistryFlags {
  systemConfig?: string;
  systemModules?: string;
  packageModules?: string;
  userConfig?: string;
  userModules?: string;
  modulePath?: string;
  program?: string;
  verbose?: boolean;
  json?: boolean;
}

export function withRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--system-config <file>', 'system pkcs11.conf (default /etc/pkcs11/pkcs11.conf)')
    .option('--system-modules <dir>', 'system module configs (default /etc/pkcs11/modules)')
    .option('--package-modules <dir>', 'package module configs (default /usr/share/p11-kit/modules)')
    .option('--user-config <file>', 'user pkcs11.conf (default ~/.config/pkcs11/pkcs11.conf; ignored as root)')
    .option('--user-modules <dir>', 'user module configs (default ~/.config/pkcs11/modules; ignored as root)')
    .option('--module-path <dir>', 'directory for relative module: values')
    .option('--program <name>', 'program name for enable-in/disable-in (default: this process)')
    .option('-v, --verbose', 'print warnings about the configuration on stderr')
    .option('--json', 'machine-readable output');
}

export function registryOptions(flags: RegistryFlags): RegistryOptions {
  const { verbose: _v, json: _j, ...rest } = flags;
  return rest;
}

/**
 * Loads the registry for a command. On a configuration p11-kit refuses, prints the
 * diagnostic to stderr, sets exit code 1 and returns undefined.
 */
export function loadForCommand(flags: RegistryFlags, extra: RegistryOptions = {}): Registry | undefined {
  try {
    const registry = loadRegistry({ ...registryOptions(flags), ...extra });
    if (flags.verbose) {
      for (const d of registry.diagnostics) process.stderr.write(`p11kit: ${d.level}: ${formatDiagnostic(d)}\n`);
    }
    return registry;
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    const shown = flags.verbose ? err.diagnostics : [err.reason];
    for (const d of shown) process.stderr.write(`p11kit: ${d.level}: ${formatDiagnostic(d)}\n`);
    process.exitCode = 1;
    return undefined;
  }
}
