// What a test runs as another uid must be readable by that uid. A checkout may sit in a
// directory only its owner can enter (root's home, anything made by `mktemp -d`), so the
// files that uid needs are first copied into a directory it can read.
import { chmodSync, cpSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The built library and the runtime dependencies it imports, as the package ships them. */
export const BUILT_LIBRARY = ['dist/lib', 'dist/p11kit.wasm', 'node_modules/koffi', 'node_modules/@koromix', 'node_modules/comlink', 'node_modules/commander'];

/**
 * Copies repository-relative paths (files or folders) into `dir`, keeping their layout, and
 * makes everything readable (and folders enterable) by anyone. `dir` itself must already be.
 * Returns a function giving a copied path.
 */
export function shareWithOtherUids(dir: string, paths: readonly string[]): (path: string) => string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const p of paths) {
    cpSync(join(REPO, p), join(dir, p), { recursive: true, dereference: true });
    openUp(join(dir, p));
    // The folders between `dir` and the copy were made with this process's umask.
    for (let up = dirname(p); up !== '.'; up = dirname(up)) openUp(join(dir, up), false);
  }
  return (p) => join(dir, p);
}

function openUp(path: string, deep = true): void {
  const st = statSync(path);
  chmodSync(path, st.mode | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
  if (deep && st.isDirectory()) for (const e of readdirSync(path)) openUp(join(path, e));
}
