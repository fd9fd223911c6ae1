import type { Ipvs } from 'ipvs-netlink';

export interface Pool {
  vip: string;
  port: number;
  scheduler?: 'rr' | 'wrr' | 'wlc' | 'sh' | 'mh';
  forward?: 'masq' | 'route' | 'tunnel';
  servers: Array<{ address: string; weight?: number }>;
}

export function applyPool(ipvs: Ipvs, pool: Pool): Promise<{ added: string[]; updated: string[]; removed: string[] }>;
