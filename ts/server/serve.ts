// serveTokens(): the tokens a PKCS#11 URI selects, served over p11-kit's RPC protocol
// (version 0) on a Unix socket, so that p11-kit-client.so (or p11-kit remote's `remote:` config,
// or our own RPC client) in another process uses them. By default every client is served by a
// process of its own that opens the modules itself (isolated.ts), as p11-kit server does;
// isolation `shared` serves them all in this process through one proxy (shared.ts).
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
import { loadRegistry } from '../registry/load.js';
import type { ModuleEntry, RegistryOptions } from '../registry/types.js';
import { parseUri } from '../uri/parse.js';
import type { Uri } from '../uri/types.js';
import type { ClientHost, Isolation } from './host.js';
import { ChildClients, childEntry } from './isolated.js';
import { resolveLimits, type ServerLimits } from './limits.js';
import { SharedClients } from './shared.js';
import { servedSlots } from './slots.js';

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
  /**
   * `process` (default): each client is served by a child process of its own that opens the
   * modules itself, so its login, sessions and objects are its own. `shared`: all clients are
   * served in this process through one proxy, sharing the token's login (see README).
   */
  isolation?: Isolation;
  /** Serve an already open proxy (isolation `shared` only; not released by close()). */
  proxy?: ProxyModule;
  limits?: Partial<ServerLimits>;
  /** Told when a client broke the protocol and was disconnected, or its process failed (never carries secrets). */
  onClientError?(reason: string): void;
  /** Isolation `process`: how long close() lets a child finish its call in progress before killing it (default 10 s). */
  exitGraceMs?: number;
}

export interface TokenServer {
  /** `unix:path=…`, the value for P11_KIT_SERVER_ADDRESS. */
  readonly address: string;
  readonly socketPath: string;
  readonly isolation: Isolation;
  /** The limits in force: the defaults with `options.limits` over them. */
  readonly limits: Readonly<ServerLimits>;
  /** Clients connected now (isolation `process`: their child processes still running). */
  readonly clients: number;
  /** Sessions the clients hold open now (isolation `process`: as the children last reported). */
  readonly sessions: number;
  /** Stops accepting, ends every connection (closing its sessions; `process`: every child exited and reaped), lets the modules go, removes the socket. */
  close(): Promise<void>;
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

const EXIT_GRACE_MS = 10_000;

/**
 * Isolation `process`: the modules a child opens (the given ones, or the registry's for the
 * proxy), opened once here first so that a critical module failing fails serveTokens() as it
 * would in `shared`; the children get the same list.
 */
async function childHost(options: ServeTokensOptions, uri: Uri, limits: ServerLimits): Promise<ClientHost> {
  if (options.proxy) throw new TypeError("serveTokens: an open proxy can only be served with isolation: 'shared' (each client's process opens the modules itself)");
  const entry = childEntry();
  const modules = options.modules ?? loadRegistry({ ...options.registry, forProxy: true }).modules;
  await (await openProxyAsync({ modules })).async.release();
  // The children select slots by the URI; a PIN in it is no business of theirs (the child protocol carries no secret).
  const { pinValue: _pin, ...served } = uri;
  return new ChildClients(entry, { uri: served, modules, limits }, { onClientError: options.onClientError, exitGraceMs: options.exitGraceMs ?? EXIT_GRACE_MS });
}

/** Isolation `shared`: one proxy (the caller's, or opened here and released by close()). */
async function sharedHost(options: ServeTokensOptions, uri: Uri, limits: ServerLimits): Promise<{ host: ClientHost; release(): Promise<void> }> {
  const proxy = options.proxy ?? (await openProxyAsync({ modules: options.modules, registry: options.registry }));
  const release = async () => {
    if (!options.proxy) await proxy.async.release();
  };
  return { host: new SharedClients(proxy, servedSlots(proxy, uri), limits, options.onClientError), release };
}

export async function serveTokens(options: ServeTokensOptions = {}): Promise<TokenServer> {
  const isolation: Isolation = options.isolation ?? 'process';
  if (isolation !== 'process' && isolation !== 'shared') throw new TypeError(`serveTokens: isolation '${String(isolation)}' is neither 'process' nor 'shared'`);
  const limits: Readonly<ServerLimits> = Object.freeze(resolveLimits(options.limits));
  const mode = options.mode ?? 0o600;
  const uri = parseUri(options.uri ?? 'pkcs11:'); // a bad URI fails here, before any module is opened
  let host: ClientHost;
  let release = async (): Promise<void> => undefined;
  if (isolation === 'process') host = await childHost(options, uri, limits);
  else ({ host, release } = await sharedHost(options, uri, limits));

  // The socket is made in a private directory; a caller's path gets a link to it.
  const privateDir = options.socketPath ? mkdtempSync(join(dirname(options.socketPath), '.p11kit-server-')) : defaultSocketDir();
  const made = join(privateDir, options.socketPath ? 'socket' : `pkcs11-${process.pid}`);
  const socketPath = options.socketPath ?? made;

  // Accepted paused: with isolation `process` no byte of a client's may be read here.
  const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
    if (host.clients >= limits.maxClients) {
      options.onClientError?.(`a client was refused: ${limits.maxClients} are connected, the most allowed (limits.maxClients)`);
      socket.destroy();
      return;
    }
    host.accept(socket);
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
    await release();
    throw err;
  }
  const ino = lstatSync(socketPath).ino;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting; net.Server's close callback waits for the connections it counts, so end them now.
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([host.close(), stopped]);
      await release();
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
    isolation,
    limits,
    get clients() {
      return host.clients;
    },
    get sessions() {
      return host.sessions;
    },
    close,
  };
}
