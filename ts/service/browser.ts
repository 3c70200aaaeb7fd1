// The koffi-free part of the service, for an Electron renderer (or any page) that reaches a
// PKCS#11 service through a MessagePort: the client, its endpoints, the error codec and the
// error classes, the PKCS#11 constants. Nothing imported from here loads Node built-ins or
// native code.
export { connectPkcs11, type ConnectOptions } from './connect.js';
export { Pkcs11Client, RemoteModule as ServiceModule, RemoteSession as ServiceSession, type RemoteModuleCalls as ServiceModuleCalls } from './pkcs11-client.js';
export { webPortEndpoint, portMainEndpoint, type ServiceEndpoint, type MessagePortMainLike } from './endpoint.js';
export { ServiceDeadError, ServiceRefusedError, UnknownModuleError, registerErrorClass, installErrorTransfer } from './errors.js';
export { BridgeError, ModuleLoadError, Pkcs11Error } from './browser-errors.js';
export { CKA } from '../bridge/cka.js';
export { CKM } from '../bridge/ckm.js';
export { CKO, CKK, CKU } from '../bridge/ck-enums.js';
export { Supervisor, type ServiceDeath } from './supervisor.js';
export type { ByteSource, StreamOptions } from './chunks.js';
export type { ClientGrant, OperationClass } from './grant.js';
export type * from './pkcs11-types.js';
