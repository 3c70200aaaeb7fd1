// A private pcscd with vpcd virtual readers. The daemon always serves /run/pcscd/, so it runs in
// its own mount namespace where /run is a fresh tmpfs and /run/pcscd is our temp dir; clients
// reach it through PCSCLITE_CSOCK_NAME (which libpcsclite reads once per process, at its first
// use: set it before anything in the process loads a PC/SC client). Nothing outside the temp
// dir is touched. The vpcd reader has two slots listening on consecutive loopback ports ("… 00 00"
// on the first, "… 00 01" on the second); a card connecting to one is inserted in that slot.
// One vpcd reader per daemon: the driver keys its state by slot number alone, so a second
// reader would take over the first one's slots.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adopt, freePorts, stop, whenListening } from './daemons.mjs';

export const PCSCD = '/usr/sbin/pcscd';
export const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';

/** True when pcscd and the vpcd driver are installed (the real-device suites need them). */
export const havePcscd = () => existsSync(PCSCD) && existsSync(VPCD_DRIVER);

/** Starts pcscd with a vpcd reader of this name (ykcs11 only uses readers named "Yubico …"). */
export async function startPcscd(friendlyName = 'Virtual PCD') {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStart(friendlyName);
    } catch (err) {
      if (attempt === 3) throw err; // a port taken between the check and pcscd's bind: try others
    }
  }
}

async function tryStart(name) {
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-pcscd-'));
  const run = join(dir, 'run');
  const conf = join(dir, 'reader.conf.d');
  mkdirSync(run);
  mkdirSync(conf);
  const port = await freePorts(2);
  writeFileSync(join(conf, 'vpcd'), `FRIENDLYNAME "${name}"\nDEVICENAME /dev/null:${port}\nLIBPATH ${VPCD_DRIVER}\nCHANNELID ${port}\n`);
  const script = 'mount -t tmpfs -o mode=0755 p11kit-pcscd /run && mkdir /run/pcscd && mount --bind "$1" /run/pcscd && exec "$2" --foreground -c "$3"';
  const unshare = process.getuid?.() === 0 ? ['-m'] : ['-r', '-m'];
  // setpriv's parent-death signal survives the execs: pcscd dies with the test process, however it ends.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'unshare', ...unshare, '--propagation', 'private', 'sh', '-c', script, 'sh', run, PCSCD, conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  adopt(child);
  let log = '';
  child.stdout.on('data', (d) => (log = (log + d).slice(-4000)));
  child.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const ports = [port, port + 1];
  const cleanup = async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await whenListening(child, ports, () => log);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    readers: [
      { name: `${name} 00 00`, port },
      { name: `${name} 00 01`, port: port + 1 },
    ],
    env: { PCSCLITE_CSOCK_NAME: join(run, 'pcscd.comm') },
    stop: cleanup,
  };
}
