// ipvsadm's requests as libipvs builds them (wire records), and its error messages
// (ipvs_strerror) by libipvs function and errno.
import { constants as osConstants } from 'node:os';

import type { BatchOperation } from '../../batch';
import { Command } from '../../constants';
import type { WireDestination } from '../../destination';
import type { WireService } from '../../service';
import { Cmd } from './command';
import type { CommandEntry } from './options';

const E = osConstants.errno;

export type LibFunction =
  | 'add_service' | 'update_service' | 'del_service' | 'zero_service' | 'add_dest' | 'update_dest' | 'del_dest'
  | 'start_daemon' | 'stop_daemon' | 'get_services' | 'get_dests' | 'get_service' | 'other';

// ipvs_strerror's table: messages by libipvs function and errno, then for any function.
const LIB_MESSAGES: Array<[LibFunction | undefined, number, string]> = [
  ['add_service', E.EEXIST, 'Service already exists'],
  ['add_service', E.ENOENT, 'Scheduler or persistence engine not found'],
  ['update_service', E.ESRCH, 'No such service'],
  ['update_service', E.ENOENT, 'Scheduler or persistence engine not found'],
  ['del_service', E.ESRCH, 'No such service'],
  ['zero_service', E.ESRCH, 'No such service'],
  ['add_dest', E.ESRCH, 'Service not defined'],
  ['add_dest', E.EEXIST, 'Destination already exists'],
  ['update_dest', E.ESRCH, 'Service not defined'],
  ['update_dest', E.ENOENT, 'No such destination'],
  ['del_dest', E.ESRCH, 'Service not defined'],
  ['del_dest', E.ENOENT, 'No such destination'],
  ['start_daemon', E.EEXIST, 'Daemon has already run'],
  ['stop_daemon', E.ESRCH, 'No daemon is running'],
  ['get_services', E.ESRCH, 'No such service'],
  ['get_dests', E.ESRCH, 'No such service'],
  ['get_service', E.ESRCH, 'No such service'],
  [undefined, E.EPERM, 'Permission denied (you must be root)'],
  [undefined, E.EINVAL, 'Invalid operation.  Possibly wrong module version, address not unicast, ...'],
  [undefined, E.ENOPROTOOPT, 'Protocol not available'],
  [undefined, E.ENOMEM, 'Memory allocation problem'],
  [undefined, E.EOPNOTSUPP, 'Operation not supported with IPv6'],
  [undefined, E.EAFNOSUPPORT, 'Operation not supported with specified address family'],
  [undefined, E.EMSGSIZE, 'Module is wrong version'],
];

// glibc's strerror for the errnos IPVS requests can return beyond ipvs_strerror's table.
const STRERROR: Record<number, string> = {
  [E.ENOENT]: 'No such file or directory', [E.ESRCH]: 'No such process', [E.EEXIST]: 'File exists',
  [E.ENODEV]: 'No such device', [E.ERANGE]: 'Numerical result out of range', [E.EBUSY]: 'Device or resource busy',
  [E.ENOBUFS]: 'No buffer space available', [E.EADDRNOTAVAIL]: 'Cannot assign requested address',
  [E.EPROTONOSUPPORT]: 'Protocol not supported', [E.ENXIO]: 'No such device or address', [E.EFAULT]: 'Bad address',
  [E.EOVERFLOW]: 'Value too large for defined data type', [E.EACCES]: 'Permission denied',
  [E.EBADF]: 'Bad file descriptor', [E.EIO]: 'Input/output error', [E.E2BIG]: 'Argument list too long',
};

/** ipvs_strerror(errno) as ipvsadm prints it after a failed request of `fn`. */
export function ipvsStrerror(fn: LibFunction, errno: number): string {
  for (const [f, e, message] of LIB_MESSAGES) if ((f === undefined || f === fn) && e === errno) return message;
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

// ---- wire records as libipvs builds them ------------------------------------------------------

export function serviceKeyWire(entry: CommandEntry): WireService {
  const { svc } = entry;
  if (svc.fwmark) return { af: svc.af, fwmark: svc.fwmark };
  return { af: svc.af, protocol: svc.protocol, address: svc.addr, port: svc.port };
}

export function serviceWire(entry: CommandEntry): WireService {
  const { svc } = entry;
  const wire: WireService = {
    ...serviceKeyWire(entry), scheduler: svc.sched, flags: svc.flags >>> 0, flagsMask: 0xffffffff, timeout: svc.timeout,
    netmask: svc.netmask >>> 0,
  };
  if (svc.pe) wire.peName = svc.pe;
  return wire;
}

export function destinationWire(entry: CommandEntry, full: boolean): WireDestination {
  const { dest } = entry;
  const wire: WireDestination = { af: dest.af, address: dest.addr, port: dest.port };
  if (full) {
    Object.assign(wire, {
      forward: dest.fwd, weight: dest.weight, upperThreshold: dest.uThreshold, lowerThreshold: dest.lThreshold,
      tunnelType: dest.tunType, tunnelPort: dest.tunPort, tunnelFlags: dest.tunFlags,
    });
  }
  return wire;
}

/** The batchable commands: the batch operation, the request command and libipvs' function. */
export const BATCHABLE: Partial<Record<number, [BatchOperation, number, LibFunction]>> = {
  [Cmd.ADD]: ['addService', Command.NEW_SERVICE, 'add_service'],
  [Cmd.EDIT]: ['editService', Command.SET_SERVICE, 'update_service'],
  [Cmd.DEL]: ['deleteService', Command.DEL_SERVICE, 'del_service'],
  [Cmd.ADDDEST]: ['addDestination', Command.NEW_DEST, 'add_dest'],
  [Cmd.EDITDEST]: ['editDestination', Command.SET_DEST, 'update_dest'],
  [Cmd.DELDEST]: ['deleteDestination', Command.DEL_DEST, 'del_dest'],
};

export function requestOf(entry: CommandEntry): { service: WireService; destination?: WireDestination } {
  switch (entry.cmd) {
    case Cmd.ADD: case Cmd.EDIT: return { service: serviceWire(entry) };
    case Cmd.DEL: return { service: serviceKeyWire(entry) };
    case Cmd.DELDEST: return { service: serviceKeyWire(entry), destination: destinationWire(entry, false) };
    default: return { service: serviceKeyWire(entry), destination: destinationWire(entry, true) };
  }
}
