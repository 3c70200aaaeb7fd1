// Registers the library's own error classes with the codec in errors.ts, so that they arrive
// across the boundary as themselves. Imported by both ends of a Node service (it pulls in
// the lifecycle, hence koffi; an Electron renderer imports errors.ts alone and gets plain
// Errors that still carry name, rv, fn and module).
import { LifecycleError } from '../lifecycle/manager.js';
import { registerErrorClass } from './errors.js';

registerErrorClass(LifecycleError);
