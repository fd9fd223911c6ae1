// Invalid inputs to the public API, shared by test/unit/validation.test.ts (the error type and
// the field named, with no call reaching the addon) and test/kernel/invalid-inputs.test.ts
// (the kernel table is unchanged afterwards). Every entry is rejected by the TypeScript checks.
import type { Ipvs } from '../lib/index';

export type Method =
  | 'open' | 'getService' | 'addService' | 'editService' | 'deleteService' | 'zero'
  | 'listDestinations' | 'addDestination' | 'editDestination' | 'deleteDestination';

export interface InvalidInput {
  method: Method;
  args: unknown[];
  error: typeof TypeError | typeof RangeError;
  /** The field path the message must start with, e.g. 'destination.tunnel.port'. */
  field: string;
}

/** The table the kernel test builds before trying every entry (see FIXTURE_COMMANDS). */
export const S4 = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
export const S6 = { protocol: 'tcp', address: '2001:db8::1', port: 443 } as const;
export const FW4 = { fwmark: 7 } as const;
export const FW6 = { fwmark: 8, family: 'inet6' } as const;
export const D4 = { address: '10.0.1.1', port: 8080 } as const;

/** ipvsadm -R input for that table: every entry below would change it if it reached the kernel. */
export const FIXTURE_COMMANDS = [
  '-A -t 10.0.0.1:80 -s wlc',
  '-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5',
  '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
  '-A -t [2001:db8::1]:443 -s rr -p 300 -M 64',
  '-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -g -w 2',
  '-A -f 7 -s sh -b sh-port',
  '-A -f 8 -6 -s mh',
];

const T = TypeError;
const R = RangeError;
type Row = [Method, unknown[], typeof TypeError | typeof RangeError, string];

const svc = (extra: object, base: object = S4): object => ({ ...base, ...extra });
const dest = (extra: object, base: object = D4): object => ({ ...base, forward: 'masq', ...extra });
const tun = (tunnel: unknown, address = '10.0.1.9'): object => ({ address, forward: 'tunnel', tunnel });

