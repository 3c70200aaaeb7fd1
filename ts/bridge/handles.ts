// Object handles are branded: only what a module handed out (C_FindObjects, C_CreateObject,
// C_GenerateKeyPair...) is one, so a CKO_ constant, a slot id or a count can't be passed where
// an object belongs. A handle from elsewhere (a wire, a file) goes through asObjectHandle().
declare const objectBrand: unique symbol;

export type ObjectHandle = number & { readonly [objectBrand]: true };
/** An object handle as passed in: a module's handle, or its 64-bit value as a bigint. */
export type ObjectRef = ObjectHandle | bigint;

export const asObjectHandle = (handle: number): ObjectHandle => handle as ObjectHandle;
