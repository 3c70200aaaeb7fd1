// Which of the proxy's slots the server serves: all of them for a URI without slot or token
// attributes, else those whose token the URI matches (as p11-kit server filters tokens).
import { CKR } from '../bridge/ckr.js';
import { Pkcs11Error } from '../bridge/errors.js';
import { asSlotId, type SlotId } from '../bridge/handles.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { Uri } from '../uri/types.js';

const TOKEN_KEYS = ['slotDescription', 'slotManufacturer', 'slotId', 'token', 'manufacturer', 'model', 'serial', 'moduleName', 'modulePath', 'libraryDescription', 'libraryManufacturer', 'libraryVersion'] as const;

function selectsEverything(uri: Uri): boolean {
  return TOKEN_KEYS.every((k) => (uri as unknown as Record<string, unknown>)[k] === undefined);
}

export class ServedSlots {
  private known = new Set<number>();

  constructor(
    private readonly proxy: ProxyModule,
    private readonly uri: Uri,
    private readonly everything: boolean,
  ) {}

  /** The served slots now, in the proxy's order. */
  async slots(tokenPresent: boolean): Promise<SlotId[]> {
    const all = await this.proxy.async.getSlotList(tokenPresent);
    let out = all;
    if (!this.everything) {
      const matching = new Set((await this.proxy.async.findTokens(this.uri)).map((t) => t.slot));
      out = all.filter((s) => matching.has(s));
    }
    // A full listing says exactly what is served; a token-present one can only add.
    this.known = tokenPresent ? new Set([...this.known, ...out]) : new Set(out);
    return out;
  }

  /** A slot the client may use (a number off the wire, checked here); CKR_SLOT_ID_INVALID for any other. */
  async slot(id: number): Promise<SlotId> {
    if (!this.known.has(id)) await this.slots(false);
    if (!this.known.has(id)) throw new Pkcs11Error(CKR.CKR_SLOT_ID_INVALID, 'slot', 'p11kit server');
    return asSlotId(id);
  }
}

/** The slots of `proxy` that the (parsed) URI selects. */
export function servedSlots(proxy: ProxyModule, uri: Uri): ServedSlots {
  return new ServedSlots(proxy, uri, selectsEverything(uri));
}
