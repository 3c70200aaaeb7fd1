// An ES module consumer of the installed package: the root, the light entries, and one object
// per class whichever module system asks.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as lib from 'p11kit-wasm';
import { parseUri } from 'p11kit-wasm/uri';
import { loadRegistry } from 'p11kit-wasm/registry';

const require = createRequire(import.meta.url);
assert.equal(require('p11kit-wasm').openModule, lib.openModule);
assert.equal(parseUri, lib.parseUri);
assert.equal(parseUri('pkcs11:token=Demo%20Token').token, 'Demo Token');
assert.equal(loadRegistry, lib.loadRegistry);
assert.equal(Buffer.from(lib.ecParams('P-256')).toString('hex'), '06082a8648ce3d030107');
assert.equal(Buffer.from(lib.ecParams('P-384')).toString('hex'), '06052b81040022');
assert.throws(() => lib.ecParams('P-999'), /unknown curve 'P-999'/);
const hsm = lib.openModule(process.env.P11KIT_MODULE);
assert.ok(hsm.getSlotList(true).length > 0);
hsm.release();
console.log('esm ok');
