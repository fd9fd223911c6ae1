// ipvsadm 1.31's command line: popt-style option scanning (short clusters, `--long=value`,
// `-p [timeout]` with its optional argument, leftovers anywhere) and the checks ipvsadm makes,
// in the same order and with the same words and exit statuses. The result is a CommandEntry,
// the equivalent of ipvsadm's `struct ipvs_command_entry`.
import { parseAddress } from '../../address';
import { Cmd, EXIT_ERROR, IpvsadmExit, TRY_HELP, fail, type CmdCode } from './command';
import { AF_INET, AF_INET6, hostToAddress4, inetAton, inetPton4, inetPton6, serviceToPort } from './names';

export { Cmd, EXIT_ERROR, EXIT_FAIL, IpvsadmExit, TRY_HELP, fail, type CmdCode } from './command';

const CMD_NAMES = [
  'add-service', 'edit-service', 'delete-service', 'flush', 'list', 'add-server', 'delete-server', 'edit-server', 'set',
  'start-daemon', 'stop-daemon', 'restore', 'save', 'zero',
];

/** Option indices (ipvsadm's OPTC_*), named as its error messages name them. */
export const Opt = {
  NUMERIC: 0, CONNECTION: 1, SERVICE: 2, SCHEDULER: 3, PERSISTENT: 4, NETMASK: 5, SERVER: 6, FORWARD: 7, WEIGHT: 8,
  UTHRESHOLD: 9, LTHRESHOLD: 10, MCAST: 11, TIMEOUT: 12, DAEMON: 13, STATS: 14, RATE: 15, THRESHOLDS: 16,
  PERSISTENTCONN: 17, NOSORT: 18, SYNCID: 19, EXACT: 20, ONEPACKET: 21, PERSISTENCE_ENGINE: 22, SCHED_FLAGS: 23,
  MCAST_GROUP: 24, MCAST_PORT: 25, MCAST_TTL: 26, SYNC_MAXLEN: 27, TUN_INFO: 28, TUN_TYPE: 29, TUN_PORT: 30,
  TUN_NOCSUM: 31, TUN_CSUM: 32, TUN_REMCSUM: 33,
} as const;

const OPT_NAMES = [
  'numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server', 'forwarding-method',
  'weight', 'u-threshold', 'l-threshold', 'mcast-interface', 'timeout', 'daemon', 'stats', 'rate', 'thresholds',
  'persistent-conn', 'nosort', 'syncid', 'exact', 'ops', 'pe', 'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl',
  'sync-maxlen', 'tun-info', 'tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum',
];

// ipvsadm's commands_v_options: '+' required, 'x' illegal, '1' at most one of them, ' ' optional.
// Columns follow Opt above; rows follow Cmd (ADD first).
const COMMANDS_V_OPTIONS = [
  'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx', // ADD
  'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx', // EDIT
  'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // DEL
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // FLUSH
  ' 11xxxxxxxxx11       xxxxxxx xxxxx', // LIST
  'xx+xxx+    xxxxxxxxxxxxxxxxxx     ', // ADDDEST
  'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx', // DELDEST
  'xx+xxx+    xxxxxxxxxxxxxxxxxx     ', // EDITDEST
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // TIMEOUT
  'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx', // STARTDAEMON
  'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx', // STOPDAEMON
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // RESTORE
  ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // SAVE
  'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // ZERO
];

const TUNNEL_NAMES = ['ipip', 'gue', 'gre'];
const TUNNEL_OPTIONS = [Opt.TUN_PORT, Opt.TUN_NOCSUM, Opt.TUN_CSUM, Opt.TUN_REMCSUM];
// tunnel_types_v_options: rows ipip, gue, gre; columns TUNNEL_OPTIONS.
const TUNNEL_TYPES_V_OPTIONS = ['xxxx', '+111', 'x11x'];

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

export const SVC_F_PERSISTENT = 0x1;
export const SVC_F_ONEPACKET = 0x4;
export const SVC_F_SCHED1 = 0x8;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;

export const FWD_MASQ = 0;
export const FWD_LOCAL = 1;
export const FWD_TUNNEL = 2;
export const FWD_ROUTE = 3;

