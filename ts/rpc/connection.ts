// One connection to one host: handshake, then request frames out and reply frames in, matched
// by code. Requests are pipelined (the host answers in order, one at a time). The connection
// dies exactly once — host gone, framing broken, a call timed out, or close() — and every call
// still waiting is rejected at that moment; nothing waits forever on a dead pipe.
import { describeAddress, type RemoteAddress } from './address.js';
import type { CallSpec } from './calls.js';
import { HostConnectError, HostLostError, RpcProtocolError, RpcReplyTooLargeError } from './errors.js';
import { DEFAULT_LIMITS, FrameDecoder, FramingError, HEADER_BYTES, PROTOCOL_VERSION, encodeFrame, writeFrameHead, type Frame, type FrameLimits } from './frame.js';
import { PendingCalls } from './pending.js';
import { openTransport, type Transport } from './transport.js';

export interface ConnectionOptions {
  /** Sent in every frame's options field: the module's name (p11-kit-client sends 'client'). */
  name: string;
  /** The module's name in errors. */
  label: string;
  /** Host generation this connection serves, for the errors it raises. */
  generation: number;
  /** Give up on a host that has not answered the handshake within this time. */
  connectTimeoutMs: number;
  /** Tear the connection down when a reply takes longer than this; 0 or undefined: no deadline. */
  callTimeoutMs?: number;
  limits?: FrameLimits;
  env?: NodeJS.ProcessEnv;
  exitGraceMs?: number;
  /** Told once, when the connection dies for any reason but close(). */
  onLost(reason: string): void;
}

interface Pending {
  fn: string;
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
  /** When the call fails the connection as unresponsive (performance.now() ms), and the limit it was given. */
  deadline: number;
  timeoutMs: number;
}

export class RpcConnection {
  private readonly decoder: FrameDecoder;
  private readonly transport: Transport;
  private readonly pending = new PendingCalls<Pending>();
  private readonly options: Uint8Array;
  private nextCode = 0x10;
  private dead: string | undefined;
  private handshake?: { resolve(): void; reject(err: Error): void };
  /**
   * One timer for every call's deadline, armed for the earliest: a timer per call (created and
   * cleared on every round trip) cost more than the rest of the call's bookkeeping. Unref'd:
   * while calls are pending, the transport's hold keeps the process alive.
   */
  private deadlineTimer?: NodeJS.Timeout;
  private deadlineAt = Infinity;

  private constructor(
    readonly address: RemoteAddress,
    private readonly opts: ConnectionOptions,
  ) {
    // An oversized reply fails its own call; its bytes are dropped as they arrive, unbuffered.
    this.decoder = new FrameDecoder(opts.limits ?? DEFAULT_LIMITS, 'skip');
    this.options = new TextEncoder().encode(opts.name);
    this.transport = openTransport(
      address,
      { onData: (chunk) => this.receive(chunk), onEnd: (reason) => this.die(reason, 'lost') },
      { env: opts.env, exitGraceMs: opts.exitGraceMs },
    );
  }

  /** Starts the host (or connects to it) and completes the version handshake. */
  static async open(address: RemoteAddress, opts: ConnectionOptions): Promise<RpcConnection> {
    const conn = new RpcConnection(address, opts);
    try {
      await conn.handshakeDone();
    } catch (err) {
      await conn.transport.close();
      throw err;
    }
    conn.transport.hold(false);
    return conn;
  }

