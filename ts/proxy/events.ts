// Slot events from every module behind the proxy, none lost. p11-kit-proxy polls each module
// once per call and lets a later module's CKR_NO_EVENT overwrite an earlier one's event; here
// every event a module gives up goes into one queue, and callers take them in turn.
//
// A module's events are fetched the cheapest way it supports, learned from its answers: a
// first C_WaitForSlotEvent(CKF_DONT_BLOCK) says whether it has events at all; while someone
// waits, a module that can block parks one blocking wait on the bridge's dedicated threads (at
// most `blockingWaits` modules at once), and the others are polled every `pollIntervalMs`.
// A parked wait ends with an event or with the module's C_Finalize: an event that arrives
// after the last waiter left is queued for the next one.
//
// A module whose C_Finalize does not survive its own parked wait (OpenSC; `waits: 'auto'`) or
// every module (`waits: 'isolated'`) is watched from a child process instead (managed/
// wake-process.ts): its wake-ups make us drain the module's events here with CKF_DONT_BLOCK,
// with a slow safety poll behind them; the child lives until close() kills it. If the child
// fails, the module is reported and polled.
//
// Every CKF_DONT_BLOCK read is made off this thread (managed/event-reads.ts: OpenSC takes
// seconds for a card just put in) and holds the module, so a release finalizes it only after
// the read has returned. One drain of a module runs at a time; asked for again meanwhile, it
// runs once more after, so each module's events are queued in the order it gave them.
//
// A module that errs is reported and asked again after a back-off (errors: 50 ms doubling to
// 1 s; blocking waits that come back empty at once: 10 ms doubling to 1 s), never dropped: its
// events are late by at most that, never withheld.
import { CKR } from '../bridge/ckr.js';
import type { SlotId } from '../bridge/handles.js';
import { MAX_DRAIN, readSlotEvent } from '../managed/event-reads.js';
import { isolatesWaits, type WaitPlacement } from '../managed/wait-isolation.js';
import { SAFETY_POLL_MS, WakeError, WakeProcess } from '../managed/wake-process.js';
import { proxyRv } from './errors.js';
import type { Member } from './members.js';

/** What the event source needs from the proxy. */
export interface EventHost {
  members(): readonly Member[];
  /** The proxy's slot ID for an event about a module's slot (the module's slots are re-listed). */
  translate(member: Member, real: SlotId): SlotId;
  report(member: Member, error: unknown): void;
}

export interface EventOptions {
  blockingWaits: number;
  pollIntervalMs: number;
  waits: WaitPlacement;
}

interface Waiter {
  resolve(slot: SlotId): void;
  reject(err: unknown): void;
}

/** Back-off after consecutive errors, and after consecutive empty returns of a blocking wait. */
const ERROR_BACKOFF = { first: 50, max: 1000 };
const IDLE_BACKOFF = { first: 10, max: 1000 };

/** When a module may be asked again, after how many errors or empty blocking waits in a row. */
interface Backoff {
  errors: number;
  idle: number;
  until: number;
}

const delay = (b: { first: number; max: number }, n: number) => Math.min(b.first * 2 ** Math.min(n - 1, 20), b.max);

const rvOf = (err: unknown): number | undefined => {
  const rv = (err as { rv?: unknown } | null)?.rv;
  return typeof rv === 'number' ? rv : undefined;
};

export class SlotEvents {
  private readonly queue: SlotId[] = [];
  private readonly waiters: Waiter[] = [];
  private timer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private readonly backoff = new Map<Member, Backoff>();
  private blocking = 0;
  private closed = false;
  /** Child processes watching modules for us, and whether each module is to be watched so. */
  private readonly wakers = new Map<Member, WakeProcess>();
  private readonly isolation = new Map<Member, boolean>();
  private safetyTimer?: NodeJS.Timeout;
  private readonly reaped: Promise<void>[] = [];
  /** The drain of each module in flight, and the one asked for while it runs. */
  private readonly draining = new Map<Member, { done: Promise<void>; again?: Promise<void> }>();
  private closeError?: unknown;

  constructor(
    private readonly host: EventHost,
    private readonly opts: EventOptions,
  ) {}

  /** CKF_DONT_BLOCK: the oldest event not yet taken, draining every module in turn when none is queued; null when there is none. */
  async poll(): Promise<SlotId | null> {
    if (!this.queue.length) await this.drainInTurn();
    if (this.closed) throw this.closeError;
    const event = this.queue.shift() ?? null;
    if (this.queue.length) this.kick(); // what the drains brought beyond ours is for the waiters
    return event;
  }

