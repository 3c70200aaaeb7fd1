// The off-main-thread PKCS#11 service: createPkcs11Worker() for Node worker threads, and the
// pieces for other transports (Electron's MessagePortMain, a renderer's MessagePort).
export { createPkcs11Worker, type Pkcs11WorkerOptions } from './create-worker.js';
// Exported as ServiceModule/ServiceSession: RemoteModule is the RPC client's module (ts/rpc), one name per concept.
export { Pkcs11Client, RemoteModule as ServiceModule, RemoteSession as ServiceSession, type ClientHooks } from './pkcs11-client.js';
export { Pkcs11Service } from './pkcs11-host.js';
export { servePkcs11, BATCHED, SERVICE_METHODS, type ServePkcs11Options, type ServiceMethodName } from './serve-pkcs11.js';
export { FULL_GRANT, SESSION_CALL_CLASS, MODULE_CALL_CLASS, type ClientGrant, type OperationClass } from './grant.js';
export type * from './pkcs11-types.js';
export { Supervisor, type ServiceHost, type SupervisorOptions, type RestartPolicy, type ServiceDeath, type SupervisorEvents } from './supervisor.js';
export {
  workerEndpoint,
  nodePortEndpoint,
  portMainEndpoint,
  portMainFromNodePort,
  webPortEndpoint,
  type ServiceEndpoint,
  type MessagePortMainLike,
} from './endpoint.js';
export { ServiceDeadError, ServiceRefusedError, UnknownModuleError, registerErrorClass, installErrorTransfer, encodeError, decodeError, type WireError, type WireThrown } from './errors.js';
export { serveService, type ServeOptions } from './host.js';
export { spawnWorkerHost } from './worker-host.js';
export { connectPkcs11 } from './connect.js';
