// keepalived.conf → director configuration. The defaults and inheritance are keepalived 2.x's
// (check_data.c, check_api.c, check_http.c, check_misc.c): a virtual server's settings are the
// defaults of its real servers, and a real server's the defaults of its checkers.
import { familyOf } from '../../address';
import { SCHEDULERS } from '../../constants';
import type { AddressFamily, DestinationSpec, ForwardMethod, Scheduler, SchedulerFlag, TunnelSpec } from '../../types';
import { readKeepalivedConfig, splitScriptWords, type Statement } from './keepalived-syntax';
import { ConfigImportError, type ImportResult, type Unsupported } from './result';
import type { CheckSpec, DirectorConfig, DirectorDestination, DirectorService } from '../config';

/** keepalived's defaults (2.2.x), in seconds where they are durations. */
export const KEEPALIVED_DEFAULTS = {
  delayLoop: 60,
  connectTimeout: 5,
  /** retry for TCP_CHECK, HTTP_GET, SSL_GET (and SMTP/UDP/PING); a server goes down after retry + 1 failures. */
  retry: 1,
  miscRetry: 0,
  dnsRetry: 3,
  /** persistence_timeout without a value, and the timeout forced on a port-0 service. */
  persistenceTimeout: 360,
  scheduler: 'wlc' as Scheduler,
  forward: 'masq' as ForwardMethod,
  weight: 1,
} as const;

type Forwarding = { forward: ForwardMethod; tunnel?: TunnelSpec };

interface Timing {
  delayLoop?: number;
  connectTimeout?: number;
  connectTimeoutAt?: Statement;
  retry?: number;
}

interface Url {
  stmt: Statement;
  path?: string;
  digest?: string;
  status?: Array<number | string>;
  virtualhost?: string;
  regex?: string;
}

interface Checker {
  stmt: Statement;
  kind: string;
  timing: Timing;
  connectIp?: string;
  connectPort?: number;
  bindto?: string;
  virtualhost?: string;
  sni?: boolean;
  urls: Url[];
  miscCommand?: string[];
  miscTimeout?: number;
  miscTimeoutAt?: Statement;
  miscDynamic?: boolean;
  dnsName?: string;
  dnsType?: string;
}

interface RealServer {
  stmt: Statement;
  address: string;
  port: number;
  forwarding?: Forwarding;
  weight?: number;
  inhibit?: boolean;
  timing: Timing;
  virtualhost?: string;
  upperThreshold?: number;
  lowerThreshold?: number;
  checkers: Checker[];
}

interface VirtualServer {
  stmt: Statement;
  fwmark?: number;
  address?: string;
  port: number;
  family?: AddressFamily;
  protocol?: 'tcp' | 'udp' | 'sctp';
  scheduler?: Scheduler;
  schedulerFlags: SchedulerFlag[];
  onePacket?: boolean;
  forwarding?: Forwarding;
  persistent?: number;
  netmask?: string | number;
  persistenceEngine?: 'sip';
  virtualhost?: string;
  quorum?: number;
  hysteresis?: number;
  quorumUp?: string;
  quorumDown?: string;
  sorry?: { stmt: Statement; address: string; port: number; forwarding?: Forwarding };
  timing: Timing;
  inhibit?: boolean;
  weight?: number;
  reals: RealServer[];
}

const NOT_DIRECTOR: Record<string, string> = {
  global_defs: 'global settings (router id, notification email, scripts, netlink buffers) are not director configuration',
  vrrp_instance: 'VRRP failover is not part of the director; keep keepalived (-P, VRRP only) or another failover for the addresses',
  vrrp_sync_group: 'VRRP failover is not part of the director',
  vrrp_script: 'VRRP tracking scripts are not part of the director',
  vrrp_track_process: 'VRRP process tracking is not part of the director',
  track_file: 'tracked files (FILE_CHECK weights) are not supported',
  garp_group: 'gratuitous ARP settings are not director configuration',
  static_ipaddress: 'addresses are host network configuration, not director configuration',
  static_routes: 'routes are host network configuration, not director configuration',
  static_rules: 'policy rules are host network configuration, not director configuration',
  linkbeat_interfaces: 'link monitoring is not director configuration',
  bfd_instance: 'BFD is not supported',
  net_namespace: 'run the director in the namespace instead (Ipvs.open({ netns }))',
  virtual_server_group: 'virtual_server_group is not imported: declare each address or fwmark as its own service',
  SSL: 'client certificates and CA files for SSL_GET are not supported: the https check does not verify and sends no certificate',
};

