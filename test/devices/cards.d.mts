// Types for cards.mjs.
export type DataObject = { label: string; application: string; value: Buffer };
/** A read-only PKCS#15 card (OpenSC's default driver): token label, serial (hex digits), data objects. */
export type Pkcs15Card = { kind: 'pkcs15'; label: string; serial: string; objects?: DataObject[] };
/** An empty PIV applet (stock OpenSC, ykcs11); serial is what Yubico's GET SERIAL answers. */
export type PivCard = { kind: 'piv'; serial?: number };
export type CardSpec = Pkcs15Card | PivCard;
export class VirtualCard {
  constructor(spec: CardSpec, port: number);
  readonly spec: CardSpec;
  inserted: boolean;
  /** Connects the card to its reader (pcscd sees a card insertion). */
  insert(): Promise<void>;
  /** Disconnects it (pcscd sees the card removed). */
  remove(): Promise<void>;
  /** Removes the card if it is in and ends its process. */
  close(): Promise<void>;
}
