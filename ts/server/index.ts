// Serving tokens to other processes over p11-kit's RPC protocol (what `p11-kit server` does).
export { serveTokens, type ServeTokensOptions, type TokenServer } from './serve.js';
export type { Isolation } from './host.js';
export { DEFAULT_SERVER_LIMITS, type ServerLimits } from './limits.js';
