// Loading a director configuration from a YAML or JSON file (JSON is read as YAML 1.2, which
// it is), converting duration strings, and validating it, with errors that name the file, the
// field's path and its line.
import { readFile } from 'node:fs/promises';

import { LineCounter, isMap, isSeq, parseDocument, type Document } from 'yaml';

import { resolveConfig, type DirectorConfig } from './config';

/** Fields that hold durations in seconds; in a file they may also be '500ms', '2s', '1.5m', '1h'. */
const DURATION_FIELDS = new Set(['interval', 'timeout', 'slowStart', 'drainTimeout', 'resyncInterval']);
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/**
 * A configuration file could not be used. `file`, `line` (1-based) and `column` locate it;
 * `path` is the field ('services[0].checks[1].timeout') for a validation error; `cause` is the
 * YAML parse error, or the TypeError/RangeError the validation raised. `code` is
 * 'ERR_DIRECTOR_CONFIG'.
 */
export class ConfigFileError extends Error {
  readonly code = 'ERR_DIRECTOR_CONFIG';
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly path: string | undefined;

  constructor(file: string, location: { line?: number; column?: number; path?: string }, message: string, cause?: unknown) {
    const where = location.line === undefined ? file : `${file}:${location.line}${location.column === undefined ? '' : `:${location.column}`}`;
    super(`${where}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'ConfigFileError';
    this.file = file;
    this.line = location.line;
    this.column = location.column;
    this.path = location.path;
  }
}

/** '500ms' → 0.5, '2s' → 2, '1.5m' → 90, '1h' → 3600; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

/** Replaces duration strings by seconds, in place; throws naming the path of a bad one. */
function convertDurations(value: unknown, path: Array<string | number>, onError: (path: Array<string | number>, message: string) => never): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => convertDurations(item, [...path, i], onError));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const obj = value as Record<string, unknown>;
  for (const [key, item] of Object.entries(obj)) {
    if (DURATION_FIELDS.has(key) && typeof item === 'string') {
      const seconds = parseDuration(item);
      if (seconds === undefined) {
        onError([...path, key], `${formatPath([...path, key])} must be seconds or a duration such as '500ms', '2s', '1m', '1h', got ${JSON.stringify(item)}`);
      }
      obj[key] = seconds;
    } else {
      convertDurations(item, [...path, key], onError);
    }
  }
}

function formatPath(path: Array<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** 'services[0].checks[1].timeout' → ['services', 0, 'checks', 1, 'timeout']. */
function parsePath(message: string): Array<string | number> | undefined {
  const match = /^((?:config\.)?[A-Za-z_$][\w$]*(?:\[\d+\]|\.[A-Za-z_$][\w$]*)*)/.exec(message);
  if (!match) return undefined;
  const path: Array<string | number> = [];
  for (const part of match[1]!.matchAll(/([A-Za-z_$][\w$]*)|\[(\d+)\]/g)) {
    path.push(part[2] !== undefined ? Number(part[2]) : part[1]!);
  }
  if (path[0] === 'config') path.shift();
  return path;
}

/** The line and column of the deepest node along `path` that the document has. */
function locate(doc: Document, lines: LineCounter, path: Array<string | number>): { line: number; column: number } | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    let node: unknown;
    if (sub.length === 0) {
      node = doc.contents;
    } else {
      // A map entry is located by its key (a nested value starts on a later line).
      const parent = sub.length === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
      const last = sub[sub.length - 1];
      if (isMap(parent)) {
        node = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last)?.key;
      } else if (isSeq(parent) && typeof last === 'number') {
        node = parent.items[last];
      }
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) {
      const { line, col } = lines.linePos(range[0]);
      return { line, column: col };
    }
  }
  return undefined;
}

/**
 * Parses and validates a configuration from text (YAML, or JSON). Duration fields accept
 * '500ms', '2s', '1m', '1h' besides numbers of seconds.
 * @throws {ConfigFileError} for a syntax error (with line and column) or a configuration the
 *   director would refuse (with the field's path and line; `cause` is the TypeError or RangeError).
 */
export function parseConfig(text: string, file = '<config>'): DirectorConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const [syntax] = doc.errors;
  if (syntax) {
    const { line, col } = lines.linePos(syntax.pos[0]);
    throw new ConfigFileError(file, { line, column: col }, syntax.message.split('\n')[0] ?? syntax.message, syntax);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  const fail = (path: Array<string | number>, message: string, cause?: unknown): never => {
    const at = locate(doc, lines, path);
    throw new ConfigFileError(file, { ...at, path: formatPath(path) }, message, cause);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail([], 'the configuration must be a mapping with a `services` list');
  }
  convertDurations(value, [], fail);
  try {
    resolveConfig(value);
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
    fail(parsePath(error.message) ?? [], error.message, error);
  }
  return value as DirectorConfig;
}

/**
 * Reads, parses and validates a configuration file (YAML or JSON).
 * @throws {ConfigFileError} as {@link parseConfig}, or naming the file when it cannot be read
 *   (`cause` is the fs error, with its code: 'ENOENT', 'EACCES').
 */
export async function loadConfig(file: string): Promise<DirectorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError(file, {}, `cannot read the configuration: ${(error as Error).message}`, error);
  }
  return parseConfig(text, file);
}
