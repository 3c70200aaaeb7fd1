// A worker that makes its first blocking call (C_Login: the dedicated thread's first use),
// says so, and is terminated by its parent at once.
import { parentPort, workerData } from 'node:worker_threads';

const { openModule, CKU } = await import(`${workerData.libDir}/index.js`);
const m = openModule(workerData.path);
const s = m.openSession(workerData.slot);
void s.async.login(CKU.CKU_USER, workerData.pin).catch(() => undefined);
parentPort.postMessage('called');
