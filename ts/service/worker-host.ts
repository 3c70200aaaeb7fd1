// Runs a service in a Node worker thread: the ServiceHost the supervisor needs.
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { workerEndpoint, type ServiceEndpoint } from './endpoint.js';
import type { ServiceHost } from './supervisor.js';

export interface WorkerHostOptions extends WorkerOptions {
  /**
   * Let the process exit while nothing is pending (default true): the worker is unref'd
   * whenever no call, batch or stream awaits an answer, so a forgotten close() does not keep
   * the process alive — and a call in flight does.
   */
  readonly unrefWhenIdle?: boolean;
}

/** Starts `entry` (a plain JS module: workers do not run TypeScript) as a service host. */
export function spawnWorkerHost(entry: URL | string, options: WorkerHostOptions = {}): ServiceHost & { worker: Worker } {
  const { unrefWhenIdle = true, ...workerOptions } = options;
  const worker = new Worker(entry, workerOptions);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const ep = workerEndpoint(worker);
  return { worker, endpoint: unrefWhenIdle ? refWhilePending(worker, ep) : ep, terminate: () => worker.terminate(), exited };
}

const obj = (d: unknown): d is Record<string, unknown> => typeof d === 'object' && d !== null;

/**
 * Counts what the client sent that awaits an answer (a comlink call, a batch, a stream) against
 * the answers (a comlink reply, a batch reply, a stream's end), and holds a reference on the
 * worker only while the count is above zero.
 */
function refWhilePending(worker: Worker, ep: ServiceEndpoint): ServiceEndpoint {
  let pending = 0;
  const update = (delta: number) => {
    const before = pending;
    pending = Math.max(0, pending + delta);
    if (before === 0 && pending > 0) worker.ref();
    else if (before > 0 && pending === 0) worker.unref();
  };
  worker.unref();
  worker.on('message', (d: unknown) => {
    if (!obj(d)) return;
    if ('p11wBatchDone' in d || 'p11wStreamEnd' in d || ('id' in d && 'type' in d)) update(-1);
  });
  return {
    ...ep,
    postMessage(message: unknown, transfer?: Transferable[]) {
      ep.postMessage(message, transfer); // first: a message that cannot be sent awaits nothing
      if (obj(message) && ('p11wBatch' in message || 'p11wStreamOpen' in message || ('id' in message && 'type' in message))) update(+1);
    },
  };
}
