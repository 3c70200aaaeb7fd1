// A CommonJS TypeScript consumer (node16 resolution, a .cts file): the require conditions'
// types, without TS1479.
import { openModule, Pkcs11Error, type ManagedModule } from 'p11kit-wasm';
import lib = require('p11kit-wasm');
import { parseUri } from 'p11kit-wasm/uri';
import { loadRegistry } from 'p11kit-wasm/registry';

const hsm: ManagedModule = openModule('softhsm2');
export const used = [hsm, lib.formatUri, parseUri('pkcs11:'), loadRegistry, Pkcs11Error];
// @ts-expect-error parseUri takes a string
parseUri(42);
