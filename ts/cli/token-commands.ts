// Commands that read modules' tokens through the bridge: list-tokens, list-mechanisms,
// list-objects, and the library/token details of list-modules in p11-kit 0.24's layout.
// Modules are initialized for the command's duration (CKF_OS_LOCKING_OK and their
// x-init-reserved string) and finalized afterwards, unless someone else had initialized them.
import type { Command } from 'commander';
import { loadModule, CKR, CKA, CKO, CKK, CKF_TOKEN, CKF_MECHANISM, nameOf, flagNames, CKM } from '../bridge/index.js';
import type { Pkcs11Module, SlotId, TokenInfo, AttributeResult } from '../bridge/index.js';
import { formatUri, parseUri, matchModuleInfo, matchSlot, matchTokenInfo, type Uri, type UriObjectType } from '../uri/index.js';
import type { ModuleEntry, Registry } from '../registry/types.js';
import { loadForCommand, registryOptions, withRegistryOptions, type RegistryFlags } from './registry-options.js';
import { openProxyAsync, ProxyError, type ProxyModule, type ProxyToken } from '../proxy/index.js';
import { pinFor, withPinOptions, type PinFlags } from './pin.js';
import { globalTrace, traceModule } from '../trace/index.js';
import { openAsyncModule } from '../rpc/open.js';
import { cliAction, CliError, EXIT } from './exit-codes.js';
import { hint } from './global-flags.js';
import type { ModuleInfo } from '../bridge/index.js';
import { escapeForTerminal } from './escape.js';

/** Token flags as p11-kit 0.24's list-modules names them, in its order. */
const TOKEN_FLAG_NAMES: [number, string][] = [
  [CKF_TOKEN.CKF_RNG, 'rng'],
  [CKF_TOKEN.CKF_WRITE_PROTECTED, 'write-protected'],
  [CKF_TOKEN.CKF_LOGIN_REQUIRED, 'login-required'],
  [CKF_TOKEN.CKF_USER_PIN_INITIALIZED, 'user-pin-initialized'],
  [CKF_TOKEN.CKF_RESTORE_KEY_NOT_NEEDED, 'restore-key-not-needed'],
  [CKF_TOKEN.CKF_CLOCK_ON_TOKEN, 'clock-on-token'],
  [CKF_TOKEN.CKF_PROTECTED_AUTHENTICATION_PATH, 'protected-authentication-path'],
  [CKF_TOKEN.CKF_DUAL_CRYPTO_OPERATIONS, 'dual-crypto-operations'],
  [CKF_TOKEN.CKF_TOKEN_INITIALIZED, 'token-initialized'],
  [CKF_TOKEN.CKF_SECONDARY_AUTHENTICATION, 'secondary-authentication'],
  [CKF_TOKEN.CKF_USER_PIN_COUNT_LOW, 'user-pin-count-low'],
  [CKF_TOKEN.CKF_USER_PIN_FINAL_TRY, 'user-pin-final-try'],
  [CKF_TOKEN.CKF_USER_PIN_LOCKED, 'user-pin-locked'],
  [CKF_TOKEN.CKF_USER_PIN_TO_BE_CHANGED, 'user-pin-to-be-changed'],
  [CKF_TOKEN.CKF_SO_PIN_COUNT_LOW, 'so-pin-count-low'],
  [CKF_TOKEN.CKF_SO_PIN_FINAL_TRY, 'so-pin-final-try'],
  [CKF_TOKEN.CKF_SO_PIN_LOCKED, 'so-pin-locked'],
  [CKF_TOKEN.CKF_SO_PIN_TO_BE_CHANGED, 'so-pin-to-be-changed'],
];

interface OpenModule {
  entry: ModuleEntry;
  module: Pkcs11Module;
  /** We initialized it, so we finalize it. */
  ours: boolean;
}

/**
 * Loads and initializes the registry's modules as p11_kit_modules_load_and_initialize does:
 * a failure of a non-critical module drops it (message with -v); a critical one fails the
 * whole command (undefined, exit code 1, nothing printed). Remote modules are left out: the
 * RPC client is another command's business.
 */
