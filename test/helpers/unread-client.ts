// A hostile client of a token server that stops reading its replies: it speaks p11-kit's RPC
// protocol over a raw Unix socket, reads the replies it needs to set itself up (call()), then
// pipelines requests and never reads again (flood()).
import { connect, type Socket } from 'node:net';
import { callSpec, type CallName } from '../../ts/rpc/calls.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '../../ts/rpc/frame.js';
import { RequestBuilder, ResponseParser } from '../../ts/rpc/message.js';
import { HANDSHAKE_MAGIC } from '../../ts/server/magic.js';

type Build = (b: RequestBuilder) => RequestBuilder;
const NO_OPTIONS = new Uint8Array(0);

export class UnreadClient {
  private readonly decoder = new FrameDecoder();
  private readonly waiting: ((payload: Uint8Array) => void)[] = [];
  private code = 0;
  private readonly onData = (chunk: Buffer) => {
    for (const frame of this.decoder.push(chunk)) this.waiting.shift()?.(frame.payload);
  };

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('data', this.onData);
  }

  /** Connects, sends the protocol version and C_Initialize, and reads the answer. */
  static async open(path: string): Promise<UnreadClient> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new UnreadClient(socket);
    socket.write(Uint8Array.of(PROTOCOL_VERSION));
    await client.call('C_Initialize', (b) => b.bytes(HANDSHAKE_MAGIC).byte(0).bytes(Uint8Array.of(0)));
    return client;
  }

  private frame(name: CallName, build: Build): Uint8Array {
    return encodeFrame(++this.code, NO_OPTIONS, build(new RequestBuilder(callSpec(name))).finish());
  }

  /** One call, its reply read (a PKCS#11 error in it throws). */
  async call(name: CallName, build: Build = (b) => b): Promise<ResponseParser> {
    const payload = new Promise<Uint8Array>((resolve) => this.waiting.push(resolve));
    this.socket.write(this.frame(name, build));
    return new ResponseParser(await payload, callSpec(name));
  }

  /** Stops reading, then sends `count` requests (whatever the server cannot take yet waits here). */
  flood(name: CallName, count: number, build: Build = (b) => b): void {
    this.socket.off('data', this.onData);
    this.socket.pause();
    for (let i = 0; i < count; i++) this.socket.write(this.frame(name, build));
  }

  destroy(): void {
    this.socket.destroy();
  }
}
