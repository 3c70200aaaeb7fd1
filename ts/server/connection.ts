// One client on the socket: the version handshake, then request frames answered in order, one
// at a time. A frame that breaks the protocol (bad header, over the limits, unknown call,
// arguments that do not parse) closes this connection only; a PKCS#11 failure is an error
// reply. When the connection ends — the client closed it, died, or the server is stopping —
// the call in progress finishes, then the client's sessions are closed. A client that never
// sends its protocol version (or, when asked, one that stays idle) is closed on a timer, and one
// that stops reading its replies is dropped, so a connection that only holds a place (and,
// isolated, a process) does not hold it for ever.
import type { Socket } from 'node:net';
import { CKR } from '../bridge/ckr.js';
import { BridgeError, Pkcs11Error } from '../bridge/errors.js';
import { FrameDecoder, PROTOCOL_VERSION, encodeFrame, type Frame } from '../rpc/frame.js';
import { RpcProtocolError } from '../rpc/errors.js';
import { REFUSED_CALLS, handlerFor } from './calls.js';
import { errorReply } from './reply.js';
import { Refusal, RequestReader } from './request.js';
import type { ClientState } from './state.js';

const NO_OPTIONS = new Uint8Array(0);
/** Requests read ahead of the one being answered before the socket stops being read. */
const QUEUE_LIMIT = 8;

/** The CK_RV a failed call answers with. */
function rvOf(err: unknown): number {
  if (err instanceof Refusal) return err.rv;
  if (err instanceof Pkcs11Error) return err.rv;
  if (err instanceof BridgeError && err.code === 'BAD_ARGUMENT') return CKR.CKR_ARGUMENTS_BAD;
  return CKR.CKR_DEVICE_ERROR;
}

export interface ConnectionEvents {
  /** A protocol violation ended the connection (for the server's log; never carries secrets). */
  onViolation?(reason: string): void;
  /** A reply was written (a child process reports its session count to its parent then). */
  onAnswered?(): void;
}

