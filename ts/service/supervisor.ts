// Keeps a service alive and honest. comlink leaves a call pending forever when the worker
// behind it dies; here every call is tracked, so when the service's endpoint closes (worker
// exit, error, terminate, port closed) each one rejects with a ServiceDeadError, later calls
// reject at once, and — if asked — a new worker is started as a new generation. Once the dead
// worker's thread is really gone, `reclaim` runs so the process-wide lifecycle can take back
// the module references and sessions that worker held.
import * as Comlink from 'comlink';
import { BatchClient } from './batch.js';
import { Emitter } from './emitter.js';
import type { ServiceEndpoint } from './endpoint.js';
import { installErrorTransfer, ServiceDeadError } from './errors.js';
import { RingClient } from './ring-client.js';
import { StreamClient } from './stream.js';

/** One running instance of the service, as `spawn` made it. */
export interface ServiceHost {
  readonly endpoint: ServiceEndpoint;
  /** Stops the service side now (worker.terminate(), closing the port). */
  terminate(): Promise<unknown> | void;
  /** Settles once the service's thread is gone, i.e. its lifecycle holdings are reclaimable. */
  readonly exited: Promise<unknown>;
  /**
   * Lets the process exit while the service runs (a worker's unref()). The supervisor keeps the
   * process alive itself while a call, a close() or a stream's next event is awaited, so a
   * program that forgets close() still exits when it is done.
   */
  unref?(): void;
}

export interface RestartPolicy {
  /** Restarts allowed over the supervisor's life (default 10); past it the service stays dead. */
  readonly max?: number;
}

export interface SupervisorOptions {
  /** Starts generation `generation` of the service (1, 2, ...). */
  spawn(generation: number): ServiceHost;
  /** Start a new generation when the service dies unexpectedly (default: no). */
  readonly restart?: boolean | RestartPolicy;
  /** Runs after a generation's thread is gone (and before a close() resolves). */
  reclaim?(generation: number): void | Promise<void>;
  /** A method the service runs to let go of everything before close() terminates it. */
  readonly drain?: string;
  /** How long close() waits for `drain` before it terminates anyway (default 2000 ms). */
  readonly drainTimeoutMs?: number;
  /** Batched calls per message before a new one starts (default 32). */
  readonly maxBatch?: number;
  /**
   * Methods that must finish before the service may be terminated (at most `terminateWaitMs`,
   * default 5000): koffi aborts the whole process when a worker is terminated while it builds
   * the functions of a library it is loading. Their callers are still rejected at once.
   */
  readonly terminateAfter?: readonly string[];
  readonly terminateWaitMs?: number;
  /**
   * Offer the service a shared-memory ring for the single-part byte operations (ring-client.ts):
   * only for a service in this process (a SharedArrayBuffer does not cross processes).
   */
  readonly ring?: boolean;
}

/** Calls a generation has in flight: comlink, batched and through its ring. */
const inFlight = (g: Generation<unknown>): number => g.pending.size + g.batches.pending + (g.ring?.pending ?? 0);

export interface ServiceDeath {
  readonly generation: number;
  readonly reason: string;
  /** Calls that were rejected because they were in flight. */
  readonly rejected: number;
  readonly restarting: boolean;
}

type Fn = (...args: never[]) => unknown;
/** The names of T's methods. */
export type MethodOf<T> = { [K in keyof T]: T[K] extends Fn ? K : never }[keyof T] & string;
export type ArgsOf<T, K extends MethodOf<T>> = T[K] extends (...args: infer A) => unknown ? A : never;
export type ResultOf<T, K extends MethodOf<T>> = T[K] extends (...args: never[]) => infer R ? Awaited<R> : never;

/** Waits for `p`, but no longer than `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

interface Tracked {
  readonly method: string;
  readonly reject: (e: unknown) => void;
}

interface Generation<T> {
  readonly n: number;
  readonly host: ServiceHost;
  readonly remote: Comlink.Remote<T>;
  readonly batches: BatchClient;
  readonly ring: RingClient | undefined;
  readonly streams: StreamClient;
  readonly pending: Set<Tracked>;
  /** Calls of opts.terminateAfter in flight (the raw comlink promises, which the worker still answers). */
  readonly unsafe: Set<Promise<unknown>>;
  dead?: string;
}

export interface SupervisorEvents extends Record<string, unknown> {
  /** A generation died (its pending calls were rejected). */
  death: ServiceDeath;
  /** A new generation started (restart). */
  generation: number;
  /** A dead generation's thread is gone and `reclaim` ran. */
  reclaimed: number;
  'reclaim-failed': { generation: number; error: unknown };
}

