// A fake RPC host on a unix socket the test controls: it answers the handshake as told, acks
// C_Initialize, and hands every later request frame to a script that writes whatever bytes the
// test wants back (well-formed, malformed, short, or nothing).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, encodeFrame, type Frame } from '../../ts/rpc/frame.js';

export type PeerScript = (frame: Frame, socket: Socket, callId: number) => void;

export interface FakePeer {
  address: string;
  /** What to answer the client's version byte with; undefined = never answer. */
  handshake: number | undefined;
  /** Close the connection right after accepting it. */
  hangUp: boolean;
  script: PeerScript;
  connections: number;
  close(): Promise<void>;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** A reply payload: call id, signature, body. */
export function reply(callId: number, signature: string, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  return Buffer.concat([u32(callId), u32(signature.length), Buffer.from(signature), body]);
}

export function frame(code: number, payload: Uint8Array): Uint8Array {
  return encodeFrame(code, new Uint8Array(0), payload);
}

export async function startFakePeer(): Promise<FakePeer> {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-fakepeer-'));
  const path = join(dir, 'peer.sock');
  const sockets = new Set<Socket>();
  const peer: FakePeer = {
    address: `unix:path=${path}`,
    handshake: 0,
    hangUp: false,
    script: () => {},
    connections: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const server: Server = createServer((socket) => {
    peer.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (peer.hangUp) return void socket.destroy();
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        const first = decoder.version === undefined;
        frames = decoder.push(chunk);
        if (first && decoder.version !== undefined && peer.handshake !== undefined) socket.write(Uint8Array.of(peer.handshake));
      } catch {
        return void socket.destroy();
      }
      for (const f of frames) {
        const callId = Buffer.from(f.payload).readUInt32BE(0);
        if (callId === 1) socket.write(frame(f.code, reply(1, '')));
        else peer.script(f, socket, callId);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return peer;
}
