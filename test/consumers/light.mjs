// The light entries load no native code: after parsing a URI and reading a registry with no
// modules, koffi is neither in the module cache nor mapped into the process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseUri, formatUri } from 'p11kit-wasm/uri';
import { loadRegistry } from 'p11kit-wasm/registry';

const empty = process.argv[2];
assert.equal(formatUri(parseUri('pkcs11:token=A')), 'pkcs11:token=A');
const reg = loadRegistry({ systemConfig: `${empty}/none.conf`, systemModules: empty, packageModules: empty, userConfig: `${empty}/none.conf`, userModules: empty });
assert.deepEqual(reg.modules, []);
const cached = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('koffi'));
assert.deepEqual(cached, []);
assert.ok(!readFileSync('/proc/self/maps', 'utf8').includes('koffi'), 'koffi is mapped');
// And the check can fail: the root entry does load it.
await import('p11kit-wasm');
assert.ok(readFileSync('/proc/self/maps', 'utf8').includes('koffi'), 'the root entry maps koffi');
console.log('light ok');
