// Kernel ABI values from include/uapi/linux/ip_vs.h and linux/socket.h, named for the API.

export const Command = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

export const AF_INET = 2;
export const AF_INET6 = 10;

export const PROTOCOL_NUMBERS = { tcp: 6, udp: 17, sctp: 132 } as const;

export const SVC_F_PERSISTENT = 0x1;
export const SVC_F_ONEPACKET = 0x4;
export const SVC_F_SCHED1 = 0x8;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;

/** Scheduler flags by name. sh-* and mh-* share the generic bits, as in the kernel. */
export const SCHEDULER_FLAG_BITS = {
  'sh-fallback': SVC_F_SCHED1,
  'sh-port': SVC_F_SCHED2,
  'mh-fallback': SVC_F_SCHED1,
  'mh-port': SVC_F_SCHED2,
  'flag-1': SVC_F_SCHED1,
  'flag-2': SVC_F_SCHED2,
  'flag-3': SVC_F_SCHED3,
} as const;

export const FORWARD_METHODS = { masq: 0, local: 1, tunnel: 2, route: 3, bypass: 4 } as const;
export const FWD_MASK = 0x7;

export const TUNNEL_TYPES = { ipip: 0, gue: 1, gre: 2 } as const;
export const TUNNEL_CHECKSUM_FLAGS = { none: 0, csum: 1, remcsum: 2 } as const;

export const DAEMON_STATES = { master: 1, backup: 2 } as const;

export const SCHEDULERS = [
  'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos',
] as const;

export const PERSISTENCE_ENGINES = ['sip'] as const;

/** IP_VS_SCHEDNAME_MAXLEN and IP_VS_IFNAME_MAXLEN include the terminating NUL. */
export const IFNAME_MAX_LENGTH = 15;
