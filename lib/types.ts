// The public data shapes. Reads return these; writes accept the *Spec and *Key shapes.
import type { AddressFamily } from './address';
import type { SCHEDULERS } from './constants';

export type { AddressFamily };
export type Protocol = 'tcp' | 'udp' | 'sctp';
export type Scheduler = (typeof SCHEDULERS)[number];
export type SchedulerFlag = 'sh-fallback' | 'sh-port' | 'mh-fallback' | 'mh-port' | 'flag-1' | 'flag-2' | 'flag-3';
export type ForwardMethod = 'masq' | 'route' | 'tunnel' | 'local';
export type TunnelType = 'ipip' | 'gue' | 'gre';
export type TunnelChecksum = 'none' | 'csum' | 'remcsum';

/** A virtual service by protocol, address and port. */
export interface AddressServiceKey {
  protocol: Protocol;
  address: string;
  /** 0–65535; 0 (all ports) only for a persistent service. */
  port: number;
}

/** A virtual service by firewall mark (iptables/nftables `meta mark`). */
export interface FwmarkServiceKey {
  /** 1–4294967295. */
  fwmark: number;
  /** Default 'inet'. */
  family?: AddressFamily;
}

export type ServiceKey = AddressServiceKey | FwmarkServiceKey;

export interface ServiceOptions {
  /** Default 'wlc', as ipvsadm. The scheduler's module must be loaded or loadable. */
  scheduler?: Scheduler;
  /** Persistence timeout in seconds (1–2678400); absent: not persistent. */
  persistent?: number;
  /** Persistence granularity: an IPv4 mask ('255.255.255.0') or an IPv6 prefix length (1–128). */
  netmask?: string | number;
  /** One-packet scheduling (UDP): schedule each datagram. */
  onePacket?: boolean;
  schedulerFlags?: SchedulerFlag[];
  /** Persistence engine; 'sip' needs the ip_vs_pe_sip module. */
  persistenceEngine?: 'sip';
}

export type ServiceSpec = ServiceKey & ServiceOptions;

/** 64-bit counters and rates as the kernel keeps them (rates are per second, estimated). */
export interface Stats {
  connections: bigint;
  packetsIn: bigint;
  packetsOut: bigint;
  bytesIn: bigint;
  bytesOut: bigint;
  connectionRate: bigint;
  packetRateIn: bigint;
  packetRateOut: bigint;
  byteRateIn: bigint;
  byteRateOut: bigint;
}

interface ServiceReadBack {
  family: AddressFamily;
  scheduler: Scheduler;
  persistent?: number;
  /** IPv4: a dotted mask; IPv6: a prefix length. */
  netmask: string | number;
  onePacket: boolean;
  schedulerFlags: SchedulerFlag[];
  persistenceEngine?: string;
  stats: Stats;
}

/** A service as the kernel reports it. It can be passed anywhere a ServiceKey is expected. */
export type Service = (AddressServiceKey & ServiceReadBack) | (Required<FwmarkServiceKey> & ServiceReadBack);

export interface TunnelSpec {
  type: TunnelType;
  /** UDP port of the GUE tunnel (required for 'gue', not allowed otherwise). */
  port?: number;
  /** Default 'none'. 'remcsum' only with 'gue'. */
  checksum?: TunnelChecksum;
}

export interface DestinationKey {
  address: string;
  /** Optional; when given it must be the address's own family. */
  family?: AddressFamily;
  /** Default: the service's port (0 for fwmark services). */
  port?: number;
}

export interface DestinationSpec extends DestinationKey {
  /** Default 'route' (direct routing), as ipvsadm. */
  forward?: ForwardMethod;
  /** 0–2147483647, default 1. 0 quiesces the server: no new connections. */
  weight?: number;
  /** Maximum connections, 0 = no limit. */
  upperThreshold?: number;
  /** Connections below which an overloaded server gets new ones again; 0 = none. */
  lowerThreshold?: number;
  /** Encapsulation, only with forward 'tunnel'. */
  tunnel?: TunnelSpec;
}

export interface Destination {
  address: string;
  family: AddressFamily;
  port: number;
  forward: ForwardMethod | 'bypass';
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  tunnel?: Required<Pick<TunnelSpec, 'type' | 'checksum'>> & { port?: number };
  activeConnections: number;
  inactiveConnections: number;
  persistentConnections: number;
  stats: Stats;
}

export interface Timeouts {
  /** Seconds for established TCP connections. */
  tcp: number;
  /** Seconds for TCP connections after FIN. */
  tcpFin: number;
  /** Seconds for UDP. */
  udp: number;
}

export type DaemonState = 'master' | 'backup';

export interface DaemonSpec {
  state: DaemonState;
  /** The multicast interface (≤ 15 characters). */
  interface: string;
  /** 0–255 (one byte in the sync message header), default 0. */
  syncId?: number;
  /**
   * Maximum UDP payload of a sync message: master 1–65507, backup 1024–65507, at most 65487
   * with an IPv6 group. Default: derived from the interface MTU.
   */
  maxLength?: number;
  /** Multicast group, IPv4 or IPv6; kernel default 224.0.0.81. */
  group?: string;
  /** UDP port 1–65535; kernel default 8848. */
  port?: number;
  /** Multicast TTL (IPv6: hop limit) 1–255; kernel default 1. */
  ttl?: number;
}

export interface DaemonConfig {
  state: DaemonState;
  interface: string;
  syncId: number;
  maxLength?: number;
  group?: string;
  port?: number;
  ttl?: number;
}

export interface IpvsInfo {
  /** e.g. '1.2.1'. */
  version: string;
  /** Buckets in the connection hash table (2^conn_tab_bits). */
  connectionTableSize: number;
}

export interface OpenOptions {
  /** A network namespace to bind the handle to, e.g. /run/netns/NAME or /proc/PID/ns/net. */
  netns?: string;
}
