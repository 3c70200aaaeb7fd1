// The per-client child processes of a token server (isolation `process`): the children of a
// pid running the server's child entry, and what each shows in a process listing.
import { readFileSync } from 'node:fs';
import { childrenOf, pidAlive } from './rpc-procs.js';

export const CHILD_ENTRY = 'server/child-main.js';

/** What /proc shows of a process to other processes of its user: its command line and environment. */
export function listing(pid: number): string {
  try {
    return `${readFileSync(`/proc/${pid}/cmdline`, 'latin1')}\n${readFileSync(`/proc/${pid}/environ`, 'latin1')}`;
  } catch {
    return '';
  }
}

/** The server's live child processes (by default this test process's). */
export function serverChildren(parent = process.pid): number[] {
  return childrenOf(parent).filter((pid) => pidAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(CHILD_ENTRY));
}
