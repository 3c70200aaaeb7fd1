// The entry of a PKCS#11 service worker: createPkcs11Worker() starts the compiled form of this
// file (dist/lib/service/worker-main.js; workers run JavaScript, not TypeScript).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { nodePortEndpoint } from './endpoint.js';
import { FULL_GRANT, type ClientGrant } from './grant.js';
import { servePkcs11 } from './serve-pkcs11.js';

if (isMainThread || !parentPort) throw new Error('p11kit-wasm: worker-main.js is the entry of a service worker thread');
// The worker is the application's own (createPkcs11Worker): it says what the service may do.
const grant = (workerData as { p11wGrant?: ClientGrant } | undefined)?.p11wGrant;
servePkcs11(nodePortEndpoint(parentPort), { grant: grant ?? FULL_GRANT });
