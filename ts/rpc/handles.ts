// Session and object handles as callers see them. A new host hands out the same small numbers
// again, so its handles cannot be told from the last host's by value; we give callers our own
// numbers instead, never reused across generations, and map them to the current host's. A
// number minted before the current generation began is stale; one never minted is invalid.
import { CKR } from './constants.js';
import { Pkcs11Error, REMOTE, StaleHandleError } from './errors.js';

export type HandleKind = 'session' | 'object';

class Table {
  private readonly toRemote = new Map<number, number>();
  private readonly toLocal = new Map<number, number>();

  constructor(private readonly kind: HandleKind) {}

  local(remote: number, mint: () => number): number {
    let local = this.toLocal.get(remote);
    if (local === undefined) {
      local = mint();
      this.toLocal.set(remote, local);
      this.toRemote.set(local, remote);
    }
    return local;
  }

  remote(local: number): number | undefined {
    return this.toRemote.get(local);
  }

  forget(local: number): void {
    const remote = this.toRemote.get(local);
    if (remote === undefined) return;
    this.toRemote.delete(local);
    this.toLocal.delete(remote);
  }

  clear(): void {
    this.toRemote.clear();
    this.toLocal.clear();
  }

  get size(): number {
    return this.toRemote.size;
  }

  get label(): HandleKind {
    return this.kind;
  }
}

export class HandleMap {
  private next = 1;
  /** The first number minted in the current generation. */
  private generationStart = 1;
  private generation = 0;
  private readonly sessions = new Table('session');
  private readonly objects = new Table('object');
  /** Which slot each live session was opened on, for C_CloseAllSessions. */
  private readonly sessionSlot = new Map<number, number>();

  private readonly mint = () => this.next++;

  constructor(private readonly module = REMOTE) {}

  /** Every handle minted so far goes stale (on host loss, and again when a new host starts). */
  retireAll(generation: number): void {
    this.generation = generation;
    this.generationStart = this.next;
    this.sessions.clear();
    this.objects.clear();
    this.sessionSlot.clear();
  }

  addSession(remote: number, slot: number): number {
    const local = this.sessions.local(remote, this.mint);
    this.sessionSlot.set(local, slot);
    return local;
  }

  session(fn: string, local: number): number {
    return this.resolve(fn, this.sessions, local, CKR.CKR_SESSION_HANDLE_INVALID);
  }

  closeSession(local: number): void {
    this.sessions.forget(local);
    this.sessionSlot.delete(local);
  }

  closeSlotSessions(slot: number): void {
    for (const [local, s] of this.sessionSlot) if (s === slot) this.closeSession(local);
  }

  addObject(remote: number): number {
    return this.objects.local(remote, this.mint);
  }

  object(fn: string, local: number, rv: number = CKR.CKR_OBJECT_HANDLE_INVALID): number {
    return this.resolve(fn, this.objects, local, rv);
  }

  forgetObject(local: number): void {
    this.objects.forget(local);
  }

  get counts(): { sessions: number; objects: number } {
    return { sessions: this.sessions.size, objects: this.objects.size };
  }

  private resolve(fn: string, table: Table, local: number, invalidRv: number): number {
    const remote = Number.isSafeInteger(local) ? table.remote(local) : undefined;
    if (remote !== undefined) return remote;
    if (Number.isSafeInteger(local) && local >= 1 && local < this.generationStart) {
      throw new StaleHandleError(fn, table.label, local, this.generation, invalidRv, this.module);
    }
    throw new Pkcs11Error(invalidRv, fn, this.module, `no such ${table.label} handle ${String(local)}`);
  }
}
