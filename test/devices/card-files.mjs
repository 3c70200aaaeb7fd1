// An ISO 7816-4 file system, read-only: SELECT by file ID, by path from the MF and by DF name,
// READ BINARY. Enough for OpenSC's default card driver to bind a PKCS#15 application.
import { tlv } from './der.mjs';

/** @typedef {{ cla: number, ins: number, p1: number, p2: number, data: Buffer, le: number }} Apdu */

export const SW = {
  OK: 0x9000,
  NOT_FOUND: 0x6a82,
  WRONG_P1P2: 0x6b00,
  INS_UNKNOWN: 0x6d00,
  CLA_UNKNOWN: 0x6e00,
  WRONG_LENGTH: 0x6700,
  NOT_EF: 0x6986,
  WRONG_DATA: 0x6a80,
};

/** Parses a command APDU (short or extended encoding); null when it is malformed. */
export function parseApdu(b) {
  if (b.length < 4) return null;
  const [cla, ins, p1, p2] = b;
  const rest = b.subarray(4);
  if (rest.length === 0) return { cla, ins, p1, p2, data: Buffer.alloc(0), le: 0 };
  if (rest.length === 1) return { cla, ins, p1, p2, data: Buffer.alloc(0), le: rest[0] || 256 };
  if (rest[0] !== 0) {
    const lc = rest[0];
    if (rest.length === 1 + lc) return { cla, ins, p1, p2, data: rest.subarray(1, 1 + lc), le: 0 };
    if (rest.length === 2 + lc) return { cla, ins, p1, p2, data: rest.subarray(1, 1 + lc), le: rest[1 + lc] || 256 };
    return null;
  }
  // Extended: 00 then two length bytes.
  if (rest.length === 3) return { cla, ins, p1, p2, data: Buffer.alloc(0), le: rest.readUInt16BE(1) || 65536 };
  const lc = rest.readUInt16BE(1);
  if (rest.length === 3 + lc) return { cla, ins, p1, p2, data: rest.subarray(3, 3 + lc), le: 0 };
  if (rest.length === 5 + lc) return { cla, ins, p1, p2, data: rest.subarray(3, 3 + lc), le: rest.readUInt16BE(3 + lc) || 65536 };
  return null;
}

export const reply = (sw, data = Buffer.alloc(0)) => Buffer.concat([data, Buffer.from([sw >> 8, sw & 0xff])]);

/** @typedef {{ fid: number, name?: Buffer, content?: Buffer, children?: CardFile[] }} CardFile */

/** A card file system with a current file, answering SELECT and READ BINARY. */
export class FileSystem {
  constructor(mf) {
    this.mf = mf;
    this.current = [mf]; // path from the MF to the current file
  }

  reset() {
    this.current = [this.mf];
  }

  handle(a) {
    if (a.ins === 0xa4) return this.select(a);
    if (a.ins === 0xb0) return this.readBinary(a);
    return null;
  }

  select(a) {
    let target;
    if (a.p1 === 0x04) target = this.byName(this.mf, a.data, [this.mf]);
    else if (a.p1 === 0x08 || a.p1 === 0x09) target = this.byPath(a.p1 === 0x08 ? [this.mf] : this.dfOfCurrent(), a.data);
    else if (a.p1 === 0x00 || a.p1 === 0x02 || a.p1 === 0x01) {
      if (a.data.length === 0 || (a.data.length === 2 && a.data.readUInt16BE(0) === 0x3f00)) target = [this.mf];
      else if (a.data.length === 2) {
        const df = this.dfOfCurrent();
        const fid = a.data.readUInt16BE(0);
        const child = df[df.length - 1].children?.find((c) => c.fid === fid);
        target = child ? [...df, child] : undefined;
      } else return reply(SW.WRONG_DATA);
    } else if (a.p1 === 0x03) target = this.current.length > 1 ? this.dfOfCurrent().slice(0, -1) : undefined;
    else return reply(SW.WRONG_P1P2);
    if (!target || target.length === 0) return reply(SW.NOT_FOUND);
    this.current = target;
    return (a.p2 & 0x0c) === 0x0c ? reply(SW.OK) : reply(SW.OK, fcp(target[target.length - 1]));
  }

  readBinary(a) {
    const f = this.current[this.current.length - 1];
    if (!f.content) return reply(SW.NOT_EF);
    if (a.p1 & 0x80) return reply(SW.WRONG_P1P2); // short-FID addressing is not offered
    const offset = (a.p1 << 8) | a.p2;
    if (offset > f.content.length) return reply(SW.WRONG_P1P2);
    return reply(SW.OK, f.content.subarray(offset, offset + a.le));
  }

  dfOfCurrent() {
    const f = this.current[this.current.length - 1];
    return f.children ? this.current : this.current.slice(0, -1);
  }

  byPath(from, data) {
    if (data.length % 2 !== 0) return undefined;
    let at = from;
    for (let i = 0; i < data.length; i += 2) {
      const fid = data.readUInt16BE(i);
      if (i === 0 && fid === 0x3f00) {
        at = [this.mf];
        continue;
      }
      const child = at[at.length - 1].children?.find((c) => c.fid === fid);
      if (!child) return undefined;
      at = [...at, child];
    }
    return at;
  }

  byName(df, name, path) {
    for (const c of df.children ?? []) {
      if (c.name?.equals(name)) return [...path, c];
      if (c.children) {
        const found = this.byName(c, name, [...path, c]);
        if (found) return found;
      }
    }
    return undefined;
  }
}

/** The file control parameters of a file (tag 62). */
function fcp(f) {
  const fid = Buffer.from([f.fid >> 8, f.fid & 0xff]);
  if (f.children) return tlv(0x62, tlv(0x82, Buffer.from([0x38])), tlv(0x83, fid), ...(f.name ? [tlv(0x84, f.name)] : []));
  const size = f.content.length;
  return tlv(0x62, tlv(0x80, Buffer.from([size >> 8, size & 0xff])), tlv(0x82, Buffer.from([0x01])), tlv(0x83, fid));
}
