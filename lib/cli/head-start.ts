// A head start for the commands whose answer is one read of the kernel's state: the bin asks the
// addon for it (on the addon's threads) before it loads the command's code, which under emulation
// takes as long as the read. The command takes the answer only when it would have asked for
// exactly the same read; it asks again when the head start failed, so that its own errors are
// the ones reported. A command line that turns out to be a mistake leaves it unused: it only reads.
// A counted `conns --by …` is answered whole by its count: the bin prints it and ends, and loads
// the command only when the count failed.
//
// The bin and the bundled command each have their own copy of this module; they meet through one
// global slot.
import { nativeAddon, type NativeAddon } from '../native';
import { countLines, plainArgs } from './conns-args';
import * as io from './io';

interface Slot {
  key: string;
  answer: Promise<unknown>;
  /** A listing's parts (all but the last, which is the answer) not yet taken by the command. */
  parts: unknown[];
  /** The command's receiver of the parts still to come, once it has taken the head start. */
  onPart?: (part: unknown) => void;
}

const SLOT = Symbol.for('ipvs-netlink.head-start');
type Holder = { [SLOT]?: Slot };

// ipvsadm options that leave a command listing (-L) or saving (-S) the whole table, and only
// change how it is printed.
const LIST_ALL_LONG = new Set(['--list', '--save', '--numeric', '--exact', '--stats', '--rate', '--thresholds',
  '--persistent-conn', '--nosort', '--sort', '--tun-info']);
const LIST_ALL_SHORT = /^-[LlSn]+$/;

/** The key of listing the whole table in `netns` ('' for the current one). */
export function listTableKey(netns: string | undefined): string {
  return `listTable\0${netns ?? ''}`;
}

/** The key of counting connections for the conns command line `argv` (after `conns`). */
export function countKey(argv: readonly string[]): string {
  return `count\0${JSON.stringify(argv)}`;
}

/** `ipvs-netlink ipvsadm …` that lists or saves the whole table: its namespace ('' for ours). */
function listAllNetns(args: readonly string[]): string | undefined {
  let netns = '';
  let lists = args.length === 0;  // plain `ipvsadm` lists
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--netns') {
      netns = args[++i] ?? '';
      if (netns === '') return undefined;
    } else if (arg.startsWith('--netns=')) {
      netns = arg.slice('--netns='.length);
      if (netns === '') return undefined;
    } else if (LIST_ALL_LONG.has(arg)) {
      lists ||= arg === '--list' || arg === '--save';
    } else if (LIST_ALL_SHORT.test(arg)) {
      lists ||= /[LlS]/.test(arg);
    } else {
      return undefined;
    }
  }
  return lists ? netns : undefined;
}

/** The addon's request for `conns --by …` (as lib/connections.ts builds it), or undefined. */
function countRequest(argv: readonly string[]): Parameters<NativeAddon['countConnections']>[0] | undefined {
  const o = plainArgs(argv);
  // The counted text form only: JSON carries the scan summary, --service needs the address parser.
  if (!o?.by || o.json || o.service !== undefined || o.resolve) return undefined;
  if (o.netns !== undefined && o.netns.includes('\0')) return undefined;
  if (o.state && !o.state.every((s) => /^[A-Za-z0-9_!?]{1,32}$/.test(s))) return undefined;
  return {
    netns: o.netns ?? '', path: '', sync: o.sync === true, strict: false,
    ...(o.state ? { states: o.state.map((s) => s.toUpperCase()) } : {}),
    by: o.by, minCount: o.min ?? 1, top: o.top ?? 0,
  };
}

/**
 * The bin: starts the read that `argv` (the process's arguments) will ask for, if it is one of
 * the short reads; any failure here only means no head start. For a counted `conns --by …` in
 * text, returns whether the command's whole output was printed once the count is in: then the
 * process ends (or is left to end, when standard output went through a stream); false when the
 * count failed, and the command must run. undefined: the command must run now.
 */
export function startHeadStart(argv: readonly string[]): Promise<boolean> | undefined {
  if (process.env.PREBUILDS_ONLY) return undefined;
  const global: string[] = [];
  let at = 0;
  // main.ts hands a leading `--netns PATH` to the command, in front of its arguments.
  while (argv[at] === '--netns' || argv[at]?.startsWith('--netns=')) {
    const take = argv[at] === '--netns' ? 2 : 1;
    global.push(...argv.slice(at, at + take));
    at += take;
  }
  const command = argv[at];
  const args = [...global, ...argv.slice(at + 1)];
  try {
    if (command === 'ipvsadm') {
      const netns = listAllNetns(args);
      if (netns === undefined || netns.includes('\0')) return undefined;
      // One call that opens, lists and closes on the addon's thread: a promise's continuation
      // would wait for the JavaScript thread, busy loading the command.
      // In parts, so that the command formats each while the next is dumped.
      const slot = hold(listTableKey(netns));
      slot.answer = nativeAddon().listTableIn(netns, (part) => {
        if (slot.onPart) slot.onPart(part);
        else slot.parts.push(part);
      });
      slot.answer.catch(() => {});
    } else if (command === 'conns') {
      const request = countRequest(args);
      if (!request) return undefined;
      const slot = hold(countKey(args));
      const count = nativeAddon().countConnections(request);
      slot.answer = count;
      return count.then((counts) => {
        delete (globalThis as Holder)[SLOT];
        let status = 0;
        try {
          io.stdout(countLines(counts.keys.map((key, i) => ({ key, count: counts.counts[i] ?? 0 }))));
        } catch (error) {
          // What the command's reportError() prints for a failed write (EPIPE ends quietly in io).
          io.stderr(`ipvs-netlink conns: ${error instanceof Error ? error.message : String(error)}\n`);
          status = 1;
        }
        // As main.ts ends a one-shot command.
        process.exitCode = status;
        if (io.outputFlushed()) process.exit(status);
        return true;
      }, () => false);
    }
  } catch {
    // No addon here (the command explains why when it loads it), or a synchronous refusal.
  }
  return undefined;
}

/** Holds the head start for `key` (its answer set by the caller, unless the call throws). */
function hold(key: string): Slot {
  const slot: Slot = { key, answer: Promise.resolve(undefined), parts: [] };
  (globalThis as Holder)[SLOT] = slot;
  return slot;
}

/**
 * The command: the answer of the head start for `key`, or undefined (none, another read, or it
 * failed: the command then asks itself). Taken once.
 */
export async function takeHeadStart<T>(key: string): Promise<T | undefined> {
  const holder = globalThis as Holder;
  const slot = holder[SLOT];
  if (!slot || slot.key !== key) return undefined;
  delete holder[SLOT];
  return slot.answer.then((answer) => answer as T, () => undefined);
}

/**
 * The command: takes the head start for `key`, a listing in parts, as takeHeadStart() does;
 * `onPart` receives, in order, the parts that arrived and those still to come, and the promise
 * resolves with the last part. undefined when there was no such head start or it failed (after
 * some parts, perhaps: the command then discards them and lists again itself).
 */
export async function takeHeadStartParts<T>(key: string, onPart: (part: T) => void): Promise<T | undefined> {
  const holder = globalThis as Holder;
  const slot = holder[SLOT];
  if (!slot || slot.key !== key) return undefined;
  delete holder[SLOT];
  for (const part of slot.parts.splice(0)) onPart(part as T);
  slot.onPart = onPart as (part: unknown) => void;
  return slot.answer.then((answer) => answer as T, () => undefined);
}
