// The waiter process of an isolated slot-event watch (wake-process.ts): it loads the module
// the parent names, initializes it, and parks blocking C_WaitForSlotEvent calls in a loop,
// writing one line to fd 3 per event. The parent never parks a wait in its own instance of the
// module, so its C_Finalize never races a waiting thread; this process is ended by SIGKILL,
// never finalized, and whatever the module does while dying here cannot reach the parent.
//
// It gets no PIN and opens no session. Its orders come on stdin (one JSON line: the module's
// file and C_Initialize's reserved string, kept out of the process listing); stdin closing
// means the parent is gone, and it ends at once.
//
// Lines on fd 3: `ready` (initialized, about to wait), `event` (a wait returned one),
// `unsupported` (the module cannot block), `error <CK_RV or text>` (then it exits).
import { writeSync } from 'node:fs';
import { loadModule } from '../bridge/modules.js';
import { CKR } from '../bridge/ckr.js';

const OUT = 3;
/** What the order line may be at most: a path and a reserved string. */
const MAX_ORDER = 64 * 1024;

const say = (line: string) => writeSync(OUT, line + '\n');
const die = () => process.kill(process.pid, 'SIGKILL');

function fail(err: unknown): never {
  const rv = (err as { rv?: unknown } | null)?.rv;
  const text = typeof rv === 'number' ? String(rv) : String((err as Error)?.message ?? err).replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  try {
    say(`error ${text}`);
  } finally {
    die();
  }
  throw err;
}

async function watch(order: { path: string; initReserved?: string | null }): Promise<void> {
  const module = loadModule(order.path);
  module.initialize({ reserved: order.initReserved ?? null });
  // Some modules (OpenSC) learn their readers here, not in C_Initialize: without it, the wait
  // would watch no reader.
  module.getSlotList(false);
  say('ready');
  for (;;) {
    let slot: unknown;
    try {
      slot = await module.async.waitForSlotEvent(0);
    } catch (err) {
      if ((err as { rv?: unknown }).rv === CKR.CKR_FUNCTION_NOT_SUPPORTED) {
        say('unsupported');
        die();
        return;
      }
      throw err;
    }
    // CKR_NO_EVENT from a blocking wait: a sloppy module; not an event, and not a reason to spin.
    if (slot === null) await new Promise((r) => setTimeout(r, 100));
    else say('event');
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  if (input.includes('\n')) return;
  input += chunk;
  if (input.length > MAX_ORDER) fail(new Error('order too long'));
  const nl = input.indexOf('\n');
  if (nl < 0) return;
  let order: { path?: unknown; initReserved?: unknown };
  try {
    order = JSON.parse(input.slice(0, nl));
  } catch (err) {
    fail(err);
  }
  if (typeof order.path !== 'string' || (order.initReserved != null && typeof order.initReserved !== 'string')) fail(new Error('bad order'));
  watch(order as { path: string; initReserved?: string }).catch(fail);
});
// The parent is gone (or let go of us): nothing is left to wake.
process.stdin.on('end', die);
process.stdin.on('error', die);
