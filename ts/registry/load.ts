// loadRegistry: TypeScript does the file system work in p11-kit's order; the wasm core
// lexes, merges and orders (wasm/registry.h); then each module's library is probed.
import { opendirSync } from 'node:fs';
import { core } from '../wasm/core.js';
import { echo } from '../wasm/echo.js';
import { defaultLocations, defaultProgramName, expandHome, userConfigBlockers } from './paths.js';
import { checkLibrary, closeLibrary, openLibrary, type Handle } from './probe.js';
import { visitRegistryRecords, type RecordVisitor } from './records.js';
import { remoteProblem } from './remote.js';
import { Io, Known, Staging, ioFailure } from './staging.js';
import {
  RegistryError,
  type Diagnostic,
  type DiagnosticLevel,
  type ModuleEntry,
  type Registry,
  type RegistryLocations,
  type RegistryOptions,
} from './types.js';

export { defaultLocations, defaultProgramName } from './paths.js';

// Mirrors of the constants in wasm/registry.h and wasm/abi.h (Io: ./staging.ts).
const enum Scope { System = 0, User = 1, Package = 2 }
const enum Want { UserConf = 1, UserModules = 2, SystemModules = 3 }
const enum Env { Root = 1, SetId = 2, NoUserConfig = 4 }
const enum Mod { Critical = 1, TrustPolicy = 2, Managed = 4, LogCalls = 8, Remote = 16, LogUnmanaged = 32 }

interface RegistryCore {
  p11w_registry_new(flags: number): number;
  p11w_registry_free(reg: number): void;
  p11w_registry_global_file(reg: number, scope: number, path: number, io: number, data: number, len: number): number;
  p11w_registry_wants(reg: number, what: number): number;
  p11w_registry_dir(reg: number, scope: number, path: number, io: number, data: number, len: number): number;
  p11w_registry_module_file(reg: number, scope: number, path: number, name: number, io: number, data: number, len: number): number;
  p11w_registry_finish(reg: number, program: number, fromProxy: number): number;
  p11w_registry_output(reg: number, lenOut: number): number;
  p11w_registry_output_ascii(reg: number): number;
}

/** Far more than any real configuration; what keeps a hostile file from exhausting memory. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Entries in the directory's own (readdir) order, as p11-kit sees them; undefined when unlistable.
 * Names are latin1 strings, one character per byte: a file name need not be UTF-8 (p11-kit still
 * loads it), and a one-byte string is far cheaper to make than a Buffer per name.
 */
function listDir(path: string): { entries?: string[]; regular?: boolean[]; failure?: { io: Io; text: string } } {
  try {
    const dir = opendirSync(path, { encoding: 'latin1' });
    const entries: string[] = [];
    // Whether readdir already says "regular file" (then no stat is needed to know it is not a directory).
    const regular: boolean[] = [];
    try {
      for (let d = dir.readSync(); d; d = dir.readSync()) {
        entries.push(d.name);
        regular.push(d.isFile());
      }
    } finally {
      dir.closeSync();
    }
    return { entries, regular };
  } catch (err) {
    return { failure: ioFailure(err) };
  }
}

/** p11-kit's path join: separators are dropped at the joint and at the end only; inner `//` stays. */
function resolveModulePath(modulePath: string, value: string): string {
  if (value.startsWith('/')) return value;
  const base = modulePath.replace(/\/+$/, '');
  return value ? `${base}/${value.replace(/\/+$/, '')}` : base || '/';
}

function levelOf(tag: string): DiagnosticLevel {
  return tag === 'E' ? 'error' : tag === 'W' ? 'warning' : 'info';
}

