// Where registry files meet the wasm core: one path area and one data area in the core's memory,
// allocated once per load and reused for every file. A module file's path is its directory's
// prefix followed by its name (the name is the tail of the path: one copy, not two), and its
// bytes are read straight into the data area (no copy at all), so feeding a file is one call into
// the core. A file readdir reports as regular is read without a stat, and a read shorter than asked
// is its end (what a regular file's read means; a first read covers any real module file, so it
// costs open, read, close where p11-kit's mapping costs five calls). A read that fails with
// EAGAIN or fills the cap means something else was swapped in meanwhile, and only then does fstat
// decide (not regular: empty, as p11-kit maps it; too big: EFBIG). Any other file (a global
// config, an entry readdir did not call regular) is fstat()ed first by the same reader.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import type { Core } from '../wasm/core.js';

export const enum Io { Ok = 0, Missing = 1, Denied = 2, Error = 3, StatFailed = 4, IsDir = 5 }

/** What is known of a file before it is read. */
export const enum Known {
  /** readdir said regular: read without a stat. */
  Regular,
  /** A directory entry of another or unknown type: a directory in it is skipped (Io.IsDir). */
  Entry,
  /** A global config file: a directory there is an error. */
  Config,
}

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
  EFBIG: 'File too large',
};

/** How a failed read is reported to the core, and the OS text it carries. */
export function ioFailure(err: unknown): { io: Io; text: string } {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const io = code === 'ENOENT' || code === 'ENOTDIR' ? Io.Missing : code === 'EACCES' || code === 'EPERM' ? Io.Denied : Io.Error;
  return { io, text: STRERROR[code] ?? (code || String(err)) };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

const FIRST_DATA = 64 * 1024;
const FIRST_PATH = 4096;
const utf8 = new TextEncoder();

export class Staging {
  private pathPtr = 0;
  private pathCap = 0;
  private prefixLen = 0;
  private dataPtr = 0;
  private dataCap = 0;

  constructor(private readonly core: Core, private readonly maxBytes: number) {}

  private pathRoom(len: number): void {
    if (len + 1 <= this.pathCap) return;
    const cap = Math.max(FIRST_PATH, len + 1);
    const ptr = this.alloc(cap);
    if (this.prefixLen) this.core.heap.copyWithin(ptr, this.pathPtr, this.pathPtr + this.prefixLen);
    if (this.pathPtr) this.core.exports.p11w_free(this.pathPtr);
    this.pathPtr = ptr;
    this.pathCap = cap;
  }

  /** Data room for len bytes and a NUL; keeps the first `keep` bytes already there. */
  private dataRoom(len: number, keep = 0): void {
    if (len + 1 <= this.dataCap) return;
    const cap = Math.min(Math.max(FIRST_DATA, this.dataCap * 2, len + 1), this.maxBytes + 2);
    const ptr = this.alloc(cap);
    if (keep) this.core.heap.copyWithin(ptr, this.dataPtr, this.dataPtr + keep);
    if (this.dataPtr) this.core.exports.p11w_free(this.dataPtr);
    this.dataPtr = ptr;
    this.dataCap = cap;
  }

  private alloc(size: number): number {
    const ptr = this.core.exports.p11w_alloc(size);
    if (!ptr) throw new RangeError(`p11kit-wasm: the wasm core is out of memory (${size} bytes)`);
    return ptr;
  }

  /** A whole path (NUL-terminated) in the path area; returns its pointer. */
  path(text: string): number {
    const bytes = utf8.encode(text);
    this.prefixLen = 0;
    this.pathRoom(bytes.length);
    const heap = this.core.heap;
    heap.set(bytes, this.pathPtr);
    heap[this.pathPtr + bytes.length] = 0;
    return this.pathPtr;
  }

  /** The directory part every following `entry` is appended to. */
  prefix(bytes: Uint8Array): void {
    this.prefixLen = 0;
    this.pathRoom(bytes.length + 256);
    this.core.heap.set(bytes, this.pathPtr);
    this.prefixLen = bytes.length;
  }

  /**
   * prefix + name (a latin1 string: one character per byte of the raw name) in the path area: the
   * path's pointer, the name's pointer, and the path as a Buffer view.
   */
  entry(name: string): { pathPtr: number; namePtr: number; path: Buffer } {
    const len = this.prefixLen + name.length;
    this.pathRoom(len);
    const heap = this.core.heap;
    const path = Buffer.from(heap.buffer, this.pathPtr, len);
    path.write(name, this.prefixLen, 'latin1');
    heap[this.pathPtr + len] = 0;
    return { pathPtr: this.pathPtr, namePtr: this.pathPtr + this.prefixLen, path };
  }

  get data(): number {
    if (!this.dataPtr) this.dataRoom(0);
    return this.dataPtr;
  }

  /** Bytes copied into the data area (contents read elsewhere, or an OS error text); returns the length. */
  put(bytes: Uint8Array | string): number {
    const b = typeof bytes === 'string' ? utf8.encode(bytes) : bytes;
    this.dataRoom(b.length);
    const heap = this.core.heap;
    heap.set(b, this.dataPtr);
    heap[this.dataPtr + b.length] = 0;
    return b.length;
  }

  /**
   * A file read into the data area: its io status and length (for a failure, the length of the
   * OS text put there instead). Never blocks and never holds more than the cap: a FIFO, socket or
   * device reads as empty (p11-kit maps /dev/zero as empty; on a FIFO it would wait for a writer),
   * a regular file over the cap is EFBIG. A file readdir called regular is read without a stat
   * (see the file's head); any other is fstat()ed first, so what decides is what was opened.
   */
  read(path: Buffer | string, known: Known): { io: Io; len: number } {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      return known === Known.Entry ? this.unopenedEntry(path, err) : this.failure(err);
    }
    try {
      this.dataRoom(0);
      if (known !== Known.Regular) {
        const st = fstatSync(fd);
        if (st.isDirectory()) return known === Known.Entry ? { io: Io.IsDir, len: this.put('') } : this.failure(errno('EISDIR'));
        if (!st.isFile()) return { io: Io.Ok, len: this.put('') };
        if (st.size > this.maxBytes) return this.failure(errno('EFBIG'));
        this.dataRoom(st.size + 1); // one read, short at the end
      }
      let got = 0;
      for (;;) {
        if (got + 1 >= this.dataCap) {
          if (this.dataCap >= this.maxBytes + 2) return this.notRegularOrTooBig(fd, got);
          this.dataRoom(this.dataCap * 2, got);
        }
        const room = this.dataCap - 1 - got;
        const n = readSync(fd, this.core.heap, this.dataPtr + got, room, null);
        got += n;
        // A regular file's read is short only at its end: no second read to see the 0.
        if (n < room) break;
      }
      this.core.heap[this.dataPtr + got] = 0;
      return { io: Io.Ok, len: got };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return this.notRegularOrTooBig(fd, 0);
      return this.failure(err);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A directory entry that would not open: a directory we may not read is still skipped as a
   * directory, and one that cannot even be stat()ed (a dangling link) is reported as such.
   */
  private unopenedEntry(path: Buffer | string, openErr: unknown): { io: Io; len: number } {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      return { io: Io.StatFailed, len: this.put(ioFailure(err).text) };
    }
    return isDir ? { io: Io.IsDir, len: this.put('') } : this.failure(openErr);
  }

  /** What was swapped in for a regular file decides: not regular reads as empty; regular and over the cap is EFBIG. */
  private notRegularOrTooBig(fd: number, got: number): { io: Io; len: number } {
    const st = fstatSync(fd);
    if (!st.isFile()) return { io: Io.Ok, len: this.put('') };
    if (got > this.maxBytes || st.size > this.maxBytes) return this.failure(errno('EFBIG'));
    return this.failure(errno('EAGAIN'));
  }

  private failure(err: unknown): { io: Io; len: number } {
    const f = ioFailure(err);
    return { io: f.io, len: this.put(f.text) };
  }

  release(): void {
    if (this.pathPtr) this.core.exports.p11w_free(this.pathPtr);
    if (this.dataPtr) this.core.exports.p11w_free(this.dataPtr);
    this.pathPtr = this.dataPtr = this.pathCap = this.dataCap = this.prefixLen = 0;
  }
}
