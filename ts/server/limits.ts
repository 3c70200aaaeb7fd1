// What one client may make the server allocate or hold. Everything a client sends is bounded
// here before anything is allocated for it; going over a frame limit closes that client, going
// over a count answers the call with an error (the connection stays usable).

export interface ServerLimits {
  /** Largest request payload accepted (the frame's length field is checked before buffering). */
  maxPayload: number;
  /** Largest options field accepted (p11-kit-client sends its module name there). */
  maxOptions: number;
  /** Sessions one client may hold open at once (beyond: CKR_SESSION_COUNT). */
  maxSessions: number;
  /** Attributes in one template or attribute request (beyond: CKR_ARGUMENTS_BAD). */
  maxAttributes: number;
  /** Largest output buffer a client may ask for (C_GenerateRandom, C_FindObjects count, ...). */
  maxOutput: number;
  /** Clients connected at once (isolation `process`: child processes); more are closed at accept. */
  maxClients: number;
  /**
   * How long a served connection may take to send its protocol version (isolation `process`:
   * counted from its process's start); then it is closed. p11-kit-client.so sends it at once.
   */
  handshakeMs: number;
  /**
   * Closes a connection that has no call in progress and sent nothing for this long; 0: never
   * (the default, as p11-kit-client.so stays connected, idle, while its application runs).
   */
  idleMs: number;
  /**
   * Drops a client that takes none of the replies written to it for this long (they wait in
   * this process once the socket's kernel buffer is full), so a client that sends requests and
   * never reads cannot keep its place among maxClients; 0: never. What waits for it is bounded
   * anyway: one reply (at most maxOutput and its framing) past the socket's high-water mark.
   */
  unreadMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxPayload: 4 * 1024 * 1024,
  maxOptions: 4 * 1024,
  maxSessions: 64,
  maxAttributes: 256,
  maxOutput: 1024 * 1024,
  maxClients: 64,
  handshakeMs: 10_000,
  idleMs: 0,
  unreadMs: 10_000,
};

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const TIMERS = new Set<keyof ServerLimits>(['handshakeMs', 'idleMs', 'unreadMs']);

/** The defaults with `given` over them; a value that is not a whole number in range, or a name that is no limit, throws naming it. */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_SERVER_LIMITS };
  for (const [name, value] of Object.entries(given) as [keyof ServerLimits, unknown][]) {
    if (!(name in DEFAULT_SERVER_LIMITS)) throw new TypeError(`serveTokens: limits.${String(name)} is not a limit (${Object.keys(DEFAULT_SERVER_LIMITS).join(', ')})`);
    if (value === undefined) continue;
    const most = TIMERS.has(name) ? MAX_TIMER_MS : Number.MAX_SAFE_INTEGER;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > most) {
      throw new RangeError(`serveTokens: limits.${name} ${String(value)} is not a whole number from 0 to ${most}`);
    }
    out[name] = value;
  }
  return out;
}
