// `ipvs-netlink autoban`: clients with at least --min connections in --state (ESTABLISHED by
// default) go into an ipset, which a firewall rule such as
//   iptables -I INPUT -m set --match-set NAME src -j DROP
// turns into a block. The set is created if missing (hash:ip, the family of the first address
// banned, with --timeout as its default entry timeout). --exclude keeps addresses or networks
// off it; --dry-run only prints; --interval repeats until SIGINT or SIGTERM. Uses the real
// `ipset` program (no shell), inside --netns through nsenter.
import { execFile, spawn } from 'node:child_process';

import { parseAddress } from '../address';
import type { Ipvs } from '../ipvs';
import { openIpvs, reportError, toJson, UsageError } from './common';
import * as io from './io';
import { integer, newProgram, parseArgs } from './program';

interface AutobanOptions {
  netns?: string;
  ipset: string;
  min: number;
  state: string;
  timeout?: number;
  exclude?: string[];
  dryRun?: boolean;
  interval?: number;
  json?: boolean;
}

interface Network {
  text: string;
  bytes: Uint8Array;
  v6: boolean;
  prefix: number;
}

function parseNetwork(text: string): Network {
  const [address = '', prefixText] = text.split('/');
  const bytes = new Uint8Array(16);
  const family = parseAddress(address, bytes);
  if (!family) throw new UsageError(`--exclude: '${text}' is not an address or CIDR network`);
  const max = family === 'inet' ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) throw new UsageError(`--exclude: bad prefix length in '${text}'`);
  return { text, bytes, v6: family === 'inet6', prefix };
}

function contains(network: Network, bytes: Uint8Array, v6: boolean): boolean {
  if (network.v6 !== v6) return false;
  let bits = network.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((network.bytes[i]! & mask) !== (bytes[i]! & mask)) return false;
  }
  return true;
}

