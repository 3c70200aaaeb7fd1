// The light entries from CommonJS: no koffi in require.cache nor in the process's mappings.
const assert = require('node:assert/strict');
const { readFileSync } = require('node:fs');
const { parseUri } = require('p11kit-wasm/uri');
require('p11kit-wasm/registry');

assert.equal(parseUri('pkcs11:slot-id=3').slotId, 3n);
assert.deepEqual(Object.keys(require.cache).filter((k) => k.includes('koffi')), []);
assert.ok(!readFileSync('/proc/self/maps', 'utf8').includes('koffi'), 'koffi is mapped');
require('p11kit-wasm');
assert.ok(Object.keys(require.cache).some((k) => k.includes('koffi')), 'the root entry requires koffi');
console.log('light ok');
