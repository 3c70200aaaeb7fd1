// A client for a PKCS#11 service that something else runs (an Electron utility process, a
// worker started elsewhere): give it the endpoint. No koffi here, so a renderer can use it.
import type { ServiceEndpoint } from './endpoint.js';
import { Pkcs11Client } from './pkcs11-client.js';
import type { Pkcs11Service } from './pkcs11-host.js';
import { Supervisor } from './supervisor.js';

export interface ConnectOptions {
  /** Batched calls per message (default 32). */
  readonly maxBatch?: number;
  /**
   * Offer the service a shared-memory ring for the single-part byte operations (default false):
   * only for a service in this process — a worker thread started elsewhere — never across processes.
   */
  readonly ring?: boolean;
}

/**
 * Talks to the service at the other end of `endpoint`. When the endpoint closes, pending
 * calls reject with ServiceDeadError; there is no restart (whoever runs the service decides).
 */
export function connectPkcs11(endpoint: ServiceEndpoint, opts: ConnectOptions = {}): Pkcs11Client {
  let closed: () => void = () => undefined;
  const gone = new Promise<void>((resolve) => (closed = resolve));
  endpoint.onClose(() => closed());
  const supervisor = new Supervisor<Pkcs11Service>({
    spawn: () => ({ endpoint, exited: gone, terminate: () => endpoint.close() }),
    maxBatch: opts.maxBatch,
    ring: opts.ring,
  });
  return new Pkcs11Client(supervisor);
}
