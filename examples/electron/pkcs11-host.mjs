// The utility process: hosts one PKCS#11 service (koffi and the native modules live here, not in
// the renderer and not on the main process's UI thread) and serves every port it is given.
import { servePkcs11, portMainEndpoint, FULL_GRANT } from 'p11kit-wasm';

// What each kind of client may do. The renderer is untrusted (it renders web content): it may
// open SoftHSM2 only — by that exact path — and list/use existing keys, never load another
// library, create or destroy objects, or change PINs. The main process is the application.
const GRANTS = {
  main: FULL_GRANT,
  renderer: { operations: ['read', 'use'], paths: ['/usr/lib/softhsm/libsofthsm2.so'], modules: [] },
};
const services = new Set();

process.parentPort.on('message', (e) => {
  if (e.data?.type === 'pkcs11-connect') {
    // e.ports[0] is a MessagePortMain: { data } message events, start(), close().
    // Each port gets its own service (its own ids) under the grant of its role; unknown roles get the safe default.
    const grant = Object.hasOwn(GRANTS, e.data.role) ? GRANTS[e.data.role] : undefined;
    services.add(servePkcs11(portMainEndpoint(e.ports[0]), { grant }));
  } else if (e.data?.type === 'pkcs11-drain') {
    for (const service of services) service.drain(); // close sessions, release modules (the last holder's C_Finalize)
    process.exit(0);
  }
});
