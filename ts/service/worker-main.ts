// The entry of a PKCS#11 service worker: createPkcs11Worker() starts the compiled form of this
// file (dist/lib/service/worker-main.js; workers run JavaScript, not TypeScript).
import { isMainThread, parentPort } from 'node:worker_threads';
import { nodePortEndpoint } from './endpoint.js';
import { servePkcs11 } from './pkcs11-host.js';

if (isMainThread || !parentPort) throw new Error('p11kit-wasm: worker-main.js is the entry of a service worker thread');
servePkcs11(nodePortEndpoint(parentPort));
