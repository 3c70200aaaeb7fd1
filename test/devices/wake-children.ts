// The slot-event watcher processes (managed/wake-child.ts) of this test process, as /proc
// shows them: found by parent and command line, and checked gone (not even a zombie).
import { readdirSync, readFileSync } from 'node:fs';

/** Parent pid and state letter of a process, or undefined when it no longer exists. */
function stat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), state };
  } catch {
    return undefined;
  }
}

/** Our running watcher children. */
export function watcherPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || stat(pid)?.ppid !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('wake-child.js')) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether pid is still a child of ours in any state (a zombie counts). */
export function childExists(pid: number): boolean {
  return stat(pid)?.ppid === process.pid;
}

/** Polls cond every 10 ms; rejects naming `what` after ms. */
export async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether pid is a live watcher child of anyone (an orphan counts; a zombie has no command line). */
export function watcherAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('wake-child.js');
  } catch {
    return false;
  }
}
