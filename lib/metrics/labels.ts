// Label sets for services and destinations, and how services are named on the page.
import type { Destination, Service, ServiceKey } from '../types';

/**
 * A service's labels in our own families: its name as the status page and ipvsadm write it
 * (`tcp 192.0.2.1:80`, `fwmark 7`, `fwmark 7 inet6`). One label rather than five: a 1,000 × 10
 * table writes it on some 150,000 lines, and the parts are on `ipvs_service_info` (and in
 * node_exporter's backend labels) for a query that needs them.
 */
export interface ServiceLabels {
  service: string;
}

/** A destination's labels: the service's and `server`, the real server as `address:port` (`[v6]:port`). */
export interface DestinationLabels extends ServiceLabels {
  server: string;
}

/** The parts of a service's identity, on `ipvs_service_info` (fwmark services: the mark, the other three empty). */
export interface ServiceInfoLabels extends ServiceLabels {
  family: string;
  protocol: string;
  address: string;
  port: string;
  fwmark: string;
}

export const SERVICE_LABEL_NAMES = ['service'] as const;
export const DESTINATION_LABEL_NAMES = [...SERVICE_LABEL_NAMES, 'server'] as const;
export const SERVICE_INFO_LABEL_NAMES = [...SERVICE_LABEL_NAMES, 'family', 'protocol', 'address', 'port', 'fwmark'] as const;

/** Labels of a listed service, or of a key. */
export function serviceLabels(service: Service | ServiceKey): ServiceLabels {
  return { service: serviceName(service) };
}

/** The parts of a listed service's (or a key's, whose family then follows from its address) identity. */
export function serviceInfoLabels(service: Service | ServiceKey): ServiceInfoLabels {
  if ('fwmark' in service) {
    return { service: serviceName(service), family: service.family ?? 'inet', protocol: '', address: '', port: '', fwmark: String(service.fwmark) };
  }
  const family = 'family' in service ? service.family : service.address.includes(':') ? 'inet6' : 'inet';
  return { service: serviceName(service), family, protocol: service.protocol, address: service.address, port: String(service.port), fwmark: '' };
}

export function destinationLabels(service: ServiceLabels, destination: { address: string; port: number }): DestinationLabels {
  return { service: service.service, server: hostPort(destination.address, destination.port) };
}

/** `tcp 192.0.2.1:80`, `udp [2001:db8::1]:53`, `fwmark 7` (`fwmark 7 inet6`), as on the page. */
export function serviceName(service: Service | ServiceKey): string {
  if ('fwmark' in service) return service.family === 'inet6' ? `fwmark ${service.fwmark} inet6` : `fwmark ${service.fwmark}`;
  return `${service.protocol} ${hostPort(service.address, service.port)}`;
}

export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** node_exporter's backend labels (collector/ipvs_linux.go over procfs' /proc/net/ip_vs reader). */
export interface NodeExporterBackendLabels {
  local_address: string;
  local_port: string;
  remote_address: string;
  remote_port: string;
  proto: string;
  local_mark: string;
}

export const NODE_EXPORTER_BACKEND_LABEL_NAMES = [
  'local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark',
] as const;

/**
 * node_exporter's values: `proto` as /proc/net/ip_vs prints it (TCP, UDP, SCTP; FWM for
 * fwmark services, which have an empty local_address and local_port 0). Two deliberate
 * differences: `local_mark` is the mark in decimal, as iptables and nft write it, where
 * node_exporter passes on the kernel's %08X; and SCTP services are labelled as themselves,
 * where node_exporter skips their header line and files their backends under the service
 * listed before them.
 */
export function nodeExporterBackendLabels(service: Service, destination: Destination): NodeExporterBackendLabels {
  const remote = { remote_address: destination.address, remote_port: String(destination.port) };
  if ('fwmark' in service) {
    return { local_address: '', local_port: '0', ...remote, proto: 'FWM', local_mark: String(service.fwmark) };
  }
  return {
    local_address: service.address, local_port: String(service.port), ...remote,
    proto: service.protocol.toUpperCase(), local_mark: '',
  };
}
