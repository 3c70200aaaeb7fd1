// The host behind a remote module, across its lives. Each connection is one generation: it
// starts with C_Initialize and ends with C_Finalize, close(), or loss. Loss retires every
// handle, fails what was in flight, and is announced; what happens next is the policy's:
// 'explicit' refuses calls until initialize() starts a new host, 'auto' starts one (with the
// same initialize arguments) on the next call that carries no stale handle; a restart that
// fails leaves the host lost, and the next call tries again after a back-off (REMOTE_DEFAULTS).
// Every exchange has a deadline, release included: a host that stops answering is killed.
import { EventEmitter } from 'node:events';
import { parseRemote, describeAddress, type RemoteAddress } from './address.js';
import { callSpec, type CallName } from './calls.js';
import { RpcConnection } from './connection.js';
import { CKR } from './constants.js';
import { HostConnectError, HostLostError, Pkcs11Error } from './errors.js';
import { DEFAULT_LIMITS, HEADER_BYTES, type FrameLimits } from './frame.js';
import { HandleMap } from './handles.js';
import { RequestBuilder, ResponseParser } from './message.js';

export type ReinitPolicy = 'explicit' | 'auto';

export interface RemoteOptions {
  /** `|command args…` or `unix:path=…` (a `remote:` value), or an already parsed address. */
  remote: string | RemoteAddress;
  /** The module name sent in each frame's options field (p11-kit sends the config name). */
  name?: string;
  /** What the first call after a host loss does (default 'explicit'). */
  policy?: ReinitPolicy;
  /** Environment of a spawned host (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Handshake deadline (default 10 s). */
  connectTimeoutMs?: number;
  /** Per-call reply deadline; a late reply counts as host loss (default 300 s; 0: none). */
  callTimeoutMs?: number;
  /** Deadline of C_Finalize when the host is let go; then it is killed (default 3 s). */
  releaseTimeoutMs?: number;
  /** Largest frame accepted from the host (default: REPLY_LIMITS); a larger reply fails its call alone. */
  limits?: Partial<FrameLimits>;
  /** How long a spawned host may take to exit on its own before it is terminated (default 3 s). */
  exitGraceMs?: number;
  /** Auto policy: the wait before the second restart attempt, doubled for each further one (default 250 ms). */
  restartDelayMs?: number;
  /** Auto policy: the longest wait between restart attempts (default 5 s). */
  restartMaxDelayMs?: number;
}

/** Defaults of the deadlines above. */
export const REMOTE_DEFAULTS = {
  connectTimeoutMs: 10_000,
  callTimeoutMs: 300_000,
  releaseTimeoutMs: 3_000,
  restartDelayMs: 250,
  restartMaxDelayMs: 5_000,
} as const;

/**
 * Replies p11-kit's client takes are bounded only by its allocator (a frame's u32 length) and
 * a byte array's 2^31-1; we accept up to 1 GiB by default so that a hostile length field costs
 * at most that, and a larger reply fails its own call while the host serves the others.
 */
export const REPLY_LIMITS: FrameLimits = { ...DEFAULT_LIMITS, maxPayload: 1024 * 1024 * 1024 };

export interface InitializeArgs {
  /** CK_C_INITIALIZE_ARGS.pReserved (a module's `x-init-reserved`), passed through to the host. */
  reserved?: string;
}

export type HostState = 'closed' | 'connecting' | 'ready' | 'lost';

export interface HostLostEvent {
  generation: number;
  reason: string;
}

export interface ConnectedEvent {
  generation: number;
  pid: number | undefined;
}

export interface RemoteHostEvents {
  connected: [ConnectedEvent];
  hostLost: [HostLostEvent];
}

const MAGIC = new TextEncoder().encode('PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1');

