// ipvs-netlink: control the Linux IPVS load balancer over generic netlink.
export { Ipvs } from './ipvs';
export { IpvsError, IpvsUnavailableError } from './errors';
export { Batch, BatchUnknownError, type BatchOperation, type BatchResult } from './batch';
export type * from './types';
export {
  ConnectionParseError, ConnectionStream, ConnectionTable, countConnections, readConnectionTable, streamConnections,
} from './connections';
export type {
  Connection, ConnectionColumns, ConnectionCount, ConnectionCounts, ConnectionGroupBy, ConnectionOrigin,
  ConnectionProtocol, ConnectionReadOptions, ConnectionScanSummary, ConnectionServiceFilter, ConnectionStreamOptions,
  CountConnectionsOptions,
} from './connections';
export { formatPlan } from './reconcile/format';
export { PlanStaleError } from './reconcile/errors';
export type {
  ApplyOptions, ApplyResult, DesiredService, FieldChange, NumberRange, OperationResult, Plan, PlanOperation, PlanOptions,
  PlanValue, ReconcileScope, RemovalPolicy, ScopeFilter,
} from './reconcile/types';
