// A deliberately small koffi view of a PKCS#11 module for the lifecycle tests: the few
// raw calls they make, each returning its CK_RV. Plain JS so that worker threads can load
// it directly. (The full typed bridge is ts/bridge/.)
import { statSync } from 'node:fs';
import koffi from 'koffi';

const CKF_OS_LOCKING_OK = 2;
const CKF_SERIAL_SESSION = 4;
const CKF_RW_SESSION = 2;
const FN = { Initialize: 0, Finalize: 1, GetInfo: 2, GetSlotList: 4, OpenSession: 12, CloseSession: 13, GenerateRandom: 64 };

const InitArgs = koffi.struct('RawInitArgs', {
  CreateMutex: 'void *',
  DestroyMutex: 'void *',
  LockMutex: 'void *',
  UnlockMutex: 'void *',
  flags: 'unsigned long',
  pReserved: 'void *',
});
const pInit = koffi.proto('unsigned long RawInitialize(RawInitArgs *args)');
const pFinal = koffi.proto('unsigned long RawFinalize(void *reserved)');
const pInfo = koffi.proto('unsigned long RawGetInfo(_Out_ uint8_t *info)');
const pSlots = koffi.proto('unsigned long RawGetSlotList(uint8_t present, _Out_ unsigned long *list, _Inout_ unsigned long *count)');
const pOpen = koffi.proto('unsigned long RawOpenSession(unsigned long slot, unsigned long flags, void *app, void *notify, _Out_ unsigned long *session)');
const pClose = koffi.proto('unsigned long RawCloseSession(unsigned long session)');
const pRandom = koffi.proto('unsigned long RawGenerateRandom(unsigned long session, _Out_ uint8_t *out, unsigned long len)');
void InitArgs;

/**
 * @param {string} path
 * @param {string | undefined} reserved the x-init-reserved string (NSS softokn needs one)
 */
export function openRawModule(path, reserved) {
  const lib = koffi.load(path);
  const out = [null];
  const rv = Number(lib.func('unsigned long C_GetFunctionList(_Out_ void **list)')(out));
  if (rv !== 0) throw new Error(`C_GetFunctionList failed: ${rv}`);
  const list = out[0];
  const fn = (i) => koffi.decode(list, 8 + 8 * i, 'void *');
  const st = statSync(path);
  const reservedBuf = reserved === undefined ? null : Buffer.from(`${reserved}\0`);
  return {
    lib,
    identity: `${st.dev}:${st.ino}`,
    name: path,
    initialize: () =>
      Number(
        koffi.call(fn(FN.Initialize), pInit, {
          CreateMutex: null,
          DestroyMutex: null,
          LockMutex: null,
          UnlockMutex: null,
          flags: CKF_OS_LOCKING_OK,
          pReserved: reservedBuf,
        }),
      ),
    finalize: () => Number(koffi.call(fn(FN.Finalize), pFinal, null)),
    closeSession: (h) => Number(koffi.call(fn(FN.CloseSession), pClose, h)),
    getInfo: () => Number(koffi.call(fn(FN.GetInfo), pInfo, Buffer.alloc(128))),
    slotList() {
      const count = [64];
      const slots = new Array(64).fill(0);
      const rv = Number(koffi.call(fn(FN.GetSlotList), pSlots, 1, slots, count));
      return { rv, slots: slots.slice(0, Number(count[0])) };
    },
    openSession(slot) {
      const h = [0];
      const rv = Number(koffi.call(fn(FN.OpenSession), pOpen, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null, null, h));
      return { rv, handle: BigInt(h[0]) };
    },
    generateRandom: (h, len) => Number(koffi.call(fn(FN.GenerateRandom), pRandom, h, Buffer.alloc(len), len)),
  };
}
