// The program the kit's servers and clients run inside a namespace (`ip netns exec NS node
// peer.js MODE --option value…`). It reads nothing from the kit: arguments in, JSON lines out.
//
//   tcp-server  --port P --name N [--host H]   greets each connection with "N\n", then echoes
//   http-server --port P --name N [--host H]   answers "N\n" + the request body, header x-served-by: N
//   tcp-client  --host H --port P [--connections C] [--local-address A] [--timeout MS]
//               sends stdin on each connection (one after the other) and prints one JSON line each
//   http-client --url U [--requests C] [--method M] [--local-address A] [--timeout MS]
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

function options(argv: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key?.startsWith('--') || value === undefined) throw new Error(`bad argument ${String(key)}`);
    map.set(key.slice(2), value);
  }
  return map;
}

function required(opts: Map<string, string>, key: string): string {
  const value = opts.get(key);
  if (value === undefined) throw new Error(`--${key} is required`);
  return value;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function listening(server: net.Server | http.Server): void {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : String(address)}\n`);
}

function tcpServer(opts: Map<string, string>): void {
  const name = required(opts, 'name');
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });
  server.listen({ port: Number(required(opts, 'port')), host: opts.get('host') ?? '::', ipv6Only: false }, () => listening(server));
}

function httpServer(opts: Map<string, string>): void {
  const name = required(opts, 'name');
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat([Buffer.from(`${name}\n`), ...chunks]);
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-served-by': name, connection: 'close' });
      response.end(body);
    });
  });
  server.listen({ port: Number(required(opts, 'port')), host: opts.get('host') ?? '::', ipv6Only: false }, () => listening(server));
}

function tcpExchange(opts: Map<string, string>, payload: Buffer): Promise<object> {
  const timeout = Number(opts.get('timeout') ?? 10_000);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: required(opts, 'host'), port: Number(required(opts, 'port')), localAddress: opts.get('local-address') });
    const chunks: Buffer[] = [];
    let local = { address: '', port: 0 };
    socket.setTimeout(timeout, () => socket.destroy(new Error(`no progress for ${timeout} ms`)));
    socket.on('connect', () => { local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 }; socket.end(payload); });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (hadError) return;
      const all = Buffer.concat(chunks);
      const newline = all.indexOf(10);
      const echoed = newline < 0 ? Buffer.alloc(0) : all.subarray(newline + 1);
      resolve({
        server: newline < 0 ? null : all.subarray(0, newline).toString(),
        localAddress: local.address,
        localPort: local.port,
        sent: payload.length,
        received: echoed.length,
        receivedSha256: sha256(echoed),
      });
    });
  });
}

function httpExchange(opts: Map<string, string>, body: Buffer): Promise<object> {
  const timeout = Number(opts.get('timeout') ?? 10_000);
  const method = opts.get('method') ?? (body.length > 0 ? 'POST' : 'GET');
  return new Promise((resolve, reject) => {
    const request = http.request(required(opts, 'url'), {
      method, agent: false, localAddress: opts.get('local-address'), timeout,
      headers: body.length > 0 ? { 'content-length': body.length } : {},
    }, (response) => {
      const localPort = response.socket.localPort;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => resolve({
        status: response.statusCode,
        server: response.headers['x-served-by'] ?? null,
        localPort,
        body: Buffer.concat(chunks).toString(),
      }));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer for ${timeout} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}

async function client(opts: Map<string, string>, exchange: (opts: Map<string, string>, payload: Buffer) => Promise<object>, countKey: string): Promise<void> {
  const payload = await readStdin();
  const count = Number(opts.get(countKey) ?? 1);
  for (let i = 0; i < count; i += 1) {
    process.stdout.write(`${JSON.stringify(await exchange(opts, payload))}\n`);
  }
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  const opts = options(rest);
  switch (mode) {
    case 'tcp-server': tcpServer(opts); break;
    case 'http-server': httpServer(opts); break;
    case 'tcp-client': await client(opts, tcpExchange, 'connections'); break;
    case 'http-client': await client(opts, httpExchange, 'requests'); break;
    default: throw new Error(`unknown mode ${String(mode)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
