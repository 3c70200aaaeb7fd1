// The lifecycle state machine of one module, process-wide. Pure: no I/O, no clocks.
// The manager (manager.ts) holds the module's process-wide lock around every step,
// performs the decision, and feeds the result back in.

export type Phase = 'uninitialized' | 'ready' | 'stale';
export type Policy = 'explicit' | 'auto';

export interface ModuleState {
  phase: Phase;
  /** Whether our C_Initialize is what made the module initialized (never finalize otherwise). */
  ownedInit: boolean;
  /** Bumped whenever every handle made so far becomes meaningless. Starts at 1. */
  generation: number;
  /** Owners holding the module in the current generation. */
  holders: number;
}

export type LifecycleEvent =
  | { kind: 'acquire' }
  | { kind: 'initialized'; rv: number }
  /** inFlight: the owner's own calls still inside the module (async, dedicated threads). */
  | { kind: 'release'; ownerGeneration: number; inFlight: number }
  | { kind: 'finalized'; rv: number }
  | { kind: 'call'; handleGeneration: number }
  | { kind: 'callResult'; handleGeneration: number; rv: number; idempotent: boolean }
  | { kind: 'reinitialize'; ownerGeneration: number }
  | { kind: 'generationChange'; reason: 'host-lost' | 'fork' };

export type Decision =
  | { do: 'initialize' }
  | { do: 'finalize' }
  | { do: 'pass' }
  | { do: 'none' }
  | { do: 'retry' }
  /** Keep holding: release again when the owner's calls in flight have returned. */
  | { do: 'defer' }
  | { do: 'refuse'; rv: number; reason: RefuseReason };

export type RefuseReason = 'not-initialized' | 'stale-handle' | 'initialize-failed' | 'finalized-behind-our-back';

export const CKR_OK = 0x0;
export const CKR_CRYPTOKI_NOT_INITIALIZED = 0x190;
export const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;
/** What a stale handle is refused with: the handle no longer names anything of the caller's. */
export const CKR_SESSION_HANDLE_INVALID = 0xb3;

export const initialState = (): ModuleState => ({ phase: 'uninitialized', ownedInit: false, generation: 1, holders: 0 });

const stale = (s: ModuleState): ModuleState => ({ phase: 'stale', ownedInit: false, generation: s.generation + 1, holders: 0 });
const refuse = (rv: number, reason: RefuseReason): Decision => ({ do: 'refuse', rv, reason });

/**
 * One step. Transition table (phase × event → phase', decision):
 *
 *   acquire          uninitialized|stale → (same)       initialize
 *                    ready               → holders+1    pass
 *   initialized rv   OK                  → ready, ours, holders+1          pass
 *                    ALREADY_INITIALIZED → ready, not ours, holders+1      pass
 *                    other               → (same)       refuse rv
 *   release g n      g ≠ generation      → (same)       none   (held an older generation)
 *                    n > 0 calls in flight → (same)     defer  (the owner still holds; release again at n = 0)
 *                    holders 1, ours     → (same)       finalize
 *                    holders 1, not ours → uninitialized none   (never finalize what we did not initialize)
 *                    holders > 1         → holders-1    none
 *   finalized        any                 → uninitialized none
 *   call g           g ≠ generation      → (same)       refuse stale-handle (never reaches the module)
 *                    phase ≠ ready       → (same)       refuse not-initialized
 *                    ready               → (same)       pass
 *   callResult NOT_INITIALIZED on a ready module, current generation
 *                    (someone finalized it behind our back)
 *                    → stale, generation+1  explicit: refuse; auto + idempotent: retry
 *                                          (the caller reinitializes, then retries once)
 *              NOT_INITIALIZED otherwise (the generation moved under the call)
 *                    → (same)       refuse finalized-behind-our-back (never a raw rv)
 *   reinitialize g   stale, g < generation → (same)      initialize
 *                    ready, g < generation → holders+1   pass   (another owner already did it)
 *                    otherwise             → (same)      none
 *   generationChange any → stale, generation+1          none
 */
export function step(s: ModuleState, e: LifecycleEvent, policy: Policy): { state: ModuleState; decision: Decision } {
  switch (e.kind) {
    case 'acquire':
      if (s.phase === 'ready') return { state: { ...s, holders: s.holders + 1 }, decision: { do: 'pass' } };
      return { state: s, decision: { do: 'initialize' } };

    case 'initialized':
      if (e.rv === CKR_OK || e.rv === CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        return { state: { ...s, phase: 'ready', ownedInit: e.rv === CKR_OK, holders: s.holders + 1 }, decision: { do: 'pass' } };
      }
      return { state: s, decision: refuse(e.rv, 'initialize-failed') };

    case 'release':
      if (e.ownerGeneration !== s.generation || s.phase !== 'ready' || s.holders === 0) return { state: s, decision: { do: 'none' } };
      if (e.inFlight > 0) return { state: s, decision: { do: 'defer' } };
      if (s.holders > 1) return { state: { ...s, holders: s.holders - 1 }, decision: { do: 'none' } };
      if (s.ownedInit) return { state: s, decision: { do: 'finalize' } };
      return { state: { ...s, phase: 'uninitialized', holders: 0 }, decision: { do: 'none' } };

    case 'finalized':
      return { state: { ...s, phase: 'uninitialized', ownedInit: false, holders: 0 }, decision: { do: 'none' } };

    case 'call':
      if (e.handleGeneration !== s.generation) return { state: s, decision: refuse(CKR_SESSION_HANDLE_INVALID, 'stale-handle') };
      if (s.phase !== 'ready') return { state: s, decision: refuse(CKR_CRYPTOKI_NOT_INITIALIZED, 'not-initialized') };
      return { state: s, decision: { do: 'pass' } };

    case 'callResult':
      if (e.rv !== CKR_CRYPTOKI_NOT_INITIALIZED) return { state: s, decision: { do: 'pass' } };
      if (s.phase !== 'ready' || e.handleGeneration !== s.generation) return { state: s, decision: refuse(e.rv, 'finalized-behind-our-back') };
      return {
        state: stale(s),
        decision: policy === 'auto' && e.idempotent ? { do: 'retry' } : refuse(e.rv, 'finalized-behind-our-back'),
      };

    case 'reinitialize':
      if (e.ownerGeneration >= s.generation) return { state: s, decision: { do: 'none' } };
      if (s.phase === 'ready') return { state: { ...s, holders: s.holders + 1 }, decision: { do: 'pass' } };
      return { state: s, decision: { do: 'initialize' } };

    case 'generationChange':
      return { state: stale(s), decision: { do: 'none' } };
  }
}
