// Error classes. Kernel errors keep the kernel's errno; invalid input never reaches the kernel
// and is reported as a TypeError or RangeError naming the field instead.
import { constants as osConstants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name] as [number, string]),
);
// EWOULDBLOCK is EAGAIN's number on Linux and comes later in the table; EAGAIN is the name
// the kernel and Node's own errors use.
errnoNames.set(osConstants.errno.EAGAIN, 'EAGAIN');

/** The errno name for a number, e.g. 3 -> 'ESRCH'. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** What went wrong, by operation and errno, in the words an operator would use. */
const messages: Record<string, Partial<Record<string, string>>> = {
  addService: { EEXIST: 'Service already exists', ENOENT: 'Scheduler or persistence engine not found' },
  editService: { ESRCH: 'No such service', ENOENT: 'Scheduler or persistence engine not found' },
  deleteService: { ESRCH: 'No such service' },
  getService: { ESRCH: 'No such service' },
  listDestinations: { ESRCH: 'No such service' },
  zero: { ESRCH: 'No such service' },
  addDestination: {
    ESRCH: 'Service not defined',
    EEXIST: 'Destination already exists',
    EINVAL: 'Invalid destination (the kernel accepts only unicast or local addresses, as routed in this namespace)',
  },
  editDestination: {
    ESRCH: 'Service not defined',
    ENOENT: 'No such destination',
    EINVAL: 'Invalid destination (the kernel accepts only unicast or local addresses, as routed in this namespace)',
  },
  deleteDestination: { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  startDaemon: {
    EEXIST: 'A sync daemon in this state is already running',
    ENODEV: 'No such interface',
    EINVAL: 'Invalid daemon options, or a service has destinations of the other address family',
  },
  stopDaemon: { ESRCH: 'No sync daemon in this state is running' },
  '*': {
    EPERM: 'Permission denied (CAP_NET_ADMIN is required in the network namespace)',
    EINVAL: 'Invalid argument (the kernel rejected a value)',
    ENOMEM: 'Out of memory',
    EBUSY: 'Busy',
    EAGAIN: 'The services kept changing while they were listed: a dump repeats or skips services when any ' +
      'namespace adds or deletes one meanwhile, and several dumps in a row missed some. Try again',
    ENOBUFS: 'The netlink receive buffer overflowed',
    EAFNOSUPPORT: 'Address family not supported (is the kernel built with IPv6 IPVS?)',
  },
};

export interface IpvsErrorDetails {
  errno: number;
  operation: string;
  kernelMessage?: string;
  path?: string;
  cause?: unknown;
}

/**
 * An error the kernel (or the system) returned: `code` is the errno name ('ESRCH', 'EEXIST',
 * 'ENOENT', 'EPERM', 'EINVAL', …), `errno` its number, `operation` the API call, and
 * `kernelMessage` the kernel's extended-ack text when it sent one.
 */
export class IpvsError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly operation: string;
  readonly kernelMessage?: string;
  readonly path?: string;

  constructor(details: IpvsErrorDetails, message?: string) {
    const code = errnoName(details.errno);
    const human = message ?? messages[details.operation]?.[code] ?? messages['*']?.[code] ?? describeErrno(details.errno);
    let text = `${details.operation}: ${human} (${code})`;
    if (details.kernelMessage) text += `; kernel: ${details.kernelMessage}`;
    if (details.path) text += `; path: ${details.path}`;
    super(text, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'IpvsError';
    this.code = code;
    this.errno = details.errno;
    this.operation = details.operation;
    if (details.kernelMessage) this.kernelMessage = details.kernelMessage;
    if (details.path) this.path = details.path;
  }
}

/**
 * IPVS is not in this kernel (the generic-netlink family "IPVS" does not exist). Code
 * 'ENOENT'. The library never loads modules; the message says how to.
 */
export class IpvsUnavailableError extends IpvsError {
  constructor(cause?: unknown) {
    super(
      { errno: osConstants.errno.ENOENT, operation: 'open', cause },
      'IPVS is not available in this kernel: the generic netlink family "IPVS" does not exist. ' +
        'Load it with `modprobe ip_vs` (as root), or use a kernel built with CONFIG_IP_VS',
    );
    this.name = 'IpvsUnavailableError';
  }
}

function describeErrno(errno: number): string {
  try {
    // util.getSystemErrorMessage exists from Node 22.12; fall back to the name.
    const util = require('node:util') as { getSystemErrorMessage?: (n: number) => string };
    if (util.getSystemErrorMessage) return util.getSystemErrorMessage(-errno);
  } catch {
    // fall through
  }
  return errnoName(errno);
}

interface NativeErrorShape {
  errno?: number;
  kernelMessage?: string;
  path?: string;
  message?: string;
}

/** Converts a rejection from the addon into an IpvsError for `operation`. */
export function fromNativeError(error: unknown, operation: string): Error {
  if (error instanceof IpvsError) return error;
  const native = (error ?? {}) as NativeErrorShape;
  if (typeof native.errno !== 'number' || native.errno === 0) {
    return error instanceof Error ? error : new Error(String(error));
  }
  return new IpvsError({
    errno: native.errno,
    operation,
    kernelMessage: native.kernelMessage,
    path: native.path,
    cause: error,
  });
}
