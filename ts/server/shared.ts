// Isolation `shared`: every client served in this process through one proxy, so an application
// can serve the tokens it also uses. PKCS#11 keeps one login per token per application, so the
// clients share the token's login (Logins below keeps it while any of them needs it).
import type { Socket } from 'node:net';
import { CKR } from '../bridge/ckr.js';
import { Pkcs11Error } from '../bridge/errors.js';
import type { ProxyModule } from '../proxy/proxy.js';
import { ClientConnection } from './connection.js';
import type { ClientHost } from './host.js';
import type { ServerLimits } from './limits.js';
import type { ServedSlots } from './slots.js';
import { ClientState, type LoginBook } from './state.js';

/**
 * Per slot, the clients that logged in there. The token stays logged in while any client that
 * logged in (or was told it already was) is still there: a client's C_Logout ends the token's
 * login only when it is the last of them, and a client that goes away without logging out
 * counts as logging out. A client that did not log in cannot end the others' login: its
 * C_Logout is CKR_USER_NOT_LOGGED_IN, as it would be in a process of its own.
 */
class Logins implements LoginBook {
  private readonly bySlot = new Map<number, Set<ClientState>>();

  constructor(private readonly everyone: () => ClientState[]) {}

  loggedIn(client: ClientState, slot: number): void {
    const set = this.bySlot.get(slot) ?? new Set();
    set.add(client);
    this.bySlot.set(slot, set);
  }

  logoutReaches(client: ClientState, slot: number): boolean {
    const set = this.bySlot.get(slot);
    if (!set) return true; // nobody logged in through the server: the module answers
    if (!set.has(client)) throw new Pkcs11Error(CKR.CKR_USER_NOT_LOGGED_IN, 'C_Logout', 'p11kit server');
    set.delete(client);
    if (set.size > 0) return false;
    this.bySlot.delete(slot);
    return true;
  }

  async forget(client: ClientState): Promise<void> {
    for (const [slot, set] of this.bySlot) {
      if (!set.delete(client) || set.size > 0) continue;
      this.bySlot.delete(slot);
      for (const other of this.everyone()) {
        const h = other.handles(slot)[0];
        if (h === undefined) continue;
        await other.session(h).async.logout().catch(() => undefined);
        break;
      }
    }
  }
}

export class SharedClients implements ClientHost {
  private readonly states = new Set<ClientState>();
  private readonly connections = new Set<ClientConnection>();
  private readonly logins = new Logins(() => [...this.states]);

  constructor(
    private readonly proxy: ProxyModule,
    private readonly served: ServedSlots,
    private readonly limits: ServerLimits,
    private readonly onClientError?: (reason: string) => void,
  ) {}

  get clients(): number {
    return this.connections.size;
  }

  get sessions(): number {
    return [...this.states].reduce((n, s) => n + s.sessionCount, 0);
  }

  accept(socket: Socket): void {
    const state = new ClientState(this.proxy, this.served, this.limits, this.logins);
    this.states.add(state);
    const conn = new ClientConnection(socket, state, { onViolation: this.onClientError });
    this.connections.add(conn);
    void conn.finished.then(() => {
      this.connections.delete(conn);
      this.states.delete(state);
    });
    socket.resume(); // accepted paused (the other isolation must not read from it)
  }

  async close(): Promise<void> {
    const pending = [...this.connections].map((c) => c.finished);
    for (const c of this.connections) c.close();
    await Promise.all(pending);
  }
}
