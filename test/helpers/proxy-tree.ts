// A p11-kit configuration tree in a temp dir for the proxy tests, readable by our registry and
// by the proxy oracle (the real p11-kit-proxy relocated with p11_kit_override_system_files).
// The user config is pointed at files that do not exist, so only the tree counts.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegistryOptions } from '../../ts/registry/types.js';

export const FIXTURES = join(process.cwd(), 'dist/native/fixtures');
export const ORACLE = join(process.cwd(), 'dist/native/oracle/proxy-oracle');
/** The program name both sides evaluate enable-in / disable-in with. */
export const PROGRAM = 'proxy-oracle';

export interface ConfTree {
  dir: string;
  registry: RegistryOptions;
  /** The oracle's location options for the same tree. */
  oracleArgs: string[];
  /** Writes a module file: system/<name>.module, or package/<name>.module. */
  module(name: string, body: string, where?: 'system' | 'package'): void;
  /** A private copy of a fixture library (a distinct shared object, so a distinct module). */
  copyFixture(fixture: string, as: string): string;
  cleanup(): void;
}

export function createConfTree(): ConfTree {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-proxytree-'));
  for (const sub of ['system', 'package', 'lib']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'pkcs11.conf'), '');
  const registry: RegistryOptions = {
    systemConfig: join(dir, 'pkcs11.conf'),
    systemModules: join(dir, 'system'),
    packageModules: join(dir, 'package'),
    userConfig: join(dir, 'no-user.conf'),
    userModules: join(dir, 'no-user-modules'),
    program: PROGRAM,
  };
  return {
    dir,
    registry,
    oracleArgs: [
      '--system-conf', registry.systemConfig!, '--system-modules', registry.systemModules!, '--package-modules', registry.packageModules!,
      '--user-conf', registry.userConfig!, '--user-modules', registry.userModules!, '--progname', PROGRAM,
    ],
    module: (name, body, where = 'system') => writeFileSync(join(dir, where, `${name}.module`), body),
    copyFixture: (fixture, as) => {
      const path = join(dir, 'lib', as);
      copyFileSync(join(FIXTURES, fixture), path);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The CLI's registry options for the tree. */
export function treeArgs(tree: ConfTree): string[] {
  const r = tree.registry;
  return ['--system-config', r.systemConfig!, '--system-modules', r.systemModules!, '--package-modules', r.packageModules!, '--user-config', r.userConfig!, '--user-modules', r.userModules!];
}

/**
 * Configures test/fixtures/profile-module.c (tokens first, second, sealed; PIN 1234) in the tree,
 * its token objects kept in `store` (x-init-reserved) so that they outlive one CLI run.
 */
export function addProfileModule(tree: ConfTree, store: string, name = 'profiles'): void {
  tree.module(name, `module: ${join(FIXTURES, 'profile-module.so')}\nx-init-reserved: ${store}\n`);
}

/** One step's answer from the oracle. */
export type OracleStep = { step: string; rv?: number; [k: string]: unknown };

/** Runs the real p11-kit-proxy on the tree with these steps (see test/oracle/proxy-oracle.c). */
export function runOracle(tree: ConfTree, steps: string[], env: NodeJS.ProcessEnv = process.env): OracleStep[] {
  const r = spawnSync(ORACLE, [...tree.oracleArgs, ...steps], { env: { ...env, P11_KIT_DEBUG: '' }, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`proxy-oracle exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as OracleStep);
}
