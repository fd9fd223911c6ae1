// The metrics endpoint and the status page's data path against the real kernel, with real
// traffic and real servers.
//
//   client 10.1.0.2 --- 10.1.0.1 (VIPs) lb 10.2.0.1 --- 10.2.0.2, 10.2.0.3 real servers
//                                                        (HTTP on both, DNS on .2)
//
// Values are checked against ipvsadm -Ln --stats --exact and /proc/net/ip_vs_stats read at
// the same moment; the output is checked by promtool; the status stream of a run with the
// Director is recorded for the browser test on the host (test/unit/metrics/page.test.ts).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Director } from '../../lib/director/index';
import { Ipvs, type ServiceKey } from '../../lib/index';
import { serveMetrics, type MetricsEndpoint, type StatusSnapshot } from '../../lib/metrics/index';
import { connectNetns, createNetns, run, spawnIn, waitFor, type BackgroundProcess, type TestNetns } from './helpers';

const projectRoot = path.join(__dirname, '..', '..');
/** Where the recorded stream goes (the host browser test prefers it to the committed copy). */
const RECORDING = path.join(projectRoot, '.cache', 'metrics', 'status-stream.jsonl');
/** Text a real server returns to a check; the page must show it as text and never run it. */
const HTTP_RESPONDER = '/tmp/met-http.sh';
const PLANTED = '<script>window.__planted=1</script><img src=x onerror=window.__planted=2>';

/** `promtool check metrics` on `text`: resolves with its exit code and output. */
function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(text);
  });
}

/** GET `url` by curl, asking for gzip as Prometheus does; resolves with the response headers and the decoded body. */
function curlGzip(url: string): Promise<{ body: string; headers: string }> {
  return new Promise((resolve, reject) => {
    // -D -: the headers first on stdout, then a blank line, then the body.
    const child = spawn('curl', ['-sS', '--compressed', '-H', 'Accept-Encoding: gzip', '-D', '-', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errors = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { errors += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const end = out.indexOf('\r\n\r\n');
      if (code !== 0 || end < 0) reject(new Error(`curl exited ${code}: ${errors}`));
      else resolve({ headers: out.slice(0, end), body: out.slice(end + 4) });
    });
  });
}

/** One series' value, by name and exact labels (all of them). */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(/,(?=[a-z_]+=")/).filter(Boolean).sort().join(',');
    if (have === want) return Number(match[3]);
  }
  return undefined;
}

function seriesOf(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

interface Counters { conns: number; inPkts: number; outPkts: number; inBytes: number; outBytes: number }

/** ipvsadm -Ln --stats --exact: 'TCP 10.1.0.1:80' and 'TCP 10.1.0.1:80 -> 10.2.0.2:80' → counters. */
function ipvsadmStats(ns: TestNetns): Map<string, Counters> {
  const rows = new Map<string, Counters>();
  let service = '';
  for (const line of ns.run('ipvsadm', ['-Ln', '--stats', '--exact']).split('\n')) {
    const f = line.trim().split(/\s+/);
    const counters = (at: number): Counters => ({
      conns: Number(f[at]), inPkts: Number(f[at + 1]), outPkts: Number(f[at + 2]), inBytes: Number(f[at + 3]), outBytes: Number(f[at + 4]),
    });
    if (/^(TCP|UDP|SCTP|FWM)$/.test(f[0] ?? '')) {
      service = `${f[0]} ${f[1]}`;
      rows.set(service, counters(2));
    } else if (f[0] === '->' && /^\d/.test(f[2] ?? '')) {
      rows.set(`${service} -> ${f[1]}`, counters(2));
    }
  }
  return rows;
}

/** /proc/net/ip_vs_stats of the namespace: the five totals. */
function procTotals(ns: TestNetns): Counters {
  const lines = ns.run('cat', ['/proc/net/ip_vs_stats']).split('\n');
  const f = lines[2]!.trim().split(/\s+/).map((x) => Number.parseInt(x, 16));
  return { conns: f[0]!, inPkts: f[1]!, outPkts: f[2]!, inBytes: f[3]!, outBytes: f[4]! };
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    // A new connection per request, as Prometheus scrapes: a kept-alive one can be closed by
    // the server's keep-alive timeout (5 s) just as the next request goes out on it (ECONNRESET),
    // which a loaded host makes likely between two scrapes around an ipvsadm run.
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (c: string) => { body += c; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Follows /api/events; keeps every message with its arrival time. */
function follow(url: string): { messages: Array<{ at: number; event: string; data: unknown }>; close(): void } {
  const messages: Array<{ at: number; event: string; data: unknown }> = [];
  const started = Date.now();
  const request = http.get(url, (response) => {
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) messages.push({ at: Date.now() - started, event, data: JSON.parse(data) });
      }
    });
  });
  request.on('error', () => { /* closed */ });
  return { messages, close: () => request.destroy() };
}

