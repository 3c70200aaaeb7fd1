// ykcs11 (YubiKey PIV), a real module without slot events: its C_WaitForSlotEvent answers
// CKR_FUNCTION_NOT_SUPPORTED, blocking or not. Our PIV card in a reader named "Yubico …" (the
// only readers ykcs11 uses) is seen by ykcs11 and by stock OpenSC (its PIV driver) at once.
// The proxy takes its events from OpenSC and leaves ykcs11 out of them ('none') without failing;
// the ykcs11 token is followed by polling the slot list; the service's event stream compares
// token presence between rounds for it.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKR, Pkcs11Error, createPkcs11Worker, openProxy, type ProxyModule } from '../ts/index.js';
import { createConfTree, type ConfTree } from './helpers/proxy-tree.js';
import { startCardRig, within, type CardRig } from './devices/card-rig.js';
import { OPENSC_MODULE, YKCS11_MODULE } from './devices/opensc.mjs';
import { havePcscd } from './devices/pcscd.mjs';
import { until } from './devices/daemons.mjs';

const SERIAL = 4242;
const YK_URI = `pkcs11:manufacturer=${encodeURIComponent('Yubico (www.yubico.com)')};serial=${SERIAL}`;
const PIV_URI = `pkcs11:model=${encodeURIComponent('PKCS#15 emulated')}`;

let rig: CardRig;
let tree: ConfTree;
beforeAll(async () => {
  if (!havePcscd() || !existsSync(YKCS11_MODULE)) return;
  rig = await startCardRig({ kind: 'piv', serial: SERIAL }, 'Yubico Virtual');
  tree = createConfTree();
  tree.module('opensc', `module: ${OPENSC_MODULE}\npriority: 1\n`);
  tree.module('ykcs11', `module: ${YKCS11_MODULE}\n`);
});
afterAll(async () => {
  await rig?.close();
  tree?.cleanup();
});

const tokensBy = (p: ProxyModule, uri: string) => p.findTokens(uri).map((t) => [t.module, t.token.label.trim()]);

describe.skipIf(!havePcscd() || !existsSync(YKCS11_MODULE))('ykcs11: a module without slot events, next to OpenSC', { timeout: 120_000 }, () => {
  it('proxy: events come from OpenSC, ykcs11 is left out of them (none), and polling finds its token come and go', async () => {
    const p = openProxy({ registry: tree.registry, pollIntervalMs: 50, blockingWaits: 0 });
    try {
      expect(p.modules.map((m) => m.name)).toEqual(['opensc', 'ykcs11']);
      expect(p.findTokens(YK_URI)).toEqual([]);
      await rig.card.insert();
      const inserted = await within('the insertion event', p.waitForSlotEvent());
      expect(p.slotOwner(inserted!).module).toBe('opensc');
      expect(tokensBy(p, PIV_URI)).toEqual([['opensc', 'PIV_II']]);
      await until('ykcs11 to list the token (polled)', () => p.findTokens(YK_URI).length === 1);
      expect(tokensBy(p, YK_URI)).toEqual([['ykcs11', `YubiKey PIV #${SERIAL}`]]);
      expect(p.modules.find((m) => m.name === 'ykcs11')!.events).toBe('none');

      await rig.card.remove();
      expect(await within('the removal event', p.waitForSlotEvent())).toBe(inserted);
      await until('ykcs11 to drop the token (polled)', () => p.findTokens(YK_URI).length === 0);
      expect(p.failures.filter((f) => f.stage === 'slot-event')).toEqual([]);
    } finally {
      p.release();
    }
  });

  it('service: block mode refuses with the typed error; auto and poll modes fall back to comparing token presence', async () => {
    const p11 = createPkcs11Worker();
    try {
      const mod = await p11.openModule(YKCS11_MODULE);
      const err = await within('the block stream\'s answer', mod.slotEvents({ mode: 'block' }).next().catch((e: unknown) => e));
      expect(err).toBeInstanceOf(Pkcs11Error);
      expect(err).toMatchObject({ rv: CKR.CKR_FUNCTION_NOT_SUPPORTED, fn: 'C_WaitForSlotEvent' });
      const [slot] = (await mod.slots(false)).filter((s) => s.info.slotDescription.trim() === rig.reader).map((s) => s.slot);
      for (const mode of ['auto', 'poll'] as const) {
        const events = mod.slotEvents({ mode, intervalMs: 50 });
        const first = events.next();
        // The stream compares against the presence it saw when it started: let it start first.
        await new Promise((r) => setTimeout(r, 500));
        await rig.card.insert();
        expect((await within(`${mode}: the insertion`, first)).value).toEqual({ module: mod.id, slot, tokenPresent: true, via: 'poll' });
        await rig.card.remove();
        expect((await within(`${mode}: the removal`, events.next())).value).toEqual({ module: mod.id, slot, tokenPresent: false, via: 'poll' });
        await events.return?.();
      }
    } finally {
      await p11.close();
    }
  });
});
