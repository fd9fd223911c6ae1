// The director configuration shapes, exactly as DIRECTOR-CONFIG.md fixes them. They stand in for
// lib/director/config.ts until the director branch is merged; then this file re-exports from there.
import type { DestinationSpec, ServiceSpec } from '../../types';

export interface ScopeFilter {
  [key: string]: unknown;
}

export interface DirectorConfig {
  services: DirectorService[];
  scope?: 'listed' | 'all' | ScopeFilter;
  resyncInterval?: number;
  defaults?: { checks?: CheckSpec[]; onFailure?: 'quiesce' | 'remove'; slowStart?: number; drainTimeout?: number };
}

export type DirectorService = ServiceSpec & {
  destinations: DirectorDestination[];
  checks?: CheckSpec[];
  onFailure?: 'quiesce' | 'remove';
  slowStart?: number;
  drainTimeout?: number;
  quorum?: number;
  hysteresis?: number;
  sorryServers?: DestinationSpec[];
  quorumUp?: string;
  quorumDown?: string;
};

export type DirectorDestination = DestinationSpec & {
  checks?: CheckSpec[];
  onFailure?: 'quiesce' | 'remove';
  slowStart?: number;
};

export interface CheckCommon {
  interval?: number;
  timeout?: number;
  rise?: number;
  fall?: number;
  address?: string;
  port?: number;
  bindAddress?: string;
}

export type CheckSpec = CheckCommon & (
  | { type: 'tcp' }
  | {
    type: 'http' | 'https';
    method?: string;
    path?: string;
    host?: string;
    expectStatus?: Array<number | string>;
    body?: string;
    bodyRegex?: string;
    bodyMd5?: string;
    tlsVerify?: boolean;
    sni?: string;
  }
  | { type: 'udp'; payload?: string; expect?: string }
  | { type: 'dns'; name: string; queryType?: string; expectRcode?: string; expectAnswer?: string }
  | { type: 'exec'; command: string[]; dynamicWeight?: boolean }
  | { type: 'none'; result?: 'up' | 'down' }
);