function openModules(registry: Registry, verbose: boolean): OpenModule[] | undefined {
  const open: OpenModule[] = [];
  const seen = new Set<Pkcs11Module>();
  const fail = (entry: ModuleEntry, why: string): boolean => {
    if (verbose || entry.settings.critical) process.stderr.write(`p11-kit: ${entry.name}: module failed to initialize: ${why}\n`);
    return entry.settings.critical;
  };
  for (const entry of registry.modules) {
    if (!entry.path || entry.settings.remote !== undefined) continue;
    let module: Pkcs11Module;
    try {
      module = loadModule(entry.path, { name: entry.name });
      const trace = globalTrace(); // `p11kit trace list-modules`: these modules bypass openModule
      if (trace) traceModule(module, trace);
    } catch (err) {
      if (fail(entry, (err as Error).message)) return abort(open);
      continue;
    }
    let ours = false;
    if (!seen.has(module)) {
      try {
        module.initialize({ reserved: entry.settings.initReserved ?? null });
        ours = true;
      } catch (err) {
        if ((err as { rv?: number }).rv !== CKR.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          if (fail(entry, (err as Error).message)) return abort(open);
          continue;
        }
      }
      seen.add(module);
    }
    open.push({ entry, module, ours });
  }
  return open;
}

function abort(open: OpenModule[]): undefined {
  closeModules(open);
  process.exitCode = 1;
  return undefined;
}

function closeModules(open: OpenModule[]): void {
  for (const o of open) {
    if (!o.ours) continue;
    try {
      o.module.finalize();
    } catch {
      // Nothing useful to do about a module that fails to finalize on the way out.
    }
  }
}

function version(v: { major: number; minor: number }): string {
  return `${v.major}.${v.minor}`;
}

function infoError(err: unknown): void {
  process.stderr.write(`p11-kit: couldn't load module info: ${(err as Error).message}\n`);
}

/** The token block of list-modules (p11-kit 0.24's lists.c layout). */
function tokenLines(t: TokenInfo): string[] {
  const e = escapeForTerminal;
  const lines = [`    token: ${e(t.label)}`, `        manufacturer: ${e(t.manufacturerID)}`, `        model: ${e(t.model)}`, `        serial-number: ${e(t.serialNumber)}`];
  if (t.hardwareVersion.major || t.hardwareVersion.minor) lines.push(`        hardware-version: ${version(t.hardwareVersion)}`);
  if (t.firmwareVersion.major || t.firmwareVersion.minor) lines.push(`        firmware-version: ${version(t.firmwareVersion)}`);
  lines.push('        flags:');
  for (const [bit, name] of TOKEN_FLAG_NAMES) if (t.flags & bit) lines.push(`               ${name}`);
  return lines;
}

/** What list-modules shows of one module: its library info and tokens, or why they are missing. */
export interface ModuleDetails {
  entry: ModuleEntry;
  library?: ModuleInfo;
  tokens: TokenInfo[];
}

/** Library info and tokens of a remote module, through p11-kit's RPC protocol (as p11-kit lists them). */
async function describeRemote(entry: ModuleEntry, verbose: boolean): Promise<ModuleDetails | 'critical' | 'skipped'> {
  const remote = openAsyncModule(entry);
  const out: ModuleDetails = { entry, tokens: [] };
  try {
    await remote.async.initialize({ reserved: entry.settings.initReserved ?? null });
  } catch (err) {
    if (verbose || entry.settings.critical) process.stderr.write(`p11-kit: ${entry.name}: module failed to initialize: ${(err as Error).message}\n`);
    await (remote as { close?: () => Promise<void> }).close?.();
    return entry.settings.critical ? 'critical' : 'skipped';
  }
  try {
    out.library = await remote.async.getInfo();
    for (const slot of await remote.async.getSlotList(true)) out.tokens.push(await remote.async.getTokenInfo(slot));
  } catch (err) {
    infoError(err);
  } finally {
    await remote.async.finalize().catch(() => undefined);
    await (remote as { close?: () => Promise<void> }).close?.();
  }
  return out;
}

/**
 * The modules of the registry with their library info and tokens, initialized and finalized as
 * p11_kit_modules_load_and_initialize does; undefined (exit code 1) when a critical one fails.
 */
