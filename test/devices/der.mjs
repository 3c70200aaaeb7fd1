// A few DER encoders, enough to write the PKCS#15 files our virtual card serves.

/** One TLV: a tag byte and its content, with a definite length. */
export function tlv(tag, ...content) {
  const body = Buffer.concat(content);
  const n = body.length;
  if (n > 0xffff) throw new RangeError('DER content over 64 KiB');
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

export const seq = (...c) => tlv(0x30, ...c);
export const utf8 = (s) => tlv(0x0c, Buffer.from(s, 'utf8'));
export const octets = (b) => tlv(0x04, b);
export const int = (n) => tlv(0x02, Buffer.from([n]));
/** A BIT STRING whose first content octet holds flag bits 0..7 (bit 0 = most significant). */
export const flags = (bits) => tlv(0x03, Buffer.from([0x00, bits.reduce((a, b) => a | (0x80 >> b), 0)]));
