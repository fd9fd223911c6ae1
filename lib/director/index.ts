// ipvs-netlink/director: a health-checking IPVS director on the declarative table (plan/apply).
export { Director } from './director';
export type {
  CheckStatus, DestinationStatus, DirectorOptions, DirectorStatus, ServiceStatus, StopOptions,
} from './director';
export { CHECK_DEFAULTS, DIRECTOR_DEFAULTS } from './config';
export type {
  CheckCommon, CheckSpec, CheckType, DirectorConfig, DirectorDefaults, DirectorDestination, DirectorScope, DirectorService,
  DnsCheck, ExecCheck, FailureAction, HttpCheck, NoneCheck, ScopeFilter, TcpCheck, UdpCheck,
} from './config';
export { ConfigFileError, loadConfig, parseConfig, parseDuration } from './loader';
export type {
  AppliedEvent, CheckEvent, DirectorEvent, DirectorEventOf, DirectorEventType, DownEvent, DrainedEvent, DrainStartEvent,
  DriftRepairedEvent, ErrorEvent, EventIteratorOptions, QuorumGainedEvent, QuorumLostEvent, SorryEvent, SyncDaemonEvent, UpEvent,
  VrrpEvent, WeightEvent,
} from './events';
export { parseVrrpLine } from './vrrp';
export type { VrrpConfig, VrrpNotification, VrrpState, VrrpStatus, VrrpSyncConfig } from './vrrp';
export { importKeepalived, KEEPALIVED_DEFAULTS } from './import/keepalived';
export { importLdirectord, LDIRECTORD_DEFAULTS } from './import/ldirectord';
export { ConfigImportError } from './import/result';
export type { ImportResult, Unsupported } from './import/result';
