// Types for pcscd.mjs.
export type Reader = { /** pcscd's name for the reader */ name: string; /** where a card connects */ port: number };
export type Pcscd = {
  readers: Reader[];
  /** The environment a PC/SC client of this daemon needs. */
  env: { PCSCLITE_CSOCK_NAME: string };
  stop(): Promise<void>;
};
export const PCSCD: string;
export const VPCD_DRIVER: string;
export function havePcscd(): boolean;
export function startPcscd(friendlyName?: string): Promise<Pcscd>;
