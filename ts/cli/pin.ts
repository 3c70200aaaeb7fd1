// PINs for every command that logs in: --pin-value, --pin-source (a private file), the URI's
// pin-value / pin-source (RFC 7512), or a prompt that does not echo. A PIN is never printed,
// never part of an error message, and hidden from the process title and /proc/PID/cmdline as
// soon as the command starts (the kernel shows the command line until then: prefer a source).
import { statSync } from 'node:fs';
import { readBounded } from '../registry/bounded-read.js';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { Uri } from '../uri/index.js';

export interface PinFlags {
  pinValue?: string;
  pinSource?: string;
  login?: boolean;
}

/** A PIN could not be had: a refused or unreadable source, a cancelled prompt. Never holds the PIN. */
export class PinError extends Error {
  override readonly name = 'PinError';
}

/** The largest PIN file we read. */
const MAX_PIN_FILE = 4096;

/** Adds the PIN options, and hides the command line once the command runs. */
export function withPinOptions(cmd: Command): Command {
  return cmd
    .option('--pin-value <pin>', 'log in with this user PIN. Other local users can read it in the process list until Node has started (the p11kit executable hides it before loading anything else): prefer --pin-source FILE, or --login to be prompted')
    .option('--pin-source <file>', 'log in with the user PIN read from this file (must not be accessible to others)')
    .option('--login', 'log in, prompting for the PIN (not echoed) when none is given')
    .hook('preAction', hideCommandLine);
}

/**
 * Overwrites the process title, which on Linux is the argv memory /proc/PID/cmdline shows:
 * a PIN given with --pin-value or in a URI stops being readable there.
 */
export function hideCommandLine(): void {
  process.title = 'p11kit';
}

/**
 * Reads a PIN source (`file:...` or a path), refusing surprises: it must be a regular file owned
 * by the running user that no group member or other user may read or write (mode & 0o077), of
 * at most 4 KiB. Errors name the file and the reason, never the PIN. One trailing newline is
 * dropped.
 */
export function readPinSource(source: string): string {
  const path = source.startsWith('file:') ? source.slice(5).replace(/^\/\/(?=\/)/, '') : source;
  const refuse = (why: string) => new PinError(`refusing pin source ${path}: ${why}`);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw refuse((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  if (!st.isFile()) throw refuse('not a regular file');
  if (process.getuid && st.uid !== process.getuid()) throw refuse('not owned by the running user');
  if (st.mode & 0o077) throw refuse(`group or others may access it (mode ${(st.mode & 0o777).toString(8)})`);
  if (st.size > MAX_PIN_FILE) throw refuse(`larger than ${MAX_PIN_FILE} bytes`);
  // Read through a bound: the file may have been swapped (FIFO, bigger file) since the checks.
  let read;
  try {
    read = readBounded(path, MAX_PIN_FILE);
  } catch (err) {
    throw refuse((err as NodeJS.ErrnoException).code === 'EFBIG' ? `larger than ${MAX_PIN_FILE} bytes` : (err as Error).message);
  }
  if (!read.regular) throw refuse('not a regular file');
  return read.bytes.toString('utf8').replace(/\r?\n$/, '');
}

/** Reads one line from a terminal in raw mode, echoing nothing; Ctrl-C or Ctrl-D on an empty line cancel. */
function readHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  // Echo off before the prompt shows: a PIN typed as soon as it appears is not echoed either.
  input.setRawMode(true);
  input.resume();
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let pin = '';
    const finish = () => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(pin);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && pin === '')) {
          finish();
          reject(new PinError('PIN entry cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') pin = [...pin].slice(0, -1).join('');
        else if (ch >= ' ') pin += ch;
      }
    };
    input.on('data', onData);
  });
}

/** Asks for the PIN: without echo on a terminal, else the first line of stdin. */
export async function promptPin(label: string): Promise<string> {
  const prompt = `PIN for ${label}: `;
  if (process.stdin.isTTY) return readHidden(prompt);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  try {
    return await new Promise((resolve, reject) => {
      rl.once('close', () => reject(new PinError('no PIN on stdin')));
      rl.question(prompt, resolve);
    });
  } finally {
    rl.close();
  }
}

/** The PIN for a token: the options first, then the URI's, then a prompt with --login; else none. */
export async function pinFor(flags: PinFlags, uri: Uri, tokenLabel: string): Promise<string | undefined> {
  if (flags.pinValue !== undefined) return flags.pinValue;
  if (flags.pinSource !== undefined) return readPinSource(flags.pinSource);
  if (uri.pinValue !== undefined) return uri.pinValue;
  if (uri.pinSource !== undefined) return readPinSource(uri.pinSource);
  if (flags.login) return promptPin(tokenLabel);
  return undefined;
}

/** Whether some PIN will be had without asking (a prompt is then the only other way). */
export function pinGiven(flags: PinFlags, uri: Uri): boolean {
  return flags.pinValue !== undefined || flags.pinSource !== undefined || uri.pinValue !== undefined || uri.pinSource !== undefined;
}
