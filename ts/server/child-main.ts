// A per-client child process (isolation `process`): the client's connection is its fd 3 and
// the server's IPC channel brings the configuration. It opens the modules itself — its own
// C_Initialize through the lifecycle, so the login, sessions and objects are this client's
// alone, as in p11-kit server's per-client process — serves that one connection with the
// shared server's code, and exits when the client goes, when the server closes the channel,
// or when the server dies (which closes the channel too).
import { Socket } from 'node:net';
import { openProxyAsync } from '../proxy/open.js';
import { CONNECTION_FD, type ChildConfig, type ChildReport } from './child-protocol.js';
import { ClientConnection } from './connection.js';
import { servedSlots } from './slots.js';
import { ClientState, type LoginBook } from './state.js';

/** How long a reply still being written may hold the exit (a client that stopped reading). */
const FLUSH_MS = 1000;

/** The client is this process's only application: its C_Logout always reaches the module. */
const SOLE_CLIENT: LoginBook = { loggedIn: () => undefined, logoutReaches: () => true, forget: async () => undefined };

const socket = new Socket({ fd: CONNECTION_FD, readable: true, writable: true });
socket.on('error', () => undefined); // 'close' follows
let connection: ClientConnection | undefined;
let started = false;
let stopping = false;

function report(r: ChildReport): void {
  if (process.connected) process.send!(r, undefined, {}, () => undefined);
}

function stop(): void {
  stopping = true;
  if (!started) process.exit(0);
  if (connection) connection.close();
  else socket.destroy(); // the modules are still opening: serve() sees this and stops
}

async function serve(config: ChildConfig): Promise<number> {
  let proxy;
  try {
    proxy = await openProxyAsync({ modules: config.modules });
  } catch (err) {
    report({ failed: `a client's process could not open the modules: ${(err as Error).message}` });
    return 1;
  }
  try {
    if (stopping || socket.destroyed) return 0;
    const state = new ClientState(proxy, servedSlots(proxy, config.uri), config.limits, SOLE_CLIENT);
    let sessions = 0;
    connection = new ClientConnection(socket, state, {
      onViolation: (reason) => report({ violation: reason }),
      onAnswered: () => {
        const now = state.sessionCount;
        if (now !== sessions) report({ sessions: (sessions = now) });
      },
    });
    await connection.finished;
    return 0;
  } finally {
    await proxy.async.release().catch(() => undefined);
  }
}

/** What was written (a last reply, a handshake byte before a violation) goes out before the exit. */
async function flushed(): Promise<void> {
  if (socket.closed) return;
  socket.end();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, FLUSH_MS);
    socket.once('close', () => (clearTimeout(timer), resolve()));
  });
}

process.once('message', (config) => {
  started = true;
  void serve(config as ChildConfig)
    .catch(() => 1)
    .then(async (code) => {
      await flushed();
      process.exit(code);
    });
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);
// A terminal's Ctrl-C reaches the whole process group; the server decides when its children stop.
process.on('SIGINT', () => undefined);
