// The shared-memory ring between a service worker and a client in the same process: what lives
// where in the SharedArrayBuffer. Both sides compute the layout from these constants; the host
// reads nothing of it from the buffer but the words a client writes per call, and checks those.
//
// One control block, then SLOTS slots used in order (call n goes in slot n mod SLOTS). The client
// writes a call into its slot and advances SUBMITTED; the host runs calls in order, writes each
// one's outcome into its slot and advances DONE over the finished ones; the client reads outcomes
// up to DONE and may then reuse those slots. Counters are int32 and wrap: compare with `(a - b) | 0`.

/** Control words (Int32Array indices). */
export const MAGIC = 0;
export const SUBMITTED = 1; // written by the client: calls it has written
export const DONE = 2; // written by the host: calls finished, in order
export const HOST_ASLEEP = 3; // 1 while the host waits for SUBMITTED to move (the client wakes it)
export const CLIENT_ASLEEP = 4; // 1 while the client waits for DONE to move (the host wakes it)
export const CLOSED = 5; // non-zero once the host stopped serving the ring (a RingClosed code)
export const CONTROL_BYTES = 64;

export const RING_MAGIC = 0x70313177; // 'p11w'
export const SLOTS = 64; // a power of two: slot = n & (SLOTS - 1)
export const SLOT_BYTES = 4096;
export const RING_BYTES = CONTROL_BYTES + SLOTS * SLOT_BYTES;

/** Slot words (Uint32Array indices from the slot's first word). Inputs from the client... */
export const OP = 0;
export const SESSION = 1;
export const MECHANISM = 2;
export const LEN1 = 3; // the data's length (generateRandom: how many bytes)
export const LEN2 = 4; // verify: the signature's length, after the data
/** ...the outcome from the host... */
export const STATUS = 5;
export const OUT_LEN = 6;
/** ...the object handle, a float64 at this byte of the slot (handles are CK_ULONG: beyond 32 bits). */
export const KEY_BYTE = 32;
/** The bytes: inputs (data, then a signature), replaced by the output. */
export const DATA_BYTE = 48;
export const DATA_BYTES = SLOT_BYTES - DATA_BYTE;

/** What a slot carries: the single-part byte operations of a session (numbers and bytes in, bytes or a boolean out). */
export const RING_OPS = ['generateRandom', 'digest', 'sign', 'verify', 'encrypt', 'decrypt'] as const;
export type RingOp = (typeof RING_OPS)[number];
/** OP codes: 1 + the index in RING_OPS (0 is never a call). */
export const opCode = (name: RingOp): number => RING_OPS.indexOf(name) + 1;

/** STATUS values. */
export const BYTES = 1; // OUT_LEN bytes at DATA_BYTE
export const FALSE = 2;
export const TRUE = 3;
export const FAILED = 4; // OUT_LEN bytes of a JSON-encoded WireThrown (errors.ts)
export const TOO_BIG = 5; // the output did not fit the slot: the client repeats the call on the message path

/** CLOSED codes: why the host stopped serving the ring. */
export const CORRUPT_COUNTER = 1;

/** The first byte of slot `k`. */
export const slotByte = (k: number): number => CONTROL_BYTES + k * SLOT_BYTES;

/** The messages that set the ring up on the service's endpoint. */
export interface RingOffer {
  readonly p11wRing: SharedArrayBuffer;
}
export interface RingAnswer {
  readonly p11wRingReady: boolean;
  readonly reason?: string;
}

/** Atomics.waitAsync (Node ≥ 16; the compiler's lib here predates it). */
export const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;
