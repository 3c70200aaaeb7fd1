// The utility process: hosts one PKCS#11 service (koffi and the native modules live here, not in
// the renderer and not on the main process's UI thread) and serves every port it is given.
import { Pkcs11Service, servePkcs11, portMainEndpoint } from 'p11kit-wasm';

const service = new Pkcs11Service();

process.parentPort.on('message', (e) => {
  if (e.data?.type === 'pkcs11-connect') {
    // e.ports[0] is a MessagePortMain: { data } message events, start(), close().
    servePkcs11(portMainEndpoint(e.ports[0]), service);
  } else if (e.data?.type === 'pkcs11-drain') {
    service.drain(); // close sessions, release modules (the last holder's C_Finalize)
    process.exit(0);
  }
});