  /** The next event; CKR_FUNCTION_NOT_SUPPORTED when no module can report any. */
  wait(signal?: AbortSignal): Promise<SlotId> {
    if (this.queue.length && !this.waiters.length) return Promise.resolve(this.queue.shift()!);
    return new Promise<SlotId>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
        this.kick();
      };
      const waiter: Waiter = {
        resolve: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.deliver();
      // What the modules hold now comes first; the watching starts after.
      if (this.waiters.includes(waiter)) void this.drainInTurn().then(() => this.kick());
    });
  }

  /** Parked waits in modules now (each holds a dedicated thread). */
  get parked(): number {
    return this.blocking;
  }

  /** The child process watching the module, if any: its process ID, and whether its wait is parked. */
  watcher(m: Member): { pid?: number; ready: boolean } | undefined {
    const w = this.wakers.get(m);
    return w && { pid: w.pid, ready: w.ready };
  }

  /**
   * Ends every wait with `error` and kills the watching children; later module answers are
   * dropped. The promise settles when every child is reaped.
   */
  close(error: unknown): Promise<void> {
    this.closed = true;
    this.closeError = error;
    this.stopTimer();
    this.queue.length = 0;
    for (const w of this.waiters.splice(0)) w.reject(error);
    for (const waker of this.wakers.values()) this.reaped.push(waker.stop());
    this.wakers.clear();
    return Promise.all(this.reaped).then(() => undefined);
  }

  /** Drains every module, one after the other (their events queue up in module order). */
  private async drainInTurn(): Promise<void> {
    for (const m of this.host.members()) await this.drain(m);
  }

  /** Drains the modules side by side, then hands out what came. */
  private drainThenKick(members: Iterable<Member>): void {
    const drains: Promise<void>[] = [];
    for (const m of members) drains.push(this.drain(m));
    void Promise.all(drains).then(() => this.kick());
  }

  /**
   * Takes what a module has queued, without blocking; settles when done. Learns whether it
   * has events at all. Asked while a drain of the module runs: one more runs after it.
   */
  private drain(m: Member): Promise<void> {
    const running = this.draining.get(m);
    if (running) return (running.again ??= running.done.then(() => this.drain(m)));
    const entry: { done: Promise<void>; again?: Promise<void> } = {
      done: this.takeEvents(m).finally(() => {
        if (this.draining.get(m) === entry) this.draining.delete(m);
      }),
    };
    this.draining.set(m, entry);
    return entry.done;
  }

  private async takeEvents(m: Member): Promise<void> {
    for (let i = 0; i < MAX_DRAIN; i++) {
      if (this.closed || !m.usable || m.events === 'none' || this.resting(m)) return;
      let real: SlotId | null;
      try {
        real = await readSlotEvent(m.local('proxy.async.waitForSlotEvent()')); // remote modules are 'none'
      } catch (err) {
        if (this.closed) return;
        if (rvOf(err) === CKR.CKR_FUNCTION_NOT_SUPPORTED) m.events = 'none';
        else this.fault(m, err);
        return;
      }
      if (this.closed) return; // answers after close() are dropped, as the queue was
      this.answered(m, real !== null);
      if (m.events === 'unprobed') m.events = 'candidate';
      if (real === null) return;
      this.queue.push(this.host.translate(m, real));
    }
  }

  /** Whether the module is in a back-off now. */
  private resting(m: Member): boolean {
    const b = this.backoff.get(m);
    return b !== undefined && b.until > Date.now();
  }

  /** An answer that was not an error (`event`: it carried one). */
  private answered(m: Member, event: boolean, blockingEmpty = false): void {
    const b = this.backoff.get(m);
    if (!b) {
      if (blockingEmpty) this.backoff.set(m, { errors: 0, idle: 1, until: Date.now() + delay(IDLE_BACKOFF, 1) });
      return;
    }
    b.errors = 0;
    if (event) b.idle = 0;
    else if (blockingEmpty) b.until = Date.now() + delay(IDLE_BACKOFF, ++b.idle);
    if (!b.errors && !b.idle) this.backoff.delete(m);
  }

  private fault(m: Member, err: unknown): void {
    // Reported, then asked again after a back-off: retrying at once would spin on the error.
    const b = this.backoff.get(m) ?? { errors: 0, idle: 0, until: 0 };
    b.until = Date.now() + delay(ERROR_BACKOFF, ++b.errors);
    this.backoff.set(m, b);
    this.host.report(m, err);
  }

  /** While anyone waits, wakes up when the first resting module may be asked again. */
  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    let next = Infinity;
    for (const b of this.backoff.values()) if (b.until > Date.now()) next = Math.min(next, b.until);
    if (next === Infinity) return;
    // Referenced on purpose, like the poll timer: someone is waiting for an event.
    this.retryTimer = setTimeout(() => this.tick(), Math.max(1, next - Date.now()));
  }

  /** Hands queued events to waiters, then makes sure every module that can is being watched while anyone waits. */
  private kick(): void {
    this.deliver();
    if (this.closed || !this.waiters.length) return this.stopTimer();
    for (const waker of this.wakers.values()) waker.ref(true);
    let poll = false;
    let watched = false;
    let resting = false;
    let isolated = false;
    for (const m of this.host.members()) {
      if (!m.usable || m.events === 'none') continue;
      if (this.resting(m)) {
        watched = resting = true;
        continue;
      }
      if (m.events === 'unprobed') {
        // Its first drain says what it can do; then we look again.
        watched = true;
        if (!this.draining.has(m)) this.drainThenKick([m]);
        continue;
      }
      if (m.events === 'isolated') {
        watched = isolated = true;
      } else if (m.events === 'candidate' || m.events === 'block') {
        watched = true;
        if (m.waiting) continue;
        if (this.blocking + this.wakers.size >= this.opts.blockingWaits) poll = true;
        else if (m.events === 'candidate' && this.isolates(m)) isolated = this.isolate(m);
        else this.block(m);
      } else if (m.events === 'poll') {
        watched = poll = true;
      }
    }
    this.deliver();
    if (!this.waiters.length) return this.stopTimer();
    if (resting) this.scheduleRetry();
    if (!watched) {
      this.stopTimer();
      const err = proxyRv(CKR.CKR_FUNCTION_NOT_SUPPORTED, 'C_WaitForSlotEvent');
      for (const w of this.waiters.splice(0)) w.reject(err);
      return;
    }
    if (poll) this.startTimer();
    else this.stopTimer(false);
    if (isolated) this.startSafetyPoll();
  }

  /** Whether the module's blocking waits belong in a child process (asked once). */
  private isolates(m: Member): boolean {
    let yes = this.isolation.get(m);
    if (yes === undefined) this.isolation.set(m, (yes = isolatesWaits(m.local('proxy.async.waitForSlotEvent()'), this.opts.waits)));
    return yes;
  }

  /** Starts the child that watches the module; false when it could not be started (then polled). */
  private isolate(m: Member): boolean {
    const wakeUp = () => {
      if (this.closed || this.wakers.get(m) !== waker || !this.waiters.length) return; // the next wait() drains first anyway
      this.drainThenKick([m]);
    };
    let waker: WakeProcess;
    try {
      waker = new WakeProcess(m.local('proxy.async.waitForSlotEvent()'), {
        ready: wakeUp,
        wake: wakeUp,
        failed: (failure) => {
          if (this.wakers.get(m) !== waker) return;
          this.wakers.delete(m);
          this.reaped.push(waker.stop());
          m.events = 'poll';
          // A module that cannot block is simply polled, as in-process; anything else is news.
          if (failure.kind !== 'unsupported') this.host.report(m, new WakeError(m.name, failure));
          if (!this.closed) this.kick();
        },
      });
    } catch (err) {
      m.events = 'poll';
      this.host.report(m, err);
      return false;
    }
    this.wakers.set(m, waker);
    m.events = 'isolated';
    return true;
  }

  private block(m: Member): void {
    m.waiting = true;
    this.blocking++;
    m.async.waitForSlotEvent(0).then(
      (real) => {
        this.unpark(m);
        if (this.closed) return;
        if (m.events === 'candidate') m.events = 'block';
        this.answered(m, real !== null, real === null);
        if (real !== null) this.queue.push(this.host.translate(m, real));
        this.kick();
      },
      (err) => {
        this.unpark(m);
        if (this.closed) return;
        // Polling is what is left for a module that only answers CKF_DONT_BLOCK.
        if (rvOf(err) === CKR.CKR_FUNCTION_NOT_SUPPORTED) m.events = 'poll';
        else this.fault(m, err);
        this.kick();
      },
    );
  }

  private unpark(m: Member): void {
    m.waiting = false;
    this.blocking--;
  }

  private deliver(): void {
    while (this.waiters.length && this.queue.length) this.waiters.shift()!.resolve(this.queue.shift()!);
  }

  private startTimer(): void {
    if (this.timer) return;
    // Referenced on purpose: someone is waiting for an event, so the process should stay up.
    this.timer = setInterval(() => this.tick(), this.opts.pollIntervalMs);
  }

  private startSafetyPoll(): void {
    if (this.safetyTimer) return;
    this.safetyTimer = setInterval(() => this.drainThenKick(this.wakers.keys()), SAFETY_POLL_MS);
  }

  /** Stops polling, and (unless `retries` is false) the wake-up for resting modules. */
  private stopTimer(retries = true): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.waiters.length || this.closed) {
      // Nobody waits: the children may keep watching, but must not keep this process alive.
      clearInterval(this.safetyTimer);
      this.safetyTimer = undefined;
      for (const waker of this.wakers.values()) waker.ref(false);
    }
    if (!retries) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private tick(): void {
    const polled = this.host.members().filter(
      (m) => m.events === 'poll' || ((m.events === 'candidate' || m.events === 'block' || m.events === 'unprobed') && !m.waiting),
    );
    // A module still draining from the last tick is not asked again: the timer does not pile drains up.
    this.drainThenKick(polled.filter((m) => !this.draining.has(m)));
    this.kick();
  }
}
