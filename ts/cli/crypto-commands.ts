// generate-keypair, sign and verify: keys on tokens found by PKCS#11 URI through the proxy
// (over the command's registry selection, as list-tokens sees it). Exit codes: exit-codes.ts.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { readBounded } from '../registry/bounded-read.js';
import type { Command } from 'commander';
import { CKA, CKK, CKM, CKR, CKU, CKF_TOKEN, type Attribute, type AttributeResult, type ObjectHandle, type TokenInfo } from '../bridge/index.js';
import { openProxy, objectTemplate, ProxyError, type ProxyModule, type ProxySession, type ProxyToken } from '../proxy/index.js';
import { formatUri, parseUri, type Uri, type UriObjectType } from '../uri/index.js';
import { loadForCommand, registryOptions, withRegistryOptions, type RegistryFlags } from './registry-options.js';
import { pinFor, pinGiven, withPinOptions, type PinFlags } from './pin.js';
import { cliAction, CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { withProgress } from './progress.js';
import { writeOutputFile } from './output-file.js';
import { curveNamed, publicKeyPem, type Curve } from './public-key.js';
import { describeScheme, hostInput, HASH_HELP, MECHANISM_HELP, mechanismOf, schemeFor, type SignScheme } from './sign-schemes.js';

type KeyFlags = RegistryFlags & PinFlags;
interface KeygenFlags extends KeyFlags {
  type: string;
  curve?: string;
  bits?: string;
  label: string;
  id?: string;
}
interface DataFlags extends KeyFlags {
  in?: string;
  mechanism?: string;
  hash?: string;
}
interface SignFlags extends DataFlags {
  out?: string;
  format?: string;
}
interface VerifyFlags extends DataFlags {
  signature: string;
}

const print = (line: string) => process.stdout.write(`${line}\n`);
const json = (value: unknown) => print(JSON.stringify(value));
const colonHex = (b: Uint8Array) => Buffer.from(b).toString('hex').replace(/(..)(?=.)/g, '$1:');

// ---- the proxy, tokens and keys ------------------------------------------------------------

/** The registry's local modules behind one proxy for the command's duration. */
async function withProxy<T>(flags: KeyFlags, fn: (proxy: ProxyModule) => Promise<T>): Promise<T> {
  const registry = loadForCommand(flags);
  if (!registry) throw new CliError(EXIT.CONFIG, ''); // the diagnostic is printed
  let proxy: ProxyModule;
  try {
    proxy = openProxy({ modules: registry.modules.filter((e) => e.settings.remote === undefined), registry: registryOptions(flags) });
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    throw new CliError(EXIT.CONFIG, `${err.module}: module failed to initialize: ${(err.cause as Error | undefined)?.message ?? err.message}`);
  }
  for (const f of proxy.failures) if (flags.verbose) process.stderr.write(`p11kit: ${f.module}: module failed to initialize: ${f.error.message}\n`);
  proxy.on('failure', (f) => process.stderr.write(`p11kit: ${f.module}: ${f.error.message}\n`));
  try {
    return await fn(proxy);
  } finally {
    proxy.release();
  }
}

/** The URI as the user may see it again: without a pin-value. */
function shown(uri: Uri): string {
  return formatUri({ ...uri, pinValue: undefined });
}

function tokenUri(t: TokenInfo): string {
  return formatUri({ token: t.label, manufacturer: t.manufacturerID, model: t.model, serial: t.serialNumber }, { type: 'token' });
}

function objectUri(t: TokenInfo, label: string | undefined, id: Uint8Array | undefined, type: UriObjectType): string {
  return formatUri(
    { token: t.label, manufacturer: t.manufacturerID, model: t.model, serial: t.serialNumber, object: label, ...(id?.length ? { id } : {}), type },
    { type: 'object-on-token' },
  );
}

function oneToken(proxy: ProxyModule, uri: Uri): ProxyToken {
  const tokens = proxy.findTokens(uri);
  if (tokens.length === 1) return tokens[0];
  if (!tokens.length) throw new CliError(EXIT.NOT_FOUND, `no token matches ${shown(uri)}`);
  throw new CliError(EXIT.NOT_FOUND, `${tokens.length} tokens match ${shown(uri)}; name one:\n${tokens.map((t) => `    ${tokenUri(t.token)}`).join('\n')}`);
}

/** C_Login as the user; already logged in (the token's login state is per process) is fine. */
async function login(session: ProxySession, pin: string): Promise<void> {
  try {
    await session.async.login(CKU.CKU_USER, pin);
  } catch (err) {
    if ((err as { rv?: number }).rv !== CKR.CKR_USER_ALREADY_LOGGED_IN) throw err;
  }
}

interface FoundKey {
  token: ProxyToken;
  session: ProxySession;
  handle: ObjectHandle;
  keyType: number;
  uri: string;
}

const KEY_ATTRS = [CKA.CKA_KEY_TYPE, CKA.CKA_LABEL, CKA.CKA_ID];

/**
 * The one key of this class the URI names (its type= is replaced: sign takes the private key,
 * verify the public one of the same label and id), with a session on its token, logged in when
 * a PIN is given.
 */
async function findKey(proxy: ProxyModule, uri: Uri, type: 'private' | 'public', flags: KeyFlags): Promise<FoundKey> {
  const tokens = proxy.findTokens(uri);
  if (!tokens.length) throw new CliError(EXIT.NOT_FOUND, `no token matches ${shown(uri)}`);
  const template = objectTemplate({ ...uri, type });
  const found: { token: ProxyToken; session: ProxySession; handle: ObjectHandle; attrs: AttributeResult[] }[] = [];
  for (const token of tokens) {
    const session = await proxy.async.openSession(token.slot);
    const pin = await pinFor(flags, uri, token.token.label);
    if (pin !== undefined) await login(session, pin);
    for (const handle of await session.async.findAllObjects(template)) {
      found.push({ token, session, handle, attrs: await session.async.getAttributeValue(handle, KEY_ATTRS) });
    }
  }
  const uriOf = (f: (typeof found)[number]) => {
    const [, label, id] = f.attrs.map((a) => a.value);
    return objectUri(f.token.token, typeof label === 'string' ? label : undefined, id instanceof Uint8Array ? id : undefined, type);
  };
  if (!found.length) {
    if (type === 'private' && !pinGiven(flags, uri) && !flags.login) {
      throw new CliError(EXIT.LOGIN, `no private key matches ${shown(uri)} without logging in: give the PIN with --pin-source FILE, --pin-value, pin-source in the URI, or --login`);
    }
    throw new CliError(EXIT.NOT_FOUND, `no ${type} key matches ${shown(uri)}`);
  }
  if (found.length > 1) {
    throw new CliError(EXIT.NOT_FOUND, `${found.length} ${type} keys match ${shown(uri)}; name one (id=, object=):\n${found.map((f) => `    ${uriOf(f)}`).join('\n')}`);
  }
  const [key] = found;
  const keyType = key.attrs[0].value;
  if (typeof keyType !== 'number') throw new CliError(EXIT.TOKEN, `the token does not say the key's type (CKA_KEY_TYPE) of ${uriOf(key)}`);
  return { token: key.token, session: key.session, handle: key.handle, keyType, uri: uriOf(key) };
}

// ---- generate-keypair ------------------------------------------------------------------

interface KeygenSpec {
  /** 'EC P-256', 'RSA 2048': for people. */
  what: string;
  json: { type: 'ec'; curve: string } | { type: 'rsa'; bits: number };
  mechanism: number;
  publicOnly: Attribute[];
  bits?: number;
  id?: Uint8Array;
}

function parseHexId(text: string): Uint8Array {
  const hex = text.replace(/:/g, '');
  if (!hex.length || hex.length % 2 || !/^[0-9a-f]+$/i.test(hex)) throw new CliError(EXIT.USAGE, `--id: not hex bytes: '${text}'`);
  return Buffer.from(hex, 'hex');
}

/** Everything about the options that can be wrong, found before any module is touched. */
function keygenSpec(flags: KeygenFlags): KeygenSpec {
  const id = flags.id === undefined ? undefined : parseHexId(flags.id);
  if (!flags.label) throw new CliError(EXIT.USAGE, '--label must not be empty');
  switch (flags.type.toLowerCase()) {
    case 'ec': {
      if (flags.bits !== undefined) throw new CliError(EXIT.USAGE, '--bits is for RSA keys; EC keys take --curve');
      const named = curveNamed(flags.curve ?? 'p256');
      if (!named) throw new CliError(EXIT.USAGE, `unknown curve '${flags.curve}' (p256 or p384)`);
      const [name, curve]: [string, Curve] = named;
      return {
        what: `EC ${curve.jwk}`,
        json: { type: 'ec', curve: name },
        mechanism: CKM.CKM_EC_KEY_PAIR_GEN,
        publicOnly: [{ type: CKA.CKA_EC_PARAMS, value: Buffer.from(curve.params, 'hex') }],
        id,
      };
    }
    case 'rsa': {
      if (flags.curve !== undefined) throw new CliError(EXIT.USAGE, '--curve is for EC keys; RSA keys take --bits');
      const bits = Number(flags.bits ?? 2048);
      if (!Number.isInteger(bits) || bits <= 0) throw new CliError(EXIT.USAGE, `--bits: not a key size: '${flags.bits}'`);
      return {
        what: `RSA ${bits}`,
        json: { type: 'rsa', bits },
        mechanism: CKM.CKM_RSA_PKCS_KEY_PAIR_GEN,
        publicOnly: [
          { type: CKA.CKA_MODULUS_BITS, value: bits },
          { type: CKA.CKA_PUBLIC_EXPONENT, value: Uint8Array.of(1, 0, 1) },
        ],
        bits,
        id,
      };
    }
    default:
      throw new CliError(EXIT.USAGE, `--type: ec or rsa, not '${flags.type}'`);
  }
}

/** The token must offer the mechanism, and the RSA size must be in its range. */
async function checkMechanism(proxy: ProxyModule, t: ProxyToken, spec: KeygenSpec): Promise<void> {
  const name = spec.mechanism === CKM.CKM_EC_KEY_PAIR_GEN ? 'CKM_EC_KEY_PAIR_GEN' : 'CKM_RSA_PKCS_KEY_PAIR_GEN';
  if (!(await proxy.async.getMechanismList(t.slot)).includes(spec.mechanism)) {
    throw new CliError(EXIT.TOKEN, `token "${t.token.label}" does not offer ${name}`);
  }
  if (spec.bits === undefined) return;
  const info = await proxy.async.getMechanismInfo(t.slot, spec.mechanism);
  if ((info.minKeySize && spec.bits < info.minKeySize) || (info.maxKeySize && spec.bits > info.maxKeySize)) {
    throw new CliError(EXIT.USAGE, `--bits ${spec.bits}: token "${t.token.label}" makes RSA keys of ${info.minKeySize}-${info.maxKeySize} bits`);
  }
}

/** The public value a default CKA_ID is the SHA-1 of (EC point, RSA modulus), and the key as PEM. */
async function publicSide(session: ProxySession, handle: ObjectHandle, keyType: number): Promise<{ value?: Uint8Array; pem?: string }> {
  const bytes = (a: AttributeResult) => (a.value instanceof Uint8Array ? a.value : undefined);
  if (keyType === CKK.CKK_EC) {
    const [params, point] = (await session.async.getAttributeValue(handle, [CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT])).map(bytes);
    return { value: point, pem: publicKeyPem(keyType, { ecParams: params, ecPoint: point }) };
  }
  const [modulus, exponent] = (await session.async.getAttributeValue(handle, [CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT])).map(bytes);
  return { value: modulus, pem: publicKeyPem(keyType, { modulus, publicExponent: exponent }) };
}

async function generateKeypair(tokenUriText: string, flags: KeygenFlags): Promise<void> {
  const spec = keygenSpec(flags);
  const uri = parseUri(tokenUriText);
  await withProxy(flags, async (proxy) => {
    const t = oneToken(proxy, uri);
    await checkMechanism(proxy, t, spec);
    const session = await proxy.async.openSession(t.slot, { rw: true });
    const pin = await pinFor(flags, uri, t.token.label);
    if (pin === undefined && t.token.flags & CKF_TOKEN.CKF_LOGIN_REQUIRED) {
      throw new CliError(EXIT.LOGIN, `token "${t.token.label}" needs the user PIN to create keys: --pin-source FILE, --pin-value, pin-source in the URI, or --login`);
    }
    if (pin !== undefined) await login(session, pin);
    const sameLabel = await session.async.findAllObjects([{ type: CKA.CKA_LABEL, value: flags.label }]);
    if (sameLabel.length) process.stderr.write(`p11kit: note: ${sameLabel.length} object(s) on the token already have the label "${flags.label}"; the URIs below carry the id\n`);

    const common: Attribute[] = [
      { type: CKA.CKA_TOKEN, value: true },
      { type: CKA.CKA_LABEL, value: flags.label },
      ...(spec.id ? [{ type: CKA.CKA_ID, value: spec.id }] : []),
    ];
    const publicTemplate = [...common, ...spec.publicOnly, { type: CKA.CKA_VERIFY, value: true }];
    const privateTemplate = [
      ...common,
      { type: CKA.CKA_PRIVATE, value: true },
      { type: CKA.CKA_SENSITIVE, value: true },
      { type: CKA.CKA_EXTRACTABLE, value: false },
      { type: CKA.CKA_SIGN, value: true },
    ];
    const pair = await withProgress(`generating ${spec.what} key pair on "${t.token.label}"`, () =>
      session.async.generateKeyPair(spec.mechanism, publicTemplate, privateTemplate),
    );
    const keyType = spec.json.type === 'ec' ? CKK.CKK_EC : CKK.CKK_RSA;
    const pub = await publicSide(session, pair.publicKey, keyType);
    let id = spec.id;
    if (!id && pub.value) {
      // No --id: the SHA-1 of the public value, so that the pair's URIs name it alone.
      const sha1 = createHash('sha1').update(pub.value).digest();
      try {
        for (const h of [pair.privateKey, pair.publicKey]) await session.async.setAttributeValue(h, [{ type: CKA.CKA_ID, value: sha1 }]);
        id = sha1;
      } catch (err) {
        process.stderr.write(`p11kit: note: the token kept the keys without an id (${(err as Error).message})\n`);
      }
    }
    const result = {
      token: tokenUri(t.token),
      ...spec.json,
      label: flags.label,
      id: id ? Buffer.from(id).toString('hex') : '',
      privateKey: objectUri(t.token, flags.label, id, 'private'),
      publicKey: objectUri(t.token, flags.label, id, 'public'),
      publicKeyPem: pub.pem ?? null,
    };
    if (flags.json) return json(result);
    print(`generated: ${spec.what} key pair "${flags.label}" on token "${t.token.label}"`);
    print(`private: ${result.privateKey}`);
    print(`public: ${result.publicKey}`);
    if (id) print(`id: ${colonHex(id)}`);
  });
}

// ---- sign and verify -------------------------------------------------------------------

const readsStdin = (path: string | undefined) => path === undefined || path === '-';

/** The input, opened before any module is (a missing file fails first, exit 6). */
async function openInput(path: string | undefined): Promise<{ data: AsyncIterable<Uint8Array>; close(): Promise<void> }> {
  if (!readsStdin(path)) {
    const handle = await open(path!, 'r');
    // The command may fail before reading (no such key): the file is closed either way.
    return { data: handle.createReadStream({ autoClose: false }), close: () => handle.close() };
  }
  if (process.stdin.isTTY) process.stderr.write('p11kit: reading the data from the terminal; end it with Ctrl-D\n');
  return { data: process.stdin, close: async () => undefined };
}

/** With the data on stdin, a PIN prompt would eat it. */
function refusePromptOnStdin(flags: DataFlags, uri: Uri): void {
  if (flags.login && readsStdin(flags.in) && !pinGiven(flags, uri)) {
    throw new CliError(EXIT.USAGE, '--login cannot prompt while the data comes from stdin: give --in FILE, or the PIN with --pin-source FILE');
  }
}

async function signData(key: FoundKey, scheme: SignScheme, input: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const s = key.session.async;
  if (!scheme.tokenHashes) {
    const data = await hostInput(scheme, input);
    await s.signInit(mechanismOf(scheme), key.handle);
    return s.sign(data);
  }
  await s.signInit(mechanismOf(scheme), key.handle);
  for await (const chunk of input) await s.signUpdate(chunk);
  return s.signFinal();
}

async function verifyData(key: FoundKey, scheme: SignScheme, input: AsyncIterable<Uint8Array>, signature: Uint8Array): Promise<boolean> {
  const s = key.session.async;
  if (!scheme.tokenHashes) {
    const data = await hostInput(scheme, input);
    await s.verifyInit(mechanismOf(scheme), key.handle);
    return s.verify(data, signature);
  }
  await s.verifyInit(mechanismOf(scheme), key.handle);
  for await (const chunk of input) await s.verifyUpdate(chunk);
  return s.verifyFinal(signature);
}

type Encoding = 'hex' | 'base64' | 'raw';

function encodingOf(flags: SignFlags): Encoding {
  const f = (flags.format ?? (flags.out ? 'raw' : 'hex')).toLowerCase();
  if (f !== 'hex' && f !== 'base64' && f !== 'raw') throw new CliError(EXIT.USAGE, `--format: hex, base64 or raw, not '${flags.format}'`);
  return f;
}

function encoded(sig: Uint8Array, e: Encoding): Uint8Array {
  return e === 'raw' ? sig : Buffer.from(`${Buffer.from(sig).toString(e)}\n`);
}

async function sign(keyUri: string, flags: SignFlags): Promise<void> {
  const encoding = encodingOf(flags);
  const uri = parseUri(keyUri);
  refusePromptOnStdin(flags, uri);
  const input = await openInput(flags.in);
  await withProxy(flags, async (proxy) => {
    const key = await findKey(proxy, uri, 'private', flags);
    const scheme = schemeFor(flags.mechanism, flags.hash, key.keyType);
    const signature = await signData(key, scheme, input.data);
    if (flags.out) writeOutputFile(flags.out, encoded(signature, encoding));
    if (flags.json) {
      const text = Buffer.from(signature).toString(encoding === 'base64' ? 'base64' : 'hex');
      return json({ key: key.uri, ...describeScheme(scheme), signature: text, encoding: encoding === 'base64' ? 'base64' : 'hex', ...(flags.out ? { out: flags.out } : {}) });
    }
    if (!flags.out) process.stdout.write(encoded(signature, encoding));
  }).finally(() => input.close());
}

/** A signature file's bytes: hex or base64 text (what sign writes with --format), else raw. */
function decodeSignatureText(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1').replace(/\s+/g, '');
  const hex = text.replace(/:/g, '');
  if (hex.length && hex.length % 2 === 0 && /^[0-9a-f]+$/i.test(hex)) return Buffer.from(hex, 'hex');
  if (text.length && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text)) return Buffer.from(text, 'base64');
  return bytes;
}

