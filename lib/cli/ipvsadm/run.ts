// Carries out parsed ipvsadm command entries against a handle: one request per command, as
// ipvsadm sends it; -R through restore.ts.
import { constants as osConstants } from 'node:os';

import type { ConnectionTable } from '../../connections';
import { Command } from '../../constants';
import { IpvsError } from '../../errors';
import type { Ipvs } from '../../ipvs';
import { requestRecord } from '../../records';
import type { NativeTable } from '../../native';
import { tableFromNative } from '../../table';
import { TableView } from '../../table-view';
import { listTableKey, takeHeadStartParts } from '../head-start';
import * as io from '../io';
import { Namer, connectionAddresses, formatDaemons, formatTimeouts, type TableEntry } from './format';
import { formatConnections } from './connection-listing';
import { AF_INET6 } from './names';
import { PartwiseListing, formatOneService, formatTable, viewAddresses, wholeTable } from './service-listing';
import { Cmd, EXIT_ERROR, Fmt, IpvsadmExit, Opt, TRY_HELP, has, parseCommandLine, type CommandEntry } from './options';
import { BATCHABLE, ipvsStrerror, requestOf, serviceKeyWire, serviceWire, type LibFunction } from './requests';
import { applyRestore, parseRestoreInput, type RestorePlan } from './restore';

const E = osConstants.errno;

function errnoOf(error: unknown): number {
  if (error instanceof IpvsError) return error.errno;
  throw error;
}

// ---- listings -----------------------------------------------------------------------------------

/** -L/-S of the whole table (list_all), written from the packed records. */
export async function listAll(ipvs: Ipvs, format: number): Promise<void> {
  const getServices = (error: unknown): never => {
    throw new IpvsadmExit(1, ipvsStrerror('get_services', errnoOf(error)));
  };
  const info = ipvs.info();
  info.catch(() => {});
  const namer = new Namer((format & Fmt.NUMERIC) !== 0);
  // The head start's listing arrives in parts: a numeric listing formats each one as it comes,
  // while the kernel dumps the next.
  const partwise = namer.numeric ? new PartwiseListing(format, namer) : undefined;
  const parts: NativeTable[] = [];
  let failure: unknown;
  const onPart = (part: NativeTable): void => {
    try {
      if (partwise) partwise.add(part);
      else parts.push(part);
    } catch (error) {
      // Thrown here, it would reach the addon's callback; it is thrown below instead.
      failure ??= error;
    }
  };
  const early = await takeHeadStartParts<NativeTable>(listTableKey(ipvs.netns), onPart);
  if (early !== undefined) {
    onPart(early);
    if (failure !== undefined) throw failure;
    const answer = await info.catch(getServices);
    if (partwise) {
      io.stdoutBytes(partwise.finish(answer).bytes());
      return;
    }
    const view = new TableView(wholeTable(parts));
    await namer.resolve(viewAddresses(view));
    io.stdoutBytes(formatTable(view, format, namer, answer).bytes());
    return;
  }
  const [answer, table] = await Promise.all([info, ipvs.enqueue('listTable', (handle) => handle.listTable())]).catch(getServices);
  const view = new TableView(table);
  if (!namer.numeric) await namer.resolve(viewAddresses(view));
  io.stdoutBytes(formatTable(view, format, namer, answer).bytes());
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
  io.stdoutBytes(formatOneService(view, entry.format, namer).bytes());
}

/**
 * -c: the connection table `reading` (read by the caller, which may start it early) as
 * list_conn prints it.
 */
export async function listConnections(reading: Promise<ConnectionTable>, format: number): Promise<void> {
  let table;
  try {
    table = await reading;
  } catch {
    throw new IpvsadmExit(1, 'cannot open file /proc/net/ip_vs_conn');
  }
  const namer = new Namer((format & Fmt.NUMERIC) !== 0);
  if (!namer.numeric) await namer.resolve(connectionAddresses(table));
  io.stdoutBytes(formatConnections(table, format, namer));
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
      if (has(entry, Opt.CONNECTION)) await listConnections(ipvs.connectionTable(), entry.format);
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

/** ipvsadm -R's input, read from standard input and parsed (before or while the handle opens). */
export async function readRestore(): Promise<RestorePlan> {
  return parseRestoreInput(await io.readInput());
}

/** ipvsadm -R: applies `plan` (by default, standard input), messages in ipvsadm's words. */
export async function restore(ipvs: Ipvs, plan?: RestorePlan): Promise<number> {
  return applyRestore(ipvs, plan ?? await readRestore(), (failure) => io.stderr(`${failure.message}\n`));
}

export { parseCommandLine };
