// The virtual card runs in its own process: a test thread blocked in a synchronous PKCS#11 call
// (which talks to pcscd, which talks to the card) must not be the thread that answers the card's
// APDUs. Commands arrive as JSON lines on stdin, answers leave as JSON lines on stdout:
//   {"id":1,"op":"insert"} -> {"id":1,"ok":true}      connect to the reader (the card goes in)
//   {"id":2,"op":"remove"} -> {"id":2,"ok":true}      disconnect (the card comes out)
// The card spec and the reader's port are argv[2] (JSON) and argv[3].
// vpcd frames every message with a 2-byte big-endian length; a 1-byte message is a control
// (0 power off, 1 power on, 2 reset, 4 get ATR), a longer one a command APDU. Only the ATR
// request and APDUs are answered.
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { appletFor } from './applets.mjs';

const spec = JSON.parse(process.argv[2]);
const port = Number(process.argv[3]);
const applet = appletFor(spec);
const MAX_FRAME = 65_544; // an extended APDU with its header: anything longer is not vpcd
let socket = null;

function answer(msg) {
  if (msg.length === 1) {
    if (msg[0] === 4) return applet.atr;
    if (msg[0] === 0 || msg[0] === 2) applet.reset();
    return null;
  }
  return applet.transmit(msg);
}

async function insert() {
  if (socket) throw new Error('the card is already inserted');
  const s = connect({ host: '127.0.0.1', port });
  s.setNoDelay(true);
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  applet.reset();
  socket = s;
  let pending = Buffer.alloc(0);
  s.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const n = pending.readUInt16BE(0);
      if (n > MAX_FRAME) return s.destroy();
      if (pending.length < 2 + n) break;
      const out = answer(pending.subarray(2, 2 + n));
      pending = pending.subarray(2 + n);
      if (out) s.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
    }
  });
  s.on('error', () => {}); // the reader going away is a removal, seen as 'close'
  s.on('close', () => {
    if (socket === s) socket = null;
  });
}

async function remove() {
  const s = socket;
  if (!s) throw new Error('the card is not inserted');
  socket = null;
  await new Promise((resolve) => {
    s.once('close', resolve);
    s.end();
  });
}

const ops = { insert, remove };
createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, op } = JSON.parse(line);
  try {
    if (!ops[op]) throw new Error(`unknown op ${op}`);
    await ops[op]();
    process.stdout.write(`${JSON.stringify({ id, ok: true })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ id, ok: false, error: String(err?.message ?? err) })}\n`);
  }
}).on('close', () => {
  socket?.destroy();
  process.exit(0);
});
