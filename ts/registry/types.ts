// The registry's public shapes. Values are kept exactly as written (trimmed strings);
// `module` stays unresolved in `options` and is resolved in `path`.

export interface RegistryLocations {
  /** System global config file. Debian: /etc/pkcs11/pkcs11.conf */
  systemConfig: string;
  /** System module config dir. Debian: /etc/pkcs11/modules */
  systemModules: string;
  /** Package module config dir. Debian: /usr/share/p11-kit/modules */
  packageModules: string;
  /** User global config file (~ and XDG_CONFIG_HOME expanded). Debian: ~/.config/pkcs11/pkcs11.conf */
  userConfig: string;
  /** User module config dir. Debian: ~/.config/pkcs11/modules */
  userModules: string;
  /** Where relative `module:` values live. Debian: /usr/lib/<triplet>/pkcs11 */
  modulePath: string;
}

export interface RegistryOptions extends Partial<RegistryLocations> {
  /** Program name matched against enable-in/disable-in; default: this process's name, as p11-kit computes it. */
  program?: string;
  /** Evaluate enable-in/disable-in as p11-kit-proxy does (the `p11-kit-proxy` pseudo-name). */
  forProxy?: boolean;
  /** Check that each module's library loads as a PKCS#11 module (default true), as p11-kit does. */
  probe?: boolean;
  /** Environment to read HOME, XDG_CONFIG_HOME and P11_KIT_NO_USER_CONFIG from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export type DiagnosticLevel = 'error' | 'warning' | 'info';

export interface Diagnostic {
  level: DiagnosticLevel;
  /** The file concerned, or '' when the diagnostic is about a module or the whole load. */
  file: string;
  /** 1-based line, or 0 when no line applies. */
  line: number;
  message: string;
}

/** p11-kit's readings of the well-known module options (spec §1.4). */
export interface ModuleSettings {
  critical: boolean;
  trustPolicy: boolean;
  /** After the global `managed` override. */
  managed: boolean;
  /** After the global `log-calls` override; false for unmanaged modules. */
  logCalls: boolean;
  /** atoi() of `priority`, 0 when absent. */
  priority: number;
  enableIn?: string[];
  disableIn?: string[];
  /** `x-init-reserved`, passed as CK_C_INITIALIZE_ARGS.pReserved ('' is not the same as absent). */
  initReserved?: string;
  /** `remote`, when the module is reached over p11-kit's RPC protocol. */
  remote?: string;
  /**
   * `x-reinit-policy` (ours): after a generation change, `explicit` (callers get a typed error
   * and call reinitialize()) or `auto` (one serialized re-initialize, idempotent calls retried
   * once). Absent means explicit.
   */
  reinitPolicy?: 'explicit' | 'auto';
}

export interface ModuleEntry {
  name: string;
  /** Merged raw option values, in the order they were first seen. */
  options: Record<string, string>;
  /** The resolved shared object path, or undefined for remote modules. */
  path?: string;
  settings: ModuleSettings;
}

export interface GlobalSettings {
  userConfig: 'none' | 'merge' | 'only';
  managed?: boolean;
  logCalls?: boolean;
}

export interface Registry {
  /** Merged global options as written. */
  global: Record<string, string>;
  /** The modules p11-kit would load for the program, in its load order. */
  modules: ModuleEntry[];
  diagnostics: Diagnostic[];
  locations: RegistryLocations;
  program: string | undefined;
}

/** Thrown when p11-kit would refuse to load any module; `diagnostics` holds every message, errors first. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly reason: Diagnostic,
    readonly diagnostics: Diagnostic[],
  ) {
    super(formatDiagnostic(reason));
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? (d.line ? `${d.file}:${d.line}: ` : `${d.file}: `) : '';
  return `${where}${d.message}`;
}