class KeepalivedImporter {
  readonly unsupported: Unsupported[] = [];

  readonly order: number[] = [];
  private readonly reported = new Set<string>();

  skip(stmt: Statement, reason: string): void {
    const key = `${stmt.file}:${stmt.line}:${stmt.keyword}:${reason}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.unsupported.push({ file: stmt.file, line: stmt.line, directive: stmt.keyword, reason });
    this.order.push(stmt.order);
  }

  fail(stmt: Statement, message: string): never {
    throw new ConfigImportError(stmt.file, stmt.line, `${stmt.keyword}: ${message}`);
  }

  arg(stmt: Statement, index = 0, what = 'a value'): string {
    const value = stmt.args[index];
    if (value === undefined || value === '') this.fail(stmt, `needs ${what}`);
    return value;
  }

  integer(stmt: Statement, min: number, max: number, index = 0): number {
    const text = this.arg(stmt, index, 'a number');
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) this.fail(stmt, `'${text}' is not an integer in ${min}–${max}`);
    return Number(text);
  }

  /** keepalived's <TIMER>: seconds, fractions allowed. */
  timer(stmt: Statement, min: number): number {
    const text = this.arg(stmt, 0, 'a time in seconds');
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text) || Number(text) < min) this.fail(stmt, `'${text}' is not a time in seconds ≥ ${min}`);
    return Number(text);
  }

  /** keepalived's optional <BOOL>; a bare keyword means true. */
  bool(stmt: Statement): boolean {
    const text = stmt.args[0];
    if (text === undefined) return true;
    if (['on', 'true', 'yes'].includes(text)) return true;
    if (['off', 'false', 'no'].includes(text)) return false;
    return this.fail(stmt, `'${text}' is not one of on|off|true|false|yes|no`);
  }

  address(stmt: Statement, text: string): string {
    if (!familyOf(text)) this.fail(stmt, `'${text}' is not an IPv4 or IPv6 address (keepalived does not resolve names)`);
    return text;
  }

  port(stmt: Statement, text: string | undefined): number {
    if (text === undefined) return 0;
    if (!/^\d+$/.test(text) || Number(text) > 65535) this.fail(stmt, `'${text}' is not a port number`);
    return Number(text);
  }

  /** lvs_method / lb_kind: each line starts from ipip, no port, no checksum, as keepalived's does. */
  forwarding(stmt: Statement): Forwarding {
    const method = this.arg(stmt, 0, 'NAT, DR or TUN');
    if (method === 'NAT') return { forward: 'masq' };
    if (method === 'DR') return { forward: 'route' };
    if (method !== 'TUN') this.fail(stmt, `unknown forwarding method '${method}' (NAT, DR or TUN)`);
    let type: TunnelSpec['type'] = 'ipip';
    let port: number | undefined;
    let checksum: TunnelSpec['checksum'];
    const rest = stmt.args.slice(1);
    for (let i = 0; i < rest.length; i += 1) {
      const word = rest[i]!;
      if (word === 'type') {
        const value = rest[(i += 1)];
        if (value !== 'ipip' && value !== 'gue' && value !== 'gre') this.fail(stmt, `unknown tunnel type '${value ?? ''}'`);
        type = value;
      } else if (word === 'port') {
        port = this.port(stmt, rest[(i += 1)]);
        if (port === 0) this.fail(stmt, 'a GUE tunnel port must be 1–65535');
      } else if (word === 'nocsum') checksum = 'none';
      else if (word === 'csum') checksum = 'csum';
      else if (word === 'remcsum') checksum = 'remcsum';
      else this.fail(stmt, `unknown tunnel option '${word}'`);
    }
    if ((type === 'gue') !== (port !== undefined)) this.fail(stmt, 'a GUE tunnel needs a port, and only GUE takes one');
    if (type === 'ipip' && checksum && checksum !== 'none') this.fail(stmt, 'ipip tunnels take no checksum option');
    if (type === 'gre' && checksum === 'remcsum') this.fail(stmt, 'gre tunnels do not support remcsum');
    if (type === 'ipip' && port === undefined && (!checksum || checksum === 'none')) return { forward: 'tunnel' };
    const spec: TunnelSpec = { type };
    if (port !== undefined) spec.port = port;
    if (checksum && checksum !== 'none') spec.checksum = checksum;
    return { forward: 'tunnel', tunnel: spec };
  }

  /** Options every level (virtual server, real server, checker) accepts. */
  timing(stmt: Statement, timing: Timing, level: 'virtual' | 'real' | 'checker'): boolean {
    switch (stmt.keyword) {
      case 'delay_loop': timing.delayLoop = this.timer(stmt, 0.000001); return true;
      case 'connect_timeout':
        timing.connectTimeout = this.timer(stmt, 0.000001);
        timing.connectTimeoutAt = stmt;
        return true;
      case 'retry': timing.retry = this.integer(stmt, level === 'checker' ? 0 : 1, 0xffffffff); return true;
      case 'delay_before_retry':
        this.timer(stmt, 0);
        this.skip(stmt, 'the director re-checks a failing destination at its interval and takes it out after `fall` failures; a separate retry delay is not modelled');
        return true;
      case 'warmup':
        this.timer(stmt, 0);
        this.skip(stmt, "the director always starts each check at a random offset within its interval (keepalived's default warmup)");
        return true;
      case 'alpha':
        if (level === 'virtual' || this.bool(stmt)) {
          this.skip(stmt, 'alpha (start servers down until their first check passes) is not imported: the director keeps a serving destination up until its checks fail');
        }
        return true;
      case 'smtp_alert':
        this.skip(stmt, 'email alerts are not sent; subscribe to the director events instead');
        return true;
      case 'snmp_name':
        this.skip(stmt, 'SNMP is not supported');
        return true;
      default: return false;
    }
  }

  run(statements: Statement[]): DirectorConfig {
    const services: DirectorService[] = [];
    for (const stmt of statements) {
      if (stmt.keyword === 'virtual_server') {
        const vs = this.virtualServer(stmt);
        if (vs) services.push(this.service(vs));
      } else if (NOT_DIRECTOR[stmt.keyword] !== undefined) this.skip(stmt, NOT_DIRECTOR[stmt.keyword]!);
      else if (stmt.keyword.startsWith('vrrp_')) this.skip(stmt, 'VRRP settings are not director configuration');
      else this.skip(stmt, 'unknown top-level keyword (keepalived ignores it too)');
    }
    return { services };
  }

  virtualServer(stmt: Statement): VirtualServer | undefined {
    const [first, second] = stmt.args;
    if (first === undefined) this.fail(stmt, 'needs an address [port], fwmark N or group NAME');
    if (first === 'group') {
      this.skip(stmt, 'virtual servers of a virtual_server_group are not imported: declare each address or fwmark as its own service');
      return undefined;
    }
    if (!stmt.block) this.fail(stmt, "needs a '{ ... }' block");
    const vs: VirtualServer = { stmt, port: 0, schedulerFlags: [], timing: {}, reals: [] };
    if (first === 'fwmark') {
      vs.fwmark = this.integer(stmt, 1, 0xffffffff, 1);
    } else {
      vs.address = this.address(stmt, first);
      vs.port = this.port(stmt, second);
    }
    for (const child of stmt.block) this.virtualServerOption(vs, child);
    if (vs.reals.length === 0) {
      this.skip(stmt, 'a virtual server without real servers is ignored by keepalived, and so by the import');
      return undefined;
    }
    return vs;
  }

  virtualServerOption(vs: VirtualServer, stmt: Statement): void {
    if (this.timing(stmt, vs.timing, 'virtual')) return;
    switch (stmt.keyword) {
      case 'lb_algo':
      case 'lvs_sched': {
        const name = this.arg(stmt, 0, 'a scheduler');
        if (!(SCHEDULERS as readonly string[]).includes(name)) this.fail(stmt, `unknown scheduler '${name}'`);
        vs.scheduler = name as Scheduler;
        return;
      }
      case 'lb_kind':
      case 'lvs_method': vs.forwarding = this.forwarding(stmt); return;
      case 'protocol': {
        const name = this.arg(stmt, 0, 'TCP, UDP or SCTP').toLowerCase();
        if (name !== 'tcp' && name !== 'udp' && name !== 'sctp') this.fail(stmt, `unknown protocol '${stmt.args[0]}'`);
        if (vs.fwmark !== undefined) this.skip(stmt, 'a fwmark service has no protocol; keepalived ignores it too');
        else vs.protocol = name;
        return;
      }
      case 'persistence_timeout':
        vs.persistent = stmt.args.length === 0 ? KEEPALIVED_DEFAULTS.persistenceTimeout : this.integer(stmt, 1, 86400 * 31);
        return;
      case 'persistence_granularity': {
        const text = this.arg(stmt, 0, 'a netmask or prefix length');
        if (/^\d+$/.test(text)) vs.netmask = this.integer(stmt, 1, 128);
        else if (familyOf(text) === 'inet') vs.netmask = text;
        else this.fail(stmt, `'${text}' is neither an IPv4 netmask nor an IPv6 prefix length`);
        vs.persistent ??= KEEPALIVED_DEFAULTS.persistenceTimeout;
        return;
      }
      case 'persistence_engine':
        if (this.arg(stmt, 0, 'an engine name') !== 'sip') this.fail(stmt, `unknown persistence engine '${stmt.args[0]}'`);
        vs.persistenceEngine = 'sip';
        return;
      case 'ops': vs.onePacket = true; return;
      case 'flag-1': case 'flag-2': case 'flag-3':
      case 'sh-port': case 'sh-fallback': case 'mh-port': case 'mh-fallback':
        vs.schedulerFlags.push(stmt.keyword);
        return;
      case 'hashed': this.skip(stmt, 'the hashed flag is set by the kernel on every service'); return;
      case 'ip_family': {
        const family = this.arg(stmt, 0, 'inet or inet6');
        if (family !== 'inet' && family !== 'inet6') this.fail(stmt, `unknown address family '${family}'`);
        vs.family = family;
        return;
      }
      case 'virtualhost': vs.virtualhost = this.arg(stmt, 0, 'a host name'); return;
      case 'quorum': vs.quorum = this.integer(stmt, 1, 0xffffffff); return;
      case 'hysteresis': vs.hysteresis = this.integer(stmt, 0, 0xffffffff); return;
      case 'quorum_up': vs.quorumUp = this.script(stmt); return;
      case 'quorum_down': vs.quorumDown = this.script(stmt); return;
      case 'inhibit_on_failure': vs.inhibit = true; return;
      case 'weight': vs.weight = this.integer(stmt, 1, 65535); return;
      case 'sorry_server': {
        vs.sorry = {
          stmt, address: this.address(stmt, this.arg(stmt, 0, 'an address')), port: this.port(stmt, stmt.args[1]),
          ...(vs.forwarding ? { forwarding: vs.forwarding } : {}),
        };
        return;
      }
      case 'sorry_server_lvs_method':
        if (!vs.sorry) this.fail(stmt, 'comes before any sorry_server');
        vs.sorry.forwarding = this.forwarding(stmt);
        return;
      case 'sorry_server_inhibit':
        this.skip(stmt, 'the sorry server is always removed when quorum is back (not left at weight 0)');
        return;
      case 'ha_suspend':
        this.skip(stmt, 'ha_suspend (pause checks while the VIP is absent) is not supported: checks always run');
        return;
      case 'omega':
        this.skip(stmt, 'omega (run notifiers on shutdown) is not supported; director.stop() emits no quorum events');
        return;
      case 'real_server': {
        const rs = this.realServer(vs, stmt);
        if (vs.reals.some((other) => other.address === rs.address && other.port === rs.port)) {
          this.skip(stmt, 'duplicate real server: keepalived drops the second one, and so does the import');
        } else vs.reals.push(rs);
        return;
      }
      default: this.skip(stmt, 'unknown virtual_server keyword (keepalived ignores it too)');
    }
  }

  /**
   * A script line as keepalived reads it: the first (quoted) word is the command with its
   * arguments, split again on unquoted spaces; for notify scripts the next words are a user and
   * group, for misc_path they are ignored.
   */
  scriptArgv(stmt: Statement, extra: string): string[] {
    const [command, ...rest] = splitScriptWords(stmt.rawArgs);
    const argv = command === undefined ? [] : splitScriptWords(command);
    if (argv.length === 0) this.fail(stmt, 'needs a command');
    if (rest.length > 0) this.skip(stmt, `${extra} (${rest.join(' ')})`);
    return argv;
  }

  script(stmt: Statement): string {
    const argv = this.scriptArgv(stmt, "running the script as another user is not supported; it runs as the director's user");
    return argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`)).join(' ');
  }

  realServer(vs: VirtualServer, stmt: Statement): RealServer {
    const rs: RealServer = {
      stmt, address: this.address(stmt, this.arg(stmt, 0, 'an address')), port: this.port(stmt, stmt.args[1]),
      timing: {}, checkers: [],
      ...(vs.forwarding ? { forwarding: vs.forwarding } : {}),
    };
    for (const child of stmt.block ?? []) {
      if (this.timing(child, rs.timing, 'real')) continue;
      switch (child.keyword) {
        case 'weight': rs.weight = this.integer(child, 0, 65535); break;
        case 'lvs_method': rs.forwarding = this.forwarding(child); break;
        case 'uthreshold': rs.upperThreshold = this.integer(child, 0, 0x7fffffff); break;
        case 'lthreshold': rs.lowerThreshold = this.integer(child, 0, 0x7fffffff); break;
        case 'inhibit_on_failure': rs.inhibit = this.bool(child); break;
        case 'virtualhost': rs.virtualhost = this.arg(child, 0, 'a host name'); break;
        case 'notify_up':
        case 'notify_down':
          this.skip(child, 'per-server notify scripts are not run; subscribe to the director\'s up/down events instead');
          break;
        case 'HTTP_GET':
        case 'SSL_GET':
        case 'TCP_CHECK':
        case 'MISC_CHECK':
        case 'DNS_CHECK':
        case 'PING_CHECK':
          rs.checkers.push(this.checker(child));
          break;
        case 'SMTP_CHECK':
        case 'UDP_CHECK':
        case 'BFD_CHECK':
        case 'FILE_CHECK':
          this.skip(child, `${child.keyword} has no director check type here; this checker is not imported`);
          break;
        default: this.skip(child, 'unknown real_server keyword (keepalived ignores it too)');
      }
    }
    return rs;
  }

  checker(stmt: Statement): Checker {
    const checker: Checker = { stmt, kind: stmt.keyword, timing: {}, urls: [] };
    const connection = stmt.keyword !== 'MISC_CHECK';
    for (const child of stmt.block ?? []) {
      if (this.timing(child, checker.timing, 'checker')) continue;
      const key = child.keyword;
      if (connection && key === 'connect_ip') checker.connectIp = this.address(child, this.arg(child));
      else if (connection && key === 'connect_port') checker.connectPort = this.integer(child, 1, 65535);
      else if (connection && key === 'bindto') checker.bindto = this.address(child, this.arg(child));
      else if (connection && (key === 'bind_port' || key === 'bind_if' || key === 'fwmark')) {
        this.skip(child, `${key} for checks is not supported (only the source address, bindAddress)`);
      } else if (key === 'log_all_failures') this.skip(child, 'check results are events (director.on("check")), not log lines');
      else if (stmt.keyword === 'HTTP_GET' || stmt.keyword === 'SSL_GET') this.httpOption(checker, child);
      else if (stmt.keyword === 'MISC_CHECK' && key === 'misc_path') {
        checker.miscCommand = this.scriptArgv(child, 'words after the command are ignored by keepalived; quote the whole command line');
      } else if (stmt.keyword === 'MISC_CHECK' && key === 'misc_timeout') {
        checker.miscTimeout = this.integer(child, 1, 0xffffffff);
        checker.miscTimeoutAt = child;
      }
      else if (stmt.keyword === 'MISC_CHECK' && key === 'misc_dynamic') checker.miscDynamic = true;
      else if (stmt.keyword === 'MISC_CHECK' && key === 'user') this.skip(child, "the command runs as the director's user");
      else if (stmt.keyword === 'DNS_CHECK' && key === 'type') checker.dnsType = this.arg(child).toUpperCase();
      else if (stmt.keyword === 'DNS_CHECK' && key === 'name') checker.dnsName = this.arg(child);
      else this.skip(child, `unknown ${stmt.keyword} keyword (keepalived ignores it too)`);
    }
    if (checker.kind === 'MISC_CHECK' && !checker.miscCommand) this.fail(stmt, 'needs misc_path');
    if ((checker.kind === 'HTTP_GET' || checker.kind === 'SSL_GET') && checker.urls.length === 0) this.fail(stmt, 'needs at least one url { path ... }');
    return checker;
  }

  httpOption(checker: Checker, stmt: Statement): void {
    switch (stmt.keyword) {
      case 'nb_get_retry': checker.timing.retry = this.integer(stmt, 0, 0xffffffff); return;
      case 'virtualhost': checker.virtualhost = this.arg(stmt, 0, 'a host name'); return;
      case 'enable_sni':
        if (checker.kind !== 'SSL_GET') this.fail(stmt, 'applies to SSL_GET only');
        checker.sni = this.bool(stmt);
        return;
      case 'http_protocol':
        this.skip(stmt, 'the request line and Connection header are the director\'s own (HTTP/1.1, Connection: close)');
        return;
      case 'fast_recovery':
        this.skip(stmt, 'every url is checked on each round, so recovery is never delayed per url');
        return;
      case 'url': checker.urls.push(this.url(stmt)); return;
      default: this.skip(stmt, `unknown ${checker.kind} keyword (keepalived ignores it too)`);
    }
  }

  url(stmt: Statement): Url {
    const url: Url = { stmt };
    for (const child of stmt.block ?? []) {
      switch (child.keyword) {
        case 'path': url.path = this.arg(child, 0, 'a path'); break;
        case 'digest': {
          const digest = this.arg(child, 0, 'an MD5 digest');
          if (!/^[0-9a-fA-F]{32}$/.test(digest)) this.fail(child, `'${digest}' is not 32 hex digits`);
          url.digest = digest.toLowerCase();
          break;
        }
        case 'status_code': {
          url.status = child.args.map((code) => {
            const range = /^(\d+)(?:-(\d+))?$/.exec(code);
            const min = Number(range?.[1]);
            const max = range?.[2] === undefined ? min : Number(range[2]);
            if (!range || min < 100 || max > 599 || min > max) this.fail(child, `'${code}' is not a status code or range in 100–599`);
            return range[2] === undefined ? min : `${min}-${max}`;
          });
          if (url.status.length === 0) this.fail(child, 'needs at least one code');
          break;
        }
        case 'virtualhost': url.virtualhost = this.arg(child, 0, 'a host name'); break;
        case 'regex': url.regex = this.arg(child, 0, 'a regular expression'); break;
        case 'regex_no_match': case 'regex_options': case 'regex_stack': case 'regex_min_offset': case 'regex_max_offset':
          this.skip(child, `${child.keyword} is not supported: bodyRegex is a plain JavaScript regular expression that must match`);
          break;
        default: this.skip(child, 'unknown url keyword (keepalived ignores it too)');
      }
    }
    if (!url.path) this.fail(stmt, 'needs a path');
    return url;
  }

  /** The destination port keepalived programs: masq keeps its own, other methods take the service's (0 for fwmark). */
  destinationPort(vs: VirtualServer, stmt: Statement, forward: ForwardMethod, port: number, what: string): number {
    if (forward === 'masq') return vs.fwmark === undefined && port === 0 ? vs.port : port;
    const wanted = vs.fwmark === undefined ? vs.port : 0;
    if (port !== 0 && port !== wanted) {
      this.skip(stmt, `${what} port ${port} is not used: with ${forward} forwarding keepalived sets it to ${wanted}, and so does the import`);
    }
    return wanted;
  }

  checkSpecs(vs: VirtualServer, rs: RealServer): CheckSpec[] {
    const specs: CheckSpec[] = [];
    for (const checker of rs.checkers) {
      const delayLoop = checker.timing.delayLoop ?? rs.timing.delayLoop ?? vs.timing.delayLoop ?? KEEPALIVED_DEFAULTS.delayLoop;
      const defaultRetry = checker.kind === 'MISC_CHECK' ? KEEPALIVED_DEFAULTS.miscRetry
        : checker.kind === 'DNS_CHECK' ? KEEPALIVED_DEFAULTS.dnsRetry : KEEPALIVED_DEFAULTS.retry;
      const retry = checker.timing.retry ?? rs.timing.retry ?? vs.timing.retry ?? defaultRetry;
      let timeout = checker.kind === 'MISC_CHECK'
        ? checker.miscTimeout ?? vs.timing.delayLoop ?? KEEPALIVED_DEFAULTS.delayLoop
        : checker.timing.connectTimeout ?? rs.timing.connectTimeout ?? vs.timing.connectTimeout ?? KEEPALIVED_DEFAULTS.connectTimeout;
      if (checker.kind === 'PING_CHECK') timeout += 1;
      if (timeout >= delayLoop) {
        // keepalived lets a check outlast delay_loop; the director needs timeout < interval.
        const at = checker.kind === 'MISC_CHECK' ? checker.miscTimeoutAt
          : checker.timing.connectTimeoutAt ?? rs.timing.connectTimeoutAt ?? vs.timing.connectTimeoutAt;
        const what = checker.kind === 'MISC_CHECK' ? (at ? 'misc_timeout' : "the default misc_timeout (the virtual server's delay_loop)")
          : at ? 'connect_timeout' : `the default connect_timeout (${KEEPALIVED_DEFAULTS.connectTimeout} s)`;
        this.skip(at ?? checker.stmt, `${what} of ${timeout} s is not below the check interval of ${delayLoop} s, which the director requires; imported as ${delayLoop / 2} s`);
        timeout = delayLoop / 2;
      }
      const common = {
        ...(checker.connectIp !== undefined ? { address: checker.connectIp } : {}),
        ...(checker.connectPort !== undefined ? { port: checker.connectPort } : {}),
        ...(checker.bindto !== undefined ? { bindAddress: checker.bindto } : {}),
        interval: delayLoop, timeout, rise: 1, fall: retry + 1,
      };
      switch (checker.kind) {
        case 'TCP_CHECK': specs.push({ type: 'tcp', ...common }); break;
        case 'MISC_CHECK':
          specs.push({
            type: 'exec', command: checker.miscCommand!, ...(checker.miscDynamic ? { dynamicWeight: true } : {}), ...common,
          });
          break;
        case 'DNS_CHECK':
          specs.push({ type: 'dns', name: checker.dnsName ?? '.', queryType: checker.dnsType ?? 'SOA', ...common });
          break;
        case 'PING_CHECK':
          specs.push({
            type: 'exec', command: ['ping', '-c', '1', '-W', String(Math.max(1, Math.ceil(timeout - 1))), checker.connectIp ?? rs.address],
            interval: delayLoop, timeout, rise: 1, fall: retry + 1,
          });
          break;
        default:
          for (const url of checker.urls) {
            const host = url.virtualhost ?? checker.virtualhost ?? rs.virtualhost ?? vs.virtualhost;
            const sniHost = url.virtualhost ?? checker.virtualhost ?? vs.virtualhost;
            specs.push({
              type: checker.kind === 'SSL_GET' ? 'https' : 'http',
              path: url.path!,
              ...(host !== undefined ? { host } : {}),
              ...(url.status ? { expectStatus: url.status } : {}),
              ...(url.digest ? { bodyMd5: url.digest } : {}),
              ...(url.regex ? { bodyRegex: url.regex } : {}),
              ...(checker.sni && sniHost !== undefined ? { sni: sniHost } : {}),
              ...common,
            });
          }
      }
    }
    return specs.length > 0 ? specs : [{ type: 'none' }];
  }

  service(vs: VirtualServer): DirectorService {
    const key = vs.fwmark !== undefined
      ? { fwmark: vs.fwmark, ...(vs.family ? { family: vs.family } : {}) }
      : { protocol: vs.protocol ?? this.defaultProtocol(vs), address: vs.address!, port: vs.port };
    let persistent = vs.persistent;
    if (vs.fwmark === undefined && vs.port === 0 && persistent === undefined) {
      this.skip(vs.stmt, `port 0 is only valid for a persistent service: keepalived makes it persistent (${KEEPALIVED_DEFAULTS.persistenceTimeout} s), and so does the import`);
      persistent = KEEPALIVED_DEFAULTS.persistenceTimeout;
    }
    const destinations: DirectorDestination[] = [];
    const checks: CheckSpec[][] = [];
    const failures: Array<'quiesce' | 'remove'> = [];
    let weightSum = 0;
    for (const rs of vs.reals) {
      const fwd = rs.forwarding ?? vs.forwarding ?? { forward: KEEPALIVED_DEFAULTS.forward };
      const weight = rs.weight ?? vs.weight ?? KEEPALIVED_DEFAULTS.weight;
      weightSum += weight;
      const port = this.destinationPort(vs, rs.stmt, fwd.forward, rs.port, 'real server');
      destinations.push({
        address: rs.address,
        ...(vs.fwmark === undefined || port !== 0 ? { port } : {}),
        forward: fwd.forward,
        ...(fwd.tunnel ? { tunnel: fwd.tunnel } : {}),
        weight,
        ...(rs.upperThreshold !== undefined ? { upperThreshold: rs.upperThreshold } : {}),
        ...(rs.lowerThreshold !== undefined ? { lowerThreshold: rs.lowerThreshold } : {}),
      });
      checks.push(this.checkSpecs(vs, rs));
      failures.push(rs.inhibit ?? vs.inhibit ?? false ? 'quiesce' : 'remove');
    }
    const service: DirectorService = {
      ...key,
      scheduler: vs.scheduler ?? KEEPALIVED_DEFAULTS.scheduler,
      ...(persistent !== undefined ? { persistent } : {}),
      ...(vs.netmask !== undefined ? { netmask: vs.netmask } : {}),
      ...(vs.onePacket ? { onePacket: true } : {}),
      ...(vs.schedulerFlags.length > 0 ? { schedulerFlags: vs.schedulerFlags } : {}),
      ...(vs.persistenceEngine ? { persistenceEngine: vs.persistenceEngine } : {}),
      destinations,
    } as DirectorService;
    // One check list and one failure action for the whole service when every real server agrees.
    const sameChecks = checks.every((list) => JSON.stringify(list) === JSON.stringify(checks[0]));
    if (sameChecks) service.checks = checks[0]!;
    else destinations.forEach((dest, i) => { dest.checks = checks[i]!; });
    if (failures.every((f) => f === failures[0])) service.onFailure = failures[0]!;
    else destinations.forEach((dest, i) => { dest.onFailure = failures[i]!; });

    let quorum = vs.quorum;
    if (quorum !== undefined && quorum > weightSum) {
      this.skip(vs.stmt, `quorum ${quorum} exceeds the real servers' total weight ${weightSum}: keepalived lowers it to ${weightSum}, and so does the import`);
      quorum = weightSum;
    }
    let hysteresis = vs.hysteresis;
    if (hysteresis !== undefined && hysteresis >= (quorum ?? 1)) {
      this.skip(vs.stmt, `hysteresis ${hysteresis} is not below quorum ${quorum ?? 1}: keepalived lowers it to ${(quorum ?? 1) - 1}, and so does the import`);
      hysteresis = (quorum ?? 1) - 1;
    }
    if (quorum !== undefined) service.quorum = quorum;
    if (hysteresis !== undefined) service.hysteresis = hysteresis;
    if (vs.sorry) {
      const fwd = vs.sorry.forwarding ?? vs.forwarding ?? { forward: KEEPALIVED_DEFAULTS.forward };
      const port = this.destinationPort(vs, vs.sorry.stmt, fwd.forward, vs.sorry.port, 'sorry server');
      const sorry: DestinationSpec = {
        address: vs.sorry.address,
        ...(vs.fwmark === undefined || port !== 0 ? { port } : {}),
        forward: fwd.forward,
        ...(fwd.tunnel ? { tunnel: fwd.tunnel } : {}),
        weight: 1,
      };
      service.sorryServers = [sorry];
    }
    if (vs.quorumUp !== undefined) service.quorumUp = vs.quorumUp;
    if (vs.quorumDown !== undefined) service.quorumDown = vs.quorumDown;
    return service;
  }

  defaultProtocol(vs: VirtualServer): 'udp' {
    this.skip(vs.stmt, 'no protocol given: keepalived defaults to UDP (the kernel\'s default), and so does the import; add `protocol TCP` if that was meant');
    return 'udp';
  }
}

