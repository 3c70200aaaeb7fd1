// Process bookkeeping for the RPC tests: is a pid alive, which processes belong to a test (by a
// marker in their environment or command line), a process's children, and `p11-kit server`
// started in the foreground on a socket in a temp dir and stopped again.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Processes whose environment or command line contains `marker` (e.g. a test's temp dir). */
export function processesMarked(marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = readFileSync(`/proc/${entry}/environ`, 'latin1') + readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      if (text.includes(marker) && pidAlive(Number(entry))) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function waitFor(check: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

export interface ServerHandle {
  /** What the server printed for P11_KIT_SERVER_ADDRESS. */
  address: string;
  socketPath: string;
  pid: number;
  stop(): Promise<void>;
}

/** `p11-kit server -f` for one provider, on `socketPath`; resolves once it has printed its address. */
export async function startServer(provider: string, socketPath: string, env: NodeJS.ProcessEnv): Promise<ServerHandle> {
  const child: ChildProcess = spawn('p11-kit', ['server', '-f', '--provider', provider, '-n', socketPath, 'pkcs11:'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`p11-kit server printed no address: ${out}${err}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /P11_KIT_SERVER_ADDRESS=([^;]+);/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`p11-kit server exited (${code}): ${err}`)));
  });
  if (!(await waitFor(() => existsSync(socketPath)))) throw new Error(`p11-kit server made no socket at ${socketPath}`);
  return {
    address,
    socketPath,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
