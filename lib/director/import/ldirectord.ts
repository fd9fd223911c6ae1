// ldirectord.cf → director configuration. Semantics and defaults are those of ldirectord's own
// reader (read_config, ld_setup, _ld_read_config_*): global directives start at column 0, a
// `virtual=` line opens a service whose directives are indented (a tab or 4+ spaces), and the
// first line that is not indented (or is blank) ends it.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { familyOf } from '../../address';
import type { DestinationSpec, ForwardMethod, SchedulerFlag } from '../../types';
import { ConfigImportError, type ImportResult, type Unsupported } from './result';
import type { CheckSpec, DirectorDestination, DirectorService } from '../config';

/** ldirectord's defaults, as its code sets them (seconds for durations). */
export const LDIRECTORD_DEFAULTS = {
  checkInterval: 10,
  checkTimeout: 5,
  negotiateTimeout: 30,
  failureCount: 1,
  /** The code's default; the man page says yes. */
  quiescent: false,
  scheduler: 'wrr',
  checkType: 'negotiate',
  request: '/',
  weight: 1,
} as const;

const FORWARD: Record<string, ForwardMethod> = { gate: 'route', masq: 'masq', ipip: 'tunnel' };

/** ld_port_to_service: the service a virtual port implies when `service` is not given. */
const PORT_SERVICE: Record<number, string> = {
  21: 'ftp', 25: 'smtp', 53: 'dns', 80: 'http', 110: 'pop', 119: 'nntp', 143: 'imap', 389: 'ldap', 443: 'https',
  587: 'submission', 636: 'ldaps', 993: 'imaps', 995: 'pops', 1521: 'oracle', 1812: 'radius', 3128: 'http_proxy',
  3306: 'mysql', 5060: 'sip', 5432: 'pgsql',
};
const SERVICE_PORT: Record<string, number> = Object.fromEntries(Object.entries(PORT_SERVICE).map(([p, s]) => [s, Number(p)]));
const SERVICES = new Set([...Object.values(PORT_SERVICE), 'none', 'simpletcp']);

let etcServices: Map<string, number> | undefined;
/** getservbyname(3) as ldirectord uses it: /etc/services, then ldirectord's own table. */
function servicePort(name: string): number | undefined {
  if (!etcServices) {
    etcServices = new Map();
    try {
      for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
        const [entry = ''] = line.split('#');
        const [service, portProto, ...aliases] = entry.trim().split(/\s+/);
        const port = Number(portProto?.split('/')[0]);
        if (!service || !Number.isInteger(port)) continue;
        for (const alias of [service, ...aliases]) if (!etcServices.has(alias)) etcServices.set(alias, port);
      }
    } catch { /* no /etc/services: the built-in table below still applies */ }
  }
  return etcServices.get(name) ?? SERVICE_PORT[name];
}

interface Line {
  file: string;
  line: number;
  key: string;
  value: string;
}

interface Real {
  at: Line;
  address: string;
  port: number;
  forward: ForwardMethod;
  weight: number;
  request?: string;
  receive?: string;
  lowerThreshold?: number;
  upperThreshold?: number;
}

interface Virtual {
  at: Line;
  family: 'inet' | 'inet6';
  address?: string;
  port: number;
  fwmark?: number;
  protocol: 'tcp' | 'udp' | 'fwm';
  options: Map<string, Line>;
  reals: Real[];
}

interface Globals {
  options: Map<string, Line>;
}

class LdirectordImporter {
  readonly unsupported: Unsupported[] = [];

  constructor(readonly file: string) {}

  skip(at: Line, reason: string): void {
    this.unsupported.push({ file: at.file, line: at.line, directive: at.key, reason });
  }

  fail(at: { line: number }, message: string): never {
    throw new ConfigImportError(this.file, at.line, message);
  }

  positive(at: Line): number {
    const match = /^\s*(\d+)/.exec(at.value);
    if (!match || Number(match[1]) <= 0) this.fail(at, `${at.key}: '${at.value}' is not a positive integer`);
    return Number(match[1]);
  }

  yesNo(at: Line): boolean {
    if (at.value !== 'yes' && at.value !== 'no') this.fail(at, `${at.key} must be 'yes' or 'no'`);
    return at.value === 'yes';
  }

  quoted(at: Line): string {
    const match = /^"(.*)"/.exec(at.value);
    if (!match) this.fail(at, `${at.key} must be a "quoted string"`);
    return match[1]!;
  }

