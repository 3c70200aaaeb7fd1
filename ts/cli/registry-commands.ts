// print-config and list-modules: the registry as p11-kit would load it.
import type { Command } from 'commander';
import { loadForCommand, withRegistryOptions, type RegistryFlags } from './registry-options.js';
import { listModulesWithDetails } from './token-commands.js';

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

function listModules(flags: RegistryFlags): void {
  const registry = loadForCommand(flags);
  if (!registry) return;
  if (flags.json) {
    const modules = registry.modules.map((m) => ({
      name: m.name,
      module: m.options.module ?? null,
      path: m.path ?? null,
      remote: m.settings.remote ?? null,
      settings: m.settings,
    }));
    process.stdout.write(`${JSON.stringify({ modules })}\n`);
    return;
  }
  listModulesWithDetails(registry, flags.verbose);
}

export function registerRegistryCommands(program: Command): void {
  withRegistryOptions(
    program
      .command('print-config')
      .description('print the merged global options and the modules p11-kit would load, with their options'),
  ).action(printConfig);
  withRegistryOptions(
    program.command('list-modules').description('list the modules p11-kit would load, in its load order'),
  ).action(listModules);
}