const rows: Row[] = [
  // ---- Ipvs.open options
  ['open', [5], T, 'options'],
  ['open', [null], T, 'options'],
  ['open', ['/run/netns/x'], T, 'options'],
  ['open', [{ netns: 5 }], T, 'options.netns'],
  ['open', [{ netns: '' }], T, 'options.netns'],
  ['open', [{ netns: '/run/netns/a\0b' }], T, 'options.netns'],
  ['open', [{ netns: '/run/netns/x', namespace: 'y' }], T, 'options.namespace'],

  // ---- service keys
  ['getService', [undefined], T, 'service'],
  ['getService', [null], T, 'service'],
  ['getService', ['tcp 10.0.0.1:80'], T, 'service'],
  ['getService', [[]], T, 'service'],
  ['getService', [{}], T, 'service'],
  ['getService', [{ address: '10.0.0.1', port: 80 }], T, 'service'],
  ['getService', [svc({ protocol: 'icmp' })], R, 'service.protocol'],
  ['getService', [svc({ protocol: 'TCP' })], R, 'service.protocol'],
  ['getService', [svc({ protocol: 6 })], T, 'service.protocol'],
  ['getService', [svc({ address: undefined })], T, 'service.address'],
  ['getService', [svc({ address: 'localhost' })], R, 'service.address'],
  ['getService', [svc({ address: '10.0.0.256' })], R, 'service.address'],
  ['getService', [svc({ address: '10.0.0' })], R, 'service.address'],
  ['getService', [svc({ address: ' 10.0.0.1' })], R, 'service.address'],
  ['getService', [svc({ address: 'fe80::1%eth0' })], R, 'service.address'],
  ['getService', [svc({ address: '2001:db8::1::2' })], R, 'service.address'],
  ['getService', [svc({ address: 167772161 })], T, 'service.address'],
  ['getService', [svc({ port: undefined })], T, 'service.port'],
  ['getService', [svc({ port: -1 })], R, 'service.port'],
  ['getService', [svc({ port: 65536 })], R, 'service.port'],
  ['getService', [svc({ port: 80.5 })], R, 'service.port'],
  ['getService', [svc({ port: Number.NaN })], R, 'service.port'],
  ['getService', [svc({ port: Number.POSITIVE_INFINITY })], R, 'service.port'],
  ['getService', [svc({ port: '80' })], T, 'service.port'],
  ['getService', [svc({ port: 80n })], T, 'service.port'],
  ['getService', [svc({ family: 'inet6' })], R, 'service.family'],
  ['getService', [svc({ family: 'ipv4' })], R, 'service.family'],
  ['getService', [svc({ family: 2 })], T, 'service.family'],
  ['getService', [{ fwmark: 7, protocol: 'tcp' }], T, 'service'],
  ['getService', [{ fwmark: 7, address: '10.0.0.1' }], T, 'service'],
  ['getService', [{ fwmark: 0 }], R, 'service.fwmark'],
  ['getService', [{ fwmark: -1 }], R, 'service.fwmark'],
  ['getService', [{ fwmark: 2 ** 32 }], R, 'service.fwmark'],
  ['getService', [{ fwmark: 1.5 }], R, 'service.fwmark'],
  ['getService', [{ fwmark: '7' }], T, 'service.fwmark'],
  ['getService', [{ fwmark: 7, family: 'inet4' }], R, 'service.family'],
  ['getService', [{ fwmark: 7, family: 10 }], T, 'service.family'],
  ['deleteService', [svc({ port: 70000 })], R, 'service.port'],
  ['deleteService', [{ fwmark: 7, family: 'INET6' }], R, 'service.family'],
  ['listDestinations', [{ protocol: 'udp', address: '10.0.0.1' }], T, 'service.port'],
  ['listDestinations', [{ fwmark: null }], T, 'service.fwmark'],
  ['zero', [{ fwmark: 0 }], R, 'service.fwmark'],
  ['zero', [null], T, 'service'],

  // ---- service specs
  ['addService', [svc({ port: 0 })], R, 'service.port'],
  ['addService', [svc({ port: 81, scheduler: 'nope' })], R, 'service.scheduler'],
  ['addService', [svc({ port: 81, scheduler: 'WLC' })], R, 'service.scheduler'],
  ['addService', [svc({ port: 81, scheduler: '' })], R, 'service.scheduler'],
  ['addService', [svc({ port: 81, scheduler: 'ip_vs_rr' })], R, 'service.scheduler'],
  ['addService', [svc({ port: 81, scheduler: 5 })], T, 'service.scheduler'],
  ['addService', [svc({ port: 81, persistent: 0 })], R, 'service.persistent'],
  ['addService', [svc({ port: 81, persistent: -5 })], R, 'service.persistent'],
  ['addService', [svc({ port: 81, persistent: 31 * 86400 + 1 })], R, 'service.persistent'],
  ['addService', [svc({ port: 81, persistent: 1.5 })], R, 'service.persistent'],
  ['addService', [svc({ port: 81, persistent: true })], T, 'service.persistent'],
  ['addService', [svc({ port: 81, persistent: '300' })], T, 'service.persistent'],
  ['addService', [svc({ port: 444, persistent: 60, netmask: '255.255.255.0' }, S6)], T, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: 24 })], T, 'service.netmask'],
  ['addService', [svc({ port: 444, persistent: 60, netmask: 0 }, S6)], R, 'service.netmask'],
  ['addService', [svc({ port: 444, persistent: 60, netmask: 129 }, S6)], R, 'service.netmask'],
  ['addService', [svc({ port: 444, persistent: 60, netmask: 64.5 }, S6)], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: '0.0.0.0' })], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: '255.0.255.0' })], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: '0.255.255.255' })], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: '255.255.255.256' })], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: 'ffff::' })], R, 'service.netmask'],
  ['addService', [svc({ port: 81, persistent: 60, netmask: '/24' })], R, 'service.netmask'],
  ['addService', [{ fwmark: 9, family: 'inet6', persistent: 60, netmask: '255.255.0.0' }], T, 'service.netmask'],
  ['addService', [svc({ port: 81, onePacket: 'yes' })], T, 'service.onePacket'],
  ['addService', [svc({ port: 81, onePacket: 1 })], T, 'service.onePacket'],
  ['addService', [svc({ port: 81, onePacket: true })], R, 'service.onePacket'],
  ['editService', [{ ...S6, protocol: 'sctp', onePacket: true }], R, 'service.onePacket'],
  ['addService', [svc({ port: 81, scheduler: 'sh', schedulerFlags: 'sh-port' })], T, 'service.schedulerFlags'],
  ['addService', [svc({ port: 81, scheduler: 'rr', schedulerFlags: ['sh-port'] })], R, 'service.schedulerFlags[0]'],
  ['addService', [svc({ port: 81, scheduler: 'sh', schedulerFlags: ['mh-fallback'] })], R, 'service.schedulerFlags[0]'],
  ['addService', [svc({ port: 81, schedulerFlags: ['sh-fallback'] })], R, 'service.schedulerFlags[0]'],
  ['addService', [svc({ port: 81, schedulerFlags: ['flag-4'] })], R, 'service.schedulerFlags[0]'],
  ['addService', [svc({ port: 81, schedulerFlags: ['flag-1', 3] })], T, 'service.schedulerFlags[1]'],
  ['addService', [svc({ port: 81, persistent: 60, persistenceEngine: 'SIP' })], R, 'service.persistenceEngine'],
  ['addService', [svc({ port: 81, persistent: 60, persistenceEngine: 'ftp' })], R, 'service.persistenceEngine'],
  ['addService', [svc({ port: 81, persistent: 60, persistenceEngine: true })], T, 'service.persistenceEngine'],
  ['addService', [svc({ port: 81, timeout: 300 })], T, 'service.timeout'],
  ['addService', [svc({ port: 81, sched: 'rr' })], T, 'service.sched'],
  ['addService', [svc({ family: 'inet' }, S6)], R, 'service.family'],
  ['addService', [{ fwmark: 9, family: 'inet', scheduler: 'twoes' }], R, 'service.scheduler'],
  ['editService', [svc({ scheduler: 'round-robin' })], R, 'service.scheduler'],
  ['editService', [svc({ persistent: 0 })], R, 'service.persistent'],
  ['editService', [svc({ persistent: 60, netmask: 200 }, S6)], R, 'service.netmask'],
  ['editService', [{ ...FW4, scheduler: 'sh', schedulerFlags: ['mh-port'] }], R, 'service.schedulerFlags[0]'],
  ['editService', [{ ...FW6, scheduler: 'mh', persistent: 60, netmask: '255.255.255.0' }], T, 'service.netmask'],
  ['editService', [{ ...FW6, weight: 1 }], T, 'service.weight'],

  // ---- destination specs
  ['addDestination', [S4, undefined], T, 'destination'],
  ['addDestination', [S4, '10.0.1.9'], T, 'destination'],
  ['addDestination', [S4, { port: 80 }], T, 'destination.address'],
  ['addDestination', [S4, { address: 'host.example' }], R, 'destination.address'],
  ['addDestination', [S4, { address: '10.0.1' }], R, 'destination.address'],
  ['addDestination', [S4, { address: 'fe80::1%2', forward: 'tunnel' }], R, 'destination.address'],
  ['addDestination', [S4, { address: '10.0.1.9', family: 'inet6' }], R, 'destination.family'],
  ['addDestination', [S4, { address: '10.0.1.9', family: 'ipv4' }], R, 'destination.family'],
  ['addDestination', [S4, dest({ port: 65536 })], R, 'destination.port'],
  ['addDestination', [S4, dest({ port: -1 })], R, 'destination.port'],
  ['addDestination', [S4, dest({ port: '8080' })], T, 'destination.port'],
  ['addDestination', [S4, { address: '10.0.1.9', forward: 'nat' }], R, 'destination.forward'],
  ['addDestination', [S4, { address: '10.0.1.9', forward: 'bypass' }], R, 'destination.forward'],
  ['addDestination', [S4, { address: '10.0.1.9', forward: 'DR' }], R, 'destination.forward'],
  ['addDestination', [S4, { address: '10.0.1.9', forward: 3 }], T, 'destination.forward'],
  ['addDestination', [S4, { address: '10.0.1.9', weight: -1 }], R, 'destination.weight'],
  ['addDestination', [S4, { address: '10.0.1.9', weight: 2 ** 31 }], R, 'destination.weight'],
  ['addDestination', [S4, { address: '10.0.1.9', weight: 1.5 }], R, 'destination.weight'],
  ['addDestination', [S4, { address: '10.0.1.9', weight: '5' }], T, 'destination.weight'],
  ['addDestination', [S4, { address: '10.0.1.9', weight: null }], T, 'destination.weight'],
  ['addDestination', [S4, { address: '10.0.1.9', upperThreshold: -1 }], R, 'destination.upperThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', upperThreshold: 2 ** 31 }], R, 'destination.upperThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', upperThreshold: '10' }], T, 'destination.upperThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', lowerThreshold: -1 }], R, 'destination.lowerThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', lowerThreshold: 1.5 }], R, 'destination.lowerThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', upperThreshold: 5, lowerThreshold: 10 }], R, 'destination.lowerThreshold'],
  ['addDestination', [S4, { address: '10.0.1.9', lowerThreshold: 1 }], R, 'destination.lowerThreshold'],
  ['addDestination', [S4, { address: '2001:db8::9', forward: 'masq' }], R, 'destination.address'],
  ['addDestination', [S4, { address: '2001:db8::9' }], R, 'destination.address'],
  ['addDestination', [S6, { address: '10.0.1.9', forward: 'local' }], R, 'destination.address'],
  ['addDestination', [FW6, { address: '10.0.1.9' }], R, 'destination.address'],
  ['addDestination', [S4, { address: '10.0.1.9', forward: 'route', tunnel: { type: 'ipip' } }], R, 'destination.tunnel'],
  ['addDestination', [S4, { address: '10.0.1.9', tunnel: { type: 'gre' } }], R, 'destination.tunnel'],
  ['addDestination', [S4, tun('gue')], T, 'destination.tunnel'],
  ['addDestination', [S4, tun({})], T, 'destination.tunnel.type'],
  ['addDestination', [S4, tun({ type: 'vxlan' })], R, 'destination.tunnel.type'],
  ['addDestination', [S4, tun({ type: 'GUE', port: 6080 })], R, 'destination.tunnel.type'],
  ['addDestination', [S4, tun({ type: 'gue' })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'gue', port: 0 })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'gue', port: 65536 })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'gue', port: '6080' })], T, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'ipip', port: 6080 })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'gre', port: 6080 })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'gue', port: 6080, checksum: 'crc' })], R, 'destination.tunnel.checksum'],
  ['addDestination', [S4, tun({ type: 'gue', port: 6080, checksum: true })], T, 'destination.tunnel.checksum'],
  ['addDestination', [S4, tun({ type: 'ipip', checksum: 'remcsum' })], R, 'destination.tunnel.checksum'],
  ['addDestination', [S4, tun({ type: 'gre', checksum: 'remcsum' })], R, 'destination.tunnel.checksum'],
  ['addDestination', [S4, tun({ type: 'ipip', checksum: 'csum' })], R, 'destination.tunnel.checksum'],
  ['addDestination', [S6, tun({ type: 'ipip', checksum: 'none', port: 1 })], R, 'destination.tunnel.port'],
  ['addDestination', [S4, tun({ type: 'ipip', ttl: 64 })], T, 'destination.tunnel.ttl'],
  ['addDestination', [S6, tun({ type: 'gue', port: 6080, checksum: 'remcsum', csum: true })], T, 'destination.tunnel.csum'],
  ['addDestination', [S4, { address: '10.0.1.9', wieght: 3 }], T, 'destination.wieght'],
  ['addDestination', [S4, { address: '10.0.1.9', forwarding: 'masq' }], T, 'destination.forwarding'],
  ['addDestination', [{ fwmark: 0 }, { address: '10.0.1.9' }], R, 'service.fwmark'],
  ['addDestination', [svc({ protocol: 'tcp6' }), { address: '10.0.1.9' }], R, 'service.protocol'],
  ['editDestination', [S4, dest({ weight: -1 })], R, 'destination.weight'],
  ['editDestination', [S4, dest({ forward: 'tunnel', tunnel: { type: 'gue', port: 0 } })], R, 'destination.tunnel.port'],
  ['editDestination', [S4, dest({ upperThreshold: 1, lowerThreshold: 2 })], R, 'destination.lowerThreshold'],
  ['editDestination', [S6, { address: '2001:db8::10', forward: 'route', weight: 2, tunnel: { type: 'ipip' } }], R, 'destination.tunnel'],
  ['editDestination', [svc({ port: undefined }), dest({ weight: 9 })], T, 'service.port'],
  ['deleteDestination', [S4, {}], T, 'destination.address'],
  ['deleteDestination', [S4, null], T, 'destination'],
  ['deleteDestination', [S4, { address: '10.0.1.1', port: 99999 }], R, 'destination.port'],
  ['deleteDestination', [S4, { address: '10.0.1.1', port: '8080' }], T, 'destination.port'],
  ['deleteDestination', [S4, { address: '10.0.1.1:8080' }], R, 'destination.address'],
  ['deleteDestination', [S4, { address: '10.0.1.1', port: 8080, family: 'inet6' }], R, 'destination.family'],
  ['deleteDestination', [{ fwmark: 7, protocol: 'tcp' }, D4], T, 'service'],
];

export const INVALID_INPUTS: InvalidInput[] = rows.map(([method, args, error, field]) => ({ method, args, error, field }));

/** A short, unique-enough title for a table row. */
export function describeInput(input: InvalidInput, index: number): string {
  const args = input.args.map((a) => {
    try {
      return JSON.stringify(a, (_k, v: unknown) => {
        if (typeof v === 'bigint') return `${v}n`;
        if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
        return v;
      }) ?? String(a);
    } catch {
      return String(a);
    }
  });
  return `#${index} ${input.method}(${args.join(', ')}) -> ${input.error.name} on ${input.field}`;
}

/** Calls the method the row names on `ipvs` (or Ipvs.open on the class). */
export function invoke(ipvsClass: typeof Ipvs, ipvs: Ipvs, input: InvalidInput): Promise<unknown> {
  if (input.method === 'open') return (ipvsClass.open as (...a: unknown[]) => Promise<Ipvs>)(...input.args);
  const method = (ipvs as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[input.method]!;
  return method.apply(ipvs, input.args);
}

/** The message starts with exactly that field path (not a longer one), then a space or colon. */
export function namesField(message: string, field: string): boolean {
  return message.startsWith(field) && /^($|[\s:])/.test(message.slice(field.length));
}