/** Runs the core over the configuration files and hands each record of its output to `visit`. */
function mergeConfig(locations: RegistryLocations, envFlags: number, program: string | undefined, forProxy: boolean, visit: RecordVisitor): void {
  const c = core();
  const fns = c.exports as unknown as RegistryCore;
  const reg = fns.p11w_registry_new(envFlags);
  if (!reg) throw new RangeError('p11kit-wasm: the wasm core is out of memory');
  const staging = new Staging(c, MAX_CONFIG_BYTES);
  try {
    const feedGlobal = (scope: Scope, path: string) => {
      const r = staging.read(path, Known.Config);
      fns.p11w_registry_global_file(reg, scope, staging.path(path), r.io, staging.data, r.len);
    };
    const feedDir = (scope: Scope, dir: string) => {
      const listing = listDir(dir);
      const len = listing.failure ? staging.put(listing.failure.text) : staging.put('');
      const io = listing.failure ? listing.failure.io : Io.Ok;
      if (fns.p11w_registry_dir(reg, scope, staging.path(dir), io, staging.data, len) !== 0 || !listing.entries) return;
      staging.prefix(Buffer.from(`${dir.replace(/\/+$/, '')}/`)); // p11-kit's join: no doubled separator at the joint
      const { entries, regular } = listing as Required<typeof listing>;
      for (let i = 0; i < entries.length; i++) {
        const { pathPtr, namePtr, path } = staging.entry(entries[i]);
        const r = staging.read(path, regular[i] ? Known.Regular : Known.Entry);
        if (fns.p11w_registry_module_file(reg, scope, pathPtr, namePtr, r.io, staging.data, r.len) < 0) return;
      }
    };

    feedGlobal(Scope.System, locations.systemConfig);
    if (fns.p11w_registry_wants(reg, Want.UserConf)) feedGlobal(Scope.User, locations.userConfig);
    if (fns.p11w_registry_wants(reg, Want.UserModules)) feedDir(Scope.User, locations.userModules);
    if (fns.p11w_registry_wants(reg, Want.SystemModules)) {
      feedDir(Scope.System, locations.systemModules);
      feedDir(Scope.Package, locations.packageModules);
    }
    c.scoped((a) => {
      fns.p11w_registry_finish(reg, program === undefined ? 0 : a.cstr(program), forProxy ? 1 : 0);
      const lenPtr = a.alloc(4);
      const out = fns.p11w_registry_output(reg, lenPtr);
      if (!out) throw new RangeError('p11kit-wasm: the wasm core is out of memory');
      const ascii = fns.p11w_registry_output_ascii(reg) === 1;
      // A view, not a copy: the records are read before the core is used again.
      visitRegistryRecords(c.heap.subarray(out, out + c.u32(lenPtr)), ascii, visit);
    });
  } finally {
    staging.release();
    fns.p11w_registry_free(reg);
  }
}

/** Our own module option: how the lifecycle re-enters C_Initialize after a generation change. */
export const REINIT_POLICY_KEY = 'x-reinit-policy';

function splitList(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(/[,\s]+/).filter(Boolean);
}

/** The core's records, collected into what loadRegistry returns; `read` is the record visitor. */
function registryCollector() {
  const diagnostics: Diagnostic[] = [];
  const global: Record<string, string> = {};
  const modules: ModuleEntry[] = [];
  const logUnmanaged = new Set<string>();
  const state = { failed: true };
  const read: RecordVisitor = (tag, num, a, b) => {
    switch (tag) {
      case 'E':
      case 'W':
      case 'I':
        diagnostics.push({ level: levelOf(tag), file: a, line: num, message: b });
        break;
      case 'G':
        global[a] = b;
        break;
      case 'M':
        if (num & Mod.LogUnmanaged) logUnmanaged.add(a);
        modules.push({
          name: a,
          options: {},
          settings: {
            critical: (num & Mod.Critical) !== 0,
            trustPolicy: (num & Mod.TrustPolicy) !== 0,
            managed: (num & Mod.Managed) !== 0,
            logCalls: (num & Mod.LogCalls) !== 0,
            priority: 0,
          },
        });
        break;
      case 'P':
        modules[modules.length - 1].settings.priority = num | 0;
        break;
      case 'O':
        modules[modules.length - 1].options[a] = b;
        break;
      case 'S':
        state.failed = num !== 0;
        break;
    }
  };
  return { read, diagnostics, global, modules, logUnmanaged, state };
}

function toRegistry(collected: ReturnType<typeof registryCollector>, locations: RegistryLocations, program: string | undefined) {
  const { diagnostics, global, modules, logUnmanaged } = collected;
  for (const m of modules) {
    const o = m.options;
    // Set only when configured (a deleted key would turn every settings object into a slow one).
    const enableIn = splitList(o['enable-in']);
    if (enableIn !== undefined) m.settings.enableIn = enableIn;
    const disableIn = splitList(o['disable-in']);
    if (disableIn !== undefined) m.settings.disableIn = disableIn;
    if (o['x-init-reserved'] !== undefined) m.settings.initReserved = o['x-init-reserved'];
    if (o.remote !== undefined) m.settings.remote = o.remote;
    else m.path = resolveModulePath(locations.modulePath, o.module ?? '');
    const policy = o[REINIT_POLICY_KEY];
    if (policy === 'auto' || policy === 'explicit') m.settings.reinitPolicy = policy;
    else if (policy !== undefined) {
      diagnostics.push({
        level: 'warning',
        file: '',
        line: 0,
        message: `module '${m.name}': invalid setting ${echo(policy)} for '${REINIT_POLICY_KEY}', defaulting to 'explicit'`,
      });
    }
  }
  return { failed: collected.state.failed, diagnostics, global, modules, program, logUnmanaged };
}