  get pid(): number | undefined {
    return this.transport.pid;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  private handshakeDone(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const where = describeAddress(this.address);
      const timer = setTimeout(() => this.die(`no handshake within ${this.opts.connectTimeoutMs} ms`, 'unresponsive'), this.opts.connectTimeoutMs);
      this.handshake = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(new HostConnectError('C_Initialize', where, err.message, this.opts.label))),
      };
      this.transport.write(Uint8Array.of(PROTOCOL_VERSION));
    });
  }

  /**
   * Sends one request; resolves with the reply payload (still to be parsed by the caller).
   * `timeoutMs` overrides the connection's call deadline for this call.
   */
  call(spec: CallSpec, payload: Uint8Array, timeoutMs = this.opts.callTimeoutMs): Promise<Uint8Array> {
    return this.send(spec, payload, false, timeoutMs);
  }

  /** The bytes a request must reserve in front (RequestBuilder's headroom) for callFrame(). */
  get headroom(): number {
    return HEADER_BYTES + this.options.length;
  }

  /**
   * call() for a request built with `headroom` bytes in front: its header and options are
   * written there and the same buffer is sent (no second buffer, no copy). The buffer is the
   * socket's from then on: a request's buffer is never reused, since the stream may still
   * hold it after write() returns.
   */
  callFrame(spec: CallSpec, frame: Uint8Array, timeoutMs = this.opts.callTimeoutMs): Promise<Uint8Array> {
    return this.send(spec, frame, true, timeoutMs);
  }

  private send(spec: CallSpec, bytes: Uint8Array, framed: boolean, timeoutMs: number | undefined): Promise<Uint8Array> {
    if (this.dead !== undefined) return Promise.reject(new HostLostError(spec.name, this.opts.generation, this.dead, false, this.opts.label));
    if (framed && bytes.length < this.headroom) throw new Error(`p11kit-wasm rpc: ${spec.name} request has no room for its frame header`);
    const code = this.nextCode;
    this.nextCode = this.nextCode === 0xffffffff ? 1 : this.nextCode + 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      const entry: Pending = { fn: spec.name, resolve, reject, deadline: timeoutMs ? performance.now() + timeoutMs : Infinity, timeoutMs: timeoutMs ?? 0 };
      if (entry.deadline < this.deadlineAt) this.armDeadline(entry.deadline);
      if (this.pending.size === 0) this.transport.hold(true);
      this.pending.add(code, entry);
      this.transport.write(framed ? writeFrameHead(bytes, code, this.options) : encodeFrame(code, this.options, bytes));
    });
  }

  private receive(chunk: Uint8Array): void {
    if (this.dead !== undefined) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      return this.die((err as FramingError).message, 'protocol');
    }
    if (this.handshake && this.decoder.version !== undefined) {
      if (this.decoder.version !== PROTOCOL_VERSION) {
        // die() rejects the handshake while it is still registered.
        return this.die(`host answered protocol version ${this.decoder.version} to our ${PROTOCOL_VERSION}`, 'protocol');
      }
      const h = this.handshake;
      this.handshake = undefined;
      h.resolve();
    }
    for (const frame of frames) {
      const entry = this.pending.take(frame.code);
      if (!entry) return this.die(`reply with code ${frame.code}, which no call is waiting for`, 'protocol');
      if (this.pending.size === 0) this.transport.hold(false);
      if (frame.oversized !== undefined) entry.reject(new RpcReplyTooLargeError(entry.fn, frame.oversized, this.decoder.maxPayload, this.opts.label));
      else entry.resolve(frame.payload);
    }
  }

  private armDeadline(at: number): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineAt = at;
    this.deadlineTimer = setTimeout(() => this.deadlinePassed(), Math.max(0, at - performance.now()));
    this.deadlineTimer.unref();
  }

  /** The earliest deadline came: a call past its own fails the connection; else wait for the next. */
  private deadlinePassed(): void {
    this.deadlineAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const entry of this.pending.values()) {
      if (entry.deadline <= now) return this.die(`${entry.fn} got no reply within ${entry.timeoutMs} ms`, 'unresponsive');
      if (entry.deadline < next) next = entry.deadline;
    }
    if (next < Infinity) this.armDeadline(next);
  }

  private die(reason: string, kind: 'lost' | 'unresponsive' | 'protocol' | 'closed'): void {
    if (this.dead !== undefined) return;
    const partial = kind !== 'protocol' && kind !== 'closed' && this.decoder.midFrame ? ' (in the middle of a reply)' : '';
    this.dead = reason + partial;
    if (this.handshake) {
      this.handshake.reject(new Error(this.dead));
      this.handshake = undefined;
    }
    clearTimeout(this.deadlineTimer);
    this.deadlineAt = Infinity;
    for (const entry of this.pending.values()) {
      entry.reject(
        kind === 'protocol'
          ? new RpcProtocolError(entry.fn, reason, this.opts.label)
          : new HostLostError(entry.fn, this.opts.generation, this.dead, true, this.opts.label),
      );
    }
    this.pending.clear();
    if (kind !== 'closed') {
      void this.transport.close(kind === 'unresponsive');
      this.opts.onLost(this.dead);
    }
  }

  /** Ends the connection on purpose: waiting calls fail, and a spawned host is reaped. */
  async close(reason = 'connection closed', unresponsive = false): Promise<void> {
    this.die(reason, 'closed');
    await this.transport.close(unresponsive);
  }
}
