// Strings a module or token chose (labels, manufacturer, model, serial, library description)
// reach a terminal in the human listings. Control characters there could forge lines
// ("\nuri: pkcs11:token=bank") or drive the terminal (ESC, BEL, the 8-bit CSI); so they are
// shown as visible escapes. Printable text, including any non-ASCII, is left as it is, so
// ordinary labels print byte for byte as p11-kit prints them. --json needs none of this.

/** C0 and C1 controls, DEL, Unicode line/paragraph separators and bidirectional overrides/isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.codePointAt(0)!.toString(16).padStart(width, '0');

/** `s` with every terminal-unsafe character as `\xHH` (`\u{HHHH}` above U+00FF). */
export function escapeForTerminal(s: string): string {
  return s.replace(UNSAFE, (c) => (c.codePointAt(0)! <= 0xff ? `\\x${hex(c, 2)}` : `\\u{${hex(c, 4)}}`));
}
