// The CommonJS entry: the same module object as the ESM entry (Node >= 20.19 requires ES
// modules synchronously; the library has no top-level await), so `require('p11kit-wasm')`
// and `import` share one copy of every class and of the process-wide lifecycle.
import lib = require('./index.js');
export = lib;
