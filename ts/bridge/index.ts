// The bridge's public API: loading modules, the module object with its raw and typed calls,
// values, constants and errors.
export { loadModule, loadedModules, type LoadModuleOptions } from './modules.js';
export { Pkcs11Module, type InitializeOptions, type ModuleOptions } from './module.js';
export type { InterfaceInfo, Version } from './loader.js';
export type { RawArg, RawFunction, RawFunctions } from './raw.js';
export { Arena } from './memory.js';
export type { SyncCalls, AsyncCalls } from './ops.js';
export type { ModuleInfo, SlotInfo, TokenInfo, MechanismInfo, SessionInfo, Ulong } from './info.js';
export { vendorAttributeType } from './attributes.js';
export type { Attribute, AttributeResult, AttributeValue, AttributeValueOf, CkDate, RawAttribute, VendorAttributeType } from './attributes.js';
export type { AttributeResults } from './ops.js';
export { attributeKind, type AttributeKind } from './attribute-kinds.js';
export { vendorMechanismType } from './mechanisms.js';
export type { Mechanism, MechanismParameter, MechanismParameterOf, RawMechanism, VendorMechanismType, RsaPssParams, RsaOaepParams, Ecdh1DeriveParams, GcmParams } from './mechanisms.js';
export type { KeyPair } from './ops-keys.js';
export type { Secret } from './op-helpers.js';
export { Pkcs11Error, ModuleLoadError, BridgeError, type LoadFailure, type BridgeFailure } from './errors.js';
export { configureAsync, asyncStats, type AsyncConfig, type LanePolicy } from './lanes.js';
export { FUNCTIONS_2_40, FUNCTIONS_3_0, type FunctionName } from './functions.js';
export { CKR, rvName, type CkrName, type RvCode } from './ckr.js';
export { CKA, CKF_ARRAY_ATTRIBUTE } from './cka.js';
export { CKM } from './ckm.js';
export { CKO, CKK, CKC, CKU, CKS, CKD, CKG, CKZ } from './ck-enums.js';
export { CKF, CKF_TOKEN, CKF_SLOT, CKF_SESSION, CKF_INIT, CKF_MECHANISM, CKF_MISC, flagNames } from './ckf.js';
export { nameOf, valueOf, describe as describeConstant, type ConstTable } from './names.js';
export { L as nativeLayout, UNAVAILABLE as CK_UNAVAILABLE_INFORMATION } from './layout.js';
export { ecParams, ecKeyPair, rsaKeyPair, NAMED_CURVES, type NamedCurve, type KeyPairOptions, type KeyPairTemplate } from './key-templates.js';
export { asObjectHandle, asSessionHandle, asSlotId, type ObjectHandle, type ObjectRef, type SessionHandle, type SlotId } from './handles.js';
