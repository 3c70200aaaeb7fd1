// Bundles the renderer (`npm run build:example` at the top, or `make build`): renderer.mjs and
// the library's browser entry become one ES module, dist/renderer.js, that index.html loads
// under its CSP. Built for the browser platform, so a Node built-in anywhere in the graph is
// a build error, not a runtime surprise in the sandbox.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');

export async function bundleRenderer({ entry = join(here, 'renderer.mjs'), outfile = join(here, 'dist/renderer.js') } = {}) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // The example depends on the library as a package; here it is the built tree next door.
    alias: { 'p11kit-wasm/service/browser': join(root, 'dist/lib/service/browser.js') },
  });
  return { outfile, inputs: Object.keys(result.metafile.inputs) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { outfile, inputs } = await bundleRenderer();
  console.log(`== renderer bundle: ${inputs.length} modules -> ${outfile}`);
}
