// Handles are branded: only what a module (or our own layers) handed out is one, so a CKO_
// constant, a count or a plain number literal can't be passed where a slot, a session or an
// object belongs. A handle read elsewhere (a wire, a file, a command line) goes through
// asSlotId() / asSessionHandle() / asObjectHandle() at that edge.
//
// - A slot is a SlotId: a number, as C_GetSlotList, C_WaitForSlotEvent, the proxy's virtual
//   slots and the service's slot lists give it.
// - A session at the bridge's typed layer is a SessionHandle: the module's handle exactly, a
//   number or (beyond 2^53, libtpm2_pkcs11) a bigint, as openSession() returned it. Managed,
//   proxy and service sessions are objects and hide it.
// - An object is an ObjectHandle; ObjectRef also takes its 64-bit value as a bigint.
// The raw fast path (module.raw, call, callAsync) stays unbranded: CK_ULONGs in, CK_RV out.
declare const slotBrand: unique symbol;
declare const sessionBrand: unique symbol;
declare const objectBrand: unique symbol;

export type SlotId = number & { readonly [slotBrand]: true };
export type SessionHandle = (number | bigint) & { readonly [sessionBrand]: true };
export type ObjectHandle = number & { readonly [objectBrand]: true };
/** An object handle as passed in: a module's handle, or its 64-bit value as a bigint. */
export type ObjectRef = ObjectHandle | bigint;

export const asSlotId = (slot: number): SlotId => slot as SlotId;
export const asSessionHandle = (handle: number | bigint): SessionHandle => handle as SessionHandle;
export const asObjectHandle = (handle: number): ObjectHandle => handle as ObjectHandle;
