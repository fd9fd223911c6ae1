// Carries out parsed ipvsadm command entries against a handle: one request per command, as
// ipvsadm sends it, and -R's lines through one batch.
import { constants as osConstants } from 'node:os';

import { queueWire, type BatchOperation } from '../../batch';
import { Command } from '../../constants';
import type { WireDestination } from '../../destination';
import { IpvsError } from '../../errors';
import type { Ipvs } from '../../ipvs';
import { requestRecord } from '../../records';
import type { WireService } from '../../service';
import type { NativeTable } from '../../native';
import { tableFromNative } from '../../table';
import { TableView } from '../../table-view';
import * as io from '../io';
import { Namer, connectionAddresses, formatConnections, formatDaemons, formatTimeouts, type TableEntry } from './format';
import { AF_INET6 } from './names';
import { formatOneService, formatTable, viewAddresses } from './service-listing';
import {
  Cmd, EXIT_ERROR, Fmt, IpvsadmExit, Opt, TRY_HELP, has, parseCommandLine, restoreLines, type CommandEntry,
} from './options';

const E = osConstants.errno;

type LibFunction =
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

function errnoOf(error: unknown): number {
  if (error instanceof IpvsError) return error.errno;
  throw error;
}

// ---- wire records as libipvs builds them ------------------------------------------------------

function serviceKeyWire(entry: CommandEntry): WireService {
  const { svc } = entry;
  if (svc.fwmark) return { af: svc.af, fwmark: svc.fwmark };
  return { af: svc.af, protocol: svc.protocol, address: svc.addr, port: svc.port };
}

function serviceWire(entry: CommandEntry): WireService {
  const { svc } = entry;
  const wire: WireService = {
    ...serviceKeyWire(entry), scheduler: svc.sched, flags: svc.flags >>> 0, flagsMask: 0xffffffff, timeout: svc.timeout,
    netmask: svc.netmask >>> 0,
  };
  if (svc.pe) wire.peName = svc.pe;
  return wire;
}

