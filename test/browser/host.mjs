// The Chromium test's service host: a process of its own (as an Electron utility process is),
// serving one client over Node's IPC channel (advanced serialization: structured clone) with
// the grant a renderer gets in the example: SoftHSM2 by its path, read + use.
const lib = await import(process.argv[2]);
const listeners = new Map();
const endpoint = {
  postMessage: (m) => process.send(m),
  addEventListener: (_t, l) => {
    const h = (data) => (typeof l === 'function' ? l({ data }) : l.handleEvent({ data }));
    listeners.set(l, h);
    process.on('message', h);
  },
  removeEventListener: (_t, l) => {
    process.off('message', listeners.get(l));
    listeners.delete(l);
  },
  onClose: (l) => process.once('disconnect', () => l('disconnected')),
  close: () => process.disconnect(),
};
lib.servePkcs11(endpoint, { grant: { operations: ['read', 'use'], paths: ['/usr/lib/softhsm/libsofthsm2.so'], modules: [] } });
process.send({ hostReady: process.pid });
