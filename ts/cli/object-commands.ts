// import-object, export-object, delete-object, list-profiles, add-profile, delete-profile:
// p11-kit 0.25's commands over the library's calls (ts/objects), on the command's registry
// selection (or one --provider module) behind the proxy. Exit codes: exit-codes.ts.
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import { addProfile, deleteObject, deleteProfile, exportObject, importObject, isNamedProfile, listProfiles, MAX_INPUT, ObjectsError, type PinOption, type SecretKind } from '../objects/index.js';
import { openProxyAsync, ProxyError, type ProxyModule } from '../proxy/index.js';
import { formatUri, parseUri } from '../uri/index.js';
import { cliAction, CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { pinFor, withPinOptions, type PinFlags } from './pin.js';
import { loadForCommand, registryOptions, withRegistryOptions, type RegistryFlags } from './registry-options.js';
import { providerEntry } from './server-command.js';

interface ObjectFlags extends RegistryFlags, PinFlags {
  provider?: string;
}
interface ImportFlags extends ObjectFlags {
  file: string;
  label?: string;
  id?: string;
  secret?: string | boolean;
}
interface ProfileFlags extends ObjectFlags {
  profile: string;
}

const print = (line: string) => process.stdout.write(`${line}\n`);
const json = (value: unknown) => print(JSON.stringify(value));

const CODES: Record<ObjectsError['code'], (typeof EXIT)[keyof typeof EXIT]> = { NOT_FOUND: EXIT.NOT_FOUND, AMBIGUOUS: EXIT.NOT_FOUND, BAD_INPUT: EXIT.USAGE, UNSUPPORTED: EXIT.TOKEN };

/** The command's modules behind one proxy; ObjectsError becomes its exit code. */
async function withProxy<T>(flags: ObjectFlags, fn: (proxy: ProxyModule) => Promise<T>): Promise<T> {
  let modules;
  if (flags.provider) {
    modules = [providerEntry(flags.provider)];
  } else {
    const registry = loadForCommand(flags);
    if (!registry) throw new CliError(EXIT.CONFIG, '');
    modules = registry.modules;
  }
  let proxy: ProxyModule;
  try {
    proxy = await openProxyAsync({ modules, registry: registryOptions(flags) });
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    throw new CliError(EXIT.CONFIG, `${err.module}: module failed to initialize: ${(err.cause as Error | undefined)?.message ?? err.message}`);
  }
  for (const f of proxy.failures) if (flags.verbose) process.stderr.write(`p11kit: ${f.module}: module failed to initialize: ${f.error.message}\n`);
  try {
    return await fn(proxy);
  } catch (err) {
    if (err instanceof ObjectsError) throw new CliError(CODES[err.code], err.message);
    throw err;
  } finally {
    await proxy.async.release();
  }
}

/** The PIN per token, from the options, the URI, or a prompt with --login. */
function pinOption(flags: PinFlags, uriText: string): PinOption {
  const uri = parseUri(uriText);
  return (token) => pinFor(flags, uri, token.token.label);
}

async function readInput(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CliError(EXIT.IO, `${path}: not a regular file`);
    if (st.size > MAX_INPUT) throw new CliError(EXIT.USAGE, `${path}: larger than ${MAX_INPUT} bytes`);
    return new Uint8Array(await fh.readFile());
  } finally {
    await fh.close();
  }
}

function parseId(hex: string | undefined): Uint8Array | undefined {
  if (hex === undefined) return undefined;
  const clean = hex.replace(/:/g, '');
  if (!clean.length || clean.length % 2 || !/^[0-9a-f]+$/i.test(clean)) throw new CliError(EXIT.USAGE, `--id: '${hex}' is not hex`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

function secretKind(v: string | boolean | undefined): SecretKind | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true || v === 'generic') return 'generic';
  if (v === 'aes') return 'aes';
  throw new CliError(EXIT.USAGE, `--secret: '${v}' is not generic or aes`);
}

async function importCommand(tokenUri: string, flags: ImportFlags): Promise<void> {
  const id = parseId(flags.id);
  const secret = secretKind(flags.secret);
  const data = await readInput(flags.file);
  await withProxy(flags, async (proxy) => {
    const made = await importObject(proxy, tokenUri, data, { label: flags.label, id, secret, pin: pinOption(flags, tokenUri) });
    if (flags.json) json(made);
    else for (const m of made) print(m.uri);
  });
}

