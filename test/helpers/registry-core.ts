// Drives the wasm registry core (wasm/registry.h) directly, in p11-kit's call order, from
// in-memory files: the unit tests of the lexer and merge rules need no file system.
import { core, readRecords, type CoreRecord } from '../../ts/wasm/core.js';

export const IO = { ok: 0, missing: 1, denied: 2, error: 3, statFailed: 4, isDir: 5 } as const;
export const ENV = { root: 1, setid: 2, noUserConfig: 4 } as const;
export const MOD = { critical: 1, trustPolicy: 2, managed: 4, logCalls: 8, remote: 16, logUnmanaged: 32 } as const;
const SCOPE = { system: 0, user: 1, package: 2 } as const;
const WANT = { userConf: 1, userModules: 2, systemModules: 3 } as const;

/** A file's contents, or how reading it failed (with the OS error text). */
export type FileInput = string | Uint8Array | { io: Exclude<keyof typeof IO, 'ok'>; text?: string };
/** A module directory: its entries in readdir order, or how listing it failed. */
export type DirInput = [name: string, file: FileInput][] | { io: Exclude<keyof typeof IO, 'ok'>; text?: string };

export interface CoreInput {
  env?: number;
  system?: FileInput;
  user?: FileInput;
  userModules?: DirInput;
  systemModules?: DirInput;
  packageModules?: DirInput;
  program?: string;
  fromProxy?: boolean;
}

export interface CoreModule {
  name: string;
  flags: number;
  priority: number;
  options: Record<string, string>;
  lines: Record<string, number>;
}

export interface CoreOutput {
  failed: boolean;
  mode: number;
  /** Which locations the core asked for, in order. */
  asked: string[];
  globals: Record<string, string>;
  globalKeys: string[];
  modules: CoreModule[];
  errors: CoreRecord[];
  warnings: CoreRecord[];
  infos: CoreRecord[];
  records: CoreRecord[];
}

interface RegistryFns {
  p11w_registry_new(env: number): number;
  p11w_registry_free(reg: number): void;
  p11w_registry_global_file(reg: number, scope: number, path: number, io: number, data: number, len: number): number;
  p11w_registry_wants(reg: number, what: number): number;
  p11w_registry_mode(reg: number): number;
  p11w_registry_dir(reg: number, scope: number, path: number, io: number, data: number, len: number): number;
  p11w_registry_module_file(reg: number, scope: number, path: number, name: number, io: number, data: number, len: number): number;
  p11w_registry_finish(reg: number, program: number, fromProxy: number): number;
  p11w_registry_output(reg: number, lenOut: number): number;
  p11w_module_name_from_file(name: number, out: number, size: number): number;
}

const fns = () => core().exports as unknown as RegistryFns;

/** Where each scope's files claim to live, for diagnostics. */
export const PATHS = {
  system: '/etc/pkcs11/pkcs11.conf',
  user: '/home/u/.config/pkcs11/pkcs11.conf',
  systemModules: '/etc/pkcs11/modules',
  userModules: '/home/u/.config/pkcs11/modules',
  packageModules: '/usr/share/p11-kit/modules',
};

function asBytes(f: FileInput | undefined): { io: number; data: Uint8Array } {
  if (f === undefined) return { io: IO.missing, data: new Uint8Array() };
  if (typeof f === 'string') return { io: IO.ok, data: new TextEncoder().encode(f) };
  if (f instanceof Uint8Array) return { io: IO.ok, data: f };
  return { io: IO[f.io], data: new TextEncoder().encode(f.text ?? '') };
}

export function runCore(input: CoreInput): CoreOutput {
  const c = core();
  const f = fns();
  const reg = f.p11w_registry_new(input.env ?? 0);
  const asked: string[] = [];
  try {
    const global = (scope: number, path: string, file: FileInput | undefined) =>
      c.scoped((a) => {
        const { io, data } = asBytes(file);
        const d = a.put(data);
        return f.p11w_registry_global_file(reg, scope, a.cstr(path), io, d.ptr, d.len);
      });
    const dir = (scope: number, path: string, input: DirInput | undefined) => {
      const failure = input === undefined ? { io: IO.missing, data: new Uint8Array() } : Array.isArray(input) ? undefined : asBytes(input);
      const go = c.scoped((a) => {
        const d = a.put(failure?.data ?? new Uint8Array());
        return f.p11w_registry_dir(reg, scope, a.cstr(path), failure?.io ?? IO.ok, d.ptr, d.len);
      });
      if (go !== 0 || !Array.isArray(input)) return;
      for (const [name, file] of input) {
        const rc = c.scoped((a) => {
          const { io, data } = asBytes(file);
          const d = a.put(data);
          return f.p11w_registry_module_file(reg, scope, a.cstr(`${path}/${name}`), a.cstr(name), io, d.ptr, d.len);
        });
        if (rc < 0) return;
      }
    };

    global(SCOPE.system, PATHS.system, input.system);
    if (f.p11w_registry_wants(reg, WANT.userConf)) {
      asked.push('user');
      global(SCOPE.user, PATHS.user, input.user);
    }
    if (f.p11w_registry_wants(reg, WANT.userModules)) {
      asked.push('userModules');
      dir(SCOPE.user, PATHS.userModules, input.userModules);
    }
    if (f.p11w_registry_wants(reg, WANT.systemModules)) {
      asked.push('systemModules', 'packageModules');
      dir(SCOPE.system, PATHS.systemModules, input.systemModules);
      dir(SCOPE.package, PATHS.packageModules, input.packageModules);
    }
    const mode = f.p11w_registry_mode(reg);
    const records = c.scoped((a) => {
      f.p11w_registry_finish(reg, input.program === undefined ? 0 : a.cstr(input.program), input.fromProxy ? 1 : 0);
      const lenPtr = a.alloc(4);
      const out = f.p11w_registry_output(reg, lenPtr);
      return readRecords(c.bytes(out, c.u32(lenPtr)));
    });
    return summarize(records, mode, asked);
  } finally {
    f.p11w_registry_free(reg);
  }
}

function summarize(records: CoreRecord[], mode: number, asked: string[]): CoreOutput {
  const out: CoreOutput = {
    failed: true, mode, asked, globals: {}, globalKeys: [], modules: [], errors: [], warnings: [], infos: [], records,
  };
  for (const r of records) {
    const m = out.modules[out.modules.length - 1];
    switch (r.tag) {
      case 'E': out.errors.push(r); break;
      case 'W': out.warnings.push(r); break;
      case 'I': out.infos.push(r); break;
      case 'G': out.globals[r.a] = r.b; out.globalKeys.push(r.a); break;
      case 'M': out.modules.push({ name: r.a, flags: r.num, priority: 0, options: {}, lines: {} }); break;
      case 'P': m.priority = r.num | 0; break;
      case 'O': m.options[r.a] = r.b; m.lines[r.a] = r.num; break;
      case 'S': out.failed = r.num !== 0; break;
    }
  }
  return out;
}

/** The name rule alone: [name, clean]. */
export function moduleNameFromFile(filename: string, outSize = 256): [string, boolean] {
  const c = core();
  return c.scoped((a) => {
    const out = a.alloc(Math.max(outSize, 1));
    const clean = fns().p11w_module_name_from_file(a.cstr(filename), out, outSize);
    const bytes = c.bytes(out, Math.max(outSize, 1));
    const end = bytes.indexOf(0);
    return [new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end)), clean === 1];
  });
}

/** A global config of one file: what the lexer made of it (or its error). */
export function lexGlobal(text: string | Uint8Array): CoreOutput {
  return runCore({ env: ENV.root, system: text });
}
