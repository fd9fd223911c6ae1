// `ipvs-netlink sandbox [--kernel 6.1|6.17] -- CMD…`: runs CMD as root in the VM our own test
// suite uses (a Debian kernel with IPVS, booted in qemu), in the current directory, and exits
// with CMD's status. The VM itself is scripts/vm/run.sh, the one launcher for everything.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Command, CommanderError, Option } from 'commander';

const packageRoot = path.resolve(__dirname, '..', '..');
const vmScripts = path.join(packageRoot, 'scripts', 'vm');

/** Exit status of the sandbox's own failures (usage, a host that cannot run the VM), as `docker run` does. */
export const SANDBOX_FAILED = 125;

interface Requirement { command: string; debianPackage: string; purpose: string }

const TO_BOOT: Requirement[] = [
  { command: 'qemu-system-x86_64', debianPackage: 'qemu-system-x86', purpose: 'boots the VM' },
  { command: 'bash', debianPackage: 'bash', purpose: 'runs the VM scripts' },
  { command: 'timeout', debianPackage: 'coreutils', purpose: 'bounds the VM run' },
];

const TO_PREPARE: Requirement[] = [
  { command: 'apt-get', debianPackage: 'apt', purpose: "downloads Debian's kernel package" },
  { command: 'apt-cache', debianPackage: 'apt', purpose: "finds Debian's kernel package" },
  { command: 'dpkg-deb', debianPackage: 'dpkg', purpose: 'unpacks the kernel package' },
  { command: 'busybox', debianPackage: 'busybox-static', purpose: "is the VM's init" },
  { command: 'cpio', debianPackage: 'cpio', purpose: 'packs the initramfs' },
  { command: 'depmod', debianPackage: 'kmod', purpose: 'orders the IPVS modules' },
  { command: 'modprobe', debianPackage: 'kmod', purpose: 'lists module dependencies' },
  { command: 'xz', debianPackage: 'xz-utils', purpose: 'decompresses the modules' },
  { command: 'gzip', debianPackage: 'gzip', purpose: 'compresses the initramfs' },
  { command: 'flock', debianPackage: 'util-linux', purpose: 'serialises preparation' },
  { command: 'sha256sum', debianPackage: 'coreutils', purpose: 'keys the cache' },
];

function onPath(command: string, searchPath: string): boolean {
  return searchPath.split(path.delimiter).filter(Boolean).some((dir) => {
    try { accessSync(path.join(dir, command), constants.X_OK); return true; } catch { return false; }
  });
}

/** Where prepared kernels live: $IPVS_VM_CACHE, else $XDG_CACHE_HOME/ipvs-netlink/vm, else ~/.cache/ipvs-netlink/vm. */
export function sandboxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IPVS_VM_CACHE) return path.resolve(env.IPVS_VM_CACHE);
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'ipvs-netlink', 'vm');
}

/** True when the kernel is prepared for the current VM scripts (scripts/vm/kernels.sh keys the cache the same way). */
function kernelPrepared(cache: string, kernel: string): boolean {
  try {
    const recipe = createHash('sha256')
      .update(readFileSync(path.join(vmScripts, 'init.sh')))
      .update(readFileSync(path.join(vmScripts, 'kernels.sh')))
      .digest('hex').slice(0, 16);
    return existsSync(path.join(cache, kernel, 'initramfs.gz')) && readFileSync(path.join(cache, kernel, 'recipe'), 'utf8').trim() === recipe;
  } catch {
    return false;
  }
}

/**
 * What this host lacks to run the sandbox for `kernel` (an empty list when nothing), each
 * line naming the command, what it is for and the Debian/Ubuntu package that provides it.
 */
export function missingRequirements(kernel: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return [`an x86-64 Linux host (this is ${process.platform}/${process.arch}): the VM runs this machine's own programs`];
  }
  const wanted = kernelPrepared(sandboxCacheDir(env), kernel) ? TO_BOOT : [...TO_BOOT, ...TO_PREPARE];
  return wanted.filter((r) => !onPath(r.command, env.PATH ?? ''))
    .map((r) => `${r.command} (${r.purpose}; Debian/Ubuntu package ${r.debianPackage})`);
}

function packagesFor(missing: string[]): string[] {
  return [...new Set(missing.map((line) => /package (\S+)\)$/.exec(line)?.[1]).filter((p): p is string => p !== undefined))];
}

