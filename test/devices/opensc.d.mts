// Types for opensc.mjs.
export const OPENSC_MODULE: string;
export const YKCS11_MODULE: string;
export function writeOpenscConf(dir: string): string;
