// p11kit uri parse | format | normalize: PKCS#11 URIs from the command line. A bad URI or bad
// JSON fields are usage errors (exit 2). --json is an output flag, as everywhere. A pin-value
// is never printed unless --show-pin asks for it.
import { readStreamBounded } from '../registry/bounded-read.js';
import type { Command } from 'commander';
import { cliAction, CliError, EXIT } from './exit-codes.js';
import { formatUri, normalizeUri, parseUri, uriFromJson, uriToJson, type Uri, type UriFields } from '../uri/index.js';

interface TypeFlags {
  type?: string;
}
interface ParseFlags extends TypeFlags {
  json?: boolean;
  showPin?: boolean;
}
interface FormatFlags extends TypeFlags {
  json?: boolean;
  lowercase?: boolean;
}

const TYPE_HELP = 'URI type: any, object, token, slot, module, module-with-version, object-on-token, object-on-token-and-module, or bits';

function uriType(flags: TypeFlags): string | number | undefined {
  return flags.type !== undefined && /^(0x[0-9a-f]+|[0-9]+)$/i.test(flags.type) ? Number(flags.type) : flags.type;
}

/** Values may hold control characters or stray spaces: quote those so the line shows them. */
function shown(value: string): string {
  return /^[\x21-\x7e\u00a0-\uffff]([\x20-\x7e\u00a0-\uffff]*[\x21-\x7e\u00a0-\uffff])?$/.test(value) ? value : JSON.stringify(value);
}

function describeUri(uri: Uri, showPin: boolean): string[] {
  const lines: string[] = [];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`${name}: ${shown(value)}`);
  };
  add('library-description', uri.libraryDescription);
  add('library-manufacturer', uri.libraryManufacturer);
  if (uri.libraryVersion) add('library-version', `${uri.libraryVersion.major}.${uri.libraryVersion.minor}`);
  add('slot-description', uri.slotDescription);
  add('slot-manufacturer', uri.slotManufacturer);
  if (uri.slotId !== undefined) add('slot-id', String(uri.slotId));
  add('model', uri.model);
  add('manufacturer', uri.manufacturer);
  add('serial', uri.serial);
  add('token', uri.token);
  if (uri.id) add('id', Buffer.from(uri.id).toString('hex').replace(/(..)(?=.)/g, '$1:') || '(empty)');
  add('object', uri.object);
  add('type', uri.type);
  add('pin-source', uri.pinSource);
  if (uri.pinValue !== undefined) lines.push(`pin-value: ${showPin ? shown(uri.pinValue) : '(hidden; --show-pin prints it)'}`);
  add('module-name', uri.moduleName);
  add('module-path', uri.modulePath);
  for (const q of uri.vendor) add(`query ${q.name}`, q.value);
  for (const i of uri.ignored) lines.push(`ignored: ${shown(i.name)} (${i.reason})`);
  if (uri.unrecognized) lines.push('unrecognized: yes (p11-kit matches nothing with this URI)');
  const visible: UriFields = showPin ? uri : { ...uri, pinValue: undefined };
  lines.push(`uri: ${formatUri(visible)}`);
  return lines;
}

function parseCommand(text: string, flags: ParseFlags): void {
  const uri = parseUri(text, { type: uriType(flags) });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(uriToJson(uri, { includePinValue: !!flags.showPin }))}\n`);
    if (uri.pinValue !== undefined && !flags.showPin) process.stderr.write('p11kit: pin-value left out; --show-pin includes it\n');
    return;
  }
  process.stdout.write(`${describeUri(uri, !!flags.showPin).join('\n')}\n`);
}

function formatCommand(fields: string, flags: FormatFlags): void {
  const source = fields === '-' ? readStreamBounded(0, 1024 * 1024, 'stdin').toString('utf8') : fields;
  let json: unknown;
  try {
    json = JSON.parse(source);
  } catch (e) {
    throw new CliError(EXIT.USAGE, `the fields are not valid JSON (${(e as Error).message})`);
  }
  let uri: UriFields;
  try {
    uri = uriFromJson(json);
  } catch (e) {
    throw new CliError(EXIT.USAGE, (e as Error).message);
  }
  const out = formatUri(uri, { type: uriType(flags), lowercase: flags.lowercase });
  process.stdout.write(flags.json ? `${JSON.stringify({ uri: out })}\n` : `${out}\n`);
}

function normalizeCommand(text: string, flags: TypeFlags & { lowercase?: boolean; json?: boolean }): void {
  const out = normalizeUri(text, { type: uriType(flags), lowercase: flags.lowercase });
  process.stdout.write(flags.json ? `${JSON.stringify({ uri: out })}\n` : `${out}\n`);
}

export function registerUriCommands(program: Command): void {
  const uri = program.command('uri').description('parse, format and normalize PKCS#11 URIs (RFC 7512) as p11-kit does');
  uri
    .command('parse <uri>')
    .description('show the attributes of a PKCS#11 URI')
    .option('--json', 'print the fields as JSON (id as hex, slotId as a decimal string)')
    .option('--type <type>', TYPE_HELP)
    .option('--show-pin', 'include pin-value in the output')
    .action(cliAction(async (text: string, flags: ParseFlags) => parseCommand(text, flags)));
  uri
    .command('format')
    .description('build a PKCS#11 URI from fields, e.g. \'{"token":"My Token","id":"01ab"}\'')
    .argument('<fields>', "the fields as JSON, in the form 'uri parse --json' prints ('-' reads stdin)")
    .option('--json', 'print {"uri": …}')
    .option('--type <type>', TYPE_HELP)
    .option('--lowercase', 'lower-case hex in escapes (default: P11_KIT_URI_LOWERCASE)')
    .action(cliAction(async (fields: string, flags: FormatFlags) => formatCommand(fields, flags)));
  uri
    .command('normalize <uri>')
    .description("print a URI in p11-kit's canonical form (parse, then format)")
    .option('--type <type>', TYPE_HELP)
    .option('--lowercase', 'lower-case hex in escapes (default: P11_KIT_URI_LOWERCASE)')
    .option('--json', 'print {"uri": …}')
    .action(cliAction(async (text: string, flags: TypeFlags & { lowercase?: boolean; json?: boolean }) => normalizeCommand(text, flags)));
}
