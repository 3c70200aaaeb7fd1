// Isolation `process` (the default): every accepted connection is handed to a child process of
// its own, as p11-kit server forks one per client, so what PKCS#11 keeps per application — the
// token's login, sessions, session objects — is per client.
//
// The connection goes in as the child's fd 3: spawn() duplicates it before the child runs any
// code, the server never reads from it (accepted paused) and closes its copy at once, so no
// byte of it passes through this process and there is no hand-over message to race. The IPC
// channel carries the configuration down and session counts and protocol violations up; its
// closing tells the child to stop, and it also closes when this process dies (even SIGKILL), so
// no child outlives its server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CONNECTION_FD, type ChildConfig, type ChildReport } from './child-protocol.js';
import type { ClientHost } from './host.js';

interface Child {
  proc: ChildProcess;
  sessions: number;
  /** Settles once the process is gone and reaped. */
  exited: Promise<void>;
  killed: boolean;
}

export interface ChildClientsOptions {
  onClientError?(reason: string): void;
  /** How long close() waits for a child to finish its call in progress before SIGKILL. */
  exitGraceMs: number;
}

/** The child's compiled entry: next to this file, or under dist/lib when running from ts/ (tests). */
export function childEntry(): string {
  for (const url of [new URL('./child-main.js', import.meta.url), new URL('../../dist/lib/server/child-main.js', import.meta.url)]) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error('p11kit-wasm: the server\'s child entry (server/child-main.js) is not built; run `make ts`');
}

/** Electron's binary runs as plain Node only when told so. */
function childEnv(): NodeJS.ProcessEnv {
  return process.versions.electron ? { ...process.env, ELECTRON_RUN_AS_NODE: '1' } : process.env;
}

function isReport(m: unknown): m is ChildReport {
  return typeof m === 'object' && m !== null && (typeof (m as { sessions?: unknown }).sessions === 'number' || typeof (m as { violation?: unknown }).violation === 'string' || typeof (m as { failed?: unknown }).failed === 'string');
}

export class ChildClients implements ClientHost {
  private readonly children = new Set<Child>();

  constructor(
    private readonly entry: string,
    private readonly config: ChildConfig,
    private readonly opts: ChildClientsOptions,
  ) {}

  get clients(): number {
    return this.children.size;
  }

  get sessions(): number {
    let n = 0;
    for (const c of this.children) n += c.sessions;
    return n;
  }

  accept(socket: Socket): void {
    const stdio = ['ignore', 'ignore', 'inherit', 'ignore', 'ignore'] as ('ignore' | 'inherit' | 'ipc' | Socket)[];
    stdio[CONNECTION_FD] = socket;
    stdio[CONNECTION_FD + 1] = 'ipc';
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [this.entry], { stdio, env: childEnv(), serialization: 'advanced' });
    } catch (err) {
      this.opts.onClientError?.(`no process for a client: ${(err as Error).message}`);
      return;
    } finally {
      socket.destroy(); // the child holds the connection now (or it could not start: the client is refused)
    }
    let gone!: () => void;
    const child: Child = { proc, sessions: 0, exited: new Promise((r) => (gone = r)), killed: false };
    this.children.add(child);
    const reap = () => {
      this.children.delete(child);
      gone();
    };
    proc.once('exit', (code, signal) => {
      if (!child.killed && (signal !== null || (code !== 0 && code !== 1))) this.opts.onClientError?.(`a client's process ended abnormally (${signal ?? `exit code ${code}`})`);
      reap();
    });
    proc.once('error', (err) => {
      if (proc.pid !== undefined) return; // a failed send or kill: 'exit' still comes
      this.opts.onClientError?.(`no process for a client: ${err.message}`);
      reap();
    });
    proc.on('message', (m: unknown) => {
      if (!isReport(m)) return;
      if ('sessions' in m) child.sessions = m.sessions;
      else this.opts.onClientError?.('violation' in m ? m.violation : m.failed);
    });
    proc.send(this.config, undefined, {}, () => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.stop(c)));
  }

  /** Closes the child's channel (it ends its connection and exits); SIGKILL if it takes too long. */
  private async stop(child: Child): Promise<void> {
    if (child.proc.connected) child.proc.disconnect();
    const timer = setTimeout(() => {
      child.killed = true;
      child.proc.kill('SIGKILL');
    }, this.opts.exitGraceMs);
    await child.exited;
    clearTimeout(timer);
  }
}
