// `ipvs-netlink apply FILE`: load a desired state from YAML or JSON, print the plan, apply it.
import { readFile } from 'node:fs/promises';

import { Command, CommanderError, Option } from 'commander';
import { LineCounter, isCollection, isNode, parseDocument, type Document } from 'yaml';

import { IpvsError } from '../errors';
import { Ipvs } from '../ipvs';
import { PlanStaleError } from '../reconcile/errors';
import { formatPlan } from '../reconcile/format';
import { checkPlanInput } from '../reconcile/plan';
import type { ApplyResult, DesiredService, Plan, PlanOptions } from '../reconcile/types';

/** Exit statuses: 0 done (or nothing to do), 1 an operation failed, drift remained or the kernel refused, 2 bad usage or input. */
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const FILE_FIELDS = new Set(['services', 'scope', 'removal']);

interface Loaded {
  services: unknown;
  scope: unknown;
  removal: unknown;
  /** `file:line` of the node a validation path names, as near as the file has it. */
  locate(path: string): string;
}

/** A bad file: the message already names the file and line. */
class InputError extends Error {}

/**
 * Parses the desired-state file: YAML (JSON is YAML too, so both get line numbers). The top
 * level is either a list of services, or a mapping with `services` and optionally `scope`
 * ('listed', 'all' or a filter) and `removal` ('delete' or 'quiesce').
 */
function loadDesiredState(file: string, text: string): Loaded {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): string => `${file}:${lineCounter.linePos(offset).line}`;
  const first = doc.errors[0];
  if (first) throw new InputError(`${at(first.pos[0])}: ${first.message.split('\n')[0]}`);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const listOnly = Array.isArray(data);
  const locate = (path: string): string => locateIn(doc, file, at, path, listOnly);
  if (listOnly) return { services: data, scope: undefined, removal: undefined, locate };
  if (typeof data !== 'object' || data === null) {
    throw new InputError(`${file}:1: the file must hold a list of services or a mapping with 'services'`);
  }
  for (const key of Object.keys(data)) {
    if (!FILE_FIELDS.has(key)) {
      throw new InputError(`${locate(key)}: '${key}' is not a known top-level field (known: ${[...FILE_FIELDS].join(', ')})`);
    }
  }
  const record = data as Record<string, unknown>;
  if (record.services === undefined) throw new InputError(`${file}:1: 'services' is missing`);
  return { services: record.services, scope: record.scope, removal: record.removal, locate };
}

/** Path segments of 'services[3].destinations[1].weight' (or options.scope…, plan.…). */
function segments(path: string): Array<string | number> {
  const parts: Array<string | number> = [];
  for (const match of path.matchAll(/([A-Za-z_$][\w$]*)|\[(\d+)\]/g)) parts.push(match[2] !== undefined ? Number(match[2]) : match[1]!);
  return parts;
}

function locateIn(doc: Document, file: string, at: (offset: number) => string, path: string, listOnly: boolean): string {
  let parts = segments(path);
  if (parts[0] === 'options') parts = parts.slice(1);  // options.scope… is the file's scope…
  if (listOnly && parts[0] === 'services') parts = parts.slice(1);
  // The deepest node the file has on that path: a missing field points at its parent.
  for (let n = parts.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n), true);
    if (isNode(node) && node.range) {
      // A collection's own line is where its first entry starts; its key's line reads better.
      const key = n > 0 && !isCollection(node) ? undefined : findKeyOffset(doc, parts.slice(0, n));
      return at(key ?? node.range[0]);
    }
  }
  return `${file}:1`;
}

/** Where the key of the mapping entry at `parts` starts, when that entry is in a mapping. */
function findKeyOffset(doc: Document, parts: Array<string | number>): number | undefined {
  if (parts.length === 0) return undefined;
  const parent = parts.length === 1 ? doc.contents : doc.getIn(parts.slice(0, -1), true);
  const last = parts[parts.length - 1];
  if (!isCollection(parent)) return undefined;
  for (const item of parent.items as unknown[]) {
    const pair = item as { key?: unknown };
    if (pair && isNode(pair.key) && (pair.key as { value?: unknown }).value === last) return pair.key.range?.[0];
  }
  return undefined;
}

/** The validation path a TypeError or RangeError message of the library starts with. */
function pathOf(message: string): string | undefined {
  return /^((?:services|options\.scope|options\.removal)(?:\[\d+\]|\.[A-Za-z_$][\w$]*)*)/.exec(message)?.[1];
}

