// The koffi-free part of the service, for an Electron renderer (or any page) that reaches a
// PKCS#11 service through a MessagePort: the client, its endpoints, the error codec. Nothing
// imported from here loads Node built-ins or native code.
export { connectPkcs11, type ConnectOptions } from './connect.js';
export { Pkcs11Client, RemoteModule as ServiceModule, RemoteSession as ServiceSession } from './pkcs11-client.js';
export { webPortEndpoint, portMainEndpoint, type ServiceEndpoint, type MessagePortMainLike } from './endpoint.js';
export { ServiceDeadError, registerErrorClass, installErrorTransfer } from './errors.js';
export { Supervisor, type ServiceDeath } from './supervisor.js';
export type * from './pkcs11-types.js';
