// The library entry of p11kit-wasm.
export * from './registry/types.js';
export { loadRegistry, defaultLocations, defaultProgramName } from './registry/load.js';
export { coreModule } from './wasm/core.js';
export * from './uri/index.js';
export * from './bridge/index.js';