/** Runs the ipset program (inside the namespace when given); resolves with stdout. */
function ipset(netns: string | undefined, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const [command, argv] = netns ? ['nsenter', [`--net=${netns}`, '--', 'ipset', ...args]] : ['ipset', args];
  return new Promise((resolve, reject) => {
    if (input === undefined) {
      execFile(command, argv, { encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error && typeof (error as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`cannot run ${command}: ${error.message}`));
          return;
        }
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      return;
    }
    const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

interface SetInfo {
  family: 'inet' | 'inet6';
  members: Set<string>;
}

/** The set's family and members, or undefined when it does not exist. */
async function readSet(netns: string | undefined, name: string): Promise<SetInfo | undefined> {
  const result = await ipset(netns, ['save', name]);
  if (result.code !== 0) return undefined;
  let family: 'inet' | 'inet6' = 'inet';
  const members = new Set<string>();
  for (const line of result.stdout.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'create') {
      const at = words.indexOf('family');
      if (at >= 0 && words[at + 1] === 'inet6') family = 'inet6';
    } else if (words[0] === 'add' && words[2]) {
      members.add(canonical(words[2]));
    }
  }
  return { family, members };
}

function canonical(address: string): string {
  const bytes = new Uint8Array(16);
  const family = parseAddress(address, bytes);
  if (!family) return address;
  return family === 'inet' ? address : address.toLowerCase();
}

export interface BanDecision {
  address: string;
  connections: number;
  action: 'banned' | 'would-ban' | 'already-banned' | 'excluded' | 'skipped';
  reason: string;
}

/** One round: count, decide, add to the set. */
async function round(ipvs: Ipvs, o: AutobanOptions, allow: Network[]): Promise<BanDecision[]> {
  const counts = await ipvs.countConnections({ by: 'client', state: o.state, minCount: o.min });
  const decisions: BanDecision[] = [];
  let set = counts.length > 0 ? await readSet(o.netns, o.ipset) : undefined;
  const toAdd: BanDecision[] = [];
  const why = (n: number): string => `${n} ${o.state.toUpperCase()} connections (at least ${o.min})`;
  for (const { key, count } of counts) {
    const bytes = new Uint8Array(16);
    const family = parseAddress(key, bytes);
    const v6 = family === 'inet6';
    const allowedBy = allow.find((network) => contains(network, bytes, v6));
    if (allowedBy) {
      decisions.push({ address: key, connections: count, action: 'excluded', reason: `${why(count)}, but --exclude ${allowedBy.text}` });
      continue;
    }
    if (set?.members.has(canonical(key))) {
      decisions.push({ address: key, connections: count, action: 'already-banned', reason: why(count) });
      continue;
    }
    if (set && set.family !== family) {
      decisions.push({ address: key, connections: count, action: 'skipped', reason: `${why(count)}, but ipset ${o.ipset} is family ${set.family}` });
      continue;
    }
    const decision: BanDecision = { address: key, connections: count, action: o.dryRun ? 'would-ban' : 'banned', reason: why(count) };
    decisions.push(decision);
    if (o.dryRun) continue;
    if (!set) {
      const args = ['create', o.ipset, 'hash:ip', 'family', family ?? 'inet', ...(o.timeout !== undefined ? ['timeout', String(o.timeout)] : [])];
      const created = await ipset(o.netns, args);
      if (created.code !== 0) throw new Error(`ipset ${args.join(' ')} failed: ${created.stderr.trim()}`);
      set = { family: family ?? 'inet', members: new Set() };
    }
    toAdd.push(decision);
  }
  if (toAdd.length > 0) {
    const timeout = o.timeout !== undefined ? ` timeout ${o.timeout}` : '';
    const input = toAdd.map((d) => `add ${o.ipset} ${d.address}${timeout}\n`).join('');
    const added = await ipset(o.netns, ['restore', '-exist'], input);
    if (added.code !== 0) throw new Error(`ipset restore failed: ${added.stderr.trim()}`);
  }
  return decisions;
}

function describeDecision(d: BanDecision, o: AutobanOptions): string {
  const target = `ipset ${o.ipset}${o.timeout !== undefined ? ` (timeout ${o.timeout}s)` : ''}`;
  switch (d.action) {
    case 'banned': return `banned ${d.address}: ${d.reason} -> ${target}\n`;
    case 'would-ban': return `would ban ${d.address}: ${d.reason} -> ${target} (--dry-run)\n`;
    case 'already-banned': return `already banned ${d.address}: ${d.reason}\n`;
    case 'excluded': return `not banned ${d.address}: ${d.reason}\n`;
    default: return `not banned ${d.address}: ${d.reason}\n`;
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = newProgram('autoban', 'Add clients with at least --min connections in --state to an ipset.')
    .requiredOption('--ipset <name>', 'the ipset to add clients to (created as hash:ip if missing)')
    .option('--min <n>', 'connections a client needs to be banned (default 101: more than 100)', integer('--min', 1), 101)
    .option('--state <state>', 'the connection state counted', 'ESTABLISHED')
    .option('--timeout <seconds>', 'ipset entry timeout (the set is created with it)', integer('--timeout', 0, 2147483))
    .option('--exclude <cidr...>', 'never ban these addresses or networks')
    .option('--dry-run', 'print what would be banned, change nothing')
    .option('--interval <seconds>', 'repeat every SECONDS until SIGINT or SIGTERM', integer('--interval', 1, 86400))
    .option('--json', 'one JSON object per round instead of text');
  const done = parseArgs(program, argv);
  if (done !== undefined) return done;
  const o = program.opts<AutobanOptions>();
  try {
    if (!/^[\w.:-]{1,31}$/.test(o.ipset)) throw new UsageError(`--ipset: '${o.ipset}' is not a valid set name (1–31 letters, digits, _ . : -)`);
    const allow = (o.exclude ?? []).map(parseNetwork);
    const ipvs = await openIpvs(o.netns);
    let stop: (() => void) | undefined;
    let stopped = false;
    const onSignal = (): void => { stopped = true; stop?.(); };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      for (;;) {
        const decisions = await round(ipvs, o, allow);
        if (o.json) io.stdout(toJson({ time: new Date().toISOString(), ipset: o.ipset, decisions }, 0));
        else for (const d of decisions) io.stdout(describeDecision(d, o));
        if (o.interval === undefined || stopped) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, o.interval! * 1000);
          stop = () => { clearTimeout(timer); resolve(); };
        });
        if (stopped) break;
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await ipvs.close();
    }
  } catch (error) {
    return reportError('autoban', error);
  }
}
