// Objects and profiles on tokens, by PKCS#11 URI: p11-kit 0.25's import-object, export-object,
// delete-object, list-profiles, add-profile and delete-profile as library calls.
export { importObject, exportObject, deleteObject, type ImportOptions, type ImportedObject, type ExportedObject } from './objects.js';
export { listProfiles, addProfile, deleteProfile, profileId, profileName, isNamedProfile, PROFILES, type Profile, type TokenProfiles } from './profiles.js';
export { readObjects, MAX_INPUT, type ObjectInput, type SecretKind } from './input.js';
export { ObjectsError, type ObjectsErrorCode } from './errors.js';
export type { PinOption, TokenOptions } from './tokens.js';
