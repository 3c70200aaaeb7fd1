// Model-based tests of the pure lifecycle machine: random command sequences drive the
// machine and a simulated module side by side with a tiny reference model (a set of
// owners), and the invariants are checked after every command.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CKR_CRYPTOKI_ALREADY_INITIALIZED,
  CKR_CRYPTOKI_NOT_INITIALIZED,
  CKR_OK,
  initialState,
  step,
  type Decision,
  type LifecycleEvent,
  type ModuleState,
  type Policy,
} from '../ts/lifecycle/machine.js';

/** inFlight: generations of the owner's async calls inside the module; releasing: released, waiting for them. */
interface SimOwner { generation: number; live: boolean; inFlight: number[]; releasing: boolean }

/** The module as PKCS#11 sees it, and the world around the machine. */
class World {
  state: ModuleState = initialState();
  module = { initialized: false, byUs: false, initCalls: 0, finalizeCalls: 0 };
  owners: SimOwner[] = [];
  reached: number[] = []; // generations of handles that reached the module
  busy = false;

  constructor(readonly policy: Policy) {}

  private apply(e: LifecycleEvent): Decision {
    const { state, decision } = step(this.state, e, this.policy);
    this.state = state;
    return decision;
  }

  /** Performs an initialize decision the way the manager does, under "the lock". */
  private initialize(): boolean {
    expect(this.busy, 'overlapping C_Initialize/C_Finalize').toBe(false);
    this.busy = true;
    const rv = this.module.initialized ? CKR_CRYPTOKI_ALREADY_INITIALIZED : CKR_OK;
    if (rv === CKR_OK) Object.assign(this.module, { initialized: true, byUs: true, initCalls: this.module.initCalls + 1 });
    this.busy = false;
    return this.apply({ kind: 'initialized', rv }).do === 'pass';
  }

  private finalize(): void {
    expect(this.busy, 'overlapping C_Initialize/C_Finalize').toBe(false);
    // Calls in flight are holds: no call of the current generation is inside the module.
    const inside = this.owners.flatMap((o) => o.inFlight).filter((g) => g === this.state.generation);
    expect(inside, 'C_Finalize under a call in flight').toEqual([]);
    // Never finalize someone else's initialization. (If someone finalized ours behind our
    // back and nobody noticed yet, C_Finalize merely answers NOT_INITIALIZED.)
    expect(this.module.byUs || !this.module.initialized, 'finalizing a module someone else initialized').toBe(true);
    this.busy = true;
    Object.assign(this.module, { initialized: false, byUs: false, finalizeCalls: this.module.finalizeCalls + 1 });
    this.busy = false;
    this.apply({ kind: 'finalized', rv: CKR_OK });
  }

  acquire(): void {
    const d = this.apply({ kind: 'acquire' });
    if (d.do === 'pass' || (d.do === 'initialize' && this.initialize())) {
      this.owners.push({ generation: this.state.generation, live: true, inFlight: [], releasing: false });
    }
  }

  release(i: number): void {
    const o = this.owners[i];
    if (!o?.live || o.releasing) return;
    this.completeRelease(o);
  }

  private completeRelease(o: SimOwner): void {
    const d = this.apply({ kind: 'release', ownerGeneration: o.generation, inFlight: o.inFlight.length });
    o.releasing = d.do === 'defer';
    if (o.releasing) return;
    o.live = false;
    if (d.do === 'finalize') this.finalize();
  }

  /** An async call of owner i enters the module (admitted like any call). */
  startAsync(i: number): void {
    const o = this.owners[i];
    if (!o?.live || o.releasing) return;
    if (this.apply({ kind: 'call', handleGeneration: o.generation }).do !== 'pass') return;
    o.inFlight.push(o.generation);
  }