function errorJson(error: unknown): Record<string, unknown> {
  if (error instanceof IpvsError) {
    return { code: error.code, errno: error.errno, operation: error.operation, message: error.message, ...(error.kernelMessage ? { kernelMessage: error.kernelMessage } : {}) };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

function resultJson(result: ApplyResult): Record<string, unknown> {
  return {
    ok: result.ok,
    replanned: result.replanned,
    plan: result.plan,
    results: result.results.map((r) => (r.ok
      ? { ok: true, operation: r.operation }
      : { ok: false, unknown: r.unknown, operation: r.operation, error: errorJson(r.error) })),
    drift: result.drift,
  };
}

function describeOperation(op: ApplyResult['results'][number]['operation']): string {
  const plan: Plan = { version: 1, scope: 'listed', removal: 'delete', desired: [], fingerprint: '', operations: [op] };
  return formatPlan(plan).split('\n').slice(2).filter(Boolean).map((line) => line.trim()).join(' / ');
}

function program(): Command {
  return new Command('ipvs-netlink apply')
    .description(
      'Make the IPVS table match the desired state in FILE (YAML or JSON): print the plan, then apply it in one batch ' +
        'and report each failed operation and any drift left. FILE holds a list of services, or a mapping with ' +
        "'services' and optionally 'scope' (listed, all or a filter) and 'removal' (delete or quiesce).",
    )
    .argument('<file>', 'the desired state, YAML or JSON')
    .option('--dry-run', 'print the plan, change nothing')
    .addOption(new Option('--scope <scope>', "which services the file owns (overrides the file's scope)").choices(['listed', 'all']))
    .addOption(new Option('--removal <policy>', "what happens to destinations not in the file (overrides the file's removal)").choices(['delete', 'quiesce']))
    .option('--netns <path>', 'the network namespace to act in, e.g. /run/netns/lb')
    .option('--json', 'print the plan (and the results) as JSON')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => { process.stdout.write(text); },
      writeErr: (text) => { process.stderr.write(text); },
    });
}

/**
 * Runs the command with `argv` (the arguments after `apply`); resolves to the exit status:
 * 0 when the plan was empty, printed (--dry-run) or fully applied without drift; 1 when an
 * operation failed, drift remained, the plan went stale or the kernel refused (EPERM,
 * IPVS missing); 2 for bad usage, an unreadable file, invalid YAML/JSON or an invalid desired
 * state (the message names the file, line and path). Writes to process.stdout and stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const command = program();
  try {
    command.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    throw error;
  }
  const [file] = command.args as [string];
  const flags = command.opts<{ dryRun?: boolean; scope?: 'listed' | 'all'; removal?: 'delete' | 'quiesce'; netns?: string; json?: boolean }>();
  const fail = (message: string, status: number): number => {
    process.stderr.write(`ipvs-netlink apply: ${message}\n`);
    return status;
  };

  let loaded: Loaded;
  try {
    loaded = loadDesiredState(file, await readFile(file, 'utf8'));
  } catch (error) {
    if (error instanceof InputError) return fail(error.message, EXIT_USAGE);
    const code = (error as NodeJS.ErrnoException).code;
    return fail(`cannot read ${file}${code ? ` (${code})` : ''}: ${(error as Error).message}`, EXIT_USAGE);
  }
  const options: PlanOptions = {};
  const scope = flags.scope ?? loaded.scope;
  const removal = flags.removal ?? loaded.removal;
  if (scope !== undefined) options.scope = scope as PlanOptions['scope'];
  if (removal !== undefined) options.removal = removal as PlanOptions['removal'];

  try {
    // The whole file is checked before the kernel is touched (plan() checks it again, cheaply).
    checkPlanInput(loaded.services, options.scope, options.removal);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      const path = pathOf(error.message);
      // In the file, options.scope and options.removal are the top-level scope and removal.
      const message = error.message.replace(/^options\./, '');
      return fail(`${path ? loaded.locate(path) : file}: ${message}`, EXIT_USAGE);
    }
    throw error;
  }

  let ipvs: Ipvs;
  try {
    ipvs = await Ipvs.open(flags.netns === undefined ? {} : { netns: flags.netns });
  } catch (error) {
    if (error instanceof TypeError) return fail(error.message, EXIT_USAGE);
    return fail((error as Error).message, EXIT_FAILED);
  }
  try {
    const plan = await ipvs.plan(loaded.services as DesiredService[], options);
    if (flags.dryRun || plan.operations.length === 0) {
      process.stdout.write(flags.json ? `${JSON.stringify({ plan }, null, 2)}\n` : formatPlan(plan));
      return EXIT_OK;
    }
    if (!flags.json) process.stdout.write(formatPlan(plan));
    const result = await ipvs.apply(plan);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(resultJson(result), null, 2)}\n`);
      return result.ok ? EXIT_OK : EXIT_FAILED;
    }
    const failed = result.results.filter((r) => !r.ok);
    for (const r of failed) {
      if (!r.ok) {
        process.stderr.write(`failed: ${describeOperation(r.operation)}: ${r.error.message}${r.unknown ? ' (outcome unknown)' : ''}\n`);
      }
    }
    process.stdout.write(`\nApplied ${result.results.length - failed.length} of ${result.results.length} operations` +
      `${failed.length ? `; ${failed.length} failed` : ''}.\n`);
    if (result.drift.length > 0) {
      process.stdout.write(`Drift: the table still differs from ${file}:\n`);
      process.stdout.write(formatPlan({ ...result.plan, operations: result.drift }).split('\n').slice(2).join('\n'));
    }
    return result.ok ? EXIT_OK : EXIT_FAILED;
  } catch (error) {
    if (error instanceof PlanStaleError) return fail(error.message, EXIT_FAILED);
    return fail((error as Error).message, EXIT_FAILED);
  } finally {
    await ipvs.close();
  }
}
