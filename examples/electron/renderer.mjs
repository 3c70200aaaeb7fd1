// The page: no Node, no koffi. It talks to the utility process's service through the
// MessagePort its preload hands over. build.mjs bundles this file (with the library's koffi-free
// entry, 'p11kit-wasm/service/browser') into dist/renderer.js, which index.html loads.
import { CKA, CKM, CKO, connectPkcs11, ServiceRefusedError, webPortEndpoint } from 'p11kit-wasm/service/browser';

const out = /** @type {HTMLElement} */ (document.getElementById('out'));
const show = (line) => (out.textContent += `${line}\n`);
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

window.addEventListener('message', async (event) => {
  if (event.source !== window || event.data?.type !== 'pkcs11-port') return;
  const service = connectPkcs11(webPortEndpoint(event.ports[0]));
  show(`connected to service generation ${event.data.generation}`);
  try {
    // The host allows this one module by path (see pkcs11-host.mjs); anything else is refused.
    const mod = await service.openModule('/usr/lib/softhsm/libsofthsm2.so');
    const [first] = await mod.slots();
    if (!first) return show('no token');
    const session = await mod.openSession(first.slot);
    const random = await session.generateRandom(16);
    show(`token "${first.token?.label}": 16 random bytes ${hex(random)}`);
    const digest = await session.digest(CKM.CKM_SHA256, new TextEncoder().encode('hello'));
    show(`SHA-256("hello") = ${hex(digest)}`);
    const keys = await session.findObjects([{ type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]);
    show(`${keys.length} private key(s) visible without logging in`);
    try {
      await session.generateKey(CKM.CKM_AES_KEY_GEN, [{ type: CKA.CKA_VALUE_LEN, value: 32 }]);
    } catch (err) {
      if (err instanceof ServiceRefusedError) show(`refused as expected: ${err.message}`);
      else throw err;
    }
    for await (const ev of mod.slotEvents()) show(`slot ${ev.slot}: token ${ev.tokenPresent ? 'inserted' : 'removed'}`);
  } catch (err) {
    // Errors keep their class and fields (rv, code, fn, module) across the port.
    const e = /** @type {Error} */ (err);
    show(`${e.name}: ${e.message}`);
  }
});
