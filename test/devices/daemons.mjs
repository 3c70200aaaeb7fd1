// Shared bits for the private daemons (pcscd, swtpm): free loopback ports, waiting for a
// listening socket without connecting to it (a connection to vpcd's port is a card insertion),
// and stopping a child for good even when the test process dies first.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** True when every port can be bound on loopback right now. */
async function free(ports) {
  for (const port of ports) {
    const ok = await new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

/** A random base port such that base .. base+count-1 are all free (a later bind may still race). */
export async function freePorts(count) {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if (await free(Array.from({ length: count }, (_, k) => base + k))) return base;
  }
  throw new Error('no free loopback ports found');
}

/** The TCP ports someone listens on (IPv4 and IPv6), read from /proc: no connection made. */
function listening() {
  const out = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') out.add(parseInt(cols[1].split(':').pop(), 16));
    }
  }
  return out;
}

export async function until(what, cond, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the ports listen, failing early if the child exits. */
export async function whenListening(child, ports, log) {
  await until(`ports ${ports.join(', ')} to listen`, () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the daemon exited (${child.exitCode ?? child.signalCode}): ${log()}`);
    const l = listening();
    return ports.every((p) => l.has(p));
  });
}

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Registers a child so that it dies with the test process. */
export function adopt(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}
