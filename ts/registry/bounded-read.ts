// Reading files we are handed (configuration, PIN sources, signatures) without letting the file
// decide how long we wait or how much we allocate: never blocks on a FIFO, reads a device or a
// FIFO as empty — its size is 0, which is all p11-kit maps of it (p11-kit 0.24 reads /dev/zero as
// an empty config; on a FIFO it waits for a writer, we do not) — and refuses more than `cap` bytes.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export interface BoundedRead {
  bytes: Buffer;
  /** False for a FIFO, socket or device: read as empty. */
  regular: boolean;
}

function errnoError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** The bytes of `path` (at most `cap`, else an EFBIG error); a directory is an EISDIR error. */
export function readBounded(path: string | Buffer, cap: number): BoundedRead {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd); // what we opened, not what the name was a moment before
    if (st.isDirectory()) throw errnoError('EISDIR', `${path}: Is a directory`);
    if (!st.isFile()) return { bytes: Buffer.alloc(0), regular: false };
    if (st.size > cap) throw errnoError('EFBIG', `${path}: File too large (${st.size} bytes, at most ${cap})`);
    // Exactly the size seen: a file that grows meanwhile cannot push us past the cap.
    return { bytes: readUpTo(fd, st.size), regular: true };
  } finally {
    closeSync(fd);
  }
}

/** A stream descriptor (stdin) read to its end, refusing more than `cap` bytes. */
export function readStreamBounded(fd: number, cap: number, what: string): Buffer {
  const bytes = readUpTo(fd, cap + 1);
  if (bytes.length > cap) throw errnoError('EFBIG', `${what}: more than ${cap} bytes`);
  return bytes;
}

function readUpTo(fd: number, max: number): Buffer {
  const buf = Buffer.alloc(max);
  let got = 0;
  while (got < max) {
    let n: number;
    try {
      n = readSync(fd, buf, got, max - got, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // a non-blocking pipe not yet written
      continue;
    }
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
