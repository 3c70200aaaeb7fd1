// Byte pipes to a host: a spawned command over its stdin/stdout, or a unix socket. A transport
// reports its end exactly once, at the first sign of it (the child's exit even while a
// grandchild still holds its stdout, end of output, a failed write, a socket close, a spawn or
// connect failure) and never throws into the event loop. close() tears it down in bounded time
// and, for a child, reaps it: end its stdin, wait, then SIGTERM and finally SIGKILL (at once
// for a host that stopped answering), so no child outlives its transport and nothing of it
// keeps this process alive.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { describeAddress, type RemoteAddress } from './address.js';

export interface TransportEvents {
  onData(chunk: Uint8Array): void;
  /** Called once, with why the pipe ended. */
  onEnd(reason: string): void;
}

export interface Transport {
  readonly description: string;
  /** The host process id when we spawned it. */
  readonly pid: number | undefined;
  write(bytes: Uint8Array): void;
  /**
   * Whether the pipe keeps this process alive. Idle hosts do not: a program that forgets to
   * close a client still exits, and its host then sees end-of-input and exits too.
   */
  hold(active: boolean): void;
  /** `unresponsive`: the host stopped answering, so it gets no grace to exit on its own. */
  close(unresponsive?: boolean): Promise<void>;
}

type Refable = { ref(): unknown; unref(): unknown };
const setRef = (things: (Refable | null | undefined)[], active: boolean) => {
  for (const t of things) if (t) active ? t.ref() : t.unref();
};

export interface TransportOptions {
  /** Environment of a spawned host (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** How long close() waits for a child to exit on its own before SIGTERM (p11-kit waits 3 s). */
  exitGraceMs?: number;
}

/** After SIGTERM, how long a child has before SIGKILL. */
const KILL_GRACE_MS = 1000;
/** After SIGKILL, how long we wait for the exit status before we stop waiting (a child stuck in the kernel). */
const REAP_WAIT_MS = 2000;
/** After the child's exit, how long its output may still drain (a grandchild may hold it open for ever). */
const EXIT_DRAIN_MS = 100;

/** The unix transport's read buffer (a read takes at most this much; the rest waits for the next). */
const READ_BUFFER_BYTES = 64 * 1024;

const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());

/** The last bytes a child wrote to stderr, for error messages (hosts never see PINs there). */
class StderrTail {
  private text = '';
  add(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-2048);
  }
  get summary(): string {
    const t = this.text.trim();
    return t ? `; stderr: ${t.split('\n').slice(-3).join(' | ')}` : '';
  }
}

class ExecTransport implements Transport {
  readonly description: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private ended = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly end: (reason: string) => void;
  private readonly stderr = new StderrTail();

  constructor(argv: string[], events: TransportEvents, private readonly opts: TransportOptions) {
    this.description = describeAddress({ kind: 'exec', argv });
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const end = (this.end = (reason: string) => {
      if (this.ended) return;
      this.ended = true;
      events.onEnd(reason);
    });
    // The end is declared at the child's exit (once its last reply has had a moment to drain
    // from the pipe: a grandchild holding stdout must not hide the exit), at the end of its
    // output (a moment later, for the exit status), or at a failed write — whichever is first.
    let exitReason: string | undefined;
    let outputClosed = false;
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        exitReason = signal ? `host process killed by ${signal}` : `host process exited with status ${code}`;
        resolve();
        if (outputClosed) end(exitReason + this.stderr.summary);
        else setTimeout(() => end(exitReason + this.stderr.summary), EXIT_DRAIN_MS).unref();
      });
      this.child.once('error', (err) => {
        end(`could not run ${argv[0]}: ${err.message}`);
        if (this.child.pid === undefined) resolve();
      });
    });
    this.child.stdout!.on('data', (chunk: Buffer) => events.onData(chunk));
    this.child.stdout!.once('close', () => {
      outputClosed = true;
      if (exitReason) return end(exitReason + this.stderr.summary);
      setTimeout(() => end((exitReason ?? 'host closed its output') + this.stderr.summary), EXIT_DRAIN_MS).unref();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.stderr.add(chunk));
    this.child.stdin!.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.closing) end((exitReason ?? `writing to the host failed (${err.code ?? err.message})`) + this.stderr.summary);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  write(bytes: Uint8Array): void {
    if (!this.child.stdin!.writable) return this.end(`the host's input is closed${this.stderr.summary}`);
    this.child.stdin!.write(bytes);
  }

  hold(active: boolean): void {
    // The list is made once: a sequential client holds and lets go on every call.
    const c = this.child;
    this.refables ??= [c, c.stdin as unknown as Refable, c.stdout as unknown as Refable, c.stderr as unknown as Refable];
    setRef(this.refables, active);
  }
  private refables?: (Refable | null | undefined)[];

  close(unresponsive = false): Promise<void> {
    return (this.closed ??= this.shutdown(unresponsive));
  }

  private async shutdown(unresponsive: boolean): Promise<void> {
    const child = this.child;
    this.closing = true;
    this.hold(true); // until the child is reaped
    child.stdin!.end();
    const exited = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
    const within = async (ms: number) => exited() || (await Promise.race([this.exited.then(() => 'exited' as const), timer(ms)])) === 'exited';
    if (!(await within(unresponsive ? 0 : (this.opts.exitGraceMs ?? 3000)))) {
      child.kill('SIGTERM');
      if (!(await within(KILL_GRACE_MS))) {
        child.kill('SIGKILL');
        await within(REAP_WAIT_MS);
      }
    }
    // A grandchild may hold the pipes open: they are ours to drop, so they keep nothing alive.
    for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
    this.hold(false);
  }
}

class UnixTransport implements Transport {
  readonly description: string;
  readonly pid = undefined;
  private readonly socket: Socket;
  private readonly closed: Promise<void>;

  constructor(path: string, events: TransportEvents) {
    this.description = describeAddress({ kind: 'unix', path });
    // Replies are read into one buffer of our own (the decoder copies what it keeps): no
    // allocation and no stream machinery per read, as a 'data' event would cost.
    this.socket = createConnection({
      path,
      onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Uint8Array) => (events.onData(buf.subarray(0, n)), true) },
    });
    let failure = '';
    this.socket.on('error', (err) => {
      failure = err.message;
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', () => {
        events.onEnd(failure ? `socket ${path}: ${failure}` : `server closed the connection`);
        resolve();
      });
    });
  }

  write(bytes: Uint8Array): void {
    if (this.socket.writable) this.socket.write(bytes);
  }

  hold(active: boolean): void {
    if (active) this.socket.ref();
    else this.socket.unref();
  }

  close(): Promise<void> {
    this.socket.destroy(); // a socket has no grace to give
    return this.closed;
  }
}

export function openTransport(address: RemoteAddress, events: TransportEvents, opts: TransportOptions = {}): Transport {
  return address.kind === 'exec' ? new ExecTransport(address.argv, events, opts) : new UnixTransport(address.path, events);
}
