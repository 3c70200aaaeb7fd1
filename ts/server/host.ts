// Where the server's accepted connections are served: each in a child process of its own
// (isolated.ts, the default) or all in this process through one proxy (shared.ts).
import type { Socket } from 'node:net';

/** How clients are kept apart: `process` gives each its own PKCS#11 application; `shared` serves all from this one. */
export type Isolation = 'process' | 'shared';

export interface ClientHost {
  /** Takes over an accepted, still paused connection (the server already checked the client limit). */
  accept(socket: Socket): void;
  /** Connections being served now (with `process`: child processes alive). */
  readonly clients: number;
  /** Sessions the clients hold open now (with `process`: as the children last reported). */
  readonly sessions: number;
  /** Ends every connection; resolves when all are over (with `process`: every child reaped). */
  close(): Promise<void>;
}