export class Supervisor<T extends object> extends Emitter<SupervisorEvents> {
  private current!: Generation<T>;
  private restarts = 0;
  private closed: string | undefined;
  private readonly reclaimed: Promise<void>[] = [];
  /** Calls in flight and stream reads awaited, over every generation: what keeps the process alive. */
  private busy = 0;
  private keepAlive?: ReturnType<typeof setInterval>;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    installErrorTransfer();
    this.start(1);
  }

  /** The running generation: 1 for the first worker, +1 on every restart. */
  get generation(): number {
    return this.current.n;
  }

  /** Whether calls can currently reach a live service. */
  get alive(): boolean {
    return !this.current.dead;
  }

  /** Calls in flight (comlink and batched) on the current generation. */
  get pending(): number {
    return inFlight(this.current);
  }

  /** Calls the current generation answered through its shared-memory ring (diagnostics); undefined without one. */
  get ringAnswered(): number | undefined {
    return this.current.ring?.answered;
  }

  /** One comlink call: for whole operations that are long or rare (open, login, generate). */
  call<K extends MethodOf<T>>(method: K, ...args: ArgsOf<T, K>): Promise<ResultOf<T, K>> {
    const g = this.current;
    if (g.dead) return Promise.reject(this.deadError(g, method, false));
    return this.hold(new Promise((resolve, reject) => {
      const t: Tracked = { method, reject };
      g.pending.add(t);
      const fn = (g.remote as unknown as Record<string, (...a: unknown[]) => Promise<ResultOf<T, K>>>)[method];
      const p = fn(...args);
      if (this.opts.terminateAfter?.includes(method)) {
        const settled = p.then(
          () => undefined,
          () => undefined,
        );
        g.unsafe.add(settled);
        void settled.then(() => g.unsafe.delete(settled));
      }
      p.then(
        (v) => g.pending.delete(t) && resolve(v),
        (e) => g.pending.delete(t) && reject(e),
      );
    }));
  }

  /**
   * A short call that travels with the others made in the same tick (see batch.ts). The batch
   * client holds the process while any of its calls is pending (one hold, not one per call).
   */
  batch<K extends MethodOf<T>>(method: K, ...args: ArgsOf<T, K>): Promise<ResultOf<T, K>> {
    return this.batchArgs(method, args) as Promise<ResultOf<T, K>>;
  }

  /** batch() with the arguments as an array (the client's faces pass theirs on without a copy). */
  batchArgs(method: string, args: readonly unknown[]): Promise<unknown> {
    const g = this.current;
    // The ring while nothing else is in flight: the service drains it before each message it
    // reads, so ring calls keep their place before later messages; and none overtakes a message
    // sent before it.
    if (g.ring !== undefined && g.pending.size === 0 && g.batches.pending === 0) {
      const p = g.ring.call(method, args);
      if (p !== undefined) return p;
    }
    return g.batches.call(method, args);
  }

  /** An event stream the service serves (see stream.ts); it ends with ServiceDeadError if the service dies. */
  stream<V>(name: string, ...args: unknown[]): AsyncIterableIterator<V> {
    const inner = this.current.streams.open<V>(name, args);
    // Awaiting the next event keeps the process alive; a stream nobody reads does not.
    const it: AsyncIterableIterator<V> = {
      next: () => this.hold(inner.next()),
      return: () => inner.return!(),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * Keeps the process alive until `p` settles. The host itself never holds the process (a
   * worker is unref'd when it starts); a timer does while anything is awaited, which also
   * covers what a call, a close() or a kill() waits for across a change of generation.
   */
  private hold<R>(p: Promise<R>): Promise<R> {
    this.acquire();
    p.then(this.release, this.release);
    return p;
  }

  /**
   * Node's timers are made once and ref'd/unref'd after that (one call each way, where making and
   * clearing one per call showed in a one-call-at-a-time profile); a browser's, which hold
   * nothing, are made and cleared.
   */
  private acquire(): void {
    if (this.busy++ !== 0) return;
    if (this.keepAlive === undefined || typeof this.keepAlive !== 'object') this.keepAlive = setInterval(() => undefined, 2 ** 30);
    else this.keepAlive.ref();
  }

  private readonly release = (): void => {
    if (--this.busy) return;
    if (typeof this.keepAlive === 'object' && typeof this.keepAlive.unref === 'function') this.keepAlive.unref();
    else {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
    this.current.host.unref?.(); // again: a listener added since (a port's 'message') refs it
  };

  /** What a generation's batch and ring clients report: the first pending call holds, the last settled releases. */
  private readonly batchesBusy = (busy: boolean): void => (busy ? this.acquire() : this.release());

  /**
   * Replaces the running service with a new generation: calls in flight on the old one
   * reject (ServiceDeadError, reason 'restarted'). Resolves once the new one is started.
   */
  restart(): Promise<number> {
    return this.hold(this.restartNow());
  }

  private async restartNow(): Promise<number> {
    if (this.closed) throw this.deadError(this.current, 'restart', false);
    const old = this.current;
    this.start(old.n + 1);
    this.bury(old, 'restarted', false);
    await this.terminate(old);
    return this.current.n;
  }

  /**
   * Ends the running generation abruptly, as a crash would: no drain, calls in flight reject,
   * and the restart policy applies. For a service that hangs, and for tests.
   */
  kill(reason = 'killed by the application'): Promise<void> {
    return this.hold(this.killNow(reason));
  }

  private async killNow(reason: string): Promise<void> {
    const g = this.current;
    if (g.dead) return;
    this.bury(g, reason, true);
    await this.terminate(g);
  }

  /**
   * Stops the service for good: lets it drain (opts.drain), terminates it, waits for its
   * thread to go and for reclaim. Calls in flight reject; later calls reject at once.
   */
  close(): Promise<void> {
    return this.hold(this.closeNow());
  }

  private async closeNow(): Promise<void> {
    if (this.closed) return void (await Promise.all(this.reclaimed));
    const g = this.current;
    if (this.opts.drain && !g.dead) {
      const drained = this.call(this.opts.drain as MethodOf<T>, ...([] as never)).catch(() => undefined);
      await within(drained, this.opts.drainTimeoutMs ?? 2000);
    }
    this.closed = 'closed by the application';
    this.bury(g, this.closed, false);
    await this.terminate(g);
    await Promise.all(this.reclaimed);
  }

  /** Terminates g's host once the calls that must not be cut short have answered (or the wait is over). */
  private async terminate(g: Generation<T>): Promise<void> {
    if (g.unsafe.size) await within(Promise.all(g.unsafe), this.opts.terminateWaitMs ?? 5000);
    await g.host.terminate();
  }

  private start(n: number): void {
    const host = this.opts.spawn(n);
    const batches = new BatchClient(host.endpoint, { maxBatch: this.opts.maxBatch, onBusy: this.batchesBusy });
    const g: Generation<T> = {
      n,
      host,
      remote: Comlink.wrap<T>(host.endpoint),
      batches,
      ring: this.opts.ring ? new RingClient(host.endpoint, { fallback: (m, a) => batches.call(m, a), onBusy: this.batchesBusy }) : undefined,
      streams: new StreamClient(host.endpoint),
      pending: new Set(),
      unsafe: new Set(),
    };
    this.current = g;
    host.endpoint.onClose((reason) => this.bury(g, reason, true));
    host.unref?.(); // after the listeners above: adding one refs a worker's port again
    this.reclaimed.push(
      Promise.resolve(host.exited)
        .catch(() => undefined)
        .then(() => this.opts.reclaim?.(n))
        .then(
          () => this.emit('reclaimed', n),
          (error: unknown) => this.emit('reclaim-failed', { generation: n, error }),
        ),
    );
    if (n > 1) this.emit('generation', n);
  }

  /** Marks generation g dead: every call it had rejects; maybe a new generation starts. */
  private bury(g: Generation<T>, reason: string, unexpected: boolean): void {
    if (g.dead) return;
    g.dead = reason;
    const rejected = inFlight(g);
    for (const t of g.pending) t.reject(this.deadError(g, t.method, true));
    g.pending.clear();
    g.ring?.fail((method, inFlight) => this.deadError(g, method, inFlight));
    g.batches.fail((method, inFlight) => this.deadError(g, method, inFlight));
    g.streams.fail(() => this.deadError(g, 'stream', true));
    const restarting = unexpected && !this.closed && g === this.current && this.mayRestart();
    this.emit('death', { generation: g.n, reason, rejected, restarting } satisfies ServiceDeath);
    if (restarting) {
      this.restarts++;
      this.start(g.n + 1);
    }
  }

  private mayRestart(): boolean {
    const r = this.opts.restart;
    if (!r) return false;
    return this.restarts < (r === true ? 10 : (r.max ?? 10));
  }

  private deadError(g: Generation<T>, method: string, inFlight: boolean): ServiceDeadError {
    return new ServiceDeadError(g.n, g.dead ?? this.closed ?? 'gone', inFlight, method);
  }
}
