// Runs a service in a Node worker thread: the ServiceHost the supervisor needs.
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { workerEndpoint } from './endpoint.js';
import type { ServiceHost } from './supervisor.js';

/** Starts `entry` (a plain JS module: workers do not run TypeScript) as a service host. */
export function spawnWorkerHost(entry: URL | string, options: WorkerOptions = {}): ServiceHost & { worker: Worker } {
  const worker = new Worker(entry, options);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return {
    worker,
    endpoint: workerEndpoint(worker),
    terminate: () => worker.terminate(),
    exited,
    unref: () => worker.unref(),
  };
}