  /** host:port or [v6]:port; names are not resolved (the import must not depend on DNS). */
  hostPort(at: Line, text: string, family: 'inet' | 'inet6', protocol: string): { address: string; port?: number } {
    const match = /^\[([0-9A-Fa-f:.]+)\](?::([\w-]+))?$/.exec(text) ?? /^([^:\s]+)(?::([\w-]+))?$/.exec(text);
    if (!match) this.fail(at, `'${text}' is not ADDRESS[:PORT]`);
    const address = match[1]!;
    const found = familyOf(address);
    if (!found) this.fail(at, `'${address}' is not an IP address (host names are not resolved by the import)`);
    if (found !== family) this.fail(at, `'${address}' is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address here`);
    if (match[2] === undefined) return { address };
    const port = /^\d+$/.test(match[2]) ? Number(match[2]) : servicePort(match[2]);
    if (port === undefined || port > 65535) this.fail(at, `unknown port or service '${match[2]}' (${protocol})`);
    return { address, port };
  }

  async read(): Promise<{ globals: Globals; virtuals: Virtual[] }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      throw new ConfigImportError(this.file, 0, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const lines = text.split(/\r?\n/);
    const globals: Globals = { options: new Map() };
    const virtuals: Virtual[] = [];
    let current: Virtual | undefined;
    for (let index = 0; index < lines.length; index += 1) {
      const raw = lines[index]!;
      const number = index + 1;
      if (/^\s*#/.test(raw)) continue;
      const indented = /^(?: {4,}|\t)\s*(.+)$/.exec(raw.replace(/#.*/, '').replace(/\t/g, '    '));
      if (current && indented) {
        this.virtualLine(current, this.parse(indented[1]!.trim(), number));
        continue;
      }
      current = undefined;
      const content = raw.replace(/\s+#.*/, '').trimEnd();
      if (!content.trim()) continue;
      if (/^\s/.test(content)) this.fail({ line: number }, `indented line outside a virtual section (a blank or unindented line ends one): '${content.trim()}'`);
      const at = this.parse(content, number);
      if (at.key === 'virtual' || at.key === 'virtual6') {
        current = this.virtual(at);
        virtuals.push(current);
      } else this.globalLine(globals, at);
    }
    return { globals, virtuals };
  }

  parse(content: string, line: number): Line {
    const match = /^([\w-]+)\s*(?:=\s*(.*))?$/.exec(content);
    if (!match) this.fail({ line }, `cannot read '${content}' (expected name = value)`);
    return { file: this.file, line, key: match[1]!, value: (match[2] ?? '').trim() };
  }

  virtual(at: Line): Virtual {
    const family = at.key === 'virtual6' ? 'inet6' : 'inet';
    const base = { at, family, options: new Map<string, Line>(), reals: [] } as const;
    if (/^\d+$/.test(at.value)) {
      const fwmark = Number(at.value);
      if (fwmark < 1 || fwmark > 0xffffffff) this.fail(at, `fwmark ${at.value} is not in 1–4294967295`);
      return { ...base, reals: [], fwmark, port: 0, protocol: 'fwm' };
    }
    const { address, port } = this.hostPort(at, at.value.split(/\s+/)[0]!, family, 'tcp');
    if (port === undefined) this.fail(at, `virtual '${at.value}' needs a port (or is a fwmark number)`);
    return { ...base, reals: [], address, port, protocol: port === 53 ? 'udp' : 'tcp' };
  }

  virtualLine(v: Virtual, at: Line): void {
    if (at.key === 'real' || at.key === 'real6') {
      if ((at.key === 'real6') !== (v.family === 'inet6')) this.fail(at, `use ${v.family === 'inet6' ? 'real6' : 'real'} in this virtual section`);
      v.reals.push(...this.reals(v, at));
      return;
    }
    if (at.key === 'protocol') {
      if (v.protocol === 'fwm' ? at.value !== 'fwm' : at.value !== 'tcp' && at.value !== 'udp') {
        this.fail(at, v.protocol === 'fwm' ? 'protocol must be fwm for a fwmark service' : 'protocol must be tcp or udp');
      }
      v.protocol = at.value as Virtual['protocol'];
      return;
    }
    const known = new Set([
      'request', 'receive', 'checktype', 'checkcommand', 'checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkcount',
      'failurecount', 'checkinterval', 'checkport', 'login', 'passwd', 'database', 'secret', 'load', 'scheduler', 'persistent',
      'schedflags', 'netmask', 'ops', 'service', 'httpmethod', 'virtualhost', 'fallback', 'fallback6', 'fallbackcommand',
      'quiescent', 'emailalert', 'emailalertfreq', 'emailalertstatus', 'monitorfile', 'cleanstop', 'smtp', 'servicename', 'comment',
    ]);
    if (!known.has(at.key)) this.fail(at, `unknown directive '${at.key}' in a virtual section (ldirectord refuses it)`);
    if (v.options.has(at.key)) this.skip(v.options.get(at.key)!, `overridden by line ${at.line}`);
    v.options.set(at.key, at);
  }

  globalLine(globals: Globals, at: Line): void {
    const known = new Set([
      'checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'failurecount', 'fallback', 'fallback6',
      'fallbackcommand', 'autoreload', 'callback', 'logfile', 'execute', 'fork', 'supervised', 'quiescent', 'readdquiescent',
      'emailalert', 'emailalertfreq', 'emailalertstatus', 'emailalertfrom', 'cleanstop', 'smtp', 'maintenancedir',
    ]);
    if (at.key === 'timeout') this.fail(at, 'timeout is deprecated in favour of checktimeout and negotiatetimeout (ldirectord refuses it)');
    if (!known.has(at.key)) this.fail(at, `unknown directive '${at.key}' (ldirectord refuses it)`);
    if (['checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'failurecount'].includes(at.key)) this.positive(at);
    if (['autoreload', 'fork', 'quiescent', 'readdquiescent', 'cleanstop'].includes(at.key)) this.yesNo(at);
    if (globals.options.has(at.key)) this.skip(globals.options.get(at.key)!, `overridden by line ${at.line}`);
    globals.options.set(at.key, at);
  }

  /** real=ADDR[->ADDR][:PORT] gate|masq|ipip [weight] ["request", "receive"] [l:N] [u:N] */
  reals(v: Virtual, at: Line): Real[] {
    const match = /^(\S+?)(?:->(\S+?))?(?::([\w-]+))?\s+(.*)$/.exec(at.value.replace(/^(\[[^\]]+\])/, (m) => m.replace(/:/g, '\u0000')));
    if (!match) this.fail(at, 'invalid real server (expected ADDRESS[:PORT] gate|masq|ipip [weight])');
    const unmask = (s: string | undefined): string | undefined => s?.replace(/\u0000/g, ':').replace(/^\[(.*)\]$/, '$1');
    const first = unmask(match[1])!;
    const last = unmask(match[2]);
    let port = 0;
    if (match[3] !== undefined) {
      const found = /^\d+$/.test(match[3]) ? Number(match[3]) : servicePort(match[3]);
      if (found === undefined || found > 65535) this.fail(at, `invalid port '${match[3]}' for real server`);
      port = found;
    }
    let flags = match[4]!;
    const method = /^(\w+)(.*)$/.exec(flags);
    const forward = method ? FORWARD[method[1]!] : undefined;
    if (!forward) this.fail(at, 'forward method must be gate, masq or ipip');
    flags = method![2]!;
    let weight: number = LDIRECTORD_DEFAULTS.weight;
    const w = /^\s+(\d+)(.*)$/.exec(flags);
    if (w) { weight = Number(w[1]); flags = w[2]!; }
    let request: string | undefined;
    let receive: string | undefined;
    const rr = /^\s+"(.*)"[, ]\s*"(.*)"(.*)$/.exec(flags);
    if (rr) {
      request = rr[1]!.startsWith('/') ? rr[1]! : `/${rr[1]!}`;
      receive = rr[2]!;
      flags = rr[3]!;
    }
    let lowerThreshold: number | undefined;
    let upperThreshold: number | undefined;
    const l = /^\s+l:(\d+)(.*)$/.exec(flags);
    if (l) { lowerThreshold = Number(l[1]); flags = l[2]!; }
    const u = /^\s+u:(\d+)(.*)$/.exec(flags);
    if (u) { upperThreshold = Number(u[1]); flags = u[2]!; }
    if (/\S/.test(flags)) this.fail(at, `invalid real server line, around '${flags.trim()}'`);
    for (const address of [first, last]) {
      if (address !== undefined && familyOf(address) !== v.family) {
        this.fail(at, `'${address}' is not an ${v.family === 'inet' ? 'IPv4' : 'IPv6'} address (host names are not resolved by the import)`);
      }
    }
    const addresses = last === undefined ? [first] : this.range(at, first, last);
    return addresses.map((address) => ({
      at, address, port, forward, weight,
      ...(request !== undefined ? { request, receive } : {}),
      ...(lowerThreshold !== undefined ? { lowerThreshold } : {}),
      ...(upperThreshold !== undefined ? { upperThreshold } : {}),
    }));
  }

  range(at: Line, first: string, last: string): string[] {
    if (familyOf(first) !== 'inet') this.fail(at, 'address ranges are IPv4 only (as in ldirectord)');
    const toInt = (a: string): number => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
    const from = toInt(first);
    const to = toInt(last);
    if (from > to) this.fail(at, `invalid range ${first}-${last}: the first address must not be above the last`);
    if (to - from >= 65536) this.fail(at, `range ${first}-${last} is larger than 65536 addresses`);
    const out: string[] = [];
    for (let n = from; n <= to; n += 1) out.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
    return out;
  }

  /** The destination port ipvsadm programs: gate and ipip take the service's, masq keeps its own (0 → the service's). */
  destinationPort(v: Virtual, forward: ForwardMethod, port: number): number | undefined {
    if (v.fwmark !== undefined) return forward === 'masq' && port !== 0 ? port : undefined;
    if (forward !== 'masq' || port === 0) return v.port;
    return port;
  }

  service(v: Virtual, globals: Globals): DirectorService {
    const opt = (key: string): Line | undefined => v.options.get(key);
    const global = (key: string): Line | undefined => globals.options.get(key);

    const serviceName = opt('service')?.value ?? (v.fwmark !== undefined ? 'none' : PORT_SERVICE[v.port] ?? 'none');
    if (opt('service') && !SERVICES.has(serviceName)) this.fail(opt('service')!, `unknown service '${serviceName}'`);
    const checktypeLine = opt('checktype');
    let checktype: string = checktypeLine?.value ?? LDIRECTORD_DEFAULTS.checkType;
    if (checktypeLine) {
      if (/^\d+$/.test(checktype)) {
        this.skip(checktypeLine, `the combined check (${checktype} connects, then one negotiate) is imported as a negotiate check on every round`);
        checktype = 'negotiate';
      } else if (!['connect', 'negotiate', 'ping', 'on', 'off', 'external', 'external-perl'].includes(checktype)) {
        this.fail(checktypeLine, 'checktype must be connect, negotiate, on, off, ping, external, external-perl or a number');
      }
    }

    // checktimeout and negotiatetimeout default to each other, then to the globals (ld_setup).
    const value = (line: Line | undefined): number | undefined => (line ? this.positive(line) : undefined);
    const vCheck = value(opt('checktimeout'));
    const vNegotiate = value(opt('negotiatetimeout'));
    const gCheck = value(global('checktimeout'));
    const gNegotiate = value(global('negotiatetimeout'));
    let checkTimeout = vCheck ?? vNegotiate ?? gCheck ?? gNegotiate ?? LDIRECTORD_DEFAULTS.checkTimeout;
    const negotiateTimeout = vNegotiate ?? vCheck ?? gNegotiate ?? gCheck ?? LDIRECTORD_DEFAULTS.negotiateTimeout;
    const connectTimeout = opt('connecttimeout') ?? global('connecttimeout');
    if (connectTimeout) {
      checkTimeout = this.positive(connectTimeout);
      this.skip(connectTimeout, 'connecttimeout is deprecated and current ldirectord refuses it; imported as the connect check\'s timeout');
    }
    const fork = global('fork') ? this.yesNo(global('fork')!) : false;
    let interval = value(global('checkinterval')) ?? LDIRECTORD_DEFAULTS.checkInterval;
    if (opt('checkinterval')) {
      if (fork) interval = this.positive(opt('checkinterval')!);
      else this.skip(opt('checkinterval')!, 'ldirectord ignores a virtual section\'s checkinterval unless fork = yes; the global checkinterval applies');
    }
    const fall = value(opt('failurecount')) ?? value(global('failurecount')) ?? LDIRECTORD_DEFAULTS.failureCount;
    const checkport = opt('checkport') ? this.positive(opt('checkport')!) : undefined;
    if (checkport !== undefined && checkport > 65535) this.fail(opt('checkport')!, 'checkport must be 1–65535');

    const requestText = opt('request') ? this.quoted(opt('request')!) : LDIRECTORD_DEFAULTS.request;
    if (requestText === '') this.fail(opt('request')!, 'no request string specified');
    const request = requestText.startsWith('/') ? requestText : `/${requestText}`;
    const receive = opt('receive') ? this.quoted(opt('receive')!) : '';
    const httpmethod = (opt('httpmethod')?.value ?? 'GET').toUpperCase();
    if (httpmethod !== 'GET' && httpmethod !== 'HEAD') this.fail(opt('httpmethod')!, 'httpmethod must be GET or HEAD');
    const virtualhost = opt('virtualhost')?.value.replace(/^"([^"]*)"?.*$/, '$1');

    const checksFor = (real: Real): CheckSpec[] => {
      const realPort = this.destinationPort(v, real.forward, real.port) ?? 0;
      // ld_checkport: checkport, else the real server's port, else the service's well-known port.
      const port = checkport ?? (realPort > 0 ? realPort : SERVICE_PORT[serviceName]);
      const portField = port !== undefined && port !== realPort ? { port } : {};
      const timing = (wanted: number, at: Line | undefined) => {
        let timeout = wanted;
        if (timeout >= interval) {
          // ldirectord lets a check outlast the interval; the director needs timeout < interval.
          this.skip(at ?? v.at, `a check timeout of ${timeout} s is not below checkinterval ${interval} s, which the director requires; imported as ${interval / 2} s`);
          timeout = interval / 2;
        }
        return { interval, timeout, rise: 1, fall };
      };
      const checkTimeoutAt = opt('checktimeout') ?? opt('negotiatetimeout') ?? global('checktimeout') ?? global('negotiatetimeout');
      const negotiateTimeoutAt = opt('negotiatetimeout') ?? opt('checktimeout') ?? global('negotiatetimeout') ?? global('checktimeout');
      const ping = (): CheckSpec => ({
        type: 'exec', command: ['ping', '-c', '1', '-W', String(checkTimeout), real.address], ...timing(checkTimeout + 1, checkTimeoutAt),
      });
      switch (checktype) {
        case 'on': return [{ type: 'none', result: 'up' }];
        case 'off': return [{ type: 'none', result: 'down' }];
        case 'ping': return [ping()];
        case 'connect': return v.protocol === 'udp' ? [ping()] : [{ type: 'tcp', ...portField, ...timing(checkTimeout, checkTimeoutAt) }];
        case 'external': {
          const command = opt('checkcommand') ? opt('checkcommand')!.value.replace(/^"(.*)"$/, '$1') : '/bin/true';
          return [{
            type: 'exec',
            command: [command, v.address ?? String(v.fwmark), String(v.port), real.address, String(realPort)],
            ...timing(checkTimeout, checkTimeoutAt),
          }];
        }
        case 'external-perl':
          return [{ type: 'none', result: 'up' }];
        default: break;
      }
      const req = real.request ?? request;
      const rec = real.request !== undefined ? real.receive! : receive;
      if (serviceName === 'http' || serviceName === 'https') {
        let path = req;
        let address: string | undefined;
        let urlPort: number | undefined;
        const absolute = /^\/?https?:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?(\/.*)?$/.exec(req);
        if (absolute) {
          address = absolute[1]!.replace(/^\[(.*)\]$/, '$1');
          urlPort = absolute[2] === undefined ? undefined : Number(absolute[2]);
          path = absolute[3] ?? '/';
        }
        return [{
          type: serviceName,
          ...(httpmethod !== 'GET' ? { method: httpmethod } : {}),
          path,
          ...(virtualhost !== undefined ? { host: virtualhost } : {}),
          ...(rec !== '' ? { bodyRegex: rec } : {}),
          ...(address !== undefined && familyOf(address) ? { address } : {}),
          ...(urlPort !== undefined ? { port: urlPort } : portField),
          ...timing(negotiateTimeout, negotiateTimeoutAt),
        }];
      }
      if (serviceName === 'none') return [{ type: 'none', result: 'up' }];
      if (serviceName === 'dns') {
        return [{
          type: 'dns', name: req.replace(/^\//, '') || '.', queryType: 'A',
          ...(rec !== '' ? { expectAnswer: rec } : {}), ...portField, ...timing(negotiateTimeout, negotiateTimeoutAt),
        }];
      }
      return [{ type: 'tcp', ...portField, ...timing(negotiateTimeout, negotiateTimeoutAt) }];
    };

    if (checktype === 'negotiate' && !['http', 'https', 'none', 'dns'].includes(serviceName)) {
      this.skip(opt('service') ?? checktypeLine ?? v.at, `negotiating the ${serviceName} protocol is not supported; imported as a TCP connect check`);
    }
    if (checktype === 'external-perl') this.skip(checktypeLine!, 'external-perl checks are not supported; the servers are imported unchecked (always up)');
    for (const key of ['login', 'passwd', 'database', 'secret', 'load']) {
      if (opt(key)) this.skip(opt(key)!, `${key} is only used by protocol negotiations the director does not do`);
    }
    if (checktype !== 'external' && opt('checkcommand')) this.skip(opt('checkcommand')!, 'checkcommand only applies to checktype = external');
    for (const [key, reason] of [
      ['checkcount', 'ping attempts per check are not modelled (one ping per check; use failurecount)'],
      ['fallbackcommand', 'fallback commands are not run; subscribe to the sorry-on/sorry-off events instead'],
      ['emailalert', 'email alerts are not sent; subscribe to the director events instead'],
      ['emailalertfreq', 'email alerts are not sent'],
      ['emailalertstatus', 'email alerts are not sent'],
      ['smtp', 'email alerts are not sent'],
      ['monitorfile', 'check results are events (director.on("check")), not a monitor file'],
      ['cleanstop', 'use director.stop({ leave: \'remove\' | \'as-is\' })'],
      ['servicename', 'names are not part of the director configuration'],
      ['comment', 'comments are not carried over'],
    ] as const) {
      if (opt(key)) this.skip(opt(key)!, reason);
    }

    const quiescentLine = opt('quiescent') ?? global('quiescent');
    const quiescent = quiescentLine ? this.yesNo(quiescentLine) : LDIRECTORD_DEFAULTS.quiescent;

    let netmask: string | number | undefined;
    if (opt('netmask')) {
      const text = opt('netmask')!.value;
      if (v.family === 'inet6' ? !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 128 : familyOf(text) !== 'inet' || !/^\d+\.\d+\.\d+\.\d+$/.test(text)) {
        this.fail(opt('netmask')!, v.family === 'inet6' ? 'netmask must be a prefix length 1–128' : 'netmask must be a dotted quad');
      }
      netmask = v.family === 'inet6' ? Number(text) : text;
    }
    const persistent = opt('persistent') ? this.positive(opt('persistent')!) : undefined;
    if (netmask !== undefined && persistent === undefined) this.skip(opt('netmask')!, 'ldirectord passes the netmask only with persistent; ignored');
    const scheduler = opt('scheduler')?.value ?? LDIRECTORD_DEFAULTS.scheduler;
    if (!/^[a-z]+$/.test(scheduler)) this.fail(opt('scheduler')!, 'invalid scheduler, should be only lowercase letters (a-z)');
    const onePacket = opt('ops') ? this.yesNo(opt('ops')!) : false;
    if (onePacket && v.protocol !== 'udp') this.skip(opt('ops')!, 'ldirectord applies ops only to udp services; ignored');
    const schedulerFlags = opt('schedflags')?.value.split(/[\s,]+/).filter(Boolean) as SchedulerFlag[] | undefined;

    const key = v.fwmark !== undefined
      ? { fwmark: v.fwmark, ...(v.family === 'inet6' ? { family: 'inet6' as const } : {}) }
      : { protocol: v.protocol as 'tcp' | 'udp', address: v.address!, port: v.port };
    const seen = new Set<string>();
    const destinations: DirectorDestination[] = [];
    const checks: CheckSpec[][] = [];
    for (const real of v.reals) {
      const port = this.destinationPort(v, real.forward, real.port);
      const id = `${real.address}:${port ?? 0}`;
      if (seen.has(id)) { this.skip(real.at, `duplicate real server ${id}; the first one is kept`); continue; }
      seen.add(id);
      destinations.push({
        address: real.address,
        ...(port !== undefined ? { port } : {}),
        forward: real.forward,
        weight: real.weight,
        ...(real.upperThreshold !== undefined ? { upperThreshold: real.upperThreshold } : {}),
        ...(real.lowerThreshold !== undefined ? { lowerThreshold: real.lowerThreshold } : {}),
      });
      checks.push(checksFor(real));
    }
    const service = {
      ...key,
      scheduler,
      ...(persistent !== undefined ? { persistent } : {}),
      ...(netmask !== undefined && persistent !== undefined ? { netmask } : {}),
      ...(onePacket && v.protocol === 'udp' ? { onePacket: true } : {}),
      ...(schedulerFlags?.length ? { schedulerFlags } : {}),
      destinations,
    } as DirectorService;
    if (checks.length > 0 && checks.every((list) => JSON.stringify(list) === JSON.stringify(checks[0]))) service.checks = checks[0]!;
    else destinations.forEach((dest, i) => { dest.checks = checks[i]!; });
    service.onFailure = quiescent ? 'quiesce' : 'remove';

    const fallback = this.fallback(v, opt(v.family === 'inet6' ? 'fallback6' : 'fallback') ?? opt('fallback') ?? opt('fallback6')
      ?? global(v.family === 'inet6' ? 'fallback6' : 'fallback'));
    if (fallback) service.sorryServers = [fallback];
    return service;
  }

  /** fallback=ADDR[:PORT] [gate|masq|ipip], weight 1; gate by default, the virtual port when none is given. */
  fallback(v: Virtual, at: Line | undefined): DestinationSpec | undefined {
    if (!at) return undefined;
    const [target = '', method] = at.value.split(/\s+/);
    const forward = method === undefined ? 'route' : FORWARD[method];
    if (!forward) this.fail(at, 'forward method must be gate, masq or ipip');
    const { address, port } = this.hostPort(at, target, v.family, v.protocol);
    const destPort = this.destinationPort(v, forward, port ?? 0);
    return { address, ...(destPort !== undefined ? { port: destPort } : {}), forward, weight: 1 };
  }

  globalsUnsupported(globals: Globals): void {
    const reasons: Record<string, string> = {
      autoreload: 'the director reloads through director.update(config); file watching is the caller\'s',
      callback: 'reload callbacks are not run',
      logfile: 'the director reports through events, not a log file',
      execute: 'other ldirectord instances are not started; import their files separately',
      fork: 'checks always run concurrently',
      supervised: 'the director runs in the caller\'s process',
      readdquiescent: 'a quiesced destination missing from the kernel is re-added by drift repair, not by a setting',
      emailalert: 'email alerts are not sent; subscribe to the director events instead',
      emailalertfreq: 'email alerts are not sent',
      emailalertstatus: 'email alerts are not sent',
      emailalertfrom: 'email alerts are not sent',
      smtp: 'email alerts are not sent',
      cleanstop: 'use director.stop({ leave: \'remove\' | \'as-is\' })',
      maintenancedir: 'maintenance files are not watched; use director.drain() instead',
      fallbackcommand: 'fallback commands are not run; subscribe to the sorry-on/sorry-off events instead',
      checkcount: 'ping attempts per check are not modelled (one ping per check; use failurecount)',
    };
    for (const [key, at] of globals.options) if (reasons[key]) this.skip(at, reasons[key]!);
  }
}

/**
 * Imports an ldirectord.cf as a director configuration. Defaults are ldirectord's code's:
 * checkinterval 10 s, checktimeout 5 s, negotiatetimeout 30 s, failurecount 1 (→ fall), a server
 * comes back after one good check (rise 1), scheduler wrr, checktype negotiate, and quiescent
 * **no** (the code's default; the man page says yes): a failed server is removed unless
 * `quiescent = yes`. `checktype = ping` becomes an exec check running
 * `ping -c 1 -W <checktimeout> <address>`; `negotiate` for http/https becomes an http(s) check
 * whose path is `request` and whose body must match the regular expression `receive`.
 * Every directive without an equivalent is listed in `unsupported` with its line.
 *
 * @throws {ConfigImportError} (`file:line: …`) for an unreadable file or a line ldirectord
 *   itself would refuse; host names are not resolved (use addresses).
 */
export async function importLdirectord(path: string): Promise<ImportResult> {
  const importer = new LdirectordImporter(resolve(path));
  const { globals, virtuals } = await importer.read();
  const services = virtuals.map((v) => importer.service(v, globals));
  importer.globalsUnsupported(globals);
  const unsupported = [...importer.unsupported].sort((a, b) => a.line - b.line);
  return { config: { services }, unsupported };
}