function destinationWire(entry: CommandEntry, full: boolean): WireDestination {
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
const BATCHABLE: Partial<Record<number, [BatchOperation, number, LibFunction]>> = {
  [Cmd.ADD]: ['addService', Command.NEW_SERVICE, 'add_service'],
  [Cmd.EDIT]: ['editService', Command.SET_SERVICE, 'update_service'],
  [Cmd.DEL]: ['deleteService', Command.DEL_SERVICE, 'del_service'],
  [Cmd.ADDDEST]: ['addDestination', Command.NEW_DEST, 'add_dest'],
  [Cmd.EDITDEST]: ['editDestination', Command.SET_DEST, 'update_dest'],
  [Cmd.DELDEST]: ['deleteDestination', Command.DEL_DEST, 'del_dest'],
};

function requestOf(entry: CommandEntry): { service: WireService; destination?: WireDestination } {
  switch (entry.cmd) {
    case Cmd.ADD: case Cmd.EDIT: return { service: serviceWire(entry) };
    case Cmd.DEL: return { service: serviceKeyWire(entry) };
    case Cmd.DELDEST: return { service: serviceKeyWire(entry), destination: destinationWire(entry, false) };
    default: return { service: serviceKeyWire(entry), destination: destinationWire(entry, true) };
  }
}

// ---- listings -----------------------------------------------------------------------------------

/** -L/-S of the whole table (list_all), written from the packed records. */
export async function listAll(ipvs: Ipvs, format: number): Promise<void> {
  const [info, table] = await Promise.all([ipvs.info(), ipvs.enqueue('listTable', (handle) => handle.listTable())])
    .catch((error: unknown) => {
      throw new IpvsadmExit(1, ipvsStrerror('get_services', errnoOf(error)));
    });
  const view = new TableView(table);
  const namer = new Namer((format & Fmt.NUMERIC) !== 0);
  if (!namer.numeric) await namer.resolve(viewAddresses(view));
  io.stdout(formatTable(view, format, namer, info).toString());
}

/**
 * One service with its destinations, as the kernel reports it, in packed records (the
 * service's destinationCount set); undefined when there is no such service.
 */
async function getServiceRecords(ipvs: Ipvs, entry: CommandEntry): Promise<NativeTable | undefined> {
  const key = serviceKeyWire(entry);
  return ipvs.enqueue('getService', async (handle) => {
    const getService = requestRecord(Command.GET_SERVICE, key);
    let found: NativeTable;
    try {
      found = await handle.query(getService.records(), getService.strings);
    } catch (error) {
      if ((error as { errno?: number }).errno === E.ESRCH) return undefined;
      throw error;
    }
    const view = new TableView(found);
    if (view.serviceCount === 0) return undefined;
    const getDests = requestRecord(Command.GET_DEST, key);
    const dests = await handle.query(getDests.records(), getDests.strings);
    const services = found.services.slice(0, view.L.svcWords);
    services[view.L.svc.destinationCount] = dests.destinations.length / view.L.dstWords;
    services[0] = services[0]! | view.L.svcHas.destinationCount;
    return { services, destinations: dests.destinations, strings: found.strings };
  });
}

/** One service with its destinations, as the kernel reports it. */
export async function getServiceEntry(ipvs: Ipvs, entry: CommandEntry): Promise<TableEntry | undefined> {
  const table = await getServiceRecords(ipvs, entry);
  return table ? tableFromNative(table)[0] : undefined;
}

async function listService(ipvs: Ipvs, entry: CommandEntry): Promise<void> {
  let table: NativeTable | undefined;
  try {
    table = await getServiceRecords(ipvs, entry);
  } catch (error) {
    throw new IpvsadmExit(1, ipvsStrerror('get_service', errnoOf(error)));
  }
  if (!table) throw new IpvsadmExit(1, ipvsStrerror('get_service', E.ESRCH));
  const view = new TableView(table);
  const namer = new Namer((entry.format & Fmt.NUMERIC) !== 0);
  if (!namer.numeric) await namer.resolve(viewAddresses(view));
  io.stdout(formatOneService(view, entry.format, namer).toString());
}

async function listConnections(ipvs: Ipvs, format: number): Promise<void> {
  let table;
  try {
    table = await ipvs.connectionTable();
  } catch {
    throw new IpvsadmExit(1, 'cannot open file /proc/net/ip_vs_conn');
  }
  const namer = new Namer((format & Fmt.NUMERIC) !== 0);
  if (!namer.numeric) await namer.resolve(connectionAddresses(table));
  io.stdout(formatConnections(table, format, namer));
}

// ---- one command --------------------------------------------------------------------------------

export interface RunContext {
  /** Inside -R: a nested -R is refused. */
  restoring: boolean;
}

/**
 * Runs one parsed command. Returns its exit status (0, or 255 after a kernel error, whose
 * message it prints); throws IpvsadmExit where ipvsadm exits at once.
 */
export async function runEntry(ipvs: Ipvs, entry: CommandEntry, context: RunContext): Promise<number> {
  const batchable = BATCHABLE[entry.cmd];
  if (batchable) {
    const [operation, command, fn] = batchable;
    const request = requestOf(entry);
    try {
      await ipvs.change(operation, requestRecord(command, request.service, request.destination));
      return 0;
    } catch (error) {
      io.stderr(`${ipvsStrerror(fn, errnoOf(error))}\n`);
      return EXIT_ERROR;
    }
  }
  switch (entry.cmd) {
    case Cmd.LIST:
      if (has(entry, Opt.CONNECTION)) await listConnections(ipvs, entry.format);
      else if (has(entry, Opt.SERVICE)) await listService(ipvs, entry);
      else if (has(entry, Opt.TIMEOUT)) io.stdout(formatTimeouts(await ipvs.getTimeouts().catch(() => { throw new IpvsadmExit(1, ''); })));
      else if (has(entry, Opt.DAEMON)) io.stdout(formatDaemons(await ipvs.listDaemons().catch(() => { throw new IpvsadmExit(1, ''); })));
      else await listAll(ipvs, entry.format);
      return 0;
    case Cmd.SAVE:
      await listAll(ipvs, entry.format | Fmt.RULE);
      return 0;
    case Cmd.RESTORE:
      if (context.restoring) throw new IpvsadmExit(EXIT_ERROR, TRY_HELP);
      return restore(ipvs);
    default:
      return runSimple(ipvs, entry);
  }
}

async function runSimple(ipvs: Ipvs, entry: CommandEntry): Promise<number> {
  let fn: LibFunction = 'other';
  try {
    switch (entry.cmd) {
      case Cmd.FLUSH:
        await ipvs.flush();
        break;
      case Cmd.ZERO: {
        fn = 'zero_service';
        const { svc } = entry;
        const all = !svc.fwmark && svc.addr.every((b) => b === 0) && !svc.port;
        await ipvs.change('zero', requestRecord(Command.ZERO, all ? undefined : serviceWire(entry)));
        break;
      }
      case Cmd.TIMEOUT:
        await ipvs.enqueue('setTimeouts', (handle) => handle.execute({ command: Command.SET_CONFIG, timeouts: entry.timeouts }));
        break;
      case Cmd.STARTDAEMON: {
        fn = 'start_daemon';
        const d = entry.daemon;
        const daemon: Record<string, unknown> = { state: d.state, interface: d.ifname, syncId: d.syncid };
        if (d.maxlen) daemon.maxLength = d.maxlen;
        if (d.port) daemon.port = d.port;
        if (d.ttl) daemon.ttl = d.ttl;
        if (d.groupAf === AF_INET6) daemon.group6 = Buffer.from(d.group);
        else if (d.groupAf) daemon.group4 = Buffer.from(d.group.subarray(0, 4));
        await ipvs.enqueue('startDaemon', (handle) => handle.execute({ command: Command.NEW_DAEMON, daemon }));
        break;
      }
      case Cmd.STOPDAEMON:
        fn = 'stop_daemon';
        await ipvs.enqueue('stopDaemon', (handle) => handle.execute({
          command: Command.DEL_DAEMON, daemon: { state: entry.daemon.state, interface: entry.daemon.ifname, syncId: entry.daemon.syncid },
        }));
        break;
      default:
        return 0;
    }
    return 0;
  } catch (error) {
    io.stderr(`${ipvsStrerror(fn, errnoOf(error))}\n`);
    return EXIT_ERROR;
  }
}

// ---- restore ------------------------------------------------------------------------------------

/** A line of restore input, parsed. */
export interface RestoreLine {
  line: number;
  text: string;
  entry: CommandEntry | undefined;
  /** A popt error on this line: ipvsadm prints it and goes on with the next line. */
  error?: IpvsadmExit;
}

/**
 * Parses every line of restore input before anything is sent. Lines that ipvsadm would stop
 * at (fail(), a line without a command) throw IpvsadmExit with `line` set.
 */
export async function parseRestoreInput(text: string): Promise<RestoreLine[]> {
  const out: RestoreLine[] = [];
  for (const { line, args } of restoreLines(text)) {
    try {
      const parsed = await parseCommandLine(args);
      if (parsed === 'help' || parsed === 'version') {
        throw Object.assign(new IpvsadmExit(EXIT_ERROR, `-h and -v are not restore commands`), { line });
      }
      if (parsed.cmd === Cmd.RESTORE) throw Object.assign(new IpvsadmExit(EXIT_ERROR, TRY_HELP), { line });
      out.push({ line, text: args.join(' '), entry: parsed });
    } catch (error) {
      if (!(error instanceof IpvsadmExit)) throw error;
      if (error.soft) {
        out.push({ line, text: args.join(' '), entry: undefined, error });
        continue;
      }
      throw Object.assign(error, { line });
    }
  }
  return out;
}

export interface RestoreFailure {
  line: number;
  message: string;
  code?: string;
}

/**
 * Applies parsed restore lines: runs of service and destination changes go to the kernel as
 * one batch each (all of them, for a save file), other commands run in order between them.
 * Reports failures through `report`; returns the status of the last line, as ipvsadm does.
 */
export async function applyRestore(
  ipvs: Ipvs, lines: readonly RestoreLine[], report: (failure: RestoreFailure) => void,
): Promise<number> {
  let status = 0;
  let i = 0;
  while (i < lines.length) {
    const current = lines[i]!;
    if (!current.entry) {
      report({ line: current.line, message: current.error!.text });
      status = EXIT_ERROR;
      i++;
      continue;
    }
    if (!BATCHABLE[current.entry.cmd]) {
      status = await runEntry(ipvs, current.entry, { restoring: true });
      i++;
      continue;
    }
    const batch = ipvs.batch();
    const members: Array<{ line: number; fn: LibFunction }> = [];
    while (i < lines.length && lines[i]!.entry && BATCHABLE[lines[i]!.entry!.cmd]) {
      const { entry, line } = lines[i]!;
      const [operation, command, fn] = BATCHABLE[entry!.cmd]!;
      const request = requestOf(entry!);
      queueWire(batch, operation, command, request.service, request.destination);
      members.push({ line, fn });
      i++;
    }
    const results = await batch.commit();
    results.forEach((result, index) => {
      const member = members[index]!;
      if (result.ok) {
        status = 0;
        return;
      }
      status = EXIT_ERROR;
      const message = result.unknown
        ? 'the kernel\'s answer was lost (netlink receive buffer overflow): this line may or may not have been applied'
        : ipvsStrerror(member.fn, result.error.errno);
      report({ line: member.line, message, code: result.error.code });
    });
  }
  return status;
}

/** ipvsadm -R: restore from standard input, messages in ipvsadm's words. */
async function restore(ipvs: Ipvs): Promise<number> {
  const lines = await parseRestoreInput(await io.readInput());
  return applyRestore(ipvs, lines, (failure) => io.stderr(`${failure.message}\n`));
}

export { parseCommandLine };
