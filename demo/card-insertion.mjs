// The demo's real-device part: a card put into a reader and taken out again, seen through the
// real PC/SC stack (a private pcscd with a vpcd virtual reader, opensc-pkcs11) by the proxy's
// slot events and URI lookups. The card is the tests' virtual card (test/devices/). Needs the
// pcscd, vsmartcard-vpcd and opensc-pkcs11 packages; says so, and does nothing, without them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CKF_SLOT, openProxy } from 'p11kit-wasm';
import { VirtualCard } from '../test/devices/cards.mjs';
import { OPENSC_MODULE, writeOpenscConf } from '../test/devices/opensc.mjs';
import { havePcscd, startPcscd } from '../test/devices/pcscd.mjs';
import { existsSync } from 'node:fs';

const LABEL = 'Demo Card';
const SERIAL = 'de1c0de5';

const within = (what, p, ms = 20_000) => {
  let t;
  return Promise.race([p.finally(() => clearTimeout(t)), new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))]);
};

/** Runs the card part, printing with line(); returns false when the machine cannot run it. */
export async function showCardInsertion(line) {
  if (!havePcscd() || !existsSync(OPENSC_MODULE)) {
    line('skipped: this machine lacks pcscd, vsmartcard-vpcd or opensc-pkcs11 (`make deps` installs them)');
    return false;
  }
  let pcscd;
  try {
    pcscd = await startPcscd();
  } catch (err) {
    line(`skipped: a private pcscd could not be started here (${err.message.split('\n')[0]})`);
    return false;
  }
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-democard-'));
  const card = new VirtualCard({ kind: 'pkcs15', label: LABEL, serial: SERIAL }, pcscd.readers[0].port);
  let proxy;
  try {
    // PC/SC clients find the daemon through the environment, read at their first use: before OpenSC loads.
    Object.assign(process.env, pcscd.env, { OPENSC_CONF: writeOpenscConf(dir) });
    mkdirSync(join(dir, 'modules'));
    writeFileSync(join(dir, 'modules/opensc.module'), `module: ${OPENSC_MODULE}\n`);
    writeFileSync(join(dir, 'pkcs11.conf'), '');
    const none = join(dir, 'none');
    proxy = openProxy({ registry: { systemConfig: join(dir, 'pkcs11.conf'), systemModules: join(dir, 'modules'), packageModules: none, userConfig: none, userModules: none },
      // OpenSC's blocking wait is parked in a child process, never in ours (README, Real devices).
      pollIntervalMs: 50 });
    const slot = proxy.getSlotList().find((s) => proxy.getSlotInfo(s).slotDescription.trim() === pcscd.readers[0].name);
    const present = () => (proxy.getSlotInfo(slot).flags & CKF_SLOT.CKF_TOKEN_PRESENT) !== 0;
    const uri = `pkcs11:token=${encodeURIComponent(LABEL)}`;
    line(`private pcscd with reader '${pcscd.readers[0].name}' = proxy slot ${slot}; token present: ${present()}`);

    let t0 = performance.now();
    const inserted = proxy.waitForSlotEvent();
    await card.insert();
    const a = await within('insertion event', inserted);
    const [found] = proxy.findTokens(uri);
    line(`card inserted: slot event for slot ${a} after ${Math.round(performance.now() - t0)} ms; token present: ${present()}`);
    line(`findTokens('${uri}') -> slot ${found?.slot}, label '${found?.token.label}', serial ${found?.token.serialNumber}`);

    t0 = performance.now();
    const removed = proxy.waitForSlotEvent();
    await card.remove();
    const b = await within('removal event', removed);
    line(`card removed: slot event for slot ${b} after ${Math.round(performance.now() - t0)} ms; token present: ${present()}; findTokens -> ${proxy.findTokens(uri).length} tokens`);
    return true;
  } finally {
    await proxy?.async.release(); // kills and reaps that child
    await card.close();
    await pcscd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
