// What our virtual card answers: a read-only PKCS#15 application (token label, serial and data
// objects chosen by the test; OpenSC's default driver binds it) or an empty PIV applet (stock
// OpenSC and ykcs11 recognise it with no configuration).
import { FileSystem, SW, parseApdu, reply } from './card-files.mjs';
import { flags, int, octets, seq, tlv, utf8 } from './der.mjs';

/** @typedef {{ atr: Buffer, reset(): void, transmit(apdu: Buffer): Buffer }} Applet */
// The card specs (CardSpec) are described in cards.d.mts; data object values arrive as hex.

const PKCS15_AID = Buffer.from('A000000063504B43532D3135', 'hex');
const PIV_AID = Buffer.from('A00000030800001000', 'hex');

export function appletFor(spec) {
  return spec.kind === 'pkcs15' ? pkcs15Applet(spec) : pivApplet(spec);
}

// An ATR no OpenSC driver claims (T=1, no historical bytes), so the default driver gets the card.
const PLAIN_ATR = Buffer.from('3B80800101', 'hex');

function pkcs15Applet(spec) {
  if (!/^([0-9a-f]{2})+$/i.test(spec.serial)) throw new Error('the card serial must be an even number of hex digits');
  const objects = spec.objects ?? [];
  if (objects.length > 64) throw new Error('at most 64 data objects (one file each, 4501..4540)');
  // OpenSC refuses to bind an empty ODF: it always names the data objects' directory, empty or not.
  const odf = tlv(0xa7, seq(octets(Buffer.from('3F0050154401', 'hex'))));
  // TokenInfo: version, serial, manufacturer, [0] label, token flags (bit 0: read-only).
  const tokenInfo = seq(int(0), octets(Buffer.from(spec.serial, 'hex')), utf8('p11kit-wasm tests'), tlv(0x80, Buffer.from(spec.label, 'utf8')), flags([0]));
  const dodf = Buffer.concat(
    objects.map((o, i) =>
      seq(seq(utf8(o.label)), seq(utf8(o.application)), tlv(0xa1, seq(octets(Buffer.from([0x3f, 0x00, 0x50, 0x15, 0x45, 0x01 + i]))))),
    ),
  );
  const app = {
    fid: 0x5015,
    name: PKCS15_AID,
    children: [
      { fid: 0x5031, content: odf },
      { fid: 0x5032, content: tokenInfo },
      { fid: 0x4401, content: dodf },
      ...objects.map((o, i) => ({ fid: 0x4501 + i, content: Buffer.from(o.value, 'hex') })),
    ],
  };
  const efDir = tlv(0x61, tlv(0x4f, PKCS15_AID), tlv(0x50, Buffer.from(spec.label, 'utf8')), tlv(0x51, Buffer.from('3F005015', 'hex')));
  const fs = new FileSystem({ fid: 0x3f00, children: [{ fid: 0x2f00, content: efDir }, app] });
  return {
    atr: PLAIN_ATR,
    reset: () => fs.reset(),
    transmit: (raw) => {
      const a = parseApdu(raw);
      if (!a) return reply(SW.WRONG_LENGTH);
      if (a.cla & 0x80) return reply(SW.CLA_UNKNOWN);
      return fs.handle(a) ?? reply(SW.INS_UNKNOWN);
    },
  };
}

// The ATR of a YubiKey 5 (PIV), which ykcs11 and OpenSC's PIV driver both expect to see.
const PIV_ATR = Buffer.from('3BFD1300008131FE158073C021C057597562694B657940', 'hex');

function pivApplet(spec) {
  let selected = false;
  return {
    atr: PIV_ATR,
    reset: () => {
      selected = false;
    },
    transmit: (raw) => {
      const a = parseApdu(raw);
      if (!a) return reply(SW.WRONG_LENGTH);
      if (a.ins === 0xa4 && a.p1 === 0x04) {
        selected = a.data.length >= 5 && PIV_AID.subarray(0, a.data.length).equals(a.data.subarray(0, Math.min(a.data.length, PIV_AID.length)));
        if (!selected) return reply(SW.NOT_FOUND);
        // Application property template: the PIX and the coexistent tag allocation authority.
        return reply(SW.OK, tlv(0x61, tlv(0x4f, Buffer.from('000010000100', 'hex')), tlv(0x79, tlv(0x4f, Buffer.from('A000000308', 'hex')))));
      }
      if (!selected) return reply(SW.INS_UNKNOWN);
      if (a.ins === 0xfd) return reply(SW.OK, Buffer.from([5, 4, 3])); // Yubico: firmware version
      if (a.ins === 0xf8) {
        const s = Buffer.alloc(4);
        s.writeUInt32BE(spec.serial ?? 19_000_019);
        return reply(SW.OK, s); // Yubico: serial
      }
      if (a.ins === 0xcb) return reply(SW.NOT_FOUND); // GET DATA: an empty applet has no objects
      if (a.ins === 0x20 && a.data.length === 0) return reply(0x63c3); // VERIFY status: 3 tries left
      return reply(SW.INS_UNKNOWN);
    },
  };
}
