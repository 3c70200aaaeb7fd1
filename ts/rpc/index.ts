// p11-kit's RPC protocol (version 0, as p11-kit 0.24.1 speaks it): a client for `remote:`
// modules, `p11-kit server` sockets and modules isolated in a `p11-kit remote` child.
export { RpcClient, type AttributeReadResult, type KeyPair, type Secret } from './client.js';
export { RemoteHost, REMOTE_DEFAULTS, REPLY_LIMITS, type RemoteOptions, type InitializeArgs, type ReinitPolicy, type HostState, type HostLostEvent, type ConnectedEvent } from './host.js';
export { parseRemote, splitCommandLine, isolatedModuleAddress, describeAddress, RemoteAddressError, type RemoteAddress } from './address.js';
export { Pkcs11Error, RpcProtocolError, RpcReplyTooLargeError, HostLostError, HostConnectError, StaleHandleError, RpcUnsupportedError, RpcUsageError } from './errors.js';
export type { Attribute, AttributeValue, ReadAttribute } from './attributes.js';
export type { Mechanism, PssParams, OaepParams } from './mechanism.js';
export type { Info, SlotInfo, TokenInfo, MechanismInfo, SessionInfo, Version } from './info.js';
export { allCalls, type CallName, type CallSpec } from './calls.js';
export { RemoteModule, type AsyncModule, type ModuleCalls, type RemoteModuleOptions } from './remote-module.js';
export { openAsyncModule, isolateModule, type OpenModuleOptions, type RemoteTuning } from './open.js';
