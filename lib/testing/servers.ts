// Small servers that run inside a namespace and say which host answered, so tests see balancing.
import type { Netns } from './netns';
import { peerCommand } from './peer-script';
import type { NetnsProcess } from './process';

/** Options of {@link startTcpServer} and {@link startHttpServer}. */
export interface ServerOptions {
  /** TCP port. Default 8080 (TCP) or 80 (HTTP). */
  port?: number;
  /** What the server reports as its identity. Default: the namespace's name. */
  name?: string;
  /** Address to bind. Default `'::'` (every IPv4 and IPv6 address, including a VIP on `lo`). */
  host?: string;
  /** How long to wait for it to listen. Default 30,000 ms. */
  timeoutMs?: number;
}

/** A server running inside a namespace; it stops when the namespace is removed, or with `stop()`. */
export interface TestServer {
  readonly ns: Netns;
  readonly name: string;
  readonly port: number;
  readonly process: NetnsProcess;
  stop(): Promise<void>;
}

async function start(ns: Netns, mode: 'tcp-server' | 'http-server', defaultPort: number, options: ServerOptions): Promise<TestServer> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const port = options.port ?? defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`options.port must be between 1 and 65535, got ${String(options.port)}`);
  const name = options.name ?? ns.name;
  if (typeof name !== 'string' || !/^[^\s]{1,64}$/.test(name)) throw new TypeError(`options.name must be 1-64 characters without spaces, got ${JSON.stringify(name)}`);
  const child = ns.spawn([...peerCommand(), mode, '--port', String(port), '--name', name, '--host', options.host ?? '::']);
  try {
    await child.waitForOutput(/^listening \d+$/m, { timeoutMs: options.timeoutMs ?? 30_000 });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { ns, name, port, process: child, stop: async () => { await child.stop(); } };
}

/**
 * Starts a TCP server in `ns`: each connection is greeted with the server's name and a newline,
 * then everything received is echoed back until the client closes. Resolves once it listens.
 */
export function startTcpServer(ns: Netns, options: ServerOptions = {}): Promise<TestServer> {
  return start(ns, 'tcp-server', 8080, options);
}

/**
 * Starts an HTTP/1.1 server in `ns`: every request is answered 200 with the header
 * `x-served-by: NAME` and the body `NAME\n` followed by the request body. Resolves once it listens.
 */
export function startHttpServer(ns: Netns, options: ServerOptions = {}): Promise<TestServer> {
  return start(ns, 'http-server', 80, options);
}
