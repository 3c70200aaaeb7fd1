// What travels between a PKCS#11 service and its clients: plain, structured-clone-safe data.
// Modules and sessions are referred to by small ids the service hands out; the client side
// wraps them in objects (pkcs11-client.ts) that also remember the service generation.
import type { Attribute, AttributeResult, MechanismInfo, ModuleInfo, SlotId, SlotInfo, TokenInfo } from '../bridge/index.js';
import type { Mechanism } from '../bridge/mechanisms.js';

export type { Attribute, AttributeResult, Mechanism, MechanismInfo, ModuleInfo, SlotInfo, TokenInfo };

export interface ModuleSpec {
  /** A configured module's name (looked up in the p11-kit registry), or a path to its shared object. */
  readonly source: string;
  /** The lifecycle's re-entry policy (default: the module's x-reinit-policy, else 'explicit'). */
  readonly policy?: 'explicit' | 'auto';
  /** pReserved for C_Initialize (default: the module's x-init-reserved; NSS softokn needs one). */
  readonly initReserved?: string;
}

export interface ModuleRef {
  readonly id: number;
  readonly name: string;
  /** The shared object as loaded (absolute). */
  readonly path: string;
  /** The pReserved string its C_Initialize gets (so another thread can build the same lifecycle target). */
  readonly initReserved?: string;
  readonly policy: 'explicit' | 'auto';
  /** device:inode of the shared object: the same in every thread of the process. */
  readonly identity: string;
  readonly info: ModuleInfo;
}

export interface SlotEntry {
  readonly slot: SlotId;
  readonly info: SlotInfo;
  /** Present when the slot has a token. */
  readonly token?: TokenInfo;
}

export interface MechanismEntry {
  readonly type: number;
  readonly info: MechanismInfo;
}

export interface SessionOptions {
  /** A read/write session (default: read-only). */
  readonly rw?: boolean;
  /** Log in right after opening (CKU_USER unless `userType` says otherwise). Never logged. */
  readonly pin?: string | Uint8Array;
  readonly userType?: number;
}

export interface ServiceSessionRef {
  readonly id: number;
  readonly module: number;
  readonly slot: SlotId;
  /** The PKCS#11 session handle, for diagnostics; calls go by `id`. */
  readonly handle: number;
}

export type MechanismArg = Mechanism | number;

export interface FoundObject {
  readonly handle: number;
  readonly attributes: AttributeResult[];
}

export interface KeyPairHandles {
  readonly publicKey: number;
  readonly privateKey: number;
}

export interface SlotEvent {
  readonly module: number;
  readonly slot: SlotId;
  /** The slot's CKF_TOKEN_PRESENT right after the event. */
  readonly tokenPresent: boolean;
  /**
   * How the event was obtained: a blocking C_WaitForSlotEvent, CKF_DONT_BLOCK polling, or
   * CKF_DONT_BLOCK woken up by a child process's blocking wait.
   */
  readonly via: 'block' | 'poll' | 'isolated';
}

export interface SlotEventOptions {
  /**
   * 'block': C_WaitForSlotEvent(0) on a dedicated thread (the service stays responsive);
   * 'poll': C_WaitForSlotEvent(CKF_DONT_BLOCK) every `intervalMs` (for a module without
   * C_WaitForSlotEvent at all: each slot's CKF_TOKEN_PRESENT compared every `intervalMs`);
   * 'isolated': a child process parks the blocking wait in its own instance of the module and
   * wakes the service up, which takes the events with CKF_DONT_BLOCK (nothing waits inside the
   * service's module, so closing it never races a wait); poll if the child fails (a warning
   * says why) or too many (8) are running;
   * 'auto' (default): 'isolated' for modules whose C_Finalize does not survive their own parked
   * wait (OpenSC), else block, falling back to poll when the module cannot block.
   */
  readonly mode?: 'auto' | 'block' | 'poll' | 'isolated';
  readonly intervalMs?: number;
}

export interface ServiceModuleState {
  readonly phase: string;
  readonly generation: number;
  readonly holders: number;
  /** Real C_Initialize / C_Finalize calls made on the module in this process, from any thread. */
  readonly initialize: number;
  readonly finalize: number;
}
