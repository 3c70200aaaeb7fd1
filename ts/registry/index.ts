// The registry alone (`p11kit-wasm/registry`): reading p11-kit's configuration loads no
// native code; probing a configured module's library does, on demand.
export * from './types.js';
export { UnknownModuleError } from './errors.js';
export { loadRegistry, defaultLocations, defaultProgramName } from './load.js';
