// The ends a service talks through. comlink speaks the DOM `Endpoint` shape
// (postMessage / addEventListener('message', ev => ev.data)); Node's worker_threads and
// Electron's MessagePortMain are EventEmitters instead, so each gets an adapter. Every
// endpoint here also reports when the other side is gone (`onClose`), which comlink itself
// never does (its pending calls would wait forever).
import type { Endpoint } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { MessagePort as NodeMessagePort, Worker } from 'node:worker_threads';

/** An endpoint that can also tell that its peer has gone away, and be closed from this side. */
export interface ServiceEndpoint extends Endpoint {
  /** Calls `listener` once when the peer is gone (worker exit, port closed); `reason` says how. */
  onClose(listener: (reason: string) => void): void;
  close(): void;
}

/** What an Electron `MessagePortMain` looks like (main process and utility processes). */
export interface MessagePortMainLike {
  postMessage(message: unknown, transfer?: unknown[]): void;
  on(event: 'message', listener: (messageEvent: { data: unknown; ports?: unknown[] }) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'message', listener: (messageEvent: { data: unknown; ports?: unknown[] }) => void): unknown;
  off(event: 'close', listener: () => void): unknown;
  start(): void;
  close(): void;
}

function closeNotifier(): { notify(reason: string): void; onClose(l: (reason: string) => void): void } {
  let closed: string | undefined;
  const listeners: ((reason: string) => void)[] = [];
  return {
    notify(reason) {
      if (closed !== undefined) return;
      closed = reason;
      for (const l of listeners.splice(0)) l(reason);
    },
    onClose(l) {
      if (closed !== undefined) queueMicrotask(() => l(closed!));
      else listeners.push(l);
    },
  };
}

/** The main-thread end of a `worker_threads` Worker: closes on exit, error and messageerror. */
export function workerEndpoint(worker: Worker): ServiceEndpoint {
  const ep = nodeEndpoint(worker);
  const closed = closeNotifier();
  worker.once('exit', (code) => closed.notify(`worker exited with code ${code}`));
  // A persistent listener: an 'error' event nobody listens to would be thrown in this thread.
  worker.on('error', (err) => closed.notify(`worker failed: ${err instanceof Error ? err.message : String(err)}`));
  return {
    ...ep,
    onClose: closed.onClose,
    close: () => void worker.terminate(),
  };
}

/** Either end of a Node `MessagePort` (a worker's parentPort, or a MessageChannel port). */
export function nodePortEndpoint(port: NodeMessagePort): ServiceEndpoint {
  const ep = nodeEndpoint(port);
  const closed = closeNotifier();
  port.once('close', () => closed.notify('port closed'));
  return { ...ep, onClose: closed.onClose, close: () => port.close() };
}

/**
 * An Electron `MessagePortMain` (from `MessageChannelMain`, or `utilityProcess` /
 * `process.parentPort` message events). Its messages arrive as `{ data, ports }` events and
 * it can transfer only other MessagePortMain objects, so ArrayBuffers in a transfer list are
 * dropped (they are copied instead) — the service never relies on transferring anything else.
 */
export function portMainEndpoint(port: MessagePortMainLike): ServiceEndpoint {
  type Listener = Parameters<Endpoint['addEventListener']>[1];
  const wrapped = new Map<Listener, (e: { data: unknown }) => void>();
  const closed = closeNotifier();
  port.on('close', () => closed.notify('port closed'));
  return {
    postMessage(message: unknown, transfer?: unknown[]) {
      const ports = (transfer ?? []).filter((t) => !(t instanceof ArrayBuffer));
      if (ports.length) port.postMessage(message, ports);
      else port.postMessage(message);
    },
    addEventListener(_type: string, listener: Listener) {
      const l = (e: { data: unknown }) => {
        const ev = { data: e.data } as MessageEvent;
        if (typeof listener === 'function') listener(ev);
        else listener.handleEvent(ev);
      };
      wrapped.set(listener, l);
      port.on('message', l);
    },
    removeEventListener(_type: string, listener: Listener) {
      const l = wrapped.get(listener);
      if (!l) return;
      port.off('message', l);
      wrapped.delete(listener);
    },
    start: () => port.start(),
    onClose: closed.onClose,
    close: () => port.close(),
  };
}

/**
 * A Node `MessagePort` dressed as an Electron `MessagePortMain` (`{ data }` message events,
 * explicit `start()`). Electron is not available here; this is how the adapter above is
 * exercised, and it lets the same host code run under plain Node.
 */
export function portMainFromNodePort(port: NodeMessagePort): MessagePortMainLike {
  const handlers = new Map<(...a: never[]) => unknown, (...a: unknown[]) => void>();
  const self: MessagePortMainLike = {
    postMessage: (message, transfer) => port.postMessage(message, transfer as never),
    on(event: 'message' | 'close', listener: (e: { data: unknown }) => void) {
      const h = event === 'message' ? (data: unknown) => listener({ data, ports: [] } as never) : () => (listener as () => void)();
      handlers.set(listener, h);
      port.on(event, h);
      return self;
    },
    off(event: 'message' | 'close', listener: (e: { data: unknown }) => void) {
      const h = handlers.get(listener);
      if (h) port.off(event, h);
      handlers.delete(listener);
      return self;
    },
    start: () => port.start(),
    close: () => port.close(),
  } as MessagePortMainLike;
  return self;
}

/**
 * A DOM `MessagePort` — an Electron renderer's end, handed over by the preload script.
 * Chromium reports a closed peer with a 'close' event where it supports one; where it does
 * not, the application's main process tells the renderer instead (see examples/electron).
 */
export function webPortEndpoint(port: MessagePort): ServiceEndpoint {
  const closed = closeNotifier();
  port.addEventListener('close', () => closed.notify('port closed'));
  return {
    postMessage: (message: unknown, transfer?: Transferable[]) => port.postMessage(message, transfer ?? []),
    addEventListener: (type: string, listener: EventListenerOrEventListenerObject) => port.addEventListener(type, listener),
    removeEventListener: (type: string, listener: EventListenerOrEventListenerObject) => port.removeEventListener(type, listener),
    start: () => port.start(),
    onClose: closed.onClose,
    close: () => port.close(),
  };
}
