// The bridge's error classes for a client that does not load the bridge (an Electron renderer):
// bridge/errors.ts is plain TypeScript (no koffi, no Node built-in), so registering its classes
// here makes a wrong PIN arrive in the renderer as a Pkcs11Error, not as an Error with its fields.
import { BridgeError, ModuleLoadError, Pkcs11Error } from '../bridge/errors.js';
import { registerErrorClass } from './errors.js';

registerErrorClass(Pkcs11Error);
registerErrorClass(BridgeError);
registerErrorClass(ModuleLoadError);

export { BridgeError, ModuleLoadError, Pkcs11Error };