/** Far above any signature (RSA-16384 in base64 is under 3 KiB): a bound, not a format check. */
const MAX_SIGNATURE_FILE = 1024 * 1024;

/** --signature: a file (raw, hex or base64), or the signature as hex. */
function readSignature(arg: string): Uint8Array {
  let isFile = false;
  try {
    isFile = statSync(arg).isFile();
  } catch {
    // not a file: hex, below
  }
  if (isFile) return decodeSignatureText(readBounded(arg, MAX_SIGNATURE_FILE).bytes);
  const hex = arg.replace(/[:\s]/g, '');
  if (hex.length && hex.length % 2 === 0 && /^[0-9a-f]+$/i.test(hex)) return Buffer.from(hex, 'hex');
  throw new CliError(EXIT.USAGE, `--signature: neither a file nor hex: '${arg.length > 40 ? `${arg.slice(0, 40)}…` : arg}'`);
}

async function verify(keyUri: string, flags: VerifyFlags): Promise<void> {
  const signature = readSignature(flags.signature);
  const uri = parseUri(keyUri);
  refusePromptOnStdin(flags, uri);
  const input = await openInput(flags.in);
  await withProxy(flags, async (proxy) => {
    const key = await findKey(proxy, uri, 'public', flags);
    const scheme = schemeFor(flags.mechanism, flags.hash, key.keyType);
    const valid = await verifyData(key, scheme, input.data, signature);
    if (flags.json) json({ valid, key: key.uri, ...describeScheme(scheme) });
    else print(valid ? 'signature: valid' : 'signature: NOT valid');
    if (!valid) process.exitCode = EXIT.INVALID;
  }).finally(() => input.close());
}

