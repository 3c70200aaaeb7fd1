// One waiter on a proxy whose only module returns CKR_NO_EVENT at once from blocking waits
// (the event fixture made sloppy), in its own process so that its CPU time is all ours:
// prints one JSON line with the share of a core used over two seconds, and the event it got.
import koffi from 'koffi';

const { libDir, registry, module } = JSON.parse(process.argv[2]);
const { openProxy } = await import(`${libDir}/index.js`);
const proxy = openProxy({ registry });
const lib = koffi.load(module);
const sloppy = lib.func('void event_module_sloppy(int)');
const raise = lib.func('int event_module_raise(unsigned long)');
sloppy(1);
const waiting = proxy.waitForSlotEvent(0);
await new Promise((r) => setTimeout(r, 300)); // past start-up and the first re-parks
const cpu = process.cpuUsage();
const started = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, 2000));
const used = process.cpuUsage(cpu);
const wallUs = Number(process.hrtime.bigint() - started) / 1000;
raise(10);
const slot = await waiting;
const failures = proxy.failures.map((f) => String(f.error));
proxy.release();
console.log(JSON.stringify({ share: (used.user + used.system) / wallUs, slot, failures }));