export class RemoteHost extends EventEmitter<RemoteHostEvents> {
  readonly address: RemoteAddress;
  /** The module's name: in frames (as p11-kit sends the config name) and in errors. */
  readonly name: string;
  readonly handles: HandleMap;
  private readonly opts: RemoteOptions;
  /** A frame's header and options (the name every frame carries), reserved in front of each request. */
  private readonly headroom: number;
  private conn: RpcConnection | undefined;
  private starting: Promise<RpcConnection> | undefined;
  private hostState: HostState = 'closed';
  private gen = 0;
  private lostReason = '';
  private initArgs: InitializeArgs = {};
  /** Auto policy: restarts that failed in a row, and when the next may be tried. */
  private restartFailures = 0;
  private nextRestartAt = 0;

  constructor(opts: RemoteOptions) {
    super();
    this.opts = opts;
    this.address = typeof opts.remote === 'string' ? parseRemote(opts.remote) : opts.remote;
    this.name = opts.name ?? describeAddress(this.address);
    this.handles = new HandleMap(this.name);
    this.headroom = HEADER_BYTES + new TextEncoder().encode(opts.name ?? 'client').length;
  }

  /** Bumped each time a new host is started; 0 before the first. */
  get generation(): number {
    return this.gen;
  }

  get state(): HostState {
    return this.hostState;
  }

  /** The current host's process id, when we spawned it. */
  get pid(): number | undefined {
    return this.conn?.pid;
  }

  get description(): string {
    return describeAddress(this.address);
  }

  /** C_Initialize: starts a host unless one is running (which then answers for itself). */
  async initialize(args: InitializeArgs = {}): Promise<void> {
    if (this.hostState === 'connecting') await this.starting!.catch(() => undefined);
    if (this.hostState === 'ready') {
      await this.call('C_Initialize', (b) => writeInitialize(b, args), () => undefined);
      return;
    }
    this.initArgs = { ...args };
    this.restartFailures = 0;
    await this.start(false);
  }

  /** C_Finalize, then the host is let go. After a loss there is nothing to finalize. */
  async finalize(): Promise<void> {
    if (this.hostState === 'connecting') await this.starting!.catch(() => undefined);
    if (this.hostState === 'closed') throw new Pkcs11Error(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, 'C_Finalize', this.name);
    if (this.hostState === 'ready') {
      const conn = this.conn!;
      const deadline = this.opts.releaseTimeoutMs ?? REMOTE_DEFAULTS.releaseTimeoutMs;
      try {
        await this.call('C_Finalize', () => undefined, () => undefined, deadline);
      } finally {
        // A host that missed the deadline is being killed; this waits until it is reaped.
        await this.disconnect('finalized', conn);
      }
      return;
    }
    await this.disconnect('finalized after host loss');
  }

  /** Lets the host go without C_Finalize (it finalizes when its input ends). Idempotent. */
  async close(): Promise<void> {
    if (this.hostState === 'connecting') await this.starting!.catch(() => undefined);
    await this.disconnect('closed');
  }

  /**
   * One call: the request is built first (so bad arguments and stale handles are refused
   * without starting anything), then sent to the current host, and the reply read in full.
   */
  async call<T>(name: CallName, build: (b: RequestBuilder) => void, read: (p: ResponseParser) => T, timeoutMs?: number): Promise<T> {
    const spec = callSpec(name);
    // Built with room for the frame's header and options in front: sent from this one buffer.
    const request = new RequestBuilder(spec, this.name, this.headroom);
    build(request);
    const frame = request.finishFrame();
    // A host that is up costs no extra await (ready() is async: a promise and a turn per call).
    const conn = this.hostState === 'ready' ? this.conn! : await this.ready(name);
    const reply = new ResponseParser(
      conn.headroom === this.headroom ? await conn.callFrame(spec, frame, timeoutMs) : await conn.call(spec, request.finish(), timeoutMs),
      spec,
      this.name,
    );
    const out = read(reply);
    reply.done();
    return out;
  }

