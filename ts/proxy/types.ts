// The proxy's public shapes: how it is opened, what it reports about the modules behind it,
// and what URI lookups return.
import type { AttributeResult } from '../bridge/attributes.js';
import type { SlotInfo, TokenInfo } from '../bridge/info.js';
import type { ObjectHandle, SlotId } from '../bridge/handles.js';
import type { ModuleState, Policy } from '../lifecycle/machine.js';
import type { ModuleEntry, RegistryOptions } from '../registry/types.js';
import type { WaitPlacement } from '../managed/wait-isolation.js';
import type { HostState } from '../rpc/host.js';
import type { RemoteTuning } from '../rpc/open.js';

export interface OpenProxyOptions {
  /**
   * Where the configuration lives and the program it is read for. It is evaluated as
   * p11-kit-proxy does (`forProxy`: modules with `disable-in: p11-kit-proxy` are left out).
   */
  registry?: RegistryOptions;
  /** Serve these modules, in this order, instead of reading the registry (e.g. a CLI's own selection). */
  modules?: ModuleEntry[];
  /** Re-entry policy after a generation change, for every module; default each module's `x-reinit-policy`. */
  policy?: Policy;
  /** Deadlines, reply limit and restart back-off of every `remote:` module; default each module's `x-rpc-*` options. */
  remote?: RemoteTuning;
  /**
   * How many modules may park a blocking C_WaitForSlotEvent on a dedicated thread at once
   * (default 2, leaving the bridge's other dedicated threads to blocking logins and the like);
   * modules beyond that are polled.
   */
  blockingWaits?: number;
  /** Poll period for modules that answer only C_WaitForSlotEvent(CKF_DONT_BLOCK) (default 100 ms). */
  pollIntervalMs?: number;
  /**
   * Where blocking waits are parked: 'in-process' on a dedicated thread (the module's
   * C_Finalize ends it); 'isolated' in a child process per module that only wakes the proxy up
   * (its events are then taken here with CKF_DONT_BLOCK; the child is killed on release);
   * 'auto' (default) isolates the modules whose C_Finalize is known not to survive their own
   * parked wait (OpenSC) and keeps the others in-process. A child counts against `blockingWaits`.
   */
  waits?: WaitPlacement;
}

/** Where the proxy was when a module failed. */
export type ProxyStage = 'open' | 'slot-list' | 'slot-info' | 'slot-event' | 'lookup' | 'host-lost';

/** A module problem the proxy reported and worked around (it kept serving the other modules). */
export interface ModuleFailure {
  module: string;
  stage: ProxyStage;
  /** The module's error as thrown (Pkcs11Error, LifecycleError, ModuleLoadError, ...). */
  error: Error;
  /** The module is out of the proxy for good (it could not be opened); otherwise only this call skipped it. */
  dropped: boolean;
}

/** One module behind the proxy, as the proxy sees it now. */
export interface ProxyModuleStatus {
  name: string;
  path?: string;
  critical: boolean;
  /** The module's process-wide lifecycle state, and the generation the proxy holds it in. */
  state: ModuleState;
  generation: number;
  /** Whether the proxy's calls can reach it now (not stale, not finalized behind its back). */
  usable: boolean;
  /** How the proxy gets its slot events: learned from its answers. */
  events: SlotEventMode;
  /** 'isolated' events: the child process waiting in the module (its pid), and whether its wait is parked. */
  watcher?: { pid?: number; ready: boolean };
  /** Remote modules only: their host's state (`state` above is that state in the lifecycle's terms). */
  host?: HostState;
}

/** 'isolated': a child process waits in the module and wakes the proxy up (see `waits`). */
export type SlotEventMode = 'unprobed' | 'none' | 'candidate' | 'block' | 'isolated' | 'poll';

/** A token found by URI. */
export interface ProxyToken {
  /** The proxy's (virtual) slot ID. */
  slot: SlotId;
  /** The module's registry name, and its own slot ID. */
  module: string;
  moduleSlot: SlotId;
  slotInfo: SlotInfo;
  token: TokenInfo;
}

/** An object found by URI: read in a session the lookup opened and closed again. */
export interface ProxyObject extends ProxyToken {
  /** Valid in this application's later sessions on the token (token objects; PKCS#11 §6.7.6). */
  handle: ObjectHandle;
  attributes: AttributeResult[];
}

/** A PIN: never logged, wiped from native memory after use. */
export type Pin = string | Uint8Array;

export interface FindObjectsOptions {
  /** The user PIN, or a function giving it per token (undefined: no login, public objects only). */
  pin?: Pin | ((token: ProxyToken) => Pin | undefined | Promise<Pin | undefined>);
  /** Attributes to read from each object (default CKA_CLASS, CKA_LABEL, CKA_ID). */
  attributes?: number[];
}
