// Where async calls run. Short calls use koffi's async form, which runs on libuv's threadpool;
// at most `poolCalls` of them at once per isolate, so fs/dns/crypto always keep threads of that
// shared pool. Calls that may block for long go to dedicated threads (dedicated-threads.ts).
import { CKF_MISC } from './ckf.js';
import { BLOCKING, SIGNATURES } from './functions.js';
import { DedicatedThreads } from './dedicated-threads.js';
import type { RawCall } from './op.js';
import type { RawFunction } from './raw.js';

/** Per module: 'auto' routes by function (BLOCKING); 'dedicated' sends every async call to dedicated threads (slow hardware). */
export type LanePolicy = 'auto' | 'dedicated';

const uvThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;

class PoolLane {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(public limit: number) {}

  get stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length };
  }

  run(f: RawFunction, args: RawCall['args']): Promise<number> {
    return new Promise((resolve, reject) => {
      const go = () => {
        this.running++;
        const done = (err: unknown, rv: number) => {
          this.running--;
          this.waiting.shift()?.();
          if (err) reject(err);
          else resolve(Number(rv));
        };
        try {
          f.async!(...args, done);
        } catch (err) {
          done(err, 0);
        }
      };
      if (this.running < this.limit) go();
      else this.waiting.push(go);
    });
  }
}

/** This isolate's lanes. */
export const lanes = {
  pool: new PoolLane(Math.max(1, Math.floor(uvThreads / 2))),
  dedicated: new DedicatedThreads(4),
};

export interface AsyncConfig {
  /** Most koffi async calls on libuv's threadpool at once (default: half of UV_THREADPOOL_SIZE, at least 1). */
  poolCalls?: number;
  /** Most dedicated threads for blocking calls (default 4). */
  dedicatedThreads?: number;
}

export function configureAsync(cfg: AsyncConfig): void {
  if (cfg.poolCalls !== undefined) lanes.pool.limit = Math.max(1, cfg.poolCalls);
  if (cfg.dedicatedThreads !== undefined) lanes.dedicated.max = Math.max(1, cfg.dedicatedThreads);
}

export function asyncStats() {
  return { pool: lanes.pool.stats, dedicated: lanes.dedicated.stats };
}

/** Whether a call goes to a dedicated thread. */
export function isBlocking(call: RawCall, policy: LanePolicy): boolean {
  if (policy === 'dedicated') return true;
  if (call.fn === 'C_WaitForSlotEvent') return (Number(call.args[0] ?? 0) & CKF_MISC.CKF_DONT_BLOCK) === 0;
  return BLOCKING.has(call.fn);
}

/** Runs one raw call asynchronously on the lane it belongs to. */
export function dispatch(call: RawCall, f: RawFunction, ptr: bigint | null, path: string, policy: LanePolicy): Promise<number> {
  if (ptr && isBlocking(call, policy)) {
    return lanes.dedicated.run({ path, ptr, sig: SIGNATURES[call.fn], args: call.args as (number | bigint | null)[] });
  }
  if (!f.async) return Promise.resolve(f(...call.args));
  return lanes.pool.run(f, call.args);
}