/** libipvs IPVS_SVC_PERSISTENT_TIMEOUT: what `-p` without a value means. */
export const DEFAULT_PERSISTENCE = 360;
const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 0x7fffffff;

export interface ServiceEntry {
  af: number;
  protocol: number;
  /** 16 bytes, IPv4 in the first 4. */
  addr: Uint8Array;
  port: number;
  fwmark: number;
  sched: string;
  flags: number;
  timeout: number;
  /** IPv4: the mask as a number (0xffffff00); IPv6: the prefix length. */
  netmask: number;
  pe: string;
}

export interface DestEntry {
  af: number;
  addr: Uint8Array;
  port: number;
  fwd: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

export interface DaemonEntry {
  state: number;
  ifname: string;
  syncid: number;
  maxlen: number;
  groupAf: number;
  group: Uint8Array;
  port: number;
  ttl: number;
}

/** Listing format flags (ipvsadm's FMT_*). */
export const Fmt = {
  NUMERIC: 0x1, RULE: 0x2, STATS: 0x4, RATE: 0x8, THRESHOLDS: 0x10, PERSISTENTCONN: 0x20, NOSORT: 0x40,
  EXACT: 0x80, TUN_INFO: 0x100,
} as const;

export interface CommandEntry {
  cmd: CmdCode;
  svc: ServiceEntry;
  dest: DestEntry;
  timeouts: { tcp: number; tcpFin: number; udp: number };
  daemon: DaemonEntry;
  /** options[i] is 1 when option Opt i was given. */
  options: number[];
  format: number;
}

export function has(entry: CommandEntry, opt: number): boolean {
  return entry.options[opt] === 1;
}

// ---- popt-style scanning --------------------------------------------------------------------

type ArgKind = 'none' | 'required' | 'optional';

interface OptionSpec {
  long: string;
  short?: string;
  arg: ArgKind;
  /** What the handler switches on: the short letter, or the long name for long-only options. */
  tag: string;
}

const OPTION_TABLE: OptionSpec[] = [
  ['add-service', 'A'], ['edit-service', 'E'], ['delete-service', 'D'], ['clear', 'C'], ['list', 'L'], ['list', 'l'],
  ['zero', 'Z'], ['add-server', 'a'], ['edit-server', 'e'], ['delete-server', 'd'], ['set'], ['help', 'h'],
  ['version', 'v'], ['restore', 'R'], ['save', 'S'], ['start-daemon', undefined, 'required'],
  ['stop-daemon', undefined, 'required'], ['tcp-service', 't', 'required'], ['udp-service', 'u', 'required'],
  ['sctp-service', undefined, 'required'], ['fwmark-service', 'f', 'required'], ['scheduler', 's', 'required'],
  ['persistent', 'p', 'optional'], ['netmask', 'M', 'required'], ['real-server', 'r', 'required'],
  ['masquerading', 'm'], ['ipip', 'i'], ['gatewaying', 'g'], ['weight', 'w', 'required'],
  ['u-threshold', 'x', 'required'], ['l-threshold', 'y', 'required'], ['numeric', 'n'], ['connection', 'c'],
  ['mcast-interface', undefined, 'required'], ['syncid', undefined, 'required'], ['timeout'], ['daemon'], ['stats'],
  ['rate'], ['thresholds'], ['persistent-conn'], ['nosort'], ['sort'], ['exact', 'X'], ['ipv6', '6'], ['ops', 'o'],
  ['pe', undefined, 'required'], ['sched-flags', 'b', 'required'], ['mcast-group', undefined, 'required'],
  ['mcast-port', undefined, 'required'], ['mcast-ttl', undefined, 'required'], ['sync-maxlen', undefined, 'required'],
  ['tun-info'], ['tun-type', undefined, 'required'], ['tun-port', undefined, 'required'], ['tun-nocsum'], ['tun-csum'],
  ['tun-remcsum'],
].map(([long, short, arg]) => ({
  long: long!, short, arg: (arg ?? 'none') as ArgKind, tag: short ?? long!,
}));

const BY_LONG = new Map<string, OptionSpec>();
const BY_SHORT = new Map<string, OptionSpec>();
for (const spec of OPTION_TABLE) {
  if (!BY_LONG.has(spec.long)) BY_LONG.set(spec.long, spec);
  if (spec.short) BY_SHORT.set(spec.short, spec);
}

/** One option as popt hands it over, or an error (popt's negative return codes). */
type Scanned =
  | { kind: 'option'; tag: string; value: string | undefined; text: string }
  | { kind: 'error'; text: string; message: string }
  | { kind: 'end' };

/** popt's scanning of argv (without argv[0]): options in order, leftover arguments aside. */
class Scanner {
  readonly leftovers: string[] = [];
  #index = 0;
  #cluster: { text: string; at: number } | undefined;
  #noMoreOptions = false;

