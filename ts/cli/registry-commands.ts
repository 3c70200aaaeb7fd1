// print-config and list-modules: the registry as p11-kit would load it.
import type { Command } from 'commander';
import { cliAction } from './exit-codes.js';
import { loadForCommand, withRegistryOptions, type RegistryFlags } from './registry-options.js';
import { describeModules, moduleDetailLines, tokenJson } from './token-commands.js';

function printConfig(flags: RegistryFlags): void {
  const registry = loadForCommand(flags);
  if (!registry) return;
  if (flags.json) {
    const out = {
      global: registry.global,
      modules: registry.modules.map((m) => ({ name: m.name, options: m.options })),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const lines = ['[global]', ...Object.entries(registry.global).map(([k, v]) => `${k} = ${v}`)];
  for (const m of registry.modules) {
    lines.push(`[${m.name}]`, ...Object.entries(m.options).map(([k, v]) => `${k} = ${v}`));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function listModules(flags: RegistryFlags): Promise<void> {
  const registry = loadForCommand(flags);
  if (!registry) return;
  const details = await describeModules(registry, flags.verbose);
  if (!details) return;
  if (flags.json) {
    const modules = details.map(({ entry, library, tokens }) => ({
      name: entry.name,
      module: entry.options.module ?? null,
      path: entry.path ?? null,
      remote: entry.settings.remote ?? null,
      settings: entry.settings,
      library: library
        ? { description: library.libraryDescription, manufacturer: library.manufacturerID, version: `${library.libraryVersion.major}.${library.libraryVersion.minor}`, cryptokiVersion: `${library.cryptokiVersion.major}.${library.cryptokiVersion.minor}` }
        : null,
      tokens: tokens.map(tokenJson),
    }));
    process.stdout.write(`${JSON.stringify({ modules })}\n`);
    return;
  }
  const lines = moduleDetailLines(details);
  process.stdout.write(lines.length ? `${lines.join('\n')}\n` : '');
}

export function registerRegistryCommands(program: Command): void {
  withRegistryOptions(
    program
      .command('print-config')
      .description('print the merged global options and the modules p11-kit would load, with their options'),
  ).action(cliAction(async (flags: RegistryFlags) => printConfig(flags)));
  withRegistryOptions(
    program.command('list-modules').description('list the modules p11-kit would load, in its load order'),
  ).action(cliAction(listModules));
}
