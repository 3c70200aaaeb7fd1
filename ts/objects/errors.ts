// What the object and profile operations refuse, by kind, so that callers (the CLI's exit codes)
// can tell a missing object from a bad file.
export type ObjectsErrorCode =
  | 'NOT_FOUND' // no token or object matches the URI
  | 'AMBIGUOUS' // several match where one is needed
  | 'BAD_INPUT' // the file is not a certificate, public key or secret we can read
  | 'UNSUPPORTED'; // an object we cannot export (class, certificate or key type)

export class ObjectsError extends Error {
  override readonly name = 'ObjectsError';
  constructor(
    readonly code: ObjectsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