/** p11-kit's load check over the merged list: drop what won't load, abort on a critical one. */
function checkLoadable(modules: ModuleEntry[], diagnostics: Diagnostic[], loaded: (m: ModuleEntry) => void): ModuleEntry[] {
  const kept: ModuleEntry[] = [];
  // Kept libraries stay open until the check is over: an open library's handle is its identity.
  const opened: Handle[] = [];
  const keptBy = new Map<Handle, string>(); // handle → the first module that kept it
  const keptAt = new Map<string, Handle>(); // path → handle: configs often name the same path many times
  try {
    for (const m of modules) {
      let reason: string | undefined;
      let id: Handle | undefined;
      if (m.settings.remote !== undefined) {
        reason = remoteProblem(m.settings.remote);
      } else if ((id = keptAt.get(m.path!)) === undefined) {
        const lib = openLibrary(m.path!);
        if ('reason' in lib) reason = lib.reason;
        else {
          opened.push((id = lib.handle));
          // A library already kept is not checked again: it would load the same, and be dropped below.
          if (!keptBy.has(id)) reason = checkLibrary(id, m.path!);
          if (reason === undefined) keptAt.set(m.path!, id);
        }
      }
      if (reason) {
        if (m.settings.critical) {
          const cause: Diagnostic = { level: 'error', file: '', line: 0, message: reason };
          const abort: Diagnostic = {
            level: 'error',
            file: '',
            line: 0,
            message: `aborting initialization because module '${m.name}' was marked as critical`,
          };
          diagnostics.push(cause, abort);
          throw new RegistryError(abort, sortedDiagnostics(diagnostics));
        }
        diagnostics.push({ level: 'warning', file: '', line: 0, message: `module '${m.name}' skipped: ${reason}` });
        continue;
      }
      loaded(m);
      if (m.settings.remote !== undefined && !m.settings.managed) {
        // An RPC module has no raw function list, so p11-kit leaves an unmanaged one out.
        diagnostics.push({ level: 'info', file: '', line: 0, message: `module '${m.name}' is remote and unmanaged, skipped` });
        continue;
      }
      if (id !== undefined) {
        // One shared object is one module, whatever the number of configs naming it.
        const first = keptBy.get(id);
        if (first !== undefined) {
          diagnostics.push({
            level: 'warning',
            file: '',
            line: 0,
            message: `module '${m.name}' loads the same library as '${first}'; only '${first}' is kept`,
          });
          continue;
        }
        keptBy.set(id, m.name);
      }
      kept.push(m);
    }
  } finally {
    for (const h of opened) closeLibrary(h);
  }
  return kept;
}

function sortedDiagnostics(d: Diagnostic[]): Diagnostic[] {
  const rank = { error: 0, warning: 1, info: 2 } as const;
  return [...d].sort((a, b) => rank[a.level] - rank[b.level]);
}

/**
 * Reads the PKCS#11 module registry as p11-kit 0.24 does and returns the modules it
 * would load, in its order. Throws RegistryError wherever p11-kit would refuse to load.
 */
export function loadRegistry(options: RegistryOptions = {}): Registry {
  const env = options.env ?? process.env;
  const given = Object.fromEntries(
    Object.entries(options).filter(([k, v]) => v !== undefined && k in defaultLocations()),
  ) as Partial<RegistryLocations>;
  const raw = { ...defaultLocations(), ...given };
  const locations: RegistryLocations = {
    ...raw,
    userConfig: expandHome(raw.userConfig, env),
    userModules: expandHome(raw.userModules, env),
  };
  const program = options.program !== undefined ? options.program || undefined : defaultProgramName();
  const blockers = userConfigBlockers(env);
  const envFlags = (blockers.root ? Env.Root : 0) | (blockers.setid ? Env.SetId : 0) | (blockers.noUserConfig ? Env.NoUserConfig : 0);

  const collected = registryCollector();
  mergeConfig(locations, envFlags, program, options.forProxy ?? false, collected.read);
  const result = toRegistry(collected, locations, program);
  if (result.failed) {
    const diagnostics = sortedDiagnostics(result.diagnostics);
    const reason = diagnostics.find((d) => d.level === 'error') ?? {
      level: 'error' as const,
      file: '',
      line: 0,
      message: 'the configuration could not be loaded',
    };
    throw new RegistryError(reason, diagnostics);
  }
  // p11-kit warns about log-calls on an unmanaged module only once that module has loaded.
  const loaded = (m: ModuleEntry) => {
    if (!result.logUnmanaged.has(m.name)) return;
    const message = `the 'log-calls' option for module '${m.name}' is only supported for managed modules`;
    result.diagnostics.push({ level: 'warning', file: '', line: 0, message });
  };
  if (options.probe === false) result.modules.forEach(loaded);
  const modules = options.probe === false ? result.modules : checkLoadable(result.modules, result.diagnostics, loaded);
  return { global: result.global, modules, diagnostics: result.diagnostics, locations, program };
}
