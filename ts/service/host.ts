// The service side: exposes an API object's methods on an endpoint (comlink's wire format), plus the
// batched methods (batch.ts) and event streams (stream.ts) on the same endpoint.
import { serveBatches, type BatchHandlers } from './batch.js';
import { compactingMethods } from './compact.js';
import type { ServiceEndpoint } from './endpoint.js';
import { installErrorTransfer } from './errors.js';
import { exposeMethods } from './guarded-expose.js';
import { serveStreams, type StreamSources } from './stream.js';

export interface ServeOptions {
  /** Short synchronous calls the client may batch (by name). */
  readonly batched?: BatchHandlers;
  readonly streams?: StreamSources;
}

/** Serves `api` on `ep`; returns a function that stops serving the batches and streams. */
export function serveService(api: object, ep: ServiceEndpoint, opts: ServeOptions = {}): () => void {
  installErrorTransfer();
  // Every answer leaves as exact-size data (see compact.ts; batches pack theirs). Only the
  // api's methods are reachable, by name (guarded-expose.ts), never its other properties.
  const stopCalls = exposeMethods(Object.assign(Object.create(null), compactingMethods(api)), ep);
  const stopBatches = serveBatches(ep, opts.batched ?? {});
  const stopStreams = serveStreams(ep, opts.streams ?? {});
  return () => {
    stopCalls();
    stopBatches();
    stopStreams();
  };
}
