// A program that watches OpenSC's slots through the proxy and then goes away without releasing
// it: argv is the built library's URL and the registry options (JSON). It prints its waiter
// child's pid once that child's wait is parked, then exits on "exit" on stdin (or is killed).
const [lib, registry] = process.argv.slice(2);
const { openProxy } = await import(lib);
const p = openProxy({ registry: JSON.parse(registry), pollIntervalMs: 50 });
p.waitForSlotEvent().catch(() => undefined);
const end = Date.now() + 60_000;
while (!p.modules[0]?.watcher?.ready) {
  if (Date.now() > end) throw new Error(`no waiter child: ${JSON.stringify(p.modules)}`);
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write(`${p.modules[0].watcher.pid}\n`);
process.stdin.on('data', (d) => {
  if (String(d).includes('exit')) process.exit(0);
});