export class ClientConnection {
  private readonly decoder: FrameDecoder;
  private readonly queue: Frame[] = [];
  private busy = false;
  private ended = false;
  private cleanedUp = false;
  /** Closes a connection that does not send its protocol version in time; cleared once it has. */
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** With limits.idleMs: refreshed by every chunk and every answered call, not re-created. */
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Writes the socket has not yet handed to the kernel: the client is not reading. */
  private unsent = 0;
  /** With limits.unreadMs, while writes wait: refreshed whenever the client takes one. */
  private unreadTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settles when the connection is over and its sessions are closed. */
  readonly finished: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly client: ClientState,
    private readonly events: ConnectionEvents = {},
  ) {
    this.decoder = new FrameDecoder({ maxOptions: client.limits.maxOptions, maxPayload: client.limits.maxPayload });
    this.finished = new Promise((r) => (this.finish = r));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined); // 'close' follows and tells the story
    socket.once('close', () => (clearTimeout(this.unreadTimer), this.end()));
    const { handshakeMs } = client.limits;
    if (handshakeMs > 0) this.handshakeTimer = setTimeout(() => this.violation(`no protocol version within ${handshakeMs} ms of connecting`), handshakeMs);
  }

  /** The client did something (sent bytes, or a call of its ended): the idle deadline starts over. */
  private touch(): void {
    if (this.ended || this.decoder.version === undefined) return; // the handshake deadline counts from connecting
    clearTimeout(this.handshakeTimer);
    const { idleMs } = this.client.limits;
    if (idleMs <= 0) return;
    if (this.idleTimer) this.idleTimer.refresh(); // also re-arms one that already fired during a call
    else this.idleTimer = setTimeout(() => this.idle(idleMs), idleMs);
  }

  private idle(idleMs: number): void {
    // A call in progress or waiting is not idleness; its end refreshes the timer.
    if (this.busy || this.queue.length > 0) return;
    this.violation(`idle for ${idleMs} ms`);
  }

  /** Ends the connection now (server stopping); the call in progress still completes. */
  close(): void {
    this.socket.destroy();
  }

  /** Writes to the client; if it then takes nothing for limits.unreadMs, it is dropped. */
  private send(bytes: Uint8Array): boolean {
    if (this.unsent++ === 0) this.watchUnread();
    return this.socket.write(bytes, () => {
      if (--this.unsent > 0) this.watchUnread(); // it took one: the next gets the full time
    });
  }

  private watchUnread(): void {
    const { unreadMs } = this.client.limits;
    if (unreadMs <= 0 || this.socket.destroyed) return;
    if (this.unreadTimer) this.unreadTimer.refresh(); // re-arms one that already fired
    else this.unreadTimer = setTimeout(() => this.unread(unreadMs), unreadMs);
  }

  private unread(unreadMs: number): void {
    if (this.unsent === 0 || this.socket.destroyed) return;
    // Already ending (a violation): only what was written is still waiting; no second report.
    if (!this.ended) this.events.onViolation?.(`replies left unread for ${unreadMs} ms (${this.socket.writableLength} bytes waiting)`);
    this.socket.destroy(); // not end(): that would wait for the client to read
    this.end();
  }

  private receive(chunk: Uint8Array): void {
    this.take(chunk);
    this.touch();
  }

  private take(chunk: Uint8Array): void {
    if (this.ended) return;
    const hadVersion = this.decoder.version !== undefined;
    let frames: Frame[] = [];
    let broken: string | undefined;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      broken = (err as Error).message;
    }
    // The handshake is answered even when the frame after it in the same chunk is refused.
    if (!hadVersion && this.decoder.version !== undefined) {
      this.send(Uint8Array.of(PROTOCOL_VERSION));
      if (this.decoder.version !== PROTOCOL_VERSION) return this.violation(`client asked for protocol version ${this.decoder.version}`);
    }
    if (broken !== undefined) return this.violation(broken);
    if (frames.length === 0) return;
    this.queue.push(...frames);
    // A client cannot queue unbounded work: past a few waiting requests nothing more is read
    // until they are answered (the frame decoder itself holds at most one partial frame).
    if (this.queue.length >= QUEUE_LIMIT) this.socket.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.ended) {
        const frame = this.queue.shift()!;
        const reply = await this.answer(frame);
        if (reply === undefined) return; // violation: the connection is closing
        if (this.ended) break;
        const flowing = this.send(encodeFrame(frame.code, NO_OPTIONS, reply));
        this.events.onAnswered?.();
        if (!flowing) {
          await new Promise<void>((resolve) => {
            const go = () => (this.socket.off('drain', go), this.socket.off('close', go), resolve());
            this.socket.once('drain', go).once('close', go);
          });
        }
      }
    } finally {
      this.busy = false;
      if (this.ended) void this.cleanup();
      else if (this.socket.isPaused()) this.socket.resume();
      this.touch();
    }
  }

  private async answer(frame: Frame): Promise<Uint8Array | undefined> {
    let req: RequestReader;
    try {
      req = new RequestReader(frame.payload, this.client.limits);
    } catch (err) {
      this.violation((err as Error).message);
      return undefined;
    }
    const name = req.spec.name;
    const handler = handlerFor(name);
    if (!handler || REFUSED_CALLS.includes(name)) return errorReply(CKR.CKR_FUNCTION_NOT_SUPPORTED);
    if (!this.client.initialized && name !== 'C_Initialize') return errorReply(CKR.CKR_CRYPTOKI_NOT_INITIALIZED);
    try {
      return await handler(req, this.client);
    } catch (err) {
      if (err instanceof RpcProtocolError) {
        this.violation(err.reason);
        return undefined;
      }
      return errorReply(rvOf(err));
    }
  }

  private violation(reason: string): void {
    this.events.onViolation?.(reason);
    this.socket.end(); // what was written (the handshake) still goes out
    this.socket.destroySoon();
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.idleTimer);
    this.queue.length = 0;
    if (!this.busy) void this.cleanup();
  }

  private async cleanup(): Promise<void> {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    try {
      await this.client.end();
    } finally {
      this.finish();
    }
  }
}
