// The host behind a remote module, across its lives. Each connection is one generation: it
// starts with C_Initialize and ends with C_Finalize, close(), or loss. Loss retires every
// handle, fails what was in flight, and is announced; what happens next is the policy's:
// 'explicit' refuses calls until initialize() starts a new host, 'auto' starts one (with the
// same initialize arguments) on the next call that carries no stale handle.
import { EventEmitter } from 'node:events';
import { parseRemote, describeAddress, type RemoteAddress } from './address.js';
import { callSpec, type CallName } from './calls.js';
import { RpcConnection } from './connection.js';
import { CKR } from './constants.js';
import { HostLostError, Pkcs11Error } from './errors.js';
import { DEFAULT_LIMITS, type FrameLimits } from './frame.js';
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
  /** Per-call reply deadline; a late reply counts as host loss (default: none). */
  callTimeoutMs?: number;
  limits?: Partial<FrameLimits>;
  /** How long a spawned host may take to exit on its own before it is terminated (default 3 s). */
  exitGraceMs?: number;
}

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
  private conn: RpcConnection | undefined;
  private starting: Promise<RpcConnection> | undefined;
  private hostState: HostState = 'closed';
  private gen = 0;
  private lostReason = '';
  private initArgs: InitializeArgs = {};

  constructor(opts: RemoteOptions) {
    super();
    this.opts = opts;
    this.address = typeof opts.remote === 'string' ? parseRemote(opts.remote) : opts.remote;
    this.name = opts.name ?? describeAddress(this.address);
    this.handles = new HandleMap(this.name);
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
    await this.start();
  }

  /** C_Finalize, then the host is let go. After a loss there is nothing to finalize. */
  async finalize(): Promise<void> {
    if (this.hostState === 'connecting') await this.starting!.catch(() => undefined);
    if (this.hostState === 'closed') throw new Pkcs11Error(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, 'C_Finalize', this.name);
    if (this.hostState === 'ready') {
      try {
        await this.call('C_Finalize', () => undefined, () => undefined);
      } finally {
        await this.disconnect('finalized');
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
  async call<T>(name: CallName, build: (b: RequestBuilder) => void, read: (p: ResponseParser) => T): Promise<T> {
    const spec = callSpec(name);
    const request = new RequestBuilder(spec, this.name);
    build(request);
    const payload = request.finish();
    const conn = await this.ready(name);
    const reply = new ResponseParser(await conn.call(spec, payload), spec, this.name);
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
        return this.start();
      case 'closed':
        throw new Pkcs11Error(CKR.CKR_CRYPTOKI_NOT_INITIALIZED, name, this.name);
    }
  }

  private start(): Promise<RpcConnection> {
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
          connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
          callTimeoutMs: this.opts.callTimeoutMs,
          limits: { ...DEFAULT_LIMITS, ...this.opts.limits },
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
        this.hostState = 'closed';
        throw err;
      } finally {
        this.starting = undefined;
      }
      this.conn = conn;
      this.hostState = 'ready';
      this.emit('connected', { generation, pid: conn.pid });
      return conn;
    })();
    return this.starting;
  }

  private lost(conn: RpcConnection | undefined, reason: string): void {
    if (!conn || conn !== this.conn || this.hostState !== 'ready') return;
    this.conn = undefined;
    this.hostState = 'lost';
    this.lostReason = reason;
    this.handles.retireAll(this.gen);
    this.emit('hostLost', { generation: this.gen, reason });
  }

  private async disconnect(reason: string): Promise<void> {
    const conn = this.conn;
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