  constructor(private readonly args: readonly string[]) {}

  next(): Scanned {
    for (;;) {
      if (this.#cluster) return this.#shortOption();
      if (this.#index >= this.args.length) return { kind: 'end' };
      const arg = this.args[this.#index++]!;
      if (this.#noMoreOptions || arg[0] !== '-' || arg === '-') {
        this.leftovers.push(arg);
        continue;
      }
      if (arg === '--') {
        this.#noMoreOptions = true;
        continue;
      }
      if (arg.startsWith('--')) return this.#longOption(arg);
      this.#cluster = { text: arg, at: 1 };
    }
  }

  #longOption(arg: string): Scanned {
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq >= 0 ? eq : undefined);
    const spec = BY_LONG.get(name);
    if (!spec) return { kind: 'error', text: arg, message: 'unknown option' };
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (spec.arg === 'none') {
      // popt ignores an "=value" given to an option without argument
      return { kind: 'option', tag: spec.tag, value: undefined, text: arg };
    }
    if (inline !== undefined) return { kind: 'option', tag: spec.tag, value: inline, text: arg };
    return this.#separateValue(spec, arg);
  }

  #shortOption(): Scanned {
    const cluster = this.#cluster!;
    const letter = cluster.text[cluster.at]!;
    cluster.at++;
    const rest = cluster.text.slice(cluster.at);
    if (rest === '') this.#cluster = undefined;
    const spec = BY_SHORT.get(letter);
    if (!spec) {
      this.#cluster = undefined;
      return { kind: 'error', text: cluster.text, message: 'unknown option' };
    }
    if (spec.arg === 'none') return { kind: 'option', tag: spec.tag, value: undefined, text: cluster.text };
    if (rest !== '') {
      this.#cluster = undefined;
      return { kind: 'option', tag: spec.tag, value: rest.startsWith('=') ? rest.slice(1) : rest, text: cluster.text };
    }
    return this.#separateValue(spec, cluster.text);
  }

  #separateValue(spec: OptionSpec, text: string): Scanned {
    const next = this.args[this.#index];
    if (next === undefined) {
      if (spec.arg === 'optional') return { kind: 'option', tag: spec.tag, value: undefined, text };
      return { kind: 'error', text, message: 'missing argument' };
    }
    if (spec.arg === 'optional' && next.startsWith('-')) return { kind: 'option', tag: spec.tag, value: undefined, text };
    this.#index++;
    // popt names the last argv element it consumed: here the value.
    return { kind: 'option', tag: spec.tag, value: next, text: next };
  }
}

// ---- number and address parsing as ipvsadm does it ------------------------------------------

/** strtol(s, &end, 10) accepting only a whole string, within [min, max]; -1 otherwise. */
export function stringToNumber(text: string, min: number, max: number): number {
  const plain = digitsValue(text);
  if (plain >= 0) return plain >= min && plain <= max ? plain : -1;
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(text);
  if (!match) return -1;
  const value = Number(match[1]);
  if (!Number.isSafeInteger(value) || value < min || value > max) return -1;
  return value;
}

/** The value of a string of 1–15 decimal digits, else -1. */
function digitsValue(text: string): number {
  const length = text.length;
  if (length === 0 || length > 15) return -1;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    value = value * 10 + c;
  }
  return value;
}

