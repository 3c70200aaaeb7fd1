// Native layouts of the CK_* structures on this platform. koffi computes sizes and offsets
// from declarations (packed on Windows, where cryptoki headers use #pragma pack(1); CK_ULONG
// is `unsigned long`: 8 bytes on LP64, 4 on Windows). Everything else in the bridge reads and
// writes these structures by offset, so nothing here is instantiated per call.
import koffi, { type TypeObject } from 'koffi';

const S = process.platform === 'win32' ? koffi.pack : koffi.struct;
const U = 'unsigned long';
const P = 'void *';
const bytes = (n: number) => koffi.array('uint8_t', n);

const VERSION = S({ major: 'uint8_t', minor: 'uint8_t' });
const types = {
  info: S({ cryptokiVersion: VERSION, manufacturerID: bytes(32), flags: U, libraryDescription: bytes(32), libraryVersion: VERSION }),
  slotInfo: S({ slotDescription: bytes(64), manufacturerID: bytes(32), flags: U, hardwareVersion: VERSION, firmwareVersion: VERSION }),
  tokenInfo: S({
    label: bytes(32), manufacturerID: bytes(32), model: bytes(16), serialNumber: bytes(16), flags: U,
    ulMaxSessionCount: U, ulSessionCount: U, ulMaxRwSessionCount: U, ulRwSessionCount: U, ulMaxPinLen: U, ulMinPinLen: U,
    ulTotalPublicMemory: U, ulFreePublicMemory: U, ulTotalPrivateMemory: U, ulFreePrivateMemory: U,
    hardwareVersion: VERSION, firmwareVersion: VERSION, utcTime: bytes(16),
  }),
  sessionInfo: S({ slotID: U, state: U, flags: U, ulDeviceError: U }),
  mechanismInfo: S({ ulMinKeySize: U, ulMaxKeySize: U, flags: U }),
  attribute: S({ type: U, pValue: P, ulValueLen: U }),
  mechanism: S({ mechanism: U, pParameter: P, ulParameterLen: U }),
  date: S({ year: bytes(4), month: bytes(2), day: bytes(2) }),
  initArgs: S({ CreateMutex: P, DestroyMutex: P, LockMutex: P, UnlockMutex: P, flags: U, pReserved: P }),
  iface: S({ pInterfaceName: P, pFunctionList: P, flags: U }),
  pssParams: S({ hashAlg: U, mgf: U, sLen: U }),
  oaepParams: S({ hashAlg: U, mgf: U, source: U, pSourceData: P, ulSourceDataLen: U }),
  ecdh1Params: S({ kdf: U, ulSharedDataLen: U, pSharedData: P, ulPublicDataLen: U, pPublicData: P }),
  gcmParams: S({ pIv: P, ulIvLen: U, ulIvBits: U, pAAD: P, ulAADLen: U, ulTagBits: U }),
};

type Offsets<T extends TypeObject> = { size: number } & Record<string, number>;

function offsets(type: TypeObject): Offsets<TypeObject> {
  const out: Record<string, number> = { size: koffi.sizeof(type) };
  for (const name of Object.keys((type as unknown as { members: Record<string, unknown> }).members)) {
    out[name] = koffi.offsetof(type, name);
  }
  return out as Offsets<TypeObject>;
}

/** Sizes and member offsets of every structure the bridge touches. */
export const L = {
  ulong: koffi.sizeof(U),
  ptr: koffi.sizeof(P),
  info: offsets(types.info),
  slotInfo: offsets(types.slotInfo),
  tokenInfo: offsets(types.tokenInfo),
  sessionInfo: offsets(types.sessionInfo),
  mechanismInfo: offsets(types.mechanismInfo),
  attribute: offsets(types.attribute),
  mechanism: offsets(types.mechanism),
  date: offsets(types.date),
  initArgs: offsets(types.initArgs),
  iface: offsets(types.iface),
  pssParams: offsets(types.pssParams),
  oaepParams: offsets(types.oaepParams),
  ecdh1Params: offsets(types.ecdh1Params),
  gcmParams: offsets(types.gcmParams),
  /** CK_FUNCTION_LIST: a CK_VERSION, then function pointers from this offset on. */
  functionListFirst: koffi.offsetof(S({ version: VERSION, first: P }), 'first'),
} as const;

/** ~0 as a CK_ULONG: CK_UNAVAILABLE_INFORMATION, and ulValueLen for an unavailable attribute. */
export const UNAVAILABLE: bigint = L.ulong === 8 ? 0xffffffffffffffffn : 0xffffffffn;
