// serveTokens(): the tokens a PKCS#11 URI selects, served over p11-kit's RPC protocol
// (version 0) on a Unix socket, so that p11-kit-client.so (or p11-kit remote's `remote:` config,
// or our own RPC client) in another process uses them. The modules are held through the
// process-wide lifecycle by one proxy; every client connection has its own sessions.
//
// The socket is only ever reachable by its owner unless asked otherwise: it is created inside
// a private (0700) directory, given its mode there, and only then linked at a caller's path
// (link() never replaces an existing file).
import { chmodSync, linkSync, lstatSync, mkdtempSync, rmSync, rmdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openProxyAsync } from '../proxy/open.js';
import type { ProxyModule } from '../proxy/proxy.js';
import type { ModuleEntry, RegistryOptions } from '../registry/types.js';
import { parseUri } from '../uri/parse.js';
import type { Uri } from '../uri/types.js';
import { ClientConnection } from './connection.js';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from './limits.js';
import { ServedSlots } from './slots.js';
import { ClientState, type LoginBook } from './state.js';

export interface ServeTokensOptions {
  /** Which tokens to serve (default `pkcs11:`: every slot of every module). */
  uri?: string;
  /** Where the socket goes (its directory must exist); default a private directory under $XDG_RUNTIME_DIR or the temp dir. */
  socketPath?: string;
  /** The socket's permission bits (default 0o600: its owner only). */
  mode?: number;
  /** Serve these modules instead of the registry's. */
  modules?: ModuleEntry[];
  registry?: RegistryOptions;
  /** Serve an already open proxy (not released by close()). */
  proxy?: ProxyModule;
  limits?: Partial<ServerLimits>;
  /** Told when a client broke the protocol and was disconnected. */
  onClientError?(reason: string): void;
}

export interface TokenServer {
  /** `unix:path=…`, the value for P11_KIT_SERVER_ADDRESS. */
  readonly address: string;
  readonly socketPath: string;
  /** Clients connected now. */
  readonly clients: number;
  /** Sessions the clients hold open now. */
  readonly sessions: number;
  /** Stops accepting, ends every connection (closing its sessions), lets the modules go, removes the socket. */
  close(): Promise<void>;
}

const TOKEN_KEYS = ['slotDescription', 'slotManufacturer', 'slotId', 'token', 'manufacturer', 'model', 'serial', 'moduleName', 'modulePath', 'libraryDescription', 'libraryManufacturer', 'libraryVersion'] as const;

function selectsEverything(uri: Uri): boolean {
  return TOKEN_KEYS.every((k) => (uri as unknown as Record<string, unknown>)[k] === undefined);
}

/**
 * Per slot, the clients that logged in there. PKCS#11 keeps one login per token for the whole
 * process, so the token stays logged in while any client that logged in (or was told it
 * already was) is still there: a client's C_Logout ends the token's login only when it is the
 * last of them, and a client that goes away without logging out counts as logging out.
 */
class Logins implements LoginBook {
  private readonly bySlot = new Map<number, Set<ClientState>>();

  constructor(private readonly everyone: () => ClientState[]) {}

  loggedIn(client: ClientState, slot: number): void {
    const set = this.bySlot.get(slot) ?? new Set();
    set.add(client);
    this.bySlot.set(slot, set);
  }

  logoutReaches(client: ClientState, slot: number): boolean {
    const set = this.bySlot.get(slot);
    if (!set?.has(client)) return true; // never logged in here: the module answers
    set.delete(client);
    if (set.size > 0) return false;
    this.bySlot.delete(slot);
    return true;
  }

  async forget(client: ClientState): Promise<void> {
    for (const [slot, set] of this.bySlot) {
      if (!set.delete(client) || set.size > 0) continue;
      this.bySlot.delete(slot);
      for (const other of this.everyone()) {
        const h = other.handles(slot)[0];
        if (h === undefined) continue;
        await other.session(h).async.logout().catch(() => undefined);
        break;
      }
    }
  }
}

function defaultSocketDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  let base = tmpdir();
  try {
    if (runtime && lstatSync(runtime).isDirectory() && lstatSync(runtime).uid === process.getuid?.()) base = runtime;
  } catch {
    // no usable runtime dir
  }
  return mkdtempSync(join(base, 'p11kit-server-'));
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => (server.off('error', reject), resolve()));
  });
}

export async function serveTokens(options: ServeTokensOptions = {}): Promise<TokenServer> {
  const uri = parseUri(options.uri ?? 'pkcs11:');
  const limits: ServerLimits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
  const mode = options.mode ?? 0o600;
  const proxy = options.proxy ?? (await openProxyAsync({ modules: options.modules, registry: options.registry }));
  const ownsProxy = options.proxy === undefined;
  const served = new ServedSlots(proxy, uri, selectsEverything(uri));
  const states = new Set<ClientState>();
  const connections = new Set<ClientConnection>();
  const logins = new Logins(() => [...states]);

  // The socket is made in a private directory; a caller's path gets a link to it.
  const privateDir = options.socketPath ? mkdtempSync(join(dirname(options.socketPath), '.p11kit-server-')) : defaultSocketDir();
  const made = join(privateDir, options.socketPath ? 'socket' : `pkcs11-${process.pid}`);
  const socketPath = options.socketPath ?? made;

  const server = createServer({ pauseOnConnect: false }, (socket: Socket) => {
    if (connections.size >= limits.maxClients) {
      socket.destroy();
      return;
    }
    const state = new ClientState(proxy, served, limits, logins);
    states.add(state);
    const conn = new ClientConnection(socket, state, { onViolation: options.onClientError });
    connections.add(conn);
    void conn.finished.then(() => {
      connections.delete(conn);
      states.delete(state);
    });
  });

  let linked = false;
  try {
    await listen(server, made);
    chmodSync(made, mode);
    if (mode & 0o077) chmodSync(privateDir, 0o711);
    if (options.socketPath) {
      linkSync(made, options.socketPath);
      linked = true;
      unlinkSync(made);
      rmdirSync(privateDir); // nothing is left behind if this process is killed
    }
  } catch (err) {
    server.close();
    if (linked) unlinkSync(options.socketPath!);
    rmSync(privateDir, { recursive: true, force: true });
    if (ownsProxy) await proxy.async.release();
    throw err;
  }
  const ino = lstatSync(socketPath).ino;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting; net.Server's close callback waits for the connections, so end them now.
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const pending = [...connections].map((c) => c.finished);
      for (const c of connections) c.close();
      await Promise.all([stopped, ...pending]);
      if (ownsProxy) await proxy.async.release();
      // Only our own socket is removed (someone may have replaced a caller's path since).
      try {
        if (lstatSync(socketPath).ino === ino) unlinkSync(socketPath);
      } catch {
        // already gone
      }
      if (!linked) rmSync(privateDir, { recursive: true, force: true });
    })());

  return {
    address: `unix:path=${socketPath}`,
    socketPath,
    get clients() {
      return connections.size;
    },
    get sessions() {
      return [...states].reduce((n, s) => n + s.handles().length, 0);
    },
    close,
  };
}
