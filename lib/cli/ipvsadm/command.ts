// ipvsadm's commands and how it ends: exit statuses and the exception that carries them. Its
// own module, so that restore input in ipvsadm -S form is read without loading the full parser.

/** Exit statuses as ipvsadm's: fail() exits 2, popt errors and kernel errors return -1 (255). */
export const EXIT_FAIL = 2;
export const EXIT_ERROR = 255;

/** Ends the command with a message (printed with a newline) on standard error. */
export class IpvsadmExit extends Error {
  /** Set on restore input: the 1-based line. */
  line?: number;

  /**
   * @param soft a popt error after the command: ipvsadm returns -1 from that line instead of
   *   exiting, so -R goes on with the next line.
   */
  constructor(readonly status: number, readonly text: string, readonly soft = false) {
    super(text);
    this.name = 'IpvsadmExit';
  }
}

export function fail(message: string): never {
  throw new IpvsadmExit(EXIT_FAIL, message);
}

export const TRY_HELP = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

export const Cmd = {
  NONE: 0, ADD: 1, EDIT: 2, DEL: 3, FLUSH: 4, LIST: 5, ADDDEST: 6, DELDEST: 7, EDITDEST: 8, TIMEOUT: 9,
  STARTDAEMON: 10, STOPDAEMON: 11, RESTORE: 12, SAVE: 13, ZERO: 14,
} as const;
export type CmdCode = (typeof Cmd)[keyof typeof Cmd];
