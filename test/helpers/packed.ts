// The package as a user gets it: `npm pack`, then installed into a fresh project the way npm
// lays it out (the tarball's `package/` in node_modules/p11kit-wasm, its bin linked), with
// its dependencies at the versions package-lock.json pinned, taken from this checkout's
// node_modules — so the step needs the network no more than `npm ci` already did.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface PackedProject {
  /** The consumer project's folder. */
  dir: string;
  /** The tarball's file list, as `npm pack` reported it. */
  files: string[];
  /** The installed package.json. */
  manifest: Record<string, unknown> & { dependencies: Record<string, string>; bin: Record<string, string> };
  cleanup(): void;
}

/** What the TypeScript consumers compile with (not part of the package). */
const TOOLS = ['typescript', '@types/node', 'undici-types'];

export function installPacked(): PackedProject {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-packed-'));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  ) as { filename: string; files: { path: string }[] }[];
  const tarball = join(dir, packed[0].filename);
  const pkg = join(dir, 'node_modules', 'p11kit-wasm');
  mkdirSync(pkg, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1']);
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as PackedProject['manifest'];

  const link = (name: string) => {
    const target = realpathSync(join(REPO, 'node_modules', name));
    mkdirSync(dirname(join(dir, 'node_modules', name)), { recursive: true });
    symlinkSync(target, join(dir, 'node_modules', name));
  };
  for (const name of Object.keys(manifest.dependencies)) link(name);
  // koffi's prebuilt native part lives in a platform package next to it.
  link('@koromix');
  for (const name of TOOLS) link(name);

  const bin = join(dir, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  for (const [name, file] of Object.entries(manifest.bin)) {
    symlinkSync(relative(bin, join(pkg, file)), join(bin, name));
    chmodSync(join(pkg, file), 0o755);
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: { 'p11kit-wasm': `file:${packed[0].filename}` } }));
  return {
    dir,
    files: packed[0].files.map((f) => f.path),
    manifest,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
