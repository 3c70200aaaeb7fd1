// Where p11-kit 0.24 looks for its configuration on Debian, and how it expands user paths.
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename } from 'node:path';
import type { RegistryLocations } from './types.js';

const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  ia32: 'i386-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
  riscv64: 'riscv64-linux-gnu',
};

/** Debian's compiled-in locations (spec §1.1); user paths still carry their `~`. */
export function defaultLocations(): RegistryLocations {
  const triplet = MULTIARCH[process.arch] ?? `${process.arch}-linux-gnu`;
  return {
    systemConfig: '/etc/pkcs11/pkcs11.conf',
    systemModules: '/etc/pkcs11/modules',
    packageModules: '/usr/share/p11-kit/modules',
    userConfig: '~/.config/pkcs11/pkcs11.conf',
    userModules: '~/.config/pkcs11/modules',
    modulePath: `/usr/lib/${triplet}/pkcs11`,
  };
}

/**
 * `~` and `~/…` become the home directory, except that `~/.config[/…]` goes to
 * XDG_CONFIG_HOME when that is set and non-empty. Other paths are left alone.
 */
export function expandHome(path: string, env: NodeJS.ProcessEnv): string {
  if (path !== '~' && !path.startsWith('~/')) return path;
  const rest = path.slice(1);
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && (rest === '/.config' || rest.startsWith('/.config/'))) {
    return xdg + rest.slice('/.config'.length);
  }
  const home = env.HOME || homedir();
  return home + rest;
}

/**
 * The program name p11-kit would compute: argv[0]'s base name, unless argv[0] is an
 * absolute path under the real executable's path, in which case the real executable's
 * base name (programs that rewrite argv[0] keep matching).
 */
export function defaultProgramName(): string | undefined {
  const argv0 = process.argv0;
  let name = basename(argv0);
  if (argv0.startsWith('/')) {
    try {
      const exe = realpathSync('/proc/self/exe');
      if (argv0.startsWith(exe)) name = basename(exe);
    } catch {
      // no /proc: keep argv[0]'s base name
    }
  }
  return name ? name.slice(0, 255) : undefined;
}

/** Why user configuration must be ignored, as p11-kit decides it (spec §1.6 step 3). */
export function userConfigBlockers(env: NodeJS.ProcessEnv): { root: boolean; setid: boolean; noUserConfig: boolean } {
  const uid = process.getuid?.() ?? -1;
  const setid =
    (process.geteuid?.() ?? uid) !== uid || (process.getegid?.() ?? 0) !== (process.getgid?.() ?? 0);
  return { root: uid === 0, setid, noUserConfig: env.P11_KIT_NO_USER_CONFIG !== undefined };
}
