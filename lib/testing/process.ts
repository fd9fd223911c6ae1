// A long-running command started inside a namespace (servers, sniffers, daemons).
import { spawn } from 'node:child_process';

/** How a {@link NetnsProcess} ended. */
export interface ProcessExit {
  /** The exit status, or null when it was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A command running in the background inside a namespace, in its own process group, returned
 * by {@link Netns.spawn}. The namespace kills it (and anything it started) when it is removed.
 */
export interface NetnsProcess {
  /** The pid of the `ip netns exec` process (the command itself after exec). */
  readonly pid: number;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Writes to its stdin (open until the process ends). */
  write(text: string | Buffer): void;
  /** Closes its stdin. */
  endInput(): void;
  /**
   * Resolves with the output once it matches `pattern`; rejects if the process exits first or
   * after `timeoutMs` (default 15,000), with the output so far in the message.
   */
  waitForOutput(pattern: RegExp | string, options?: { timeoutMs?: number }): Promise<string>;
  /** Settles when the process has exited. */
  readonly exited: Promise<ProcessExit>;
  /** Kills the whole process group (SIGKILL by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<ProcessExit>;
}

/** Starts argv in a new process group and collects its output. */
export function spawnProcess(argv: readonly string[]): NetnsProcess {
  const [file, ...args] = argv as [string, ...string[]];
  const child = spawn(file, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  let exit: ProcessExit | undefined;
  const listeners = new Set<() => void>();
  const notify = () => { for (const listener of [...listeners]) listener(); };
  const exited = new Promise<ProcessExit>((resolve) => {
    child.on('error', (error) => { text += `${String(error)}\n`; exit = { code: null, signal: null }; notify(); resolve(exit); });
    child.on('close', (code, signal) => { exit = { code, signal }; notify(); resolve(exit); });
  });
  child.stdin.on('error', () => { /* the process is gone */ });
  const collect = (chunk: Buffer) => { text += chunk.toString(); notify(); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);

  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined || exit) return;
    try { process.kill(-child.pid, signal); } catch { /* already gone */ }
  };

  return {
    pid: child.pid ?? -1,
    output: () => text,
    write: (input) => { child.stdin.write(input); },
    endInput: () => { child.stdin.end(); },
    exited,
    waitForOutput(pattern, { timeoutMs = 15_000 } = {}) {
      const matches = () => (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text));
      return new Promise((resolve, reject) => {
        const done = (error?: Error) => {
          listeners.delete(check);
          clearTimeout(timer);
          if (error) reject(error); else resolve(text);
        };
        const check = () => {
          if (matches()) done();
          else if (exit) done(new Error(`${argv.join(' ')} exited (${exit.signal ?? exit.code}) before printing ${String(pattern)}; output: ${text.trim()}`));
        };
        const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${argv.join(' ')} to print ${String(pattern)}; output: ${text.trim()}`)), timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGKILL') {
      killGroup(signal);
      return exited;
    },
  };
}
