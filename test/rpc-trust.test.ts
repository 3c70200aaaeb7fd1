// A second real module through the RPC client: p11-kit's trust module (the system's CA store,
// hundreds of certificate and trust objects) hosted by `p11-kit remote`, read object by object
// and compared with the same module loaded in-process by the bridge.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModule } from '../ts/bridge/modules.js';
import { CKA, CKO } from '../ts/rpc/constants.js';
import { isolateModule, type AsyncModule, type RemoteModule } from '../ts/rpc/index.js';

const TRUST = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so';
let remote: RemoteModule;
let local: AsyncModule;

beforeAll(async () => {
  remote = isolateModule(TRUST);
  local = loadModule(TRUST, { name: 'p11-kit-trust' });
  await remote.async.initialize();
  await local.async.initialize();
});

afterAll(async () => {
  await remote?.async.finalize().catch(() => undefined);
  await remote?.close();
  await local?.async.finalize().catch(() => undefined);
});

/** Every certificate of every token: label, category, trusted flag and a hash of the DER. */
async function certificates(m: AsyncModule): Promise<string[]> {
  const out: string[] = [];
  for (const slot of await m.async.getSlotList(true)) {
    const s = await m.async.openSession(slot);
    const handles = await m.async.findAllObjects(s, [{ type: CKA.CKA_CLASS, value: CKO.CKO_CERTIFICATE }]);
    for (const h of handles) {
      const [label, category, trusted, value] = await m.async.getAttributeValue(s, h, [CKA.CKA_LABEL, CKA.CKA_CERTIFICATE_CATEGORY, CKA.CKA_TRUSTED, CKA.CKA_VALUE]);
      const der = value!.value as Uint8Array;
      out.push(`${label!.value}|${category!.value}|${trusted!.value}|${createHash('sha256').update(der).digest('hex')}`);
    }
    await m.async.closeSession(s);
  }
  return out.sort();
}

describe('p11-kit-trust through p11-kit remote', () => {
  it('shows the same tokens', async () => {
    const slots = await remote.async.getSlotList(true);
    expect(slots).toEqual(await local.async.getSlotList(true));
    for (const slot of slots) {
      const [r, l] = [await remote.async.getTokenInfo(slot), await local.async.getTokenInfo(slot)];
      expect([r.label, r.manufacturerID, r.model, r.flags]).toEqual([l.label, l.manufacturerID, l.model, l.flags]);
    }
  });

  it('reads every certificate as the in-process module does', async () => {
    const viaRpc = await certificates(remote);
    expect(viaRpc.length).toBeGreaterThan(50);
    expect(viaRpc).toEqual(await certificates(local));
  });
});
