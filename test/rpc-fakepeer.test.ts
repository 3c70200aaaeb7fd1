// A hostile or broken peer: wrong handshakes, malformed, short and oversized frames, replies to
// nobody, garbage. Every case ends in a typed Pkcs11Error in bounded time; the process lives on.
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CKR } from '../ts/rpc/constants.js';
import { HostConnectError, HostLostError, Pkcs11Error, RpcClient, RpcProtocolError, RpcReplyTooLargeError, type HostLostEvent } from '../ts/rpc/index.js';
import { frame, reply, startFakePeer, type FakePeer } from './helpers/rpc-fakepeer.js';

let peer: FakePeer;
let client: RpcClient | undefined;

beforeAll(async () => {
  peer = await startFakePeer();
});

afterEach(async () => {
  await client?.close();
  client = undefined;
  peer.handshake = 0;
  peer.hangUp = false;
  peer.script = () => {};
});

afterAll(async () => {
  await peer.close();
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u32 = (n: number) => hex(n.toString(16).padStart(8, '0'));

async function connected(opts: { callTimeoutMs?: number } = {}) {
  client = new RpcClient({ remote: peer.address, connectTimeoutMs: 500, ...opts });
  const losses: HostLostEvent[] = [];
  client.on('hostLost', (e) => losses.push(e));
  await client.initialize();
  return { client, losses };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const started = Date.now();
  const err = await p.then(
    () => new Error('resolved'),
    (e: Error) => e,
  );
  expect(Date.now() - started).toBeLessThan(5000);
  return err;
}

describe('handshake', () => {
  it('refuses a peer answering another protocol version', async () => {
    peer.handshake = 1;
    client = new RpcClient({ remote: peer.address, connectTimeoutMs: 500 });
    const err = await failure(client.initialize());
    expect(err).toBeInstanceOf(HostConnectError);
    expect(err.message).toMatch(/protocol version 1/);
    expect(client.state).toBe('closed');
  });

  it('gives up on a peer that never answers the handshake', async () => {
    peer.handshake = undefined;
    client = new RpcClient({ remote: peer.address, connectTimeoutMs: 300 });
    const err = await failure(client.initialize());
    expect(err).toBeInstanceOf(HostConnectError);
    expect(err.message).toMatch(/no handshake within 300 ms/);
  });

  it('reports a peer that hangs up at once', async () => {
    peer.hangUp = true;
    client = new RpcClient({ remote: peer.address, connectTimeoutMs: 500 });
    expect(await failure(client.initialize())).toBeInstanceOf(HostConnectError);
  });
});

describe('malformed replies', () => {
  it('a reply frame with code 0 breaks the connection: protocol error, host lost', async () => {
    const { client, losses } = await connected();
    peer.script = (_f, s) => s.write(frame(0, reply(3, 'vsusv')));
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(RpcProtocolError);
    expect((err as RpcProtocolError).rv).toBe(CKR.CKR_DEVICE_ERROR);
    expect(err.message).toMatch(/code 0/);
    expect(losses).toHaveLength(1);
    expect(client.state).toBe('lost');
  });

  it('an oversized length field fails that call at once, without waiting for (or keeping) the bytes', async () => {
    const { client, losses } = await connected();
    peer.script = (f, s) => s.write(Buffer.concat([u32(f.code), u32(0), u32(0xfffffff0), hex('0000000300')]));
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(RpcReplyTooLargeError);
    expect(err).toMatchObject({ rv: CKR.CKR_HOST_MEMORY, size: 0xfffffff0 });
    expect(err.message).toMatch(/exceeds the limit/);
    expect(losses).toHaveLength(0);
  });

  it('an oversized reply is dropped as it arrives; the next reply on the connection is read', async () => {
    client = new RpcClient({ remote: peer.address, connectTimeoutMs: 500, limits: { maxPayload: 1000 } });
    const losses: HostLostEvent[] = [];
    client.on('hostLost', (e) => losses.push(e));
    await client.initialize();
    const text32 = (t: string) => Buffer.concat([u32(32), Buffer.from(t.padEnd(32))]);
    const info = reply(3, 'vsusv', Buffer.concat([hex('0228'), text32('fake'), hex('0000000000000000'), text32('peer'), hex('0102')]));
    let calls = 0;
    peer.script = (f, s) => {
      // The first reply carries 5000 bytes of padding; both are sent in small pieces.
      const body = calls++ === 0 ? Buffer.concat([info, Buffer.alloc(5000, 9)]) : info;
      const bytes = Buffer.concat([u32(f.code), u32(0), u32(body.length), body]);
      for (let at = 0; at < bytes.length; at += 97) s.write(bytes.subarray(at, at + 97));
    };
    const big = client.getInfo().catch((e: Error) => e);
    const small = client.getInfo();
    expect(await big).toBeInstanceOf(RpcReplyTooLargeError);
    expect(await small).toMatchObject({ cryptokiVersion: { major: 2, minor: 40 }, manufacturerID: 'fake' });
    expect(losses).toHaveLength(0);
  });

  it('a short frame followed by a hang-up: host lost mid-reply', async () => {
    const { client, losses } = await connected();
    peer.script = (f, s) => {
      s.write(Buffer.concat([u32(f.code), u32(0), u32(100), hex('00000003')]));
      s.end();
    };
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(HostLostError);
    expect(err.message).toMatch(/in the middle of a reply/);
    expect(losses).toHaveLength(1);
  });

  it('a short frame followed by silence: the call deadline ends it', async () => {
    const { client, losses } = await connected({ callTimeoutMs: 300 });
    peer.script = (f, s) => s.write(Buffer.concat([u32(f.code), u32(0), u32(100), hex('00000003')]));
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(HostLostError);
    expect(err.message).toMatch(/C_GetInfo got no reply within 300 ms/);
    expect(losses).toHaveLength(1);
  });

  it('answered calls spread over several deadlines never trip one; a silent call after them still does', async () => {
    // One deadline timer serves every call: it must neither fire for calls that were answered
    // nor stop being re-armed after them.
    const { client, losses } = await connected({ callTimeoutMs: 200 });
    peer.script = (f, s) => s.write(frame(f.code, reply(0, 'u', hex('00000000000000b3'))));
    for (let i = 0; i < 6; i++) {
      expect(await failure(client.getInfo())).toBeInstanceOf(Pkcs11Error);
      await new Promise((r) => setTimeout(r, 80));
    }
    expect(losses).toHaveLength(0);
    expect(client.state).toBe('ready');
    peer.script = () => {}; // never answers
    const err = await failure(client.getInfo());
    expect(err.message).toMatch(/C_GetInfo got no reply within 200 ms/);
    expect(losses).toHaveLength(1);
  });

  it('a blocking C_WaitForSlotEvent has no call deadline; a CKF_DONT_BLOCK one has', async () => {
    const { client, losses } = await connected({ callTimeoutMs: 200 });
    peer.script = () => {}; // never answers
    let settled = false;
    const blocking = client.waitForSlotEvent(0).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 600));
    expect(settled).toBe(false);
    expect(losses).toHaveLength(0);
    const err = await failure(client.waitForSlotEvent(1));
    expect(err.message).toMatch(/C_WaitForSlotEvent got no reply within 200 ms/);
    // The loss ends the blocking wait too.
    await expect(blocking).rejects.toBeInstanceOf(HostLostError);
  });

  it('a reply with a code no call is waiting for breaks the connection', async () => {
    const { client } = await connected();
    peer.script = (f, s) => s.write(frame(f.code + 1000, reply(3, 'vsusv')));
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(RpcProtocolError);
    expect(err.message).toMatch(/no call is waiting/);
  });

  it('well-framed but wrong payloads fail that call only; the connection stays up', async () => {
    const { client, losses } = await connected();
    const bad = [
      reply(4, 'au', hex('00 00000000')), // reply to another call
      reply(3, 'au', hex('00 00000000')), // wrong signature
      reply(3, 'vsusv', hex('0228 00000020')), // truncated body
      reply(0, 'u', hex('00000191')), // short error reply
      reply(0, 'u', hex('0000000000000000')), // error reply carrying CKR_OK
      Buffer.concat([reply(3, 'vsusv', hex('0228 00000005 4142434445')), hex('00'.repeat(60))]), // wrong string width
      hex('000003'), // no call id
    ];
    for (const payload of bad) {
      peer.script = (f, s) => s.write(frame(f.code, payload));
      const err = await failure(client.getInfo());
      expect(err, Buffer.from(payload).toString('hex')).toBeInstanceOf(RpcProtocolError);
    }
    // A proper error reply is the host's CK_RV, not a protocol error.
    peer.script = (f, s) => s.write(frame(f.code, reply(0, 'u', hex('00000000000000b3'))));
    const err = await failure(client.getInfo());
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err).not.toBeInstanceOf(RpcProtocolError);
    expect((err as Pkcs11Error).rv).toBe(CKR.CKR_SESSION_HANDLE_INVALID);
    expect(losses).toHaveLength(0);
    expect(client.state).toBe('ready');
  });

  it('a lying size report does not loop: output buffers are re-asked a bounded number of times', async () => {
    const { client } = await connected();
    let asked = 0;
    // C_GetOperationState reply: "no data, 4 bytes needed" no matter how much room was given.
    peer.script = (f, s) => {
      asked++;
      s.write(frame(f.code, reply(16, 'ay', hex('00 00000004'))));
    };
    const session = client.handles.addSession(1, 0);
    const err = await failure(client.getOperationState(session));
    expect(err).toBeInstanceOf(RpcProtocolError);
    expect(asked).toBe(1);
  });

  it('random bytes from the peer always end in a typed error within the deadline', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.boolean(), async (bytes, asFramePayload) => {
        const c = new RpcClient({ remote: peer.address, connectTimeoutMs: 500, callTimeoutMs: 200 });
        client = c;
        await c.initialize();
        peer.script = (f, s) => s.write(asFramePayload ? frame(f.code, bytes) : bytes);
        const err = await failure(c.getInfo());
        expect(err).toBeInstanceOf(Pkcs11Error);
        await c.close();
      }),
      { numRuns: 40 },
    );
  });
});
