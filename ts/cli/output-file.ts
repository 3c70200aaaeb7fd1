// Files the CLI writes (--trace-file, sign --out) in places other users may share (/tmp):
// never through a symlink, never into a FIFO or device, never into a file someone else made or
// that has other names (a hard link to a file of ours elsewhere). A new file is created with
// `mode`; an existing one is reused only if it is a regular file of ours with one link.
import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, lstatSync, openSync, writeSync, type Stats } from 'node:fs';
import { CliError, EXIT } from './exit-codes.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

function refuse(path: string, why: string): never {
  throw new CliError(EXIT.IO, `${path}: ${why}; refusing to write it`);
}

function check(path: string, st: Stats): void {
  if (st.isSymbolicLink()) refuse(path, 'is a symbolic link');
  if (!st.isFile()) refuse(path, 'is not a regular file');
  if (st.uid !== process.geteuid!()) refuse(path, `belongs to another user (uid ${st.uid})`);
  if (st.nlink !== 1) refuse(path, `has ${st.nlink} names (hard links)`);
}

/** A descriptor open for writing on `path`, empty; `private` also forces mode 0600 on a reused file. */
export function openOutputFile(path: string, mode: number, opts: { private?: boolean } = {}): number {
  let fd: number;
  try {
    fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    return fd; // ours: just created, nobody else had a chance
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  check(path, lstatSync(path));
  try {
    // Non-blocking: if it was swapped for a FIFO meanwhile, opening must not wait for a reader.
    fd = openSync(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') refuse(path, 'is a symbolic link');
    throw e;
  }
  try {
    check(path, fstatSync(fd)); // what we opened, not what the name pointed to a moment ago
    if (opts.private) fchmodSync(fd, 0o600);
    ftruncateSync(fd, 0);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Writes all of `bytes` to `path` under the rules above (a new file gets mode 0644 less the umask). */
export function writeOutputFile(path: string, bytes: Uint8Array): void {
  const fd = openOutputFile(path, 0o644);
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
