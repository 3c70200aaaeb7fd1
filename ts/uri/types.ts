// The typed shape of a PKCS#11 URI (RFC 7512) as p11-kit 0.24.1 models it, and of the
// PKCS#11 structures a URI is matched against. Parsing, formatting and matching happen in
// the wasm core (wasm/uri*.c); these types are what crosses into and out of it.

/** Which attributes parsing accepts and formatting writes: p11-kit's P11KitUriType bits. */
export const UriType = {
  OBJECT: 0x02,
  TOKEN: 0x04,
  MODULE: 0x08,
  MODULE_WITH_VERSION: 0x18,
  SLOT: 0x20,
  OBJECT_ON_TOKEN: 0x06,
  OBJECT_ON_TOKEN_AND_MODULE: 0x0e,
  ANY: 0xffff,
} as const;
export type UriTypeName = keyof typeof UriType;
/** A UriType name (any case, '-' or '_': 'object-on-token'), or the raw bits. */
export type UriTypeOption = UriTypeName | Lowercase<UriTypeName> | string | number;

/** The `type` path attribute: CKA_CLASS as p11-kit names it when formatting. */
export type UriObjectType = 'cert' | 'public' | 'private' | 'secret-key' | 'data';

export interface UriVersion {
  major: number;
  minor: number;
}

/** A query attribute p11-kit does not know (`?x-foo=bar`), kept in name order. */
export interface UriVendorQuery {
  name: string;
  value: string;
  /** The exact bytes of the value when they are not UTF-8 (see Uri.raw); names are always ASCII. */
  rawValue?: Uint8Array;
}

/** The text fields of a Uri: those that may carry raw bytes in Uri.raw. */
export type UriTextField =
  | 'libraryDescription' | 'libraryManufacturer' | 'slotDescription' | 'slotManufacturer' | 'token' | 'manufacturer'
  | 'model' | 'serial' | 'object' | 'pinSource' | 'pinValue' | 'moduleName' | 'modulePath';

/** A path attribute parsing dropped; any of these makes the URI match nothing. */
export interface UriIgnoredAttribute {
  name: string;
  reason: string;
}

/**
 * A parsed URI. Absent keys are unset. Text fields (module, slot, token) hold what fits in the
 * blank-padded CK_* field with trailing spaces removed, as p11-kit compares them. A value whose
 * bytes are not UTF-8 reads with U+FFFD in the string, and its exact bytes are kept in `raw`:
 * formatting and matching use them as long as the string is left as parsed, so
 * formatUri(parseUri(x)) equals normalizeUri(x) for every x.
 */
export interface Uri {
  libraryDescription?: string; // CK_INFO.libraryDescription, 32 bytes
  libraryManufacturer?: string; // CK_INFO.manufacturerID, 32 bytes
  libraryVersion?: UriVersion; // CK_INFO.libraryVersion, each part 0..254
  slotDescription?: string; // CK_SLOT_INFO.slotDescription, 64 bytes
  slotManufacturer?: string; // CK_SLOT_INFO.manufacturerID, 32 bytes
  slotId?: bigint; // CK_SLOT_ID (unsigned long: 64 bits on the native side)
  token?: string; // CK_TOKEN_INFO.label, 32 bytes
  manufacturer?: string; // CK_TOKEN_INFO.manufacturerID, 32 bytes
  model?: string; // CK_TOKEN_INFO.model, 16 bytes
  serial?: string; // CK_TOKEN_INFO.serialNumber, 16 bytes
  id?: Uint8Array; // CKA_ID
  object?: string; // CKA_LABEL
  type?: UriObjectType; // CKA_CLASS
  /**
   * Where a PIN comes from (`file:…` or a name), as p11-kit stores it. Parsed and formatted only:
   * this layer never opens it. The login support that will read `file:` sources must refuse a
   * file that is not a regular file, is not owned by the running user, or that group or others
   * may read or write (mode & 0o077), and read at most a small bounded size — failing with an
   * error that names the file and the reason, never with the PIN.
   */
  pinSource?: string;
  /** A PIN in the URI itself. Secret: never log it. */
  pinValue?: string;
  moduleName?: string;
  modulePath?: string;
  vendor: UriVendorQuery[];
  /** Exact bytes of the text fields that are not UTF-8 (present only then). */
  raw?: Partial<Record<UriTextField, Uint8Array>>;
  /** An unknown or disallowed path attribute was seen: p11-kit then matches nothing. */
  unrecognized: boolean;
  /** Which path attributes were dropped, and why (parse output only). */
  ignored: UriIgnoredAttribute[];
}

/** What formatting and matching accept: any subset of a Uri; slotId may be a number. */
export type UriFields = Partial<Omit<Uri, 'slotId' | 'ignored'>> & {
  slotId?: bigint | number;
  ignored?: readonly UriIgnoredAttribute[];
};

/** Text a module reports: a string (written as UTF-8) or the raw bytes, padding optional. */
export type UriText = string | Uint8Array;

/** The parts of CK_INFO a URI can match. */
export interface UriModuleInfo {
  libraryDescription: UriText;
  manufacturerID: UriText;
  libraryVersion: UriVersion;
}

/** The parts of CK_SLOT_INFO a URI can match. */
export interface UriSlotInfo {
  slotDescription: UriText;
  manufacturerID: UriText;
}

/** The parts of CK_TOKEN_INFO a URI can match. */
export interface UriTokenInfo {
  label: UriText;
  manufacturerID: UriText;
  model: UriText;
  serialNumber: UriText;
}

/**
 * One CK_ATTRIBUTE of an object template. Only CKA_CLASS (0), CKA_LABEL (3) and CKA_ID (0x102)
 * take part in matching. A CKA_CLASS number is compared as the module would store it; a byte
 * value must be the 8-byte little-endian CK_ULONG of 64-bit Linux to equal the URI's class.
 */
export interface UriAttribute {
  type: number;
  value: Uint8Array | string | number | bigint;
}

export interface ParseUriOptions {
  /** Attributes outside this type are ignored (and make the URI unrecognized). Default ANY. */
  type?: UriTypeOption;
}

export interface FormatUriOptions {
  /** Path attributes outside this type are left out. Default ANY. */
  type?: UriTypeOption;
  /**
   * Lower-case hex in escapes. Default: p11-kit's rule, P11_KIT_URI_LOWERCASE set and non-empty,
   * read on every call as p11-kit reads it at format time (a getenv through process.env, ~0.2 µs:
   * pass this option in a hot loop to skip it).
   */
  lowercase?: boolean;
}
