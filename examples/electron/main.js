// Electron main process: starts the PKCS#11 service in a utility process (a Node child with
// MessagePorts, launched by Chromium), gives itself and the window one MessagePort each, and
// starts a new utility process (a new generation) if the old one dies.
const { app, BrowserWindow, MessageChannelMain, utilityProcess } = require('electron');
const path = require('node:path');

/** p11kit-wasm is an ES module; the main process loads it with import(). */
const lib = import('p11kit-wasm');

let host; // the running utility process
let generation = 0;
let win;
let service; // the main process's own client
let quitting = false;

function startHost() {
  generation++;
  host = utilityProcess.fork(path.join(__dirname, 'pkcs11-host.mjs'), [], { serviceName: 'pkcs11' });
  const myGeneration = generation;
  host.once('exit', (code) => {
    console.error(`pkcs11 utility process (generation ${myGeneration}) exited with ${code}`);
    // Ports to a dead process close: every pending call of every client rejects with
    // ServiceDeadError. Start a new generation and hand out new ports.
    if (!quitting) connectAll(startHost());
  });
  return host;
}

/** A new channel to the utility process: one end there, the other end returned. */
function channelTo(child, role) {
  const { port1, port2 } = new MessageChannelMain();
  child.postMessage({ type: 'pkcs11-connect', role }, [port2]);
  return port1;
}

async function connectAll(child) {
  const { connectPkcs11, portMainEndpoint } = await lib;
  // The main process: a MessagePortMain, through the adapter.
  service = connectPkcs11(portMainEndpoint(channelTo(child, 'main')));
  // The renderer: the port travels through the preload script (contextIsolation on, sandbox on).
  if (win) win.webContents.postMessage('pkcs11-port', { generation }, [channelTo(child, 'renderer')]);
}

app.whenReady().then(async () => {
  win = new BrowserWindow({
    webPreferences: { preload: path.join(__dirname, 'preload.js'), contextIsolation: true, sandbox: true },
  });
  await win.loadFile(path.join(__dirname, 'index.html'));
  await connectAll(startHost());

  // The main process uses the service too: list the tokens of SoftHSM2, if it is installed.
  try {
    const mod = await service.openModule('/usr/lib/softhsm/libsofthsm2.so');
    for (const s of await mod.slots()) console.log(`slot ${s.slot}: ${s.token ? s.token.label : '(no token)'}`);
  } catch (err) {
    const e = /** @type {Error} */ (err);
    console.error('pkcs11:', e.name, e.message); // Pkcs11Error, ModuleLoadError... with rv/fn/module
  }
});

app.on('before-quit', () => {
  quitting = true;
  // Lets the service close its sessions and finalize what it initialized, then ends it.
  host?.postMessage({ type: 'pkcs11-drain' });
});
