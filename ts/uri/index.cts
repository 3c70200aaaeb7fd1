// The CommonJS entry of `p11kit-wasm/uri`: the ESM module object itself (see ts/index.cts).
import lib = require('./index.js');
export = lib;