  /** The oldest async call of owner i returns; its answer goes through the machine. */
  finishAsync(i: number, idempotent: boolean): void {
    const o = this.owners[i];
    if (!o?.inFlight.length) return;
    const g = o.inFlight.shift()!;
    const rv = this.module.initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
    const d = this.apply({ kind: 'callResult', handleGeneration: g, rv, idempotent: idempotent && !o.releasing });
    // Never a raw NOT_INITIALIZED: the answer is refused (typed) or retried.
    if (rv === CKR_CRYPTOKI_NOT_INITIALIZED) expect(['refuse', 'retry']).toContain(d.do);
    if (d.do === 'retry') this.reinitialize(this.owners.indexOf(o));
    if (o.inFlight.length === 0 && o.releasing) this.completeRelease(o);
  }

  call(i: number, idempotent: boolean): void {
    const o = this.owners[i];
    if (!o?.live) return;
    if (o.releasing || this.apply({ kind: 'call', handleGeneration: o.generation }).do !== 'pass') return;
    this.reached.push(o.generation);
    expect(o.generation, 'a stale handle reached the module').toBe(this.state.generation);
    const rv = this.module.initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
    const d = this.apply({ kind: 'callResult', handleGeneration: o.generation, rv, idempotent });
    if (rv === CKR_CRYPTOKI_NOT_INITIALIZED) expect(['refuse', 'retry']).toContain(d.do);
    if (d.do === 'retry') {
      expect(this.policy).toBe('auto');
      this.reinitialize(i);
    }
  }

  reinitialize(i: number): void {
    const o = this.owners[i];
    if (!o?.live || o.releasing) return;
    const d = this.apply({ kind: 'reinitialize', ownerGeneration: o.generation });
    if (d.do === 'pass' || (d.do === 'initialize' && this.initialize())) o.generation = this.state.generation;
  }

  foreignInitialize(): void {
    // A foreign finalize of our initialization followed by a foreign initialize is invisible
    // to any library (every call succeeds); the model leaves that one combination out.
    if (!this.module.initialized && !this.state.ownedInit) Object.assign(this.module, { initialized: true, byUs: false });
  }

  foreignFinalize(): void {
    Object.assign(this.module, { initialized: false, byUs: false });
  }

  generationChange(): void {
    // The host went away: whatever it had initialized is gone with it.
    Object.assign(this.module, { initialized: false, byUs: false });
    this.apply({ kind: 'generationChange', reason: 'host-lost' });
  }

  checkInvariants(): void {
    const s = this.state;
    // Reference model: holders are the live owners of the current generation.
    // (A releasing owner still holds: its calls in flight are its hold.)
    const held = this.owners.filter((o) => o.live && o.generation === s.generation).length;
    expect(s.holders).toBe(held);
    // initialized (by the machine's account) ⇔ some live owner holds it in this generation.
    expect(s.phase === 'ready').toBe(held > 0);
    // What we initialized is finalized when the last holder leaves: no leaked init.
    if (this.module.byUs) expect(s.phase).toBe('ready');
    if (s.ownedInit) expect(this.module.byUs || !this.module.initialized).toBe(true);
    expect(this.module.finalizeCalls).toBeLessThanOrEqual(this.module.initCalls);
  }
}

type Cmd = (w: World) => void;
const ownerIndex = fc.nat(4);
const command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.constant((w: World) => w.acquire()),
  ownerIndex.map((i) => (w: World) => w.release(i)),
  fc.tuple(ownerIndex, fc.boolean()).map(([i, idem]) => (w: World) => w.call(i, idem)),
  ownerIndex.map((i) => (w: World) => w.reinitialize(i)),
  fc.constant((w: World) => w.foreignInitialize()),
  fc.constant((w: World) => w.foreignFinalize()),
  fc.constant((w: World) => w.generationChange()),
  ownerIndex.map((i) => (w: World) => w.startAsync(i)),
  fc.tuple(ownerIndex, fc.boolean()).map(([i, idem]) => (w: World) => w.finishAsync(i, idem)),
);

