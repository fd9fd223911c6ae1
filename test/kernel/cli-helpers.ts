// Running the ipvs-netlink command in-process (its main() with output captured) and the real
// ipvsadm in a namespace, for differential tests.
import { spawnSync } from 'node:child_process';

import { provideStdin, redirectOutput } from '../../lib/cli/io';
import { main as cliMain } from '../../lib/cli/main';

export interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
}

/** `ipvs-netlink ARGS…` in this process. */
export async function ours(args: string[], stdin?: string): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const restore = redirectOutput({ stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; } });
  provideStdin(stdin ?? '');
  try {
    const status = await cliMain(args);
    return { status, stdout, stderr };
  } finally {
    restore();
    provideStdin(undefined);
  }
}

/** `ipvsadm ARGS…` inside the namespace `netns` (a name under /run/netns). */
export function theirs(netns: string, args: string[], stdin?: string): Outcome {
  const result = spawnSync('ip', ['netns', 'exec', netns, 'ipvsadm', ...args], { input: stdin ?? '', encoding: 'utf8' });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A shell script inside the namespace; for several ipvsadm calls in one process start. */
export function shellIn(netns: string, script: string): string {
  const result = spawnSync('ip', ['netns', 'exec', netns, 'sh', '-c', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`sh -c '${script}' failed in ${netns}: ${result.stderr}`);
  return result.stdout;
}

/** The real bin, as a separate process (proves the shebang, the bin entry and start-up). */
export function bin(args: string[], stdin?: string): Outcome {
  const result = spawnSync('node', ['dist/cli/bin.js', ...args], { input: stdin ?? '', encoding: 'utf8' });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
