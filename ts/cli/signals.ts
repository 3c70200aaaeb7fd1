// SIGINT / SIGTERM / SIGHUP end the command the way the shell expects (status 128 + signal),
// but first give back what we took: modules we initialized are finalized (after their calls in
// flight, briefly). The lifecycle region is an anonymous memfd: the kernel frees it with us.
import { ModuleLifecycle } from '../lifecycle/manager.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Extra clean-ups (say, modules a command initialized outside the lifecycle). */
const cleanups: (() => void | Promise<void>)[] = [];

export function atSignal(fn: () => void | Promise<void>): void {
  cleanups.push(fn);
}

async function finish(signal: NodeJS.Signals): Promise<void> {
  for (const fn of cleanups.splice(0)) await Promise.resolve().then(fn).catch(() => undefined);
  for (const lc of ModuleLifecycle.all()) await lc.shutdown().catch(() => false);
  // Die of the signal itself, so the parent sees the real cause (and 128 + n as the status).
  for (const s of SIGNALS) process.removeAllListeners(s);
  process.kill(process.pid, signal);
}

const onSignal = (sig: NodeJS.Signals) => void finish(sig);

export function installSignalHandlers(): void {
  for (const s of SIGNALS) process.once(s, onSignal);
}

/** For a command that ends on these signals by itself (the server: a clean close, then exit 0 as p11-kit's). */
export function takeOverSignals(signals: readonly NodeJS.Signals[]): void {
  for (const s of signals) process.off(s, onSignal);
}