describe('lifecycle machine (model-based)', () => {
  for (const policy of ['explicit', 'auto'] as const) {
    it(`keeps every invariant under random schedules (${policy})`, () => {
      fc.assert(
        fc.property(fc.array(command, { maxLength: 120 }), (cmds) => {
          const w = new World(policy);
          for (const c of cmds) {
            c(w);
            w.checkInvariants();
          }
          // Everyone leaves and every call returns: the module is finalized exactly as often as we initialized it.
          w.owners.forEach((_, i) => w.release(i));
          w.owners.forEach((o, i) => o.inFlight.slice().forEach(() => w.finishAsync(i, false)));
          w.checkInvariants();
          expect(w.module.byUs).toBe(false);
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('refuses a stale handle without reaching the module', () => {
    let s = initialState();
    s = step(s, { kind: 'acquire' }, 'explicit').state;
    s = step(s, { kind: 'initialized', rv: CKR_OK }, 'explicit').state;
    const old = s.generation;
    s = step(s, { kind: 'generationChange', reason: 'host-lost' }, 'explicit').state;
    expect(step(s, { kind: 'call', handleGeneration: old }, 'explicit').decision).toMatchObject({ do: 'refuse', reason: 'stale-handle' });
  });

  it('explicit policy refuses after a foreign finalize; auto retries idempotent calls only', () => {
    const ready = step(step(initialState(), { kind: 'acquire' }, 'auto').state, { kind: 'initialized', rv: CKR_OK }, 'auto').state;
    const nope = { kind: 'callResult', handleGeneration: ready.generation, rv: CKR_CRYPTOKI_NOT_INITIALIZED } as const;
    expect(step(ready, { ...nope, idempotent: true }, 'explicit').decision).toMatchObject({ do: 'refuse', reason: 'finalized-behind-our-back' });
    expect(step(ready, { ...nope, idempotent: true }, 'auto').decision).toEqual({ do: 'retry' });
    expect(step(ready, { ...nope, idempotent: false }, 'auto').decision).toMatchObject({ do: 'refuse' });
    expect(step(ready, { ...nope, idempotent: true }, 'auto').state).toMatchObject({ phase: 'stale', generation: ready.generation + 1, holders: 0 });
  });

  it('never finalizes a module someone else initialized', () => {
    let s = initialState();
    s = step(s, { kind: 'acquire' }, 'explicit').state;
    s = step(s, { kind: 'initialized', rv: CKR_CRYPTOKI_ALREADY_INITIALIZED }, 'explicit').state;
    expect(s).toMatchObject({ phase: 'ready', ownedInit: false, holders: 1 });
    const last = step(s, { kind: 'release', ownerGeneration: s.generation, inFlight: 0 }, 'explicit');
    expect(last.decision).toEqual({ do: 'none' });
    expect(last.state.phase).toBe('uninitialized');
  });

  it('a release with the owner\'s calls in flight is deferred; a NOT_INITIALIZED after the generation moved is refused, typed', () => {
    let s = initialState();
    s = step(s, { kind: 'acquire' }, 'explicit').state;
    s = step(s, { kind: 'initialized', rv: CKR_OK }, 'explicit').state;
    expect(step(s, { kind: 'release', ownerGeneration: s.generation, inFlight: 2 }, 'explicit')).toEqual({ state: s, decision: { do: 'defer' } });
    expect(step(s, { kind: 'release', ownerGeneration: s.generation, inFlight: 0 }, 'explicit').decision).toEqual({ do: 'finalize' });
    const old = s.generation;
    s = step(s, { kind: 'generationChange', reason: 'host-lost' }, 'auto').state;
    const late = step(s, { kind: 'callResult', handleGeneration: old, rv: CKR_CRYPTOKI_NOT_INITIALIZED, idempotent: true }, 'auto');
    expect(late.decision).toMatchObject({ do: 'refuse', reason: 'finalized-behind-our-back' });
    expect(late.state).toEqual(s);
  });
});
