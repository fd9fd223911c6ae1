// The director test bed: a client namespace, a director namespace (VIP 10.1.0.1) and one
// namespace per real server (10.2.N.2, NAT through the director), each with an HTTP server;
// and a Director run inside the director namespace by harness.mjs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Ipvs, type Destination, type ServiceKey } from '../../../lib/index';
import { connectNetns, createNetns, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from '../helpers';

const HERE = path.resolve(process.cwd(), 'test/kernel/director');
export const DIRECTOR_DIST = path.resolve(process.cwd(), 'dist/director/index.js');

export interface RealServer {
  name: string;
  ns: TestNetns;
  address: string;
  start(): Promise<void>;
  stop(): void;
  /** Sets what GET /health/TAG answers: 'up', 'down' or 'flap'. */
  mode(tag: string, mode: 'up' | 'down' | 'flap'): void;
}

export class Topology {
  readonly client = createNetns('dc');
  readonly director = createNetns('dd');
  readonly servers: RealServer[] = [];
  readonly modeDir = mkdtempSync(path.join(tmpdir(), 'director-modes-'));
  readonly #processes: BackgroundProcess[] = [];
  ipvs!: Ipvs;

  constructor(serverCount: number) {
    connectNetns(this.client, 'c0', this.director, 'd0', { a: ['10.1.0.2/24'], b: ['10.1.0.1/24'] });
    this.client.run('ip', ['route', 'add', 'default', 'via', '10.1.0.1']);
    this.director.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (let n = 1; n <= serverCount; n++) {
      const ns = createNetns(`ds${n}`);
      connectNetns(this.director, `d${n}`, ns, 'r0', { a: [`10.2.${n}.1/24`], b: [`10.2.${n}.2/24`] });
      ns.run('ip', ['route', 'add', 'default', 'via', `10.2.${n}.1`]);
      const name = `s${n}`;
      let proc: BackgroundProcess | undefined;
      const server: RealServer = {
        name, ns, address: `10.2.${n}.2`,
        start: async () => {
          // One process per server answering in-process: a fork per request (socat + sh) takes
          // longer than a check's timeout under emulation.
          proc = spawnIn(ns, process.execPath, [path.join(HERE, 'http-server.mjs'), '8080', name, this.modeDir]);
          this.#processes.push(proc);
          await waitFor(`${name} to listen`, () => proc!.output().includes('listening'), { intervalMs: 50, timeoutMs: 120_000 });
        },
        stop: () => {
          proc?.stop();
          proc = undefined;
        },
        mode: (tag, mode) => writeFileSync(path.join(this.modeDir, `${name}-${tag}`), mode),
      };
      this.servers.push(server);
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.start()));
    this.ipvs = await Ipvs.open({ netns: this.director.path });
  }

  /** A destination as the kernel has it now, or undefined. */
  async destination(service: ServiceKey, address: string): Promise<Destination | undefined> {
    const dests = await this.ipvs.listDestinations(service).catch(() => [] as Destination[]);
    return dests.find((d) => d.address === address);
  }

  /** GET through the VIP from the client namespace; the body, or '' on failure. */
  get(port: number, urlPath = '/'): string {
    try {
      // A bound for a loaded emulator, not for the answer: a server answers at once or refuses.
      return this.client.run('curl', ['-s', '--max-time', '10', `http://10.1.0.1:${port}${urlPath}`]).trim();
    } catch {
      return '';
    }
  }

  /** Opens a connection through the VIP that stays open (GET /hold); resolves with the server that took it. */
  async hold(port: number): Promise<{ server: string; close(): void }> {
    const conn = spawnIn(this.client, 'socat', ['-T', '60', '-', `TCP:10.1.0.1:${port},connect-timeout=3`]);
    this.#processes.push(conn);
    conn.write('GET /hold HTTP/1.1\r\nHost: vip\r\n\r\n');
    const text = await waitFor('the held connection to be answered', () => /start (s\d+)/.exec(conn.output())?.[1], { intervalMs: 50 });
    return { server: text, close: () => conn.stop() };
  }

  async close(): Promise<void> {
    for (const p of this.#processes) p.stop();
    await this.ipvs?.close();
    for (const ns of [this.client, this.director, ...this.servers.map((s) => s.ns)]) {
      try { ns.remove(); } catch { /* already gone */ }
    }
    rmSync(this.modeDir, { recursive: true, force: true });
  }
}

/** The harness process and what it printed. */
export class DirectorProcess {
  readonly events: Array<Record<string, any>> = [];
  readonly #child: ChildProcess;
  readonly #replies = new Map<number, (value: { result?: unknown; error?: { message: string } }) => void>();
  #nextId = 1;
  #stderr = '';

  constructor(ns: TestNetns) {
    this.#child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, path.join(HERE, 'harness.mjs')], {
      stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DIRECTOR_DIST },
    });
    let buffer = '';
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.trim()) continue;
        const message = JSON.parse(line) as { event?: Record<string, unknown>; reply?: number; result?: unknown; error?: { message: string } };
        if (message.event) this.events.push(message.event);
        else if (message.reply !== undefined) this.#replies.get(message.reply)?.(message);
      }
    });
    this.#child.stderr!.on('data', (chunk: Buffer) => { this.#stderr += chunk.toString(); });
  }

  async request<T = unknown>(cmd: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++;
    const answer = new Promise<{ result?: unknown; error?: { message: string } }>((resolve) => this.#replies.set(id, resolve));
    this.#child.stdin!.write(`${JSON.stringify({ id, cmd, args })}\n`);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no reply to ${cmd}; stderr: ${this.#stderr}`)), 120_000).unref());
    const { result, error } = await Promise.race([answer, timeout]);
    if (error) throw new Error(`${cmd}: ${error.message}`);
    return result as T;
  }

  /** Events of a type (and matching `filter`) from index `from` on. */
  find(type: string, filter: Record<string, unknown> = {}, from = 0): Array<Record<string, any>> {
    return this.events.slice(from).filter((e) => e.type === type && Object.entries(filter).every(([k, v]) => e[k] === v));
  }

  /** Waits for an event of `type` matching `filter` at or after index `from`. */
  async waitEvent(type: string, filter: Record<string, unknown> = {}, from = 0, timeoutMs = 30_000): Promise<Record<string, any>> {
    return waitFor(`a ${type} event ${JSON.stringify(filter)}; stderr: ${this.#stderr.slice(-500)}`, () => this.find(type, filter, from)[0], { timeoutMs, intervalMs: 25 });
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}