describe('metrics and the status page against the kernel', () => {
  let client: TestNetns;
  let lb: TestNetns;
  let real: TestNetns;
  let ipvs: Ipvs;
  const processes: BackgroundProcess[] = [];
  const web: ServiceKey = { protocol: 'tcp', address: '10.1.0.1', port: 80 };
  const dns: ServiceKey = { protocol: 'udp', address: '10.1.0.1', port: 53 };
  const sctp: ServiceKey = { protocol: 'sctp', address: '10.1.0.1', port: 9 };
  const marked: ServiceKey = { fwmark: 7 };

  beforeAll(async () => {
    client = createNetns('met-c');
    lb = createNetns('met-lb');
    real = createNetns('met-r');
    connectNetns(client, 'c0', lb, 'l0', { a: ['10.1.0.2/24'], b: ['10.1.0.1/24'] });
    connectNetns(lb, 'l1', real, 'r0', { a: ['10.2.0.1/24'], b: ['10.2.0.2/24', '10.2.0.3/24'] });
    run('ip', ['-n', real.name, 'route', 'add', 'default', 'via', '10.2.0.1']);
    lb.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // The Director runs in this process, in the VM's own namespace: give it a route to the
    // real servers through the lb (10.9.0.2 here, 10.9.0.1 there).
    run('ip', ['link', 'add', 'met-root', 'type', 'veth', 'peer', 'name', 'met-lb', 'netns', lb.name]);
    run('ip', ['addr', 'add', '10.9.0.2/24', 'dev', 'met-root']);
    run('ip', ['link', 'set', 'met-root', 'up']);
    lb.run('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'met-lb']);
    lb.run('ip', ['link', 'set', 'met-lb', 'up']);
    run('ip', ['route', 'add', '10.2.0.0/24', 'via', '10.9.0.1']);
    // A minimal HTTP server: reads the request head, answers 200 'ok'.
    writeFileSync(HTTP_RESPONDER, [
      'while read -r line; do [ "$line" = "$(printf \'\\r\')" ] && break; done',
      "printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n'",
      '',
    ].join('\n'));
    for (const address of ['10.2.0.2', '10.2.0.3']) {
      processes.push(spawnIn(real, 'socat', [`TCP-LISTEN:80,bind=${address},fork,reuseaddr`, `EXEC:/bin/sh ${HTTP_RESPONDER}`]));
    }
    processes.push(spawnIn(real, 'dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
      '--listen-address=10.2.0.2', '--port=53', '--user=root', '--pid-file=', `--txt-record=check.test,${PLANTED}`,
    ]));
    ipvs = await Ipvs.open({ netns: lb.path });
    await ipvs.addService({ ...web, scheduler: 'rr' });
    for (const address of ['10.2.0.2', '10.2.0.3']) await ipvs.addDestination(web, { address, forward: 'masq', weight: 2 });
    await ipvs.addService({ ...dns, scheduler: 'rr' });
    await ipvs.addDestination(dns, { address: '10.2.0.2', forward: 'masq', weight: 1 });
    await ipvs.addService({ ...sctp, scheduler: 'rr' });
    await ipvs.addDestination(sctp, { address: '10.2.0.2', forward: 'masq', weight: 3 });
    await ipvs.addService({ ...marked, scheduler: 'wlc' });
    await ipvs.addDestination(marked, { address: '10.2.0.3', forward: 'masq', weight: 4 });
    await waitFor('the HTTP servers to answer through the VIP', () => {
      const answers = [1, 2].map(() => client.run('curl', ['-s', '-m', '3', 'http://10.1.0.1/']).trim());
      return answers.every((a) => a === 'ok');
    }, { timeoutMs: 30_000, intervalMs: 300 });

  }, 120_000);

  afterAll(async () => {
    for (const p of processes) p.stop();
    await ipvs?.close();
    for (const ns of [client, lb, real]) ns?.remove();
  });

  it('serves node_exporter names and our own, passes promtool, and matches ipvsadm and ip_vs_stats', { timeout: 150_000 }, async () => {
    for (let i = 0; i < 6; i++) client.run('curl', ['-s', '-m', '3', '-o', '/dev/null', 'http://10.1.0.1/']);
    // Datagrams to the DNS service (dnsmasq answers or drops them: either way they are counted).
    client.run('sh', ['-c', 'for i in 1 2 3; do echo probe | socat -T 0.3 - UDP:10.1.0.1:53 >/dev/null 2>&1 || true; done']);
    // `always`: gzip even on loopback, where the default sends the plain text.
    const endpoint = await serveMetrics({ ipvs, listen: '127.0.0.1:0', compression: 'always' });
    try {
      const scrape = async (): Promise<string> => (await get(`${endpoint.url}metrics`)).body;
      // The kernel folds its per-CPU counters in every 2 s: compare once two scrapes around
      // the ipvsadm run agree, so that all three saw the same values.
      const { text, oracle, totals } = await waitFor('a stable reading', async () => {
        const before = await scrape();
        const oracle = ipvsadmStats(lb);
        const totals = procTotals(lb);
        const after = await scrape();
        // Counters only: the rate estimates go on decaying for a while after the traffic stops.
        const counters = (t: string): string => t.split('\n').filter((line) => /^[a-z_]+_total[{ ]/.test(line)).join('\n');
        return counters(before) === counters(after) && valueOf(before, 'ipvs_service_connections_total',
          { service: 'tcp 10.1.0.1:80' })! >= 6 && { text: after, oracle, totals };
      }, { timeoutMs: 30_000, intervalMs: 500 });

      const lint = await promtool(text);
      expect(lint.output).toBe('');
      expect(lint.code).toBe(0);
      // Gzipped for a scraper that asks (Prometheus does): the same series, decoded by curl.
      const gzipped = await curlGzip(`${endpoint.url}metrics`);
      expect(gzipped.headers).toMatch(/^content-encoding: gzip\r?$/im);
      expect((await promtool(gzipped.body)).code).toBe(0);
      const seriesNames = (t: string): string[] => t.split('\n').map((line) => line.replace(/ [^ ]*$/, ''));
      expect(seriesNames(gzipped.body)).toEqual(seriesNames(text));

      const tcp = { service: 'tcp 10.1.0.1:80' };
      const fields: Array<[string, keyof Counters]> = [
        ['connections_total', 'conns'], ['incoming_packets_total', 'inPkts'], ['outgoing_packets_total', 'outPkts'],
        ['incoming_bytes_total', 'inBytes'], ['outgoing_bytes_total', 'outBytes'],
      ];
      for (const [suffix, field] of fields) {
        expect(valueOf(text, `ipvs_service_${suffix}`, tcp)).toBe(oracle.get('TCP 10.1.0.1:80')![field]);
        for (const address of ['10.2.0.2', '10.2.0.3']) {
          expect(valueOf(text, `ipvs_destination_${suffix}`, { ...tcp, server: `${address}:80` }))
            .toBe(oracle.get(`TCP 10.1.0.1:80 -> ${address}:80`)![field]);
        }
        expect(valueOf(text, `ipvs_service_${suffix}`, { service: 'udp 10.1.0.1:53' }))
          .toBe(oracle.get('UDP 10.1.0.1:53')![field]);
        expect(valueOf(text, `node_ipvs_${suffix}`)).toBe(totals[field]);
      }
      expect(oracle.get('TCP 10.1.0.1:80')!.conns).toBeGreaterThanOrEqual(6);
      expect(oracle.get('UDP 10.1.0.1:53')!.inPkts).toBeGreaterThan(0);
      expect(seriesOf(text, 'ipvs_service_connections_total')).toHaveLength(4);

      // node_exporter's labels: SCTP as itself, fwmark services as FWM with the mark in decimal.
      const backend = (proto: string, local: string, port: string, mark: string, remote: string, remotePort: string) =>
        ({ local_address: local, local_port: port, remote_address: remote, remote_port: remotePort, proto, local_mark: mark });
      expect(valueOf(text, 'node_ipvs_backend_weight', backend('TCP', '10.1.0.1', '80', '', '10.2.0.2', '80'))).toBe(2);
      expect(valueOf(text, 'node_ipvs_backend_weight', backend('SCTP', '10.1.0.1', '9', '', '10.2.0.2', '9'))).toBe(3);
      expect(valueOf(text, 'node_ipvs_backend_weight', backend('FWM', '', '0', '7', '10.2.0.3', '0'))).toBe(4);
      expect(valueOf(text, 'ipvs_destination_upper_threshold', { service: 'fwmark 7', server: '10.2.0.3:0' })).toBe(0);
      expect(valueOf(text, 'ipvs_service_info',
        { service: 'fwmark 7', family: 'inet', protocol: '', address: '', port: '', fwmark: '7', scheduler: 'wlc' })).toBe(1);
      expect(text).toMatch(/^# TYPE ipvs_service_connections_per_second gauge$/m);
      expect(text).toMatch(/^# TYPE ipvs_destination_incoming_bytes_total counter$/m);
      expect(valueOf(text, 'ipvs_up')).toBe(1);
      expect(valueOf(text, 'ipvs_sync_daemon_running', { state: 'master' })).toBe(0);

      // A deleted service leaves the output at the next scrape.
      await ipvs.deleteService(sctp);
      const afterDelete = await scrape();
      expect(afterDelete).not.toContain('proto="SCTP"');
      expect(afterDelete).not.toContain('protocol="sctp"');
      expect(seriesOf(afterDelete, 'ipvs_service_connections_total')).toHaveLength(3);
      expect((await promtool(afterDelete)).code).toBe(0);
      await ipvs.addService({ ...sctp, scheduler: 'rr' });

      // Read-only, and the JSON snapshot.
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const response = await get(`${endpoint.url}api/status`, {}, method);
        expect(response.status).toBe(405);
        expect(response.headers.allow).toBe('GET, HEAD');
      }
      // The kernel may still fold late per-CPU counts into its totals after the stable reading
      // above (its estimator runs every 2 s): compare the snapshot with ip_vs_stats read beside it.
      const status = await waitFor('a status snapshot whose totals agree with ip_vs_stats', async () => {
        const snapshot = JSON.parse((await get(`${endpoint.url}api/status`)).body) as StatusSnapshot;
        return snapshot.totals?.connections === procTotals(lb).conns && snapshot;
      }, { timeoutMs: 10_000, intervalMs: 500 });
      expect(status.services.map((s) => s.name)).toEqual(expect.arrayContaining(['tcp 10.1.0.1:80', 'udp 10.1.0.1:53', 'fwmark 7']));
      expect(status.totals!.connections).toBeGreaterThanOrEqual(totals.conns);
    } finally {
      await endpoint.close();
    }
  });

  it('needs the token on a non-loopback listener', { timeout: 150_000 }, async () => {
    await expect(serveMetrics({ ipvs, listen: '0.0.0.0:0' })).rejects.toThrow(/needs a token/);
    const endpoint = await serveMetrics({ ipvs, listen: '0.0.0.0:0', token: 's3cret-token' });
    try {
      const url = `http://10.1.0.1:${endpoint.server.address.port}`;
      // Over the network, from the lb's own address: the test process runs in the VM's root
      // namespace, so use the loopback-independent route of its listener.
      const base = `http://127.0.0.1:${endpoint.server.address.port}`;
      for (const pathname of ['/', '/metrics', '/api/status', '/api/events']) {
        expect((await get(`${base}${pathname}`)).status).toBe(401);
        expect((await get(`${base}${pathname}?token=wrong`)).status).toBe(401);
      }
      expect((await get(`${base}/metrics`, { authorization: 'Bearer s3cret-token' })).status).toBe(200);
      expect((await get(`${base}/api/status?token=s3cret-token`)).status).toBe(200);
      expect((await get(`${base}/assets/app.js`)).status).toBe(200);
      expect(url).toContain(String(endpoint.server.address.port));
    } finally {
      await endpoint.close();
    }
  });

  it('runs as the ipvs-netlink metrics command until SIGTERM', { timeout: 150_000 }, async () => {
    // Port 0: the kernel picks a free port, which the command names on stderr once it listens.
    const child = spawn(process.execPath, [path.join(projectRoot, 'dist/cli/metrics.js'), '--netns', lb.path, '--listen', '127.0.0.1:0',
      '--connection-states'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let url = '';
    try {
      // Node's start-up under emulation can take many seconds on a loaded host.
      const text = await waitFor('the command to serve', async () => {
        if (child.exitCode !== null) throw new Error(`the command exited with ${child.exitCode}: ${stderr}`);
        url = /serving (http:\/\/127\.0\.0\.1:[1-9]\d*\/)metrics/.exec(stderr)?.[1] ?? '';
        if (!url) throw new Error(`not serving yet; stderr: ${JSON.stringify(stderr)}`);
        const response = await get(`${url}metrics`);
        return response.status === 200 && response.body;
      }, { timeoutMs: 60_000, intervalMs: 300 });
      expect(seriesOf(text, 'ipvs_service_connections_total').length).toBeGreaterThanOrEqual(3);
      expect(text).toMatch(/^# TYPE ipvs_connection_entries gauge$/m);
      expect((await promtool(text)).code).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain(`serving ${url}metrics and the status page at ${url}\n`);
  });

  it('follows the Director: health, checks, a server going down, planted text; records the stream', { timeout: 150_000 }, async () => {
    await ipvs.flush();
    const director = new Director({
      services: [
        {
          ...web, scheduler: 'rr', quorum: 1,
          destinations: [{ address: '10.2.0.2', forward: 'masq', weight: 2 }, { address: '10.2.0.3', forward: 'masq', weight: 2 }],
          // Each check forks a shell on the real server: under emulation on a loaded host one can
          // outlive a short timeout, and 10.2.0.2 must stay up to the end. A stopped server refuses
          // at once, so the third failure in a row still comes two intervals after the first.
          checks: [{ type: 'http', path: '/', interval: 1, timeout: 0.9, rise: 1, fall: 3 }],
        },
        {
          ...dns, scheduler: 'rr',
          destinations: [{ address: '10.2.0.2', forward: 'masq', weight: 1 }],
          checks: [{ type: 'dns', name: 'check.test', queryType: 'TXT', expectAnswer: 'healthy', interval: 1, timeout: 0.8, rise: 1, fall: 1 }],
        },
      ],
    }, { ipvs, checkEvents: true });
    await director.start();
    const endpoint: MetricsEndpoint = await serveMetrics({ ipvs, director, listen: '127.0.0.1:0', intervalMs: 500 });
    const stream = follow(`${endpoint.url}api/events`);
    const latest = (): StatusSnapshot | undefined =>
      [...stream.messages].reverse().find((m) => m.event === 'status')?.data as StatusSnapshot | undefined;
    const destination = (snapshot: StatusSnapshot | undefined, service: string, name: string) =>
      snapshot?.services.find((s) => s.name === service)?.destinations.find((d) => d.name === name);
    try {
      // Health is the director's and weight the kernel's: a destination the director has just
      // found up keeps weight 0 until its sync reaches the kernel, so the page shows both first.
      // On a loaded host one check can time out while the server stays up (fall 3): the snapshot
      // looked at is one whose last check of 10.2.0.3 passed.
      let seen: StatusSnapshot | undefined;
      await waitFor('both web servers up at their weight, a passed check, and the DNS server down on the page', () => {
        const s = latest();
        const up = (name: string): boolean => {
          const d = destination(s, 'tcp 10.1.0.1:80', name);
          return d?.health === 'up' && d.weight === 2;
        };
        const ok = up('10.2.0.2:80') && up('10.2.0.3:80') && destination(s, 'tcp 10.1.0.1:80', '10.2.0.3:80')?.lastCheck?.ok === true
          && destination(s, 'udp 10.1.0.1:53', '10.2.0.2:53')?.lastCheck?.message.includes(PLANTED);
        if (ok) seen = s;
        return ok;
      }, { timeoutMs: 40_000, intervalMs: 200 });
      const dnsDest = destination(seen, 'udp 10.1.0.1:53', '10.2.0.2:53')!;
      expect(dnsDest.health).toBe('down');
      expect(dnsDest.lastCheck).toMatchObject({ type: 'dns', ok: false });
      const web3 = destination(seen, 'tcp 10.1.0.1:80', '10.2.0.3:80')!;
      expect(web3.lastCheck).toMatchObject({ type: 'http', ok: true, message: 'HTTP 200' });
      expect(web3.lastCheck!.latency).toBeGreaterThan(0);
      expect(web3.weight).toBe(2);

      // Stop the server on 10.2.0.3: the page hears 'down' and sees weight 0 (quiesced).
      processes[1]!.stop();
      await waitFor('10.2.0.3 down on the page, at weight 0 in the kernel', () => {
        const d = destination(latest(), 'tcp 10.1.0.1:80', '10.2.0.3:80');
        return d?.health === 'down' && d.weight === 0
          && stream.messages.some((m) => m.event === 'event' && (m.data as { type: string; destination?: string }).type === 'down'
            && (m.data as { destination?: string }).destination === '10.2.0.3:80');
      }, { timeoutMs: 30_000, intervalMs: 200 });

      const text = (await get(`${endpoint.url}metrics`)).body;
      const lint = await promtool(text);
      expect(lint.output).toBe('');
      expect(lint.code).toBe(0);
      const d = (address: string, protocol = 'tcp', port = '80') =>
        ({ service: `${protocol} 10.1.0.1:${port}`, server: `${address}:${port}` });
      expect(valueOf(text, 'ipvs_director_destination_up', d('10.2.0.2'))).toBe(1);
      expect(valueOf(text, 'ipvs_director_destination_up', d('10.2.0.3'))).toBe(0);
      expect(valueOf(text, 'node_ipvs_backend_weight', { local_address: '10.1.0.1', local_port: '80', remote_address: '10.2.0.3',
        remote_port: '80', proto: 'TCP', local_mark: '' })).toBe(0);
      expect(valueOf(text, 'ipvs_director_destination_configured_weight', d('10.2.0.3'))).toBe(2);
      expect(valueOf(text, 'ipvs_director_check_failures_total', { ...d('10.2.0.2', 'udp', '53'), check: 'dns' })).toBeGreaterThan(0);
      expect(valueOf(text, 'ipvs_director_check_duration_seconds_count', { check: 'http' })).toBeGreaterThan(2);
      expect(valueOf(text, 'ipvs_director_quorum_up', { service: 'tcp 10.1.0.1:80' })).toBe(1);
      expect(valueOf(text, 'ipvs_director_live_weight', { service: 'tcp 10.1.0.1:80' })).toBe(2);
      expect(valueOf(text, 'ipvs_director_transitions_total', { to: 'down' })).toBeGreaterThanOrEqual(2);
    } finally {
      stream.close();
      await endpoint.close();
      await director.stop();
    }
    mkdirSync(path.dirname(RECORDING), { recursive: true });
    writeFileSync(RECORDING, stream.messages.map((m) => JSON.stringify(m)).join('\n') + '\n');
  });
});
