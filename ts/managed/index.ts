export { openModule, findModuleEntry, type OpenModuleOptions } from './open.js';
export { ManagedModule, type OpenSessionOptions } from './module.js';
export { ManagedSession } from './session.js';
export { lifecycleTarget } from './target.js';
export type { SessionCalls, AsyncSessionCalls, ModuleReads, AsyncModuleReads } from './calls.js';
export { WakeError, type WakeFailure } from './wake-process.js';
export type { WaitPlacement } from './wait-isolation.js';
