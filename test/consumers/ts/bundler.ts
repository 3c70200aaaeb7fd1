// A bundler-resolution consumer (Vite, esbuild, webpack projects).
import { openModule, type ManagedModule } from 'p11kit-wasm';
import { parseUri } from 'p11kit-wasm/uri';
import { loadRegistry } from 'p11kit-wasm/registry';

const hsm: ManagedModule = openModule('softhsm2');
export const used = [hsm, parseUri('pkcs11:'), loadRegistry];
// @ts-expect-error only the exported entry points resolve
import { parseUri as deep } from 'p11kit-wasm/dist/lib/uri/parse.js';
export const notExported = deep;