/**
 * Imports a keepalived.conf (with its includes) as a director configuration. Only the LVS part
 * (virtual_server blocks) maps; everything else, and every option without an equivalent, is
 * listed in `unsupported` with its file and line. keepalived's defaults are written out
 * explicitly (scheduler wlc, NAT forwarding, weight 1, delay_loop 60 s, connect_timeout 5 s,
 * retry 1 — a server goes down after retry + 1 failed checks and comes back after one success —
 * and removal on failure unless inhibit_on_failure), so the result does not depend on the
 * director's own defaults.
 *
 * @throws {ConfigImportError} (`file:line: …`) for unreadable files, unbalanced braces or a
 *   value keepalived itself would reject.
 */
export async function importKeepalived(path: string): Promise<ImportResult> {
  const { statements, unsupported, order } = await readKeepalivedConfig(path);
  const importer = new KeepalivedImporter();
  const config = importer.run(statements);
  // In reading order across included files; stable for several entries of one line.
  const entries = [
    ...unsupported.map((entry, i) => ({ entry, at: order[i]! })),
    ...importer.unsupported.map((entry, i) => ({ entry, at: importer.order[i]! })),
  ].sort((a, b) => a.at - b.at);
  return { config, unsupported: entries.map(({ entry }) => entry) };
}
