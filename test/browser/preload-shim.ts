// Plays the Electron preload for the example's own page (examples/electron/index.html and its
// renderer bundle, served as shipped): a MessagePort whose other end is bridged to the test
// relay's WebSocket, handed to the page with window.postMessage as preload.js does.
import { decodeWire, encodeWire } from './wire.js';

const ws = new WebSocket(`ws://${location.host}/relay`);
const { port1, port2 } = new MessageChannel();
ws.addEventListener('message', (e) => port1.postMessage(decodeWire(String(e.data))));
port1.onmessage = (e) => ws.send(encodeWire(e.data));
ws.addEventListener('close', () => port1.close());
const hand = () => window.postMessage({ type: 'pkcs11-port', generation: 1 }, '*', [port2]);
ws.addEventListener('open', () => (document.readyState === 'complete' ? hand() : window.addEventListener('load', hand, { once: true })));
