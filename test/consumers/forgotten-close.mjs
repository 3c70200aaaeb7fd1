// A program that uses the service and forgets close(): it must still exit once it is done
// (the worker keeps the process alive only while a call is in flight or an event awaited).
import { createPkcs11Worker } from 'p11kit-wasm';

const p11 = createPkcs11Worker();
const mod = await p11.openModule(process.env.P11KIT_MODULE);
const [{ slot }] = await mod.slots();
const s = await mod.openSession(slot);
const random = await s.generateRandom(16);
// A stream opened and never read does not hold the process either.
mod.slotEvents({ mode: 'poll' });
console.log(`forgot close, ${random.length} random bytes`);
