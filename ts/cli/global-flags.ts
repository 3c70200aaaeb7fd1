// Flags every command takes, before or after its name as p11-kit accepts them
// (`p11kit -v list-modules` = `p11kit list-modules -v`), and the notes they govern.
import type { Command } from 'commander';

export const globalFlags = { verbose: false, quiet: false };

/** Adds -v/-q to a command that lacks them, and to every subcommand below it. */
export function withGlobalFlags(cmd: Command): void {
  const has = (flag: string) => cmd.options.some((o) => o.short === flag);
  if (!has('-v')) cmd.option('-v, --verbose', 'print warnings and details on stderr');
  if (!has('-q')) cmd.option('-q, --quiet', 'print no hints or warnings on stderr');
  for (const sub of cmd.commands) withGlobalFlags(sub);
}

/**
 * Before an action: the flags given anywhere on the command line reach the action's options
 * (registry commands read `verbose` from there) and `globalFlags`.
 */
export function applyGlobalFlags(program: Command, action: Command): void {
  let verbose = false;
  let quiet = false;
  for (let c: Command | null = action; c; c = c.parent) {
    const o = c.opts<{ verbose?: boolean; quiet?: boolean }>();
    verbose ||= !!o.verbose;
    quiet ||= !!o.quiet;
    if (c === program) break;
  }
  globalFlags.quiet = quiet;
  globalFlags.verbose = verbose && !quiet;
  action.setOptionValue('verbose', globalFlags.verbose);
}

/** A hint on stderr for output that is empty or short for a reason; -q silences it. */
export function hint(text: string): void {
  if (!globalFlags.quiet) process.stderr.write(`p11kit: hint: ${text}\n`);
}
