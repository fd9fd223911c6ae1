// Shared pieces of the benchmarks: timing, tables, result files. Benchmarks report ratios to
// reference commands measured in the same run, never absolute pass/fail thresholds.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const projectRoot = path.join(import.meta.dirname, '..');
export const resultsDir = path.join(projectRoot, 'bench', 'results');

/** `--name VALUE` from the command line, or the fallback. */
export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Exits unless running inside the IPVS test VM: every kernel benchmark changes the IPVS table. */
export function requireTestVm(bench) {
  if (process.env.IPVS_VM === '1' && process.getuid?.() === 0) return;
  console.error(`${bench} runs as root inside the IPVS test VM (it changes the IPVS table): use \`npm run bench\``);
  process.exit(2);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function run(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, ...options });
}

/**
 * Adds namespace `netns` with loopback up and a dummy link on 172.16.0.0/12, the real servers'
 * network, so that the kernel sees their addresses as unicast.
 */
export function addRealServerNetns(netns) {
  run('ip', ['netns', 'add', netns]);
  run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  run('ip', ['-n', netns, 'link', 'add', 'rs0', 'type', 'dummy']);
  run('ip', ['-n', netns, 'addr', 'add', '172.16.255.254/12', 'dev', 'rs0']);
  run('ip', ['-n', netns, 'link', 'set', 'rs0', 'up']);
}

/**
 * Fills `ipvs` with `services` TCP services of `destinations` routed real servers each, on the
 * network of {@link addRealServerNetns}; throws on the first failed operation.
 */
export async function fillRealServerTable(ipvs, services, destinations) {
  const batch = ipvs.batch();
  for (let s = 0; s < services; s++) {
    const service = { protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' };
    batch.addService(service);
    for (let d = 0; d < destinations; d++) batch.addDestination(service, { address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight: 1 + (d % 5) });
  }
  const failures = (await batch.commit()).filter((r) => !r.ok);
  if (failures.length) throw new Error(`${failures.length} operations failed while building the table, the first: ${failures[0].error?.code} ${failures[0].error?.message}`);
}

/** The machine the numbers come from, for the README table. */
export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let kernel = os.release();
  let virtualization = '';
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    if (/QEMU|TCG/i.test(cpuinfo) || process.env.IPVS_VM === '1') virtualization = 'qemu TCG guest';
  } catch {
    // not Linux
  }
  return { cpu, cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), kernel, virtualization, node: process.version };
}

/** Prints rows as an aligned text table. */
export function printTable(title, columns, rows) {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => cells.map((cell, i) => String(cell ?? '').padStart(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function writeResult(name, data) {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), ...data }, null, 2)}\n`);
  console.log(`results written to ${path.relative(projectRoot, file)}`);
}

export const ms = (value) => (value === undefined ? '' : value >= 100 ? value.toFixed(0) : value.toFixed(1));
export const ratio = (value) => (value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(2)}x`);

/** `command args…` inside the named network namespace; what it printed. */
export function inNetns(netns, command, args, options) {
  return run('ip', ['netns', 'exec', netns, command, ...args], options);
}

/**
 * A backup sync daemon in the namespace `backup`, reachable from the namespace `sender` over a
 * veth pair (b<suffix> 192.168.77.1, s<suffix> 192.168.77.2): the way these benchmarks fill a
 * connection table (see fillSyncBackup). Both namespaces must exist.
 */
export function startSyncBackup(backup, sender, suffix) {
  run('ip', ['link', 'add', `b${suffix}`, 'netns', backup, 'type', 'veth', 'peer', 'name', `s${suffix}`, 'netns', sender]);
  for (const [netns, dev, address] of [[backup, `b${suffix}`, '192.168.77.1/24'], [sender, `s${suffix}`, '192.168.77.2/24']]) {
    run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', netns, 'link', 'set', dev, 'up']);
    run('ip', ['-n', netns, 'addr', 'add', address, 'dev', dev]);
  }
  // The backup's receive socket must absorb bursts: 64 MiB (bounded by rmem_max).
  run('sysctl', ['-qw', 'net.core.rmem_max=268435456']);
  inNetns(backup, 'sysctl', ['-qw', 'net.ipv4.vs.sync_sock_size=67108864']);
  inNetns(backup, 'ipvsadm', ['--start-daemon', 'backup', '--mcast-interface', `b${suffix}`]);
}

/**
 * Sends sync messages for `count` connections from `clients` clients (scripts/sync-flood.mjs)
 * until the backup holds them, at most 5 attempts: the entries are deterministic, so a re-send
 * updates those already there and adds the missing. Returns the table's size after each attempt
 * through `sizeOf` (default: the lines of /proc/net/ip_vs_conn), and the seconds it took.
 */
export async function fillSyncBackup(backup, sender, count, { clients = 2000, sizeOf } = {}) {
  const started = performance.now();
  const size = sizeOf ?? (async () => Number(inNetns(backup, 'bash', ['-c', 'wc -l < /proc/net/ip_vs_conn']).trim()) - 1);
  let have = 0;
  for (let attempt = 1; attempt <= 5 && have < count; attempt++) {
    inNetns(sender, 'node', [path.join(projectRoot, 'scripts', 'sync-flood.mjs'), '--source', '192.168.77.2',
      '--count', String(count), '--clients', String(clients), '--rate', '100000']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    have = await size();
    console.log(`  fill attempt ${attempt}: ${have} of ${count} connections`);
  }
  return { connections: have, seconds: (performance.now() - started) / 1000 };
}

/**
 * Copies the package into `directory` as `npm install` would lay it out: its files and its
 * production dependencies (for timing commands from a local disk rather than the 9p share).
 */
export function installPackage(directory) {
  mkdirSync(directory, { recursive: true });
  for (const file of ['package.json', 'dist', 'build/Release/ipvs_netlink.node']) {
    cpSync(path.join(projectRoot, file), path.join(directory, file), { recursive: true, dereference: true });
  }
  const lock = JSON.parse(readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8'));
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (!where.startsWith('node_modules/') || entry.dev || entry.devOptional) continue;
    cpSync(path.join(projectRoot, where), path.join(directory, where), { recursive: true, dereference: true });
  }
}

/** ipvsadm rules for 1,000 TCP services x 10 NAT real servers, one rule per line (`-R` input). */
export function restoreRules() {
  const lines = [];
  for (let s = 0; s < 1000; s++) {
    const vip = `10.${100 + Math.floor(s / 250)}.${s % 250}.1:80`;
    lines.push(`-A -t ${vip} -s wrr`);
    for (let d = 0; d < 10; d++) lines.push(`-a -t ${vip} -r 192.168.${s % 250}.${10 + d + 20 * Math.floor(s / 250)}:8080 -m -w ${d + 1}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Stops `backup`'s sync daemon and deletes the namespaces and paths, whatever is left of them. */
export function tearDown({ backup, namespaces, paths }) {
  try { inNetns(backup, 'ipvsadm', ['--stop-daemon', 'backup']); } catch { /* gone */ }
  for (const netns of namespaces) {
    try { run('ip', ['netns', 'delete', netns]); } catch { /* gone */ }
  }
  for (const where of paths) rmSync(where, { recursive: true, force: true });
}
