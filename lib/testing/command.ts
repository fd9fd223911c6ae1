// Runs host commands (ip, sysctl, the programs under test) without a shell unless asked for one.
import { execFile, execFileSync } from 'node:child_process';

/**
 * A command: an argument vector run as is (`['ip', 'link', 'show']`), or a string run by
 * `sh -c` (pipes, redirections, `&&`).
 */
export type CommandLine = string | readonly string[];

/** Options of {@link Netns.exec} and {@link Netns.execSync}. */
export interface ExecOptions {
  /** Written to the command's stdin. */
  input?: string | Buffer;
  /** Killed (SIGKILL) after this many milliseconds; the call then fails with a {@link CommandError}. Default 60,000. */
  timeoutMs?: number;
}

/** A command that could not start, exited non-zero, was killed, or timed out. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  /** The argument vector that ran (with `ip netns exec NAME` in front when run in a namespace). */
  readonly argv: readonly string[];
  /** The exit status, or null when killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(argv: readonly string[], details: { exitCode: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; reason?: string }) {
    const why = details.reason ?? (details.signal ? `killed by ${details.signal}` : `exited ${details.exitCode}`);
    const stderr = details.stderr.trim();
    super(`${argv.join(' ')}: ${why}${stderr ? `: ${stderr}` : ''}`);
    this.argv = argv;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stdout = details.stdout;
    this.stderr = details.stderr;
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_OUTPUT = 256 * 1024 * 1024;

/** The argument vector for a command line: strings go through `sh -c`. */
export function toArgv(command: CommandLine): string[] {
  if (typeof command === 'string') return ['sh', '-c', command];
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string')) {
    throw new TypeError('command must be a non-empty string or a non-empty array of strings');
  }
  return [...command];
}

function checkOptions(options: ExecOptions): number {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`options.timeoutMs must be a positive integer, got ${String(options.timeoutMs)}`);
  }
  return timeoutMs;
}

/** Runs argv and resolves with its stdout; rejects with a {@link CommandError}. */
export async function runCommand(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
  const timeout = checkOptions(options);
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT }, (error, stdout, stderr) => {
      if (!error) { resolve(stdout); return; }
      const e = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null };
      const started = typeof e.code !== 'string';
      reject(new CommandError(argv, {
        exitCode: typeof e.code === 'number' ? e.code : null,
        signal: e.signal ?? null,
        stdout,
        stderr,
        reason: !started ? `cannot run ${file} (${String(e.code)})` : e.killed && e.signal === 'SIGKILL' ? `timed out after ${timeout} ms` : undefined,
      }));
    });
    child.stdin?.on('error', () => { /* the command exited without reading its input */ });
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs argv synchronously and returns its stdout; throws a {@link CommandError}. Blocks the event loop: for test set-up only. */
export function runCommandSync(argv: readonly string[], options: ExecOptions = {}): string {
  const timeout = checkOptions(options);
  const [file, ...args] = argv as [string, ...string[]];
  try {
    return execFileSync(file, args, {
      encoding: 'utf8', input: options.input ?? '', timeout, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { status?: number | null; signal?: NodeJS.Signals | null; stdout?: string; stderr?: string };
    const started = typeof e.code !== 'string' || e.code === 'ETIMEDOUT' || e.status != null || e.signal != null;
    throw new CommandError(argv, {
      exitCode: e.status ?? null,
      signal: e.signal ?? null,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      reason: !started ? `cannot run ${file} (${String(e.code)})` : e.code === 'ETIMEDOUT' ? `timed out after ${timeout} ms` : undefined,
    });
  }
}
