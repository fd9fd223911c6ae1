// -R's input (and `ipvs-netlink restore`): every line is parsed before anything is sent, runs of
// service and destination changes become one batch of request records each, and the other
// commands run in order between them. The lines `ipvsadm -S` writes go straight from their text
// to a record (restore-fast.ts); every other line goes through the full parser (options.ts).
import type { Ipvs } from '../../ipvs';
import { RequestWriter } from '../../records';
import { errnoName } from '../../errors';
import { Cmd, EXIT_ERROR, IpvsadmExit, TRY_HELP } from './command';
import type { CommandEntry } from './options';
import { BATCHABLE, ipvsStrerror, requestOf, type LibFunction } from './requests';
import { FastLine } from './restore-fast';

/** A run of consecutive service and destination changes, sent as one batch. */
export interface RestoreBatch {
  kind: 'batch';
  requests: RequestWriter;
  /** The input line of each request. */
  lines: number[];
  /** libipvs' function of each request, for its error messages. */
  fns: LibFunction[];
}

/** Another command (-C, --set, -Z, a listing, a daemon), run on its own. */
export interface RestoreCommand {
  kind: 'command';
  line: number;
  entry: CommandEntry;
}

/** A line with a popt error after its command: ipvsadm prints it and goes on with the next line. */
export interface RestoreInvalid {
  kind: 'invalid';
  line: number;
  error: IpvsadmExit;
}

export type RestoreStep = RestoreBatch | RestoreCommand | RestoreInvalid;

export interface RestorePlan {
  steps: RestoreStep[];
  /** Lines with a command. */
  commands: number;
  /** The invalid steps, in order. */
  invalid: RestoreInvalid[];
}

/** Words per line the fast path looks at; a longer line goes to the full parser. */
const MAX_WORDS = 32;
const IPVSADM = 'ipvsadm';

/**
 * Parses restore input (config_stream_read's tokenizing: lines split on blanks, the word
 * `ipvsadm` dropped anywhere, lines without words skipped). Lines that ipvsadm would stop at
 * (fail(), a line without a command) throw IpvsadmExit with `line` set.
 * @param options.fast false: every line through the full parser (tests compare the two).
 */
export async function parseRestoreInput(text: string, options: { fast?: boolean } = {}): Promise<RestorePlan> {
  const fast = options.fast === false ? undefined : new FastLine();
  const steps: RestoreStep[] = [];
  const invalid: RestoreInvalid[] = [];
  let commands = 0;
  let batch: RestoreBatch | undefined;
  // The writer of the next batch, made before its first line is known to belong in one.
  let spare: RequestWriter | undefined;
  const nextWriter = (): RequestWriter => {
    // A saved line is 25 to 50 bytes: room for the whole input at once, most of the time.
    spare ??= new RequestWriter(Math.max(16, Math.ceil(text.length / 40)));
    return spare;
  };
  const openBatch = (): RestoreBatch => {
    if (!batch) {
      batch = { kind: 'batch', requests: nextWriter(), lines: [], fns: [] };
      spare = undefined;
      steps.push(batch);
    }
    return batch;
  };
  const starts = new Int32Array(MAX_WORDS);
  const ends = new Int32Array(MAX_WORDS);
  const length = text.length;
  let line = 0;
  let position = 0;
  while (position < length) {
    line++;
    if (fast) {
      const next = fast.matchInto(text, position, batch ? batch.requests : nextWriter());
      if (next >= 0) {
        const into = openBatch();
        into.lines.push(line);
        into.fns.push(fast.fn);
        commands++;
        position = next;
        continue;
      }
    }
    let eol = text.indexOf('\n', position);
    if (eol < 0) eol = length;
    let count = 0;
    let words = 0;
    let i = position;
    while (i < eol) {
      let c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0d) {
        i++;
        continue;
      }
      const start = i;
      while (i < eol && (c = text.charCodeAt(i)) !== 0x20 && c !== 0x09 && c !== 0x0d) i++;
      if (i - start === IPVSADM.length && text.startsWith(IPVSADM, start)) continue;
      if (count < MAX_WORDS) {
        starts[count] = start;
        ends[count] = i;
        count++;
      }
      words++;
    }
    const lineStart = position;
    position = eol + 1;
    if (words === 0) continue;
    commands++;
    if (fast && words === count && fast.parse(text, starts, ends, count)) {
      const into = openBatch();
      fast.write(into.requests);
      into.lines.push(line);
      into.fns.push(fast.fn);
      continue;
    }
    const args = text.slice(lineStart, eol).split(/[ \t\r]+/).filter((word) => word !== '' && word !== IPVSADM);
    let entry;
    try {
      // The full parser is loaded for the first line the fast path does not take.
      const { parseCommandLine } = await import('./options');
      const parsed = await parseCommandLine(args);
      if (parsed === 'help' || parsed === 'version') {
        throw Object.assign(new IpvsadmExit(EXIT_ERROR, '-h and -v are not restore commands'), { line });
      }
      if (parsed.cmd === Cmd.RESTORE) throw Object.assign(new IpvsadmExit(EXIT_ERROR, TRY_HELP), { line });
      entry = parsed;
    } catch (error) {
      if (!(error instanceof IpvsadmExit)) throw error;
      if (error.soft) {
        const step: RestoreInvalid = { kind: 'invalid', line, error };
        steps.push(step);
        invalid.push(step);
        batch = undefined;
        continue;
      }
      throw Object.assign(error, { line });
    }
    const batchable = BATCHABLE[entry.cmd];
    if (batchable) {
      const request = requestOf(entry);
      const into = openBatch();
      into.requests.add(batchable[1], request.service, request.destination);
      into.lines.push(line);
      into.fns.push(batchable[2]);
    } else {
      steps.push({ kind: 'command', line, entry });
      batch = undefined;
    }
  }
  return { steps, commands, invalid };
}

export interface RestoreFailure {
  line: number;
  message: string;
  code?: string;
}

/**
 * Applies a parsed restore: each batch in one call (chunked by the addon as the socket buffers
 * allow), the other commands in order between them. Reports failures through `report`;
 * returns the status of the last line, as ipvsadm does.
 */
export async function applyRestore(ipvs: Ipvs, plan: RestorePlan, report: (failure: RestoreFailure) => void): Promise<number> {
  let status = 0;
  for (const step of plan.steps) {
    if (step.kind === 'invalid') {
      report({ line: step.line, message: step.error.text });
      status = EXIT_ERROR;
    } else if (step.kind === 'command') {
      const { runEntry } = await import('./run');
      status = await runEntry(ipvs, step.entry, { restoring: true });
    } else {
      status = await applyBatch(ipvs, step, report);
    }
  }
  return status;
}

async function applyBatch(ipvs: Ipvs, batch: RestoreBatch, report: (failure: RestoreFailure) => void): Promise<number> {
  const { requests, lines, fns } = batch;
  const answer = await ipvs.enqueue('batch', (handle) => handle.executeBatch(requests.records(), requests.strings));
  if (answer.errors.length !== lines.length) {
    throw new Error(`batch: the addon answered ${answer.errors.length} results for ${lines.length} requests`);
  }
  let status = 0;
  for (let i = 0; i < lines.length; i++) {
    const errno = answer.errors[i]!;
    if (errno === 0 && !answer.unknown[i]) {
      status = 0;
      continue;
    }
    status = EXIT_ERROR;
    const message = answer.unknown[i]
      ? 'the kernel\'s answer was lost (netlink receive buffer overflow): this line may or may not have been applied'
      : ipvsStrerror(fns[i]!, errno);
    report({ line: lines[i]!, message, code: errnoName(errno) });
  }
  return status;
}
