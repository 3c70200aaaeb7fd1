// Every field of a typed info result read, the same way for ours and pkcs11js's (bench/bridge.mjs)
// and for the instruction counts (bench/callgrind/calls.mjs). CK_ULONGs that are
// CK_UNAVAILABLE_INFORMATION are bigints on our side: they count as 1 everywhere.
const u = (v) => (typeof v === 'number' ? v : 1);
const ver = (v) => v.major + v.minor;

export const readInfo = (x) => ver(x.cryptokiVersion) + x.manufacturerID.length + x.flags + x.libraryDescription.length + ver(x.libraryVersion);

export const readSlotInfo = (x) => x.slotDescription.length + x.manufacturerID.length + x.flags + ver(x.hardwareVersion) + ver(x.firmwareVersion);

export const readTokenInfo = (x) =>
  x.label.length + x.manufacturerID.length + x.model.length + x.serialNumber.length + x.flags +
  u(x.maxSessionCount) + u(x.sessionCount) + u(x.maxRwSessionCount) + u(x.rwSessionCount) + u(x.maxPinLen) + u(x.minPinLen) +
  u(x.totalPublicMemory) + u(x.freePublicMemory) + u(x.totalPrivateMemory) + u(x.freePrivateMemory) +
  ver(x.hardwareVersion) + ver(x.firmwareVersion) + x.utcTime.length;
