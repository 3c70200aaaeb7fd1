// The library entry of p11kit-wasm.
export * from './registry/types.js';
export { loadRegistry, defaultLocations, defaultProgramName } from './registry/load.js';
export { coreModule } from './wasm/core.js';
export * from './uri/index.js';
export * from './bridge/index.js';
export * from './managed/index.js';
export { ModuleLifecycle, Owner, LifecycleError, type LifecycleTarget, type LifecycleChange, type SessionRef, type CallOptions } from './lifecycle/manager.js';
export type { ModuleState, Phase, Policy } from './lifecycle/machine.js';
export { RpcClient, RemoteModule, openAsyncModule, isolateModule, parseRemote, HostLostError, HostConnectError, StaleHandleError, RpcProtocolError, RpcReplyTooLargeError, RpcUnsupportedError, RpcUsageError, type AsyncModule, type ModuleCalls, type RemoteOptions, type ReinitPolicy } from './rpc/index.js';
export * from './service/index.js';
export * from './proxy/index.js';
export * from './trace/index.js';
export * from './server/index.js';
export * from './objects/index.js';