// ---- registration ----------------------------------------------------------------------

function keyCommand(program: Command, name: string): Command {
  return withPinOptions(withRegistryOptions(program.command(name))).addHelpText('after', EXIT_CODES_HELP);
}

export function registerCryptoCommands(program: Command): void {
  keyCommand(program, 'generate-keypair')
    .description('generate a key pair on a token (logs in) and print the keys\' URIs')
    .argument('<token-uri>', 'PKCS#11 URI of the token (exactly one must match)')
    .requiredOption('--type <type>', 'ec or rsa')
    .option('--curve <curve>', 'EC curve: p256 (default) or p384')
    .option('--bits <bits>', 'RSA modulus size (default 2048)')
    .requiredOption('--label <label>', 'CKA_LABEL of both keys')
    .option('--id <hex>', 'CKA_ID of both keys (default: SHA-1 of the EC point or RSA modulus)')
    .action(cliAction(generateKeypair));
  keyCommand(program, 'sign')
    .description('sign data with the private key a URI names')
    .argument('<key-uri>', 'PKCS#11 URI of the key (type= is taken as private)')
    .option('--in <file>', 'the data (default, or -: stdin)')
    .option('--mechanism <name>', MECHANISM_HELP)
    .option('--hash <name>', HASH_HELP)
    .option('--out <file>', 'write the signature here (default stdout)')
    .option('--format <format>', 'hex (default on stdout), base64 or raw (default with --out); ECDSA signatures are r||s as PKCS#11 gives them')
    .action(cliAction(sign));
  keyCommand(program, 'verify')
    .description('verify a signature with the public key a URI names (exit 0 valid, 1 not valid)')
    .argument('<key-uri>', 'PKCS#11 URI of the key (type= is taken as public)')
    .requiredOption('--signature <file|hex>', 'the signature: a file (raw, hex or base64) or hex')
    .option('--in <file>', 'the data (default, or -: stdin)')
    .option('--mechanism <name>', MECHANISM_HELP)
    .option('--hash <name>', HASH_HELP)
    .action(cliAction(verify));
}