function parseTimeout(text: string | undefined, min: number, max: number): number {
  if (text === undefined) return DEFAULT_PERSISTENCE;
  const value = stringToNumber(text, min, max);
  if (value === -1) fail(`invalid timeout value \`${text}' specified`);
  return value;
}

function parseFwmark(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(text);
  const value = match ? Number(match[1]) : NaN;
  if (!match || !Number.isSafeInteger(value) || value <= 0 || value > 0xffffffff) {
    fail(`invalid fwmark value \`${text}' specified`);
  }
  return value;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

interface ParsedAddress {
  af: number;
  addr: Uint8Array;
  /** Set when an IPv6 address was parsed (ipvsadm resets the netmask to 128 then). */
  v6: boolean;
  port?: number;
  result: number;
}

/** ipvsadm's parse_service: host[:port] or [ipv6]:port; port numeric or a service name. */
async function parseService(text: string, protocol: number): Promise<ParsedAddress> {
  const none: ParsedAddress = { af: 0, addr: ZERO_ADDRESS, v6: false, result: 0 };
  if (text === '' || digitsValue(text) >= 0 || /^\d*$/.test(text)) return none;
  // The common case first: a dotted quad with a numeric port (no IPv6, no names).
  const colon = text.indexOf(':');
  if (colon > 0 && colon === text.lastIndexOf(':')) {
    // Pooled and cheap; parseAddress writes all 16 bytes.
    const addr = Buffer.allocUnsafe(16);
    const port = digitsValue(text.slice(colon + 1));
    if (port >= 0 && port <= 65535 && parseAddress(text.slice(0, colon), addr, 0) === 'inet') {
      return { af: AF_INET, addr, v6: false, port, result: SERVICE_ADDR | SERVICE_PORT };
    }
  }
  let buf = text;
  let portText: string | undefined;
  if (buf.startsWith('[')) {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return none;
    const after = buf.slice(close + 1);
    if (!after.startsWith(':')) return none;
    portText = after.slice(1);
    buf = buf.slice(0, close);
  }
  const addr = new Uint8Array(16);
  let af: number;
  let v6 = false;
  if (inetPton6(buf, addr)) {
    af = AF_INET6;
    v6 = true;
  } else {
    // Not IPv6: the port follows the last ':' of what is left (the text inside brackets, if any).
    portText = undefined;
    const colon = buf.lastIndexOf(':');
    if (colon >= 0) {
      portText = buf.slice(colon + 1);
      buf = buf.slice(0, colon);
    }
    if (inetAton(buf, addr)) {
      af = AF_INET;
    } else {
      const resolved = await hostToAddress4(buf);
      if (!resolved) return none;
      addr.set(resolved);
      af = AF_INET;
    }
  }
  const parsed: ParsedAddress = { af, addr, v6, result: SERVICE_ADDR };
  if (portText !== undefined) {
    parsed.result |= SERVICE_PORT;
    let port = stringToNumber(portText, 0, 65535);
    if (port === -1) port = serviceToPort(portText, protocol);
    if (port === -1) return none;
    parsed.port = port;
  }
  return parsed;
}

async function parseNetmask(text: string): Promise<number | undefined> {
  const bytes = new Uint8Array(4);
  if (!inetAton(text, bytes)) {
    const resolved = await hostToAddress4(text);
    if (!resolved) return undefined;
    bytes.set(resolved);
  }
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

/** C atoi: leading whitespace, sign, digits; anything else ends the number (0 if none). */
function atoi(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(text);
  if (!match) return 0;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : -1;
}

function parseSchedFlags(scheduler: string, text: string): number {
  const sched = scheduler || 'wlc';
  let flags = 0;
  // strtok: empty tokens vanish; an argument of only commas still checks one (empty) flag.
  const tokens = text.split(',').filter((t) => t !== '');
  if (tokens.length === 0) tokens.push(text === '' ? '' : ',');
  for (const flag of tokens) {
    if (flag === 'flag-1') flags |= SVC_F_SCHED1;
    else if (flag === 'flag-2') flags |= SVC_F_SCHED2;
    else if (flag === 'flag-3') flags |= SVC_F_SCHED3;
    else if (flag === 'sh-fallback' || flag === 'sh-port' || flag === 'mh-fallback' || flag === 'mh-port') {
      flags |= flag.endsWith('fallback') ? SVC_F_SCHED1 : SVC_F_SCHED2;
      if (sched !== flag.slice(0, 2)) fail(`incompatible scheduler flag \`${flag}'`);
    } else {
      fail(`invalid scheduler flag \`${flag}'`);
    }
  }
  return flags;
}

function protocolOf(tag: string): number {
  if (tag === 't') return IPPROTO_TCP;
  if (tag === 'u') return IPPROTO_UDP;
  return IPPROTO_SCTP;
}

/** The all-zero address entries start with (never written to: parsing replaces it). */
const ZERO_ADDRESS: Uint8Array = new Uint8Array(16);

export function newEntry(): CommandEntry {
  return {
    cmd: Cmd.NONE,
    svc: {
      af: 0, protocol: 0, addr: ZERO_ADDRESS, port: 0, fwmark: 0, sched: '', flags: 0, timeout: 0,
      netmask: 0xffffffff, pe: '',
    },
    dest: {
      af: 0, addr: ZERO_ADDRESS, port: 0, fwd: FWD_ROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0,
      tunPort: 0, tunFlags: 0,
    },
    timeouts: { tcp: 0, tcpFin: 0, udp: 0 },
    daemon: { state: 0, ifname: '', syncid: 0, maxlen: 0, groupAf: 0, group: new Uint8Array(16), port: 0, ttl: 0 },
    options: new Array<number>(OPT_NAMES.length).fill(0),
    format: 0,
  };
}

/** What parsing asks the caller to do instead of running a command. */
export type Special = 'help' | 'version';

function setOption(entry: CommandEntry, opt: number): void {
  if (entry.options[opt]) fail(`multiple '${OPT_NAMES[opt]}' options specified`);
  entry.options[opt] = 1;
}

function setCommand(entry: CommandEntry, cmd: CmdCode): void {
  if (entry.cmd !== Cmd.NONE) fail('multiple commands specified');
  entry.cmd = cmd;
}

const FIRST_COMMANDS: Record<string, CmdCode> = {
  A: Cmd.ADD, E: Cmd.EDIT, D: Cmd.DEL, a: Cmd.ADDDEST, e: Cmd.EDITDEST, d: Cmd.DELDEST, C: Cmd.FLUSH, L: Cmd.LIST,
  l: Cmd.LIST, Z: Cmd.ZERO, set: Cmd.TIMEOUT, R: Cmd.RESTORE, S: Cmd.SAVE,
};

/**
 * Parses one ipvsadm command line (without the program name) and checks it as ipvsadm does.
 * @returns the entry, or 'help'/'version' for -h/-v.
 * @throws {IpvsadmExit} with ipvsadm's message and exit status.
 */
export async function parseCommandLine(args: readonly string[]): Promise<CommandEntry | Special> {
  const entry = newEntry();
  const scanner = new Scanner(args);
  let schedFlagsArg = '';

  // The first option must be the command.
  const first = scanner.next();
  if (first.kind !== 'option') throw new IpvsadmExit(EXIT_ERROR, TRY_HELP);
  if (first.tag === 'h') return 'help';
  if (first.tag === 'v') return 'version';
  if (first.tag === 'start-daemon' || first.tag === 'stop-daemon') {
    setCommand(entry, first.tag === 'start-daemon' ? Cmd.STARTDAEMON : Cmd.STOPDAEMON);
    if (first.value === 'master') entry.daemon.state = 1;
    else if (first.value === 'backup') entry.daemon.state = 2;
    else fail(first.tag === 'start-daemon' ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
  } else {
    const cmd = FIRST_COMMANDS[first.tag];
    if (cmd === undefined) throw new IpvsadmExit(EXIT_ERROR, TRY_HELP);
    setCommand(entry, cmd);
  }

  const { svc, dest, daemon } = entry;
  for (;;) {
    const item = scanner.next();
    if (item.kind === 'end') break;
    if (item.kind === 'error') throw new IpvsadmExit(EXIT_ERROR, `${item.text}: ${item.message}`, true);
    const value = item.value ?? '';
    switch (item.tag) {
      case 't': case 'u': case 'sctp-service': {
        setOption(entry, Opt.SERVICE);
        svc.protocol = protocolOf(item.tag);
        const parsed = await parseService(value, svc.protocol);
        if (!(parsed.result & SERVICE_ADDR)) fail('illegal virtual server address[:port] specified');
        svc.af = parsed.af;
        svc.addr = parsed.addr;
        if (parsed.v6) svc.netmask = 128;
        if (parsed.port !== undefined) svc.port = parsed.port;
        break;
      }
      case 'f':
        setOption(entry, Opt.SERVICE);
        svc.af = AF_INET;
        svc.protocol = IPPROTO_TCP;
        svc.fwmark = parseFwmark(value);
        break;
      case 's':
        setOption(entry, Opt.SCHEDULER);
        svc.sched = truncateBytes(value, 15);
        break;
      case 'p':
        setOption(entry, Opt.PERSISTENT);
        svc.flags |= SVC_F_PERSISTENT;
        svc.timeout = parseTimeout(item.value, 1, MAX_TIMEOUT);
        break;
      case 'M':
        setOption(entry, Opt.NETMASK);
        if (svc.af !== AF_INET6) {
          const mask = await parseNetmask(value);
          if (mask === undefined) fail('illegal virtual server persistent mask specified');
          svc.netmask = mask;
        } else {
          svc.netmask = atoi(value);
          if (svc.netmask < 1 || svc.netmask > 128) fail('illegal ipv6 netmask specified');
        }
        break;
      case 'r': {
        setOption(entry, Opt.SERVER);
        const parsed = await parseService(value, svc.protocol);
        // ipvsadm copies the service into a scratch entry first: a failed parse keeps its family.
        dest.af = parsed.result & SERVICE_ADDR ? parsed.af : svc.af;
        dest.addr = parsed.addr;
        dest.port = parsed.port ?? svc.port;
        if (!(parsed.result & SERVICE_ADDR)) fail('illegal real server address[:port] specified');
        if (parsed.result === SERVICE_ADDR) dest.port = svc.port;
        break;
      }
      case 'i': setOption(entry, Opt.FORWARD); dest.fwd = FWD_TUNNEL; break;
      case 'g': setOption(entry, Opt.FORWARD); dest.fwd = FWD_ROUTE; break;
      case 'm': setOption(entry, Opt.FORWARD); dest.fwd = FWD_MASQ; break;
      case 'w':
        setOption(entry, Opt.WEIGHT);
        // Debian's ipvsadm 1.31 takes weights up to INT_MAX, as the kernel does.
        if ((dest.weight = stringToNumber(value, 0, INT_MAX)) === -1) fail('illegal weight specified');
        break;
      case 'x':
        setOption(entry, Opt.UTHRESHOLD);
        if ((dest.uThreshold = stringToNumber(value, 0, INT_MAX)) === -1) fail('illegal u_threshold specified');
        break;
      case 'y':
        setOption(entry, Opt.LTHRESHOLD);
        if ((dest.lThreshold = stringToNumber(value, 0, INT_MAX)) === -1) fail('illegal l_threshold specified');
        break;
      case 'c': setOption(entry, Opt.CONNECTION); break;
      case 'n': setOption(entry, Opt.NUMERIC); entry.format |= Fmt.NUMERIC; break;
      case 'mcast-interface': setOption(entry, Opt.MCAST); daemon.ifname = truncateBytes(value, 15); break;
      case 'syncid':
        setOption(entry, Opt.SYNCID);
        if ((daemon.syncid = stringToNumber(value, 0, 255)) === -1) fail('illegal syncid specified');
        break;
      case 'timeout': setOption(entry, Opt.TIMEOUT); break;
      case 'daemon': setOption(entry, Opt.DAEMON); break;
      case 'stats': setOption(entry, Opt.STATS); entry.format |= Fmt.STATS; break;
      case 'rate': setOption(entry, Opt.RATE); entry.format |= Fmt.RATE; break;
      case 'thresholds': setOption(entry, Opt.THRESHOLDS); entry.format |= Fmt.THRESHOLDS; break;
      case 'persistent-conn': setOption(entry, Opt.PERSISTENTCONN); entry.format |= Fmt.PERSISTENTCONN; break;
      case 'nosort': setOption(entry, Opt.NOSORT); entry.format |= Fmt.NOSORT; break;
      case 'sort': break;
      case 'X': setOption(entry, Opt.EXACT); entry.format |= Fmt.EXACT; break;
      case '6':
        if (svc.fwmark) {
          svc.af = AF_INET6;
          svc.netmask = 128;
        } else {
          fail('-6 used before -f\n');
        }
        break;
      case 'o': setOption(entry, Opt.ONEPACKET); svc.flags |= SVC_F_ONEPACKET; break;
      case 'pe': setOption(entry, Opt.PERSISTENCE_ENGINE); svc.pe = truncateBytes(value, 16); break;
      case 'b': setOption(entry, Opt.SCHED_FLAGS); schedFlagsArg = value.slice(0, 127); break;
      case 'mcast-group':
        setOption(entry, Opt.MCAST_GROUP);
        if (value.includes(':')) {
          if (!inetPton6(value, daemon.group) || daemon.group[0] !== 0xff) fail(`invalid IPv6 mcast-group \`${value}'`);
          daemon.groupAf = AF_INET6;
        } else {
          if (!inetPton4(value, daemon.group) || (daemon.group[0]! & 0xf0) !== 0xe0) {
            fail(`invalid IPv4 mcast-group \`${value}'`);
          }
          daemon.groupAf = AF_INET;
        }
        break;
      case 'mcast-port':
        setOption(entry, Opt.MCAST_PORT);
        if ((daemon.port = stringToNumber(value, 1, 65535)) === -1) fail('illegal mcast-port specified');
        break;
      case 'mcast-ttl':
        setOption(entry, Opt.MCAST_TTL);
        if ((daemon.ttl = stringToNumber(value, 1, 255)) === -1) fail('illegal mcast-ttl specified');
        break;
      case 'sync-maxlen':
        setOption(entry, Opt.SYNC_MAXLEN);
        if ((daemon.maxlen = stringToNumber(value, 1, 65535 - 20 - 8)) === -1) fail('illegal sync-maxlen specified');
        break;
      case 'tun-info': setOption(entry, Opt.TUN_INFO); entry.format |= Fmt.TUN_INFO; break;
      case 'tun-type': {
        setOption(entry, Opt.TUN_TYPE);
        const type = TUNNEL_NAMES.indexOf(value);
        if (type < 0) fail('illegal tunnel type specified');
        dest.tunType = type;
        break;
      }
      case 'tun-port':
        setOption(entry, Opt.TUN_PORT);
        if ((dest.tunPort = stringToNumber(value, 1, 65535)) === -1) fail('illegal tunnel port specified');
        break;
      case 'tun-nocsum': setOption(entry, Opt.TUN_NOCSUM); break;
      case 'tun-csum': setOption(entry, Opt.TUN_CSUM); dest.tunFlags |= 1; break;
      case 'tun-remcsum': setOption(entry, Opt.TUN_REMCSUM); dest.tunFlags |= 2; break;
      default:
        // A second command, or -h/-v after the command: ipvsadm's option loop has no case for them.
        fail(`invalid option \`${item.text}'`);
    }
  }

  const leftovers = scanner.leftovers;
  if (entry.cmd === Cmd.TIMEOUT) {
    if (leftovers.length < 3) fail('--set option requires 3 timeout values');
    entry.timeouts.tcp = parseTimeout(leftovers.shift()!, 0, MAX_TIMEOUT);
    entry.timeouts.tcpFin = parseTimeout(leftovers.shift()!, 0, MAX_TIMEOUT);
    entry.timeouts.udp = parseTimeout(leftovers.shift()!, 0, MAX_TIMEOUT);
  }
  if (leftovers.length > 0) fail(`unexpected argument ${leftovers[0]}`);
  if (schedFlagsArg) {
    svc.flags &= ~(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
    svc.flags |= parseSchedFlags(svc.sched, schedFlagsArg);
  }

  checkEntry(entry);
  return entry;
}

/** The checks process_options() makes after parsing. */
function checkEntry(entry: CommandEntry): void {
  genericOptionCheck(entry);
  const { svc, dest } = entry;
  if (entry.cmd === Cmd.ADD || entry.cmd === Cmd.EDIT) {
    if (!svc.fwmark && !svc.port && !(svc.flags & SVC_F_PERSISTENT)) fail('Zero port specified for non-persistent service');
    if (svc.flags & SVC_F_ONEPACKET && !svc.fwmark && svc.protocol !== IPPROTO_UDP) {
      fail('One-Packet Scheduling is only for UDP virtual services');
    }
    if (svc.sched === '') svc.sched = 'wlc';
  }
  if (entry.cmd === Cmd.STARTDAEMON && entry.daemon.ifname === '') entry.daemon.ifname = 'eth0';
  if (entry.cmd === Cmd.ADDDEST || entry.cmd === Cmd.EDITDEST) {
    if (!svc.fwmark && (dest.fwd === FWD_TUNNEL || dest.fwd === FWD_ROUTE)) dest.port = svc.port;
    if (dest.af !== svc.af && dest.fwd !== FWD_TUNNEL) fail('Different address family is allowed only for tunneling servers');
    const tunnelOptions = [Opt.TUN_TYPE, Opt.TUN_PORT, Opt.TUN_NOCSUM, Opt.TUN_CSUM, Opt.TUN_REMCSUM];
    if (tunnelOptions.some((opt) => has(entry, opt)) && dest.fwd !== FWD_TUNNEL) {
      fail('Tunnel options conflict with forward method');
    }
    tunnelOptionCheck(entry);
  }
  if (entry.cmd === Cmd.LIST) {
    const any = (...opts: number[]): boolean => opts.some((opt) => has(entry, opt));
    if ((any(Opt.CONNECTION, Opt.TIMEOUT, Opt.DAEMON) && any(Opt.STATS, Opt.RATE, Opt.THRESHOLDS)) ||
      (any(Opt.TIMEOUT, Opt.DAEMON) && any(Opt.PERSISTENTCONN))) {
      fail('options conflicts in the list command');
    }
  }
}

function genericOptionCheck(entry: CommandEntry): void {
  const row = COMMANDS_V_OPTIONS[entry.cmd - 1]!;
  const command = CMD_NAMES[entry.cmd - 1]!;
  let last = -1;
  for (let j = 0; j < OPT_NAMES.length; j++) {
    const rule = row[j];
    if (!has(entry, j)) {
      if (rule === '+') fail(`You need to supply the '${OPT_NAMES[j]}' option for the '${command}' command`);
    } else {
      if (rule === 'x') fail(`Illegal '${OPT_NAMES[j]}' option with the '${command}' command`);
      if (rule === '1') {
        if (last < 0) { last = j; continue; }
        fail(`The option '${OPT_NAMES[j]}' conflicts with the '${OPT_NAMES[last]}' option in the '${command}' command`);
      }
    }
  }
}

function tunnelOptionCheck(entry: CommandEntry): void {
  const type = entry.dest.tunType;
  const row = TUNNEL_TYPES_V_OPTIONS[type]!;
  let last = -1;
  for (let j = 0; j < TUNNEL_OPTIONS.length; j++) {
    const opt = TUNNEL_OPTIONS[j]!;
    const rule = row[j];
    if (!has(entry, opt)) {
      if (rule === '+') fail(`You need to supply the '${OPT_NAMES[opt]}' option for the '${TUNNEL_NAMES[type]}' tunnel type`);
    } else {
      if (rule === 'x') fail(`Illegal '${OPT_NAMES[opt]}' option with the '${TUNNEL_NAMES[type]}' tunnel type`);
      if (rule === '1') {
        if (last < 0) { last = opt; continue; }
        fail(`The option '${OPT_NAMES[opt]}' conflicts with the '${OPT_NAMES[last]}' option in the '${TUNNEL_NAMES[type]}' tunnel type`);
      }
    }
  }
}

/** strncpy into a fixed buffer: at most `max` bytes of UTF-8 (whole characters). */
function truncateBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}