export async function describeModules(registry: Registry, verbose = false): Promise<ModuleDetails[] | undefined> {
  const open = openModules(registry, verbose);
  if (!open) return undefined;
  try {
    const out: ModuleDetails[] = [];
    const byEntry = new Map(open.map((o) => [o.entry, o.module]));
    for (const entry of registry.modules) {
      if (entry.settings.remote !== undefined) {
        const d = await describeRemote(entry, verbose);
        if (d === 'critical') {
          process.exitCode = 1;
          return undefined;
        }
        if (d !== 'skipped') out.push(d);
        continue;
      }
      const module = byEntry.get(entry);
      if (!module) continue;
      const d: ModuleDetails = { entry, tokens: [] };
      out.push(d);
      try {
        d.library = module.getInfo();
        for (const slot of module.getSlotList(true)) {
          try {
            d.tokens.push(module.getTokenInfo(slot));
          } catch (err) {
            infoError(err);
          }
        }
      } catch (err) {
        infoError(err);
      }
    }
    return out;
  } finally {
    closeModules(open);
  }
}

/** `p11kit list-modules` with library and token details, byte for byte as p11-kit 0.24.1 prints them. */
export function moduleDetailLines(details: ModuleDetails[]): string[] {
  const out: string[] = [];
  for (const { entry, library, tokens } of details) {
    out.push(escapeForTerminal(`${entry.name}: ${entry.settings.remote === undefined ? (entry.options.module ?? '(null)') : '(null)'}`));
    if (!library) continue;
    out.push(`    library-description: ${escapeForTerminal(library.libraryDescription)}`, `    library-manufacturer: ${escapeForTerminal(library.manufacturerID)}`, `    library-version: ${version(library.libraryVersion)}`);
    for (const t of tokens) out.push(...tokenLines(t));
  }
  return out;
}

/** A token as JSON: its fields, flag names and URI. */
export function tokenJson(t: TokenInfo): Record<string, unknown> {
  return {
    label: t.label,
    manufacturer: t.manufacturerID,
    model: t.model,
    serialNumber: t.serialNumber,
    hardwareVersion: version(t.hardwareVersion),
    firmwareVersion: version(t.firmwareVersion),
    flags: TOKEN_FLAG_NAMES.filter(([bit]) => t.flags & bit).map(([, name]) => name),
    uri: tokenUri(t),
  };
}

// --- tokens matching a URI ---

interface FoundToken {
  open: OpenModule;
  slot: SlotId;
  token: TokenInfo;
}

function tokensMatching(open: OpenModule[], uri: Uri): FoundToken[] {
  const found: FoundToken[] = [];
  for (const o of open) {
    if (uri.moduleName !== undefined && uri.moduleName !== o.entry.name) continue;
    if (uri.modulePath !== undefined && uri.modulePath !== o.entry.path && uri.modulePath !== o.module.path) continue;
    try {
      if (!matchModuleInfo(uri, o.module.getInfo())) continue;
      for (const slot of o.module.getSlotList(true)) {
        if (!matchSlot(uri, o.module.getSlotInfo(slot), slot)) continue;
        const token = o.module.getTokenInfo(slot);
        if (matchTokenInfo(uri, token)) found.push({ open: o, slot, token });
      }
    } catch (err) {
      process.stderr.write(`p11kit: ${o.entry.name}: ${(err as Error).message}\n`);
    }
  }
  return found;
}

function tokenUri(t: TokenInfo): string {
  return formatUri({ token: t.label, manufacturer: t.manufacturerID, model: t.model, serial: t.serialNumber }, { type: 'token' });
}

/** The registry for a token command; a refused one exits 7 (its diagnostic is printed). */
function registryFor(flags: RegistryFlags): Registry {
  const registry = loadForCommand(flags);
  if (!registry) throw new CliError(EXIT.CONFIG, '');
  return registry;
}

