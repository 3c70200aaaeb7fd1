// The page: no Node, no koffi. It talks to the utility process's service through its
// MessagePort. Bundle this file with your bundler of choice: 'p11kit-wasm/service/browser' is
// the koffi-free client (no Node built-ins, no native code; its one dependency is comlink).
import { connectPkcs11, webPortEndpoint } from 'p11kit-wasm/service/browser';

const out = document.getElementById('out');
const show = (line) => (out.textContent += `${line}\n`);

window.addEventListener('message', async (event) => {
  if (event.source !== window || event.data?.type !== 'pkcs11-port') return;
  const service = connectPkcs11(webPortEndpoint(event.ports[0]));
  show(`connected to service generation ${event.data.generation}`);
  try {
    const mod = await service.openModule('/usr/lib/softhsm/libsofthsm2.so');
    const [first] = await mod.slots();
    if (!first) return show('no token');
    const session = await mod.openSession(first.slot);
    const random = await session.generateRandom(16);
    show(`token "${first.token.label}": 16 random bytes ${[...random].map((b) => b.toString(16).padStart(2, '0')).join('')}`);
    for await (const ev of mod.slotEvents()) show(`slot ${ev.slot}: token ${ev.tokenPresent ? 'inserted' : 'removed'}`);
  } catch (err) {
    // Errors keep their name and fields (rv, code, fn, module) across the port.
    show(`${err.name}: ${err.message}`);
  }
});
