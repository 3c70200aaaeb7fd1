// The generated registry tree of bench/registry.mjs, shared with the profiling drivers
// (bench/callgrind/registry.mjs): 1,000 module files naming 700 modules.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FIXTURE = new URL('../../dist/native/fixtures/mini-module.so', import.meta.url).pathname;
export const FILES = 1000;
export const SHARED_LIBRARIES = 10;
export const PROGRAM = 'registry-bench';

/** The 700 libraries the modules of a loading tree (sharedLibrary: false) name, in module order. */
export function moduleLibraries(loc) {
  return Array.from({ length: 700 }, (_, i) => join(loc.systemModules, '../../lib', `mod${i}.so`));
}

/** 400 files in the system dir, 600 in the package dir; 300 names are in both (merged). */
export function writeTree(root, { sharedLibrary }) {
  const dirs = { system: join(root, 'etc/modules'), package: join(root, 'share/modules'), lib: join(root, 'lib') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(join(root, 'etc/pkcs11.conf'), '# generated for the benchmark\nuser-config: merge\nx-bench: yes\n');
  let seed = 0x5eed;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let i = 0; i < 700; i++) {
    const lib = join(dirs.lib, `mod${sharedLibrary ? i % SHARED_LIBRARIES : i}.so`);
    if (!sharedLibrary || i < SHARED_LIBRARIES) copyFileSync(FIXTURE, lib);
    const lines = [
      `# module ${i}, generated`,
      `module: ${lib}`,
      `priority: ${rand(20) - 5}`,
      i % 2 ? `disable-in: other-program, p11-kit-proxy-x` : `enable-in: other-program, ${PROGRAM}`,
      `x-vendor-setting: value ${rand(1000)} with some words`,
    ];
    if (rand(4) === 0) lines.push('trust-policy: yes');
    if (rand(8) === 0) lines.push('x-init-reserved: verbose=no');
    const text = `${lines.join(i % 3 ? '\n' : '\r\n')}\n`;
    const inPackage = i >= 400;
    writeFileSync(join(inPackage ? dirs.package : dirs.system, `bench-${i}.module`), text);
    // The first 300 system modules get a package file of the same name: extra keys merge in.
    if (i < 300) writeFileSync(join(dirs.package, `bench-${i}.module`), `module: /never/used.so\nx-from-package: ${i}\npriority: 99\n`);
  }
  return {
    libraries: Array.from({ length: sharedLibrary ? SHARED_LIBRARIES : 0 }, (_, i) => join(dirs.lib, `mod${i}.so`)),
    systemConfig: join(root, 'etc/pkcs11.conf'),
    userConfig: join(root, 'user/pkcs11.conf'),
    packageModules: dirs.package,
    systemModules: dirs.system,
    userModules: join(root, 'user/modules'),
  };
}
