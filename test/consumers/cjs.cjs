// A CommonJS consumer (an Electron main process, a tool's config): require() works and gives
// the same objects as import.
const assert = require('node:assert/strict');
const lib = require('p11kit-wasm');
const { parseUri } = require('p11kit-wasm/uri');
const { loadRegistry, RegistryError } = require('p11kit-wasm/registry');

assert.equal(typeof lib.openModule, 'function');
assert.equal(parseUri, lib.parseUri);
assert.equal(RegistryError, lib.RegistryError);
assert.equal(parseUri('pkcs11:object=k;type=private').type, 'private');
assert.equal(loadRegistry, lib.loadRegistry);
const hsm = lib.openModule(process.env.P11KIT_MODULE);
assert.ok(hsm.getSlotList(true).length > 0);
hsm.release();
import('p11kit-wasm').then((esm) => {
  assert.equal(esm.openModule, lib.openModule);
  console.log('cjs ok');
});