  private async ready(name: CallName): Promise<RpcConnection> {
    switch (this.hostState) {
      case 'ready':
        return this.conn!;
      case 'connecting':
        return this.starting!;
      case 'lost':
        if (this.opts.policy !== 'auto') throw new HostLostError(name, this.gen, this.lostReason, false, this.name);
        return this.restart(name);
      case 'closed':
        throw new Pkcs11Error(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, name, this.name);
    }
  }

  /** Auto policy: a new host, once the back-off after failed restarts has passed. */
  private async restart(name: CallName): Promise<RpcConnection> {
    if (this.starting) return this.starting;
    const wait = this.nextRestartAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Another call may have restarted it meanwhile, or close() ended it.
    return this.hostState === 'lost' && !this.starting ? this.start(true) : this.ready(name);
  }

  private start(auto: boolean): Promise<RpcConnection> {
    if (this.starting) return this.starting;
    const generation = ++this.gen;
    this.hostState = 'connecting';
    this.handles.retireAll(generation);
    this.starting = (async () => {
      let conn: RpcConnection | undefined;
      try {
        conn = await RpcConnection.open(this.address, {
          name: this.opts.name ?? 'client',
          label: this.name,
          generation,
          connectTimeoutMs: this.opts.connectTimeoutMs ?? REMOTE_DEFAULTS.connectTimeoutMs,
          callTimeoutMs: this.opts.callTimeoutMs ?? REMOTE_DEFAULTS.callTimeoutMs,
          limits: { ...REPLY_LIMITS, ...this.opts.limits },
          env: this.opts.env,
          exitGraceMs: this.opts.exitGraceMs,
          onLost: (reason) => this.lost(conn, reason),
        });
        const spec = callSpec('C_Initialize');
        const request = new RequestBuilder(spec, this.name);
        writeInitialize(request, this.initArgs);
        new ResponseParser(await conn.call(spec, request.finish()), spec, this.name).done();
      } catch (err) {
        await conn?.close('C_Initialize failed');
        this.starting = undefined;
        if (!auto) {
          this.hostState = 'closed';
          throw err;
        }
        throw this.restartFailed(err);
      }
      this.starting = undefined;
      this.restartFailures = 0;
      this.conn = conn;
      this.hostState = 'ready';
      this.emit('connected', { generation, pid: conn.pid });
      return conn;
    })();
    return this.starting;
  }

  /** The host stays lost; the next call tries again once the back-off has passed. */
  private restartFailed(err: unknown): HostConnectError {
    const attempts = ++this.restartFailures;
    const base = this.opts.restartDelayMs ?? REMOTE_DEFAULTS.restartDelayMs;
    const max = this.opts.restartMaxDelayMs ?? REMOTE_DEFAULTS.restartMaxDelayMs;
    const delay = Math.min(base * 2 ** Math.min(attempts - 1, 30), max);
    this.nextRestartAt = Date.now() + delay;
    this.hostState = 'lost';
    const why = err instanceof HostConnectError ? err.reason : err instanceof Error ? err.message : String(err);
    this.lostReason = `restart attempt ${attempts} failed: ${why}`;
    return new HostConnectError('C_Initialize', this.description, `${this.lostReason}; the next call tries again after ${delay} ms`, this.name, attempts, { cause: err });
  }

  private lost(conn: RpcConnection | undefined, reason: string): void {
    if (!conn || conn !== this.conn || this.hostState !== 'ready') return;
    this.conn = undefined;
    this.hostState = 'lost';
    this.lostReason = reason;
    this.handles.retireAll(this.gen);
    this.emit('hostLost', { generation: this.gen, reason });
  }

  private async disconnect(reason: string, conn = this.conn): Promise<void> {
    this.conn = undefined;
    this.hostState = 'closed';
    this.handles.retireAll(this.gen);
    await conn?.close(reason);
  }
}

function writeInitialize(b: RequestBuilder, args: InitializeArgs): void {
  const reserved = args.reserved;
  b.bytes(MAGIC)
    .byte(reserved === undefined ? 0 : 1)
    .bytes(new TextEncoder().encode(`${reserved ?? ''}\0`));
}