function refusal(kernel: string, missing: string[]): string {
  const packages = packagesFor(missing);
  return [
    `ipvs-netlink sandbox: this host cannot boot the IPVS VM (Linux ${kernel}); it lacks:`,
    ...missing.map((m) => `  - ${m}`),
    ...(packages.length > 0 ? [`Install with: sudo apt-get install ${packages.join(' ')}`] : []),
    "The sandbox boots Debian's kernel (which has the IPVS modules) in qemu without KVM, sees this",
    "machine's files read-only and the current directory read-write, and runs the command as root.",
    "The first run downloads the kernel package with apt-get into the cache; later runs boot in seconds.",
  ].join('\n');
}

function parse(argv: string[]): { kernel: string; memory?: string; env: string[]; command: string[] } | { exit: number } {
  const program = new Command('ipvs-netlink sandbox')
    .description("Run a command as root in a VM with IPVS (Debian's kernel in qemu), in the current directory; exit with its status.")
    .usage('[--kernel 6.1|6.17] [--memory MB] [--env NAME=VALUE]... -- command [args...]')
    .addOption(new Option('--kernel <series>', 'kernel series to boot').choices(['6.1', '6.17']).default('6.17'))
    .addOption(new Option('--memory <MB>', 'guest memory in MiB (default 2048)').argParser((v) => {
      if (!/^\d+$/.test(v) || Number(v) < 256 || Number(v) > 65536) throw new CommanderError(SANDBOX_FAILED, 'sandbox.memory', `--memory must be an integer between 256 and 65536, got ${v}`);
      return v;
    }))
    .addOption(new Option('--env <NAME=VALUE>', 'set an environment variable for the command (repeatable)').argParser((v, previous: string[] = []) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) throw new CommanderError(SANDBOX_FAILED, 'sandbox.env', `--env takes NAME=VALUE, got ${v}`);
      return [...previous, v];
    }))
    .argument('<command...>', 'the command to run, after --')
    .passThroughOptions()
    .exitOverride()
    .addHelpText('after', `
Prepared kernels are cached in ${sandboxCacheDir()} (IPVS_VM_CACHE or XDG_CACHE_HOME change it).
Exit status: the command's; ${SANDBOX_FAILED} when the sandbox could not start; 100-101 when the VM failed.
Example (CI): npx ipvs-netlink sandbox -- npm test`);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return { exit: error.exitCode === 0 ? 0 : SANDBOX_FAILED };
    throw error;
  }
  const opts = program.opts<{ kernel: string; memory?: string; env?: string[] }>();
  return { kernel: opts.kernel, memory: opts.memory, env: opts.env ?? [], command: program.args };
}

/** Runs the `sandbox` command with `argv` (the arguments after `sandbox`); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if ('exit' in parsed) return parsed.exit;
  const missing = missingRequirements(parsed.kernel);
  if (missing.length > 0) {
    process.stderr.write(`${refusal(parsed.kernel, missing)}\n`);
    return SANDBOX_FAILED;
  }
  const cwd = process.cwd();
  if (cwd === '/') {
    process.stderr.write('ipvs-netlink sandbox: run it from a project directory, not / (the current directory is the one mounted read-write)\n');
    return SANDBOX_FAILED;
  }
  const cache = sandboxCacheDir();
  if (!kernelPrepared(cache, parsed.kernel)) {
    process.stderr.write(`ipvs-netlink sandbox: preparing Linux ${parsed.kernel} in ${cache} (Debian's kernel package, 70-170 MB, is downloaded once)\n`);
  }
  const args = [path.join(vmScripts, 'run.sh'), '--kernel', parsed.kernel, '--workdir', cwd];
  if (parsed.memory) args.push('--memory', parsed.memory);
  for (const kv of parsed.env) args.push('--env', kv);
  args.push('--', ...parsed.command);
  return new Promise((resolve) => {
    const child = spawn('bash', args, { stdio: 'inherit', env: { ...process.env, IPVS_VM_CACHE: cache } });
    child.on('error', (error) => {
      process.stderr.write(`ipvs-netlink sandbox: cannot start the VM launcher: ${error.message}\n`);
      resolve(SANDBOX_FAILED);
    });
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}
