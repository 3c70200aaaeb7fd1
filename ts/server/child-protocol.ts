// What a server says with its per-client child processes (isolation `process`) over the
// child's IPC channel (structured-clone serialization: the parsed URI holds bigints and bytes).
// The parent sends one ChildConfig — module entries, the parsed URI, the limits; never a secret —
// and the child reports back. The channel closing (the server's close(), or
// the server dying) is the child's signal to stop.
import type { ModuleEntry } from '../registry/types.js';
import type { Uri } from '../uri/types.js';
import type { ServerLimits } from './limits.js';

/** The child's file descriptor holding the client's connection. */
export const CONNECTION_FD = 3;

export interface ChildConfig {
  /** Parsed once by the server: the child does not parse the text again. */
  uri: Uri;
  modules: ModuleEntry[];
  limits: ServerLimits;
}

export type ChildReport =
  /** Sessions the client holds open now (sent when the count changed). */
  | { sessions: number }
  /** The client broke the protocol and is being disconnected. */
  | { violation: string }
  /** The child could not serve the client (its modules did not open). */
  | { failed: string };