/** Runs fn over the tokens matching the URI, with the registry's modules open. */
function withTokens(uriText: string, flags: RegistryFlags, fn: (found: FoundToken[], uri: Uri) => void | Promise<void>): Promise<void> | void {
  const uri = parseUri(uriText);
  const open = openModules(registryFor(flags), !!flags.verbose);
  if (!open) throw new CliError(EXIT.CONFIG, '');
  const close = () => closeModules(open);
  try {
    const found = tokensMatching(open, uri);
    if (!found.length) throw new CliError(EXIT.NOT_FOUND, `no token matches ${uriText}`);
    const r = fn(found, uri);
    if (r instanceof Promise) return r.finally(close);
    close();
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * Runs fn with the registry's modules behind one proxy (list-tokens, list-objects). The modules
 * are the command's registry selection, not p11-kit-proxy's: the listing stays what it was. A
 * critical module that fails ends the command (exit code 1); other failures go to stderr.
 */
async function withProxy(uriText: string, flags: RegistryFlags, fn: (proxy: ProxyModule, uri: Uri) => void | Promise<void>): Promise<void> {
  const uri = parseUri(uriText);
  const registry = registryFor(flags);
  let proxy: ProxyModule;
  try {
    // Every module of the command's selection, remote ones included (reached over RPC).
    proxy = await openProxyAsync({ modules: registry.modules, registry: registryOptions(flags) });
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    throw new CliError(EXIT.CONFIG, `${err.module}: module failed to initialize: ${(err.cause as Error | undefined)?.message ?? err.message}`);
  }
  for (const f of proxy.failures) if (flags.verbose) process.stderr.write(`p11-kit: ${f.module}: module failed to initialize: ${f.error.message}\n`);
  proxy.on('failure', (f) => process.stderr.write(`p11kit: ${f.module}: ${f.error.message}\n`));
  try {
    await fn(proxy, uri);
  } finally {
    await proxy.async.release();
  }
}

function listTokens(uriText: string | undefined, flags: RegistryFlags & { onlyUris?: boolean }): Promise<void> | void {
  return withProxy(uriText ?? 'pkcs11:', flags, async (proxy, uri) => {
    const found = await proxy.async.findTokens(uri);
    // Listing everything may find nothing; a URI that matches nothing is an answer of its own.
    if (!found.length && uriText !== undefined && uriText !== 'pkcs11:') throw new CliError(EXIT.NOT_FOUND, `no token matches ${uriText}`);
    if (flags.json) {
      const tokens = found.map(({ module, moduleSlot, token }) => ({ module, slot: moduleSlot, ...tokenJson(token) }));
      process.stdout.write(`${JSON.stringify({ tokens })}\n`);
      return;
    }
    const out: string[] = [];
    for (const { module, moduleSlot, token } of found) {
      if (flags.onlyUris) {
        out.push(tokenUri(token));
        continue;
      }
      out.push(`token: ${escapeForTerminal(token.label)}`, `    uri: ${tokenUri(token)}`, `    module: ${escapeForTerminal(module)}`, `    slot: ${moduleSlot}`);
      out.push(...tokenLines(token).slice(1).map((l) => l.slice(4)));
    }
    process.stdout.write(out.length ? `${out.join('\n')}\n` : '');
  });
}

function mechanismName(type: number): string {
  return nameOf(CKM, type) ?? `0x${type.toString(16).padStart(8, '0')}`;
}

function listMechanisms(uriText: string, flags: RegistryFlags): Promise<void> | void {
  return withTokens(uriText, flags, (found) => {
    if (flags.json) {
      const tokens = found.map(({ open, slot, token }) => ({
        uri: tokenUri(token),
        module: open.entry.name,
        mechanisms: open.module.getMechanismList(slot).map((type) => {
          const info = open.module.getMechanismInfo(slot, type);
          return { name: mechanismName(type), type, minKeySize: info.minKeySize, maxKeySize: info.maxKeySize, flags: flagNames(CKF_MECHANISM, info.flags) };
        }),
      }));
      process.stdout.write(`${JSON.stringify({ tokens })}\n`);
      return;
    }
    const out: string[] = [];
    for (const { open, slot, token } of found) {
      out.push(tokenUri(token));
      for (const type of open.module.getMechanismList(slot)) {
        const info = open.module.getMechanismInfo(slot, type);
        const uses = flagNames(CKF_MECHANISM, info.flags).map((f) => f.replace(/^CKF_/, '').toLowerCase().replace(/_/g, '-'));
        const sizes = info.minKeySize || info.maxKeySize ? ` key-size=${info.minKeySize}-${info.maxKeySize}` : '';
        out.push(`    ${mechanismName(type)}:${sizes} ${uses.join(',')}`.trimEnd());
      }
    }
    process.stdout.write(out.length ? `${out.join('\n')}\n` : '');
  });
}

interface ObjectFlags extends RegistryFlags, PinFlags {}

const CLASS_NAMES: Record<number, [UriObjectType | undefined, string]> = {
  [CKO.CKO_DATA]: ['data', 'data'],
  [CKO.CKO_CERTIFICATE]: ['cert', 'certificate'],
  [CKO.CKO_PUBLIC_KEY]: ['public', 'public-key'],
  [CKO.CKO_PRIVATE_KEY]: ['private', 'private-key'],
  [CKO.CKO_SECRET_KEY]: ['secret-key', 'secret-key'],
};

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

interface ObjectSummary {
  handle: number;
  uri: string;
  class: string;
  label?: string;
  id?: string;
  keyType?: string;
}

function objectSummary(token: TokenInfo, handle: number, attrs: AttributeResult[]): ObjectSummary {
  const [cls, label, id, keyType] = attrs.map((a) => a.value);
  const klass = typeof cls === 'number' ? CLASS_NAMES[cls] : undefined;
  const uri = formatUri(
    {
      token: token.label,
      manufacturer: token.manufacturerID,
      model: token.model,
      serial: token.serialNumber,
      ...(typeof label === 'string' ? { object: label } : {}),
      ...(id instanceof Uint8Array ? { id } : {}),
      ...(klass?.[0] ? { type: klass[0] } : {}),
    },
    { type: 'object-on-token' },
  );
  return {
    handle,
    uri,
    class: klass?.[1] ?? (typeof cls === 'number' ? nameOf(CKO, cls) ?? String(cls) : 'unknown'),
    ...(typeof label === 'string' ? { label } : {}),
    ...(id instanceof Uint8Array && id.length ? { id: hex(id) } : {}),
    ...(typeof keyType === 'number' ? { keyType: (nameOf(CKK, keyType) ?? `0x${keyType.toString(16)}`).replace(/^CKK_/, '').toLowerCase() } : {}),
  };
}

function objectLines(o: ObjectSummary): string[] {
  const lines = [`Object: #${o.handle}`, `    uri: ${o.uri}`, `    class: ${o.class}`];
  if (o.label !== undefined) lines.push(`    label: ${escapeForTerminal(o.label)}`);
  if (o.id !== undefined) lines.push(`    id: ${o.id}`);
  if (o.keyType !== undefined) lines.push(`    key-type: ${o.keyType}`);
  return lines;
}

function listObjects(uriText: string, flags: ObjectFlags): Promise<void> | void {
  return withProxy(uriText, flags, async (proxy, uri) => {
    const tokens = await proxy.async.findTokens(uri);
    if (!tokens.length) throw new CliError(EXIT.NOT_FOUND, `no token matches ${uriText}`);
    let loggedIn = false;
    const objects = await proxy.findObjects(uri, {
      pin: async (t: ProxyToken) => {
        const pin = await pinFor(flags, uri, t.token.label);
        loggedIn ||= pin !== undefined;
        return pin;
      },
      attributes: [CKA.CKA_CLASS, CKA.CKA_LABEL, CKA.CKA_ID, CKA.CKA_KEY_TYPE],
    });
    const summaries = objects.map((o) => objectSummary(o.token, o.handle, o.attributes));
    const needsLogin = !loggedIn && tokens.some((t) => t.token.flags & CKF_TOKEN.CKF_LOGIN_REQUIRED);
    if (!summaries.length) {
      if (needsLogin) hint('private objects are listed only after login (--login, --pin-source FILE, or pin-source in the URI)');
      const names = uri.object !== undefined || uri.id !== undefined || uri.type !== undefined;
      if (names) throw new CliError(EXIT.NOT_FOUND, `no object matches ${uriText}`);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ objects: summaries })}\n`);
      return;
    }
    const out = summaries.flatMap(objectLines);
    process.stdout.write(out.length ? `${out.join('\n')}\n` : '');
  });
}

export function registerTokenCommands(program: Command): void {
  withRegistryOptions(
    program
      .command('list-tokens')
      .argument('[uri]', 'PKCS#11 URI the tokens must match (default: all)')
      .option('--only-uris', 'print only the token URIs')
      .description('list the tokens of the configured modules'),
  ).action(cliAction(async (uri?: string, flags: RegistryFlags & { onlyUris?: boolean } = {}) => listTokens(uri, flags)));
  withRegistryOptions(
    program.command('list-mechanisms').argument('<token-uri>', 'PKCS#11 URI of the token(s)').description('list the mechanisms of the matching tokens'),
  ).action(cliAction(async (uri: string, flags: RegistryFlags) => listMechanisms(uri, flags)));
  withPinOptions(withRegistryOptions(
    program
      .command('list-objects')
      .argument('<uri>', 'PKCS#11 URI of the token(s) and, optionally, the objects')
      .description('list the objects on the matching tokens (private ones after login)'),
  )).action(cliAction(async (uri: string, flags: ObjectFlags) => listObjects(uri, flags)));
}
