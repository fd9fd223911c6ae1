// A shell kept open inside a namespace, for tests that run many short ipvsadm commands: each
// command costs a fork and exec of its own instead of `ip netns exec` + a shell per call, which
// under emulation is most of a property test's time.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import type { TestNetns } from '../helpers';

export class NetnsShell {
  readonly #child: ChildProcessWithoutNullStreams;
  #buffer = '';
  #errors = '';
  #waiting: { marker: string; resolve: (out: string) => void; reject: (e: Error) => void } | undefined;

  constructor(ns: TestNetns) {
    this.#child = spawn('ip', ['netns', 'exec', ns.name, 'sh'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#check();
    });
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.#errors += chunk; });
    this.#child.on('exit', (code) => this.#waiting?.reject(new Error(`the shell exited (${code}): ${this.#errors}`)));
  }

  /** Runs `script`; resolves with its stdout, rejects with its stderr when its last command fails. */
  run(script: string): Promise<string> {
    if (this.#waiting) return Promise.reject(new Error('one script at a time'));
    const marker = `__done_${randomBytes(6).toString('hex')}__`;
    return new Promise((resolve, reject) => {
      this.#waiting = { marker, resolve, reject };
      this.#errors = '';
      this.#child.stdin.write(`${script}\necho "${marker} $?"\n`);
    });
  }

  #check(): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    const at = this.#buffer.indexOf(waiting.marker);
    if (at < 0) return;
    const end = this.#buffer.indexOf('\n', at);
    if (end < 0) return;
    const status = Number(this.#buffer.slice(at + waiting.marker.length + 1, end));
    const out = this.#buffer.slice(0, at);
    this.#buffer = this.#buffer.slice(end + 1);
    this.#waiting = undefined;
    if (status === 0) waiting.resolve(out);
    else waiting.reject(new Error(`exit ${status}: ${this.#errors}`));
  }

  close(): void {
    this.#child.stdin.end();
    this.#child.kill();
  }
}

/** A here-document that no generated rule can end early. */
export function hereDoc(command: string, input: string): string {
  return `${command} <<'__RULES_END__'\n${input}__RULES_END__`;
}
