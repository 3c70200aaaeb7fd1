// A session on a `remote:` module behind the proxy (see remote.ts): its own file, so that the
// proxy's session table can name it without reaching the members.
import { asSessionHandle, type SlotId } from '../bridge/handles.js';
import { SESSION_CALLS, type AsyncSessionCalls } from '../managed/calls.js';
import type { RemoteModule } from '../rpc/remote-module.js';

/** A session on a remote module: its calls go to the host with the client's session handle. */
export class RemoteSession {
  readonly async: AsyncSessionCalls;
  private readonly generation: number;
  private closed = false;

  constructor(
    private readonly remote: RemoteModule,
    readonly handle: number,
    readonly slot: SlotId,
  ) {
    this.generation = remote.generation;
    const calls = remote.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const asyncCalls: Record<string, unknown> = {};
    for (const name of SESSION_CALLS) asyncCalls[name] = (...args: unknown[]) => calls[name](this.handle, ...args);
    this.async = asyncCalls as unknown as AsyncSessionCalls;
  }

  /** Not closed, and its host is the one it was opened on. */
  get open(): boolean {
    return !this.closed && this.remote.generation === this.generation && this.remote.client.state === 'ready';
  }

  /** C_CloseSession; a session whose host is gone died with it, so nothing is sent. */
  async close(): Promise<void> {
    if (this.closed) return;
    const live = this.open;
    this.closed = true;
    if (live) await this.remote.async.closeSession(asSessionHandle(this.handle));
  }
}
