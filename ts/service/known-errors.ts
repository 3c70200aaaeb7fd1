// Registers the library's own error classes with the codec in errors.ts, so that they arrive
// across the boundary as themselves. Imported by both ends of a Node service (it pulls in
// the bridge and the lifecycle, hence koffi; an Electron renderer imports errors.ts alone
// and gets Errors that still carry name, rv, fn, module and code).
import { BridgeError, ModuleLoadError, Pkcs11Error } from '../bridge/errors.js';
import { LifecycleError } from '../lifecycle/manager.js';
import * as rpc from '../rpc/errors.js';
import { registerErrorClass } from './errors.js';

registerErrorClass(Pkcs11Error);
registerErrorClass(BridgeError);
registerErrorClass(ModuleLoadError);
registerErrorClass(LifecycleError);
for (const cls of [rpc.RpcProtocolError, rpc.HostLostError, rpc.StaleHandleError, rpc.RpcUnsupportedError, rpc.RpcUsageError, rpc.HostConnectError]) {
  registerErrorClass(cls);
}