async function exportCommand(objectUri: string, flags: ObjectFlags): Promise<void> {
  await withProxy(flags, async (proxy) => {
    const out = await exportObject(proxy, objectUri, { pin: pinOption(flags, objectUri) });
    if (flags.json) json(out);
    else process.stdout.write(out.pem);
  });
}

async function deleteCommand(objectUri: string, flags: ObjectFlags): Promise<void> {
  await withProxy(flags, async (proxy) => {
    const gone = await deleteObject(proxy, objectUri, { pin: pinOption(flags, objectUri) });
    if (flags.json) json({ deleted: gone.uri, token: gone.token });
  });
}

async function listProfilesCommand(tokenUri: string, flags: ObjectFlags): Promise<void> {
  await withProxy(flags, async (proxy) => {
    const found = await listProfiles(proxy, tokenUri, { pin: pinOption(flags, tokenUri) });
    // As list-tokens: listing everything may find nothing; a URI that matches nothing is an answer of its own.
    if (!found.length && tokenUri !== 'pkcs11:') throw new CliError(EXIT.NOT_FOUND, `no token matches ${formatUri({ ...parseUri(tokenUri), pinValue: undefined })}`);
    if (flags.json) json(found);
    else for (const t of found) for (const p of t.profiles) print(isNamedProfile(p.id) ? p.name : `${p.name} (unknown)`);
  });
}

async function addProfileCommand(tokenUri: string, flags: ProfileFlags): Promise<void> {
  await withProxy(flags, async (proxy) => {
    const added = await addProfile(proxy, tokenUri, flags.profile, { pin: pinOption(flags, tokenUri) });
    if (flags.json) json({ profile: flags.profile, addedTo: added });
  });
}

async function deleteProfileCommand(tokenUri: string, flags: ProfileFlags): Promise<void> {
  await withProxy(flags, async (proxy) => {
    const n = await deleteProfile(proxy, tokenUri, flags.profile, { pin: pinOption(flags, tokenUri) });
    if (flags.json) json({ profile: flags.profile, deleted: n });
  });
}

function objectCommand(program: Command, name: string): Command {
  return withPinOptions(withRegistryOptions(program.command(name)))
    .option('--provider <module>', 'use this module (a shared object path) instead of the configured ones')
    .addHelpText('after', EXIT_CODES_HELP);
}

export function registerObjectCommands(program: Command): void {
  objectCommand(program, 'import-object')
    .description('import certificates and public keys (PEM or DER), or a secret key, into a token; prints the objects\' URIs')
    .argument('<token-uri>', 'PKCS#11 URI of the token (exactly one writable token must match)')
    .requiredOption('--file <file>', 'the object data: PEM (CERTIFICATE, PUBLIC KEY blocks) or DER; with --secret, the key bytes')
    .option('--label <label>', 'CKA_LABEL of the imported objects')
    .option('--id <hex>', 'CKA_ID of the imported objects')
    .option('--secret [type]', 'the file holds a secret key: generic (default) or aes')
    .action(cliAction(importCommand));
  objectCommand(program, 'export-object')
    .description('print the certificate or public key a URI names as PEM')
    .argument('<object-uri>', 'PKCS#11 URI of the object (exactly one must match)')
    .action(cliAction(exportCommand));
  objectCommand(program, 'delete-object')
    .description('destroy the object a URI names')
    .argument('<object-uri>', 'PKCS#11 URI of the object (exactly one must match)')
    .action(cliAction(deleteCommand));
  objectCommand(program, 'list-profiles')
    .description('list the PKCS#11 profiles (CKO_PROFILE objects) of the tokens a URI selects')
    .argument('[token-uri]', 'PKCS#11 URI of the tokens', 'pkcs11:')
    .action(cliAction(listProfilesCommand));
  objectCommand(program, 'add-profile')
    .description('add a profile object to the writable tokens a URI selects (those without it)')
    .argument('<token-uri>', 'PKCS#11 URI of the tokens')
    .requiredOption('--profile <profile>', 'baseline-provider, extended-provider, authentication-token, public-certificates-token, complete-provider, hkdf-tls-token, vendor-defined, or a number')
    .action(cliAction(addProfileCommand));
  objectCommand(program, 'delete-profile')
    .description('remove a profile\'s objects from the writable tokens a URI selects')
    .argument('<token-uri>', 'PKCS#11 URI of the tokens')
    .requiredOption('--profile <profile>', 'as for add-profile')
    .action(cliAction(deleteProfileCommand));
}
