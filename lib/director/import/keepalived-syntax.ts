// keepalived.conf's block syntax, read into a tree of statements that keep their file and line.
// Rules as keepalived 2.x's parser applies them: `#` and `!` start a comment anywhere outside
// double quotes (`\#`, `\!` are literal), `{` and `}` outside quotes split a line, words are split
// on whitespace with "double-quoted" words kept whole, a trailing `\` continues the line, and
// `include` (and includer/m/w/b/a) pulls in files by glob, relative to the including file.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { glob } from './glob';
import { ConfigImportError, type Unsupported } from './result';

export interface Statement {
  keyword: string;
  /** The words after the keyword, double quotes removed. */
  args: string[];
  /** The text after the keyword as written (quotes and escapes intact), for script lines. */
  rawArgs: string;
  file: string;
  line: number;
  /** Position in reading order across all included files. */
  order: number;
  /** The `{ ... }` block that follows the keyword, if any. */
  block?: Statement[];
}

type Item =
  | { kind: 'words'; words: string[]; raw: string; file: string; line: number }
  | { kind: 'open' | 'close'; file: string; line: number };

const INCLUDE = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);
const MAX_INCLUDE_DEPTH = 32;

/** Strips a comment; keeps `\#`/`\!` outside quotes as literal characters. */
function decomment(line: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && !quoted && (line[i + 1] === '#' || line[i + 1] === '!')) {
      out += line[i + 1];
      i += 1;
      continue;
    } else if (!quoted && (c === '#' || c === '!')) break;
    out += c;
  }
  return out.trim();
}

/** Splits on whitespace; a double-quoted run is one word without its quotes. */
function words(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i += 1;
    if (i >= text.length) break;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      const stop = end < 0 ? text.length : end;
      out.push(text.slice(i + 1, stop));
      i = stop + 1;
    } else {
      const start = i;
      while (i < text.length && !/\s/.test(text[i]!) && text[i] !== '"') i += 1;
      out.push(text.slice(start, i));
    }
  }
  return out;
}

/** Splits a line at `{` and `}` outside double quotes. */
function segments(line: string): Array<string | '{' | '}'> {
  const out: Array<string | '{' | '}'> = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '{' || c === '}')) {
      const text = line.slice(start, i).trim();
      if (text) out.push(text);
      out.push(c);
      start = i + 1;
    }
  }
  const text = line.slice(start).trim();
  if (text) out.push(text);
  return out;
}

class Reader {
  readonly items: Item[] = [];
  readonly unsupported: Unsupported[] = [];
  /** Reading-order position of each unsupported entry (the item count when it was found). */
  readonly order: number[] = [];

  private note(entry: Unsupported): void {
    this.unsupported.push(entry);
    this.order.push(this.items.length);
  }

  async readFile(path: string, depth: number, from?: { file: string; line: number }): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if (from) throw new ConfigImportError(from.file, from.line, `include: cannot read ${path} (${code})`);
      throw new ConfigImportError(path, 0, `cannot read the file (${code})`);
    }
    const lines = text.split(/\r?\n/);
    for (let index = 0; index < lines.length; index += 1) {
      const lineNumber = index + 1;
      let line = decomment(lines[index]!);
      while (line.endsWith('\\') && index + 1 < lines.length) {
        index += 1;
        line = `${line.slice(0, -1)} ${decomment(lines[index]!)}`.trim();
      }
      if (!line) continue;
      await this.readLine(line, path, lineNumber, depth);
    }
  }

  private async readLine(line: string, file: string, lineNumber: number, depth: number): Promise<void> {
    if (line.startsWith('$')) {
      throw new ConfigImportError(file, lineNumber, 'parameter substitution ($NAME=...) is not supported: expand the configuration first');
    }
    if (line.startsWith('~SEQ') || line.startsWith('~LST')) {
      throw new ConfigImportError(file, lineNumber, 'sequence and list blocks (~SEQ, ~LST) are not supported: expand the configuration first');
    }
    if (line.startsWith('@')) {
      if (/[{}]/.test(line)) {
        throw new ConfigImportError(file, lineNumber, 'a conditional configuration line (@id) that opens or closes a block is not supported');
      }
      const [tag = '@', keyword = ''] = words(line);
      this.note({
        file, line: lineNumber, directive: keyword || tag,
        reason: `conditional configuration (${tag}) depends on keepalived's config-id; the line is ignored`,
      });
      return;
    }
    const first = words(line)[0]!;
    if (INCLUDE.has(first)) {
      await this.include(line.slice(first.length).trim(), file, lineNumber, depth);
      return;
    }
    for (const part of segments(line)) {
      if (part === '{') this.items.push({ kind: 'open', file, line: lineNumber });
      else if (part === '}') this.items.push({ kind: 'close', file, line: lineNumber });
      else this.items.push({ kind: 'words', words: words(part), raw: part, file, line: lineNumber });
    }
  }

  private async include(pattern: string, file: string, line: number, depth: number): Promise<void> {
    const target = words(pattern)[0];
    if (!target) throw new ConfigImportError(file, line, 'include needs a file name');
    if (depth >= MAX_INCLUDE_DEPTH) {
      throw new ConfigImportError(file, line, `includes nested more than ${MAX_INCLUDE_DEPTH} deep (an include loop?)`);
    }
    const matches = await glob(target, dirname(file));
    if (matches.length === 0) {
      this.note({ file, line, directive: 'include', reason: `no file matches ${target}; nothing was included` });
    }
    for (const match of matches) await this.readFile(resolve(match), depth + 1, { file, line });
  }
}

function buildTree(items: Item[]): Statement[] {
  const root: Statement[] = [];
  const stack: Array<{ list: Statement[]; opened: { file: string; line: number } }> = [];
  let current = root;
  let previous: Item | undefined;
  for (const [order, item] of items.entries()) {
    if (item.kind === 'words') {
      const [keyword, ...args] = item.words;
      const rawArgs = item.raw.slice(item.raw.indexOf(keyword!) + keyword!.length).trim();
      current.push({ keyword: keyword!, args, rawArgs, file: item.file, line: item.line, order });
    } else if (item.kind === 'open') {
      const owner = current[current.length - 1];
      if (previous?.kind !== 'words' || !owner || owner.block) {
        throw new ConfigImportError(item.file, item.line, "'{' without a keyword before it");
      }
      owner.block = [];
      stack.push({ list: current, opened: { file: owner.file, line: owner.line } });
      current = owner.block;
    } else {
      const frame = stack.pop();
      if (!frame) throw new ConfigImportError(item.file, item.line, "unexpected '}' (no block is open)");
      current = frame.list;
    }
    previous = item;
  }
  const unclosed = stack.pop();
  if (unclosed) {
    const owner = unclosed.list[unclosed.list.length - 1]!;
    throw new ConfigImportError(unclosed.opened.file, unclosed.opened.line, `'${owner.keyword}' block is never closed (missing '}')`);
  }
  return root;
}

/**
 * Reads a keepalived configuration file and its includes into statements.
 * @throws {ConfigImportError} for an unreadable file, unbalanced braces, or syntax this reader
 *   cannot expand faithfully (parameter substitution, ~SEQ/~LST).
 */
export async function readKeepalivedConfig(
  path: string,
): Promise<{ statements: Statement[]; unsupported: Unsupported[]; order: number[] }> {
  const reader = new Reader();
  await reader.readFile(resolve(path), 0);
  return { statements: buildTree(reader.items), unsupported: reader.unsupported, order: reader.order };
}

/**
 * Splits a script line as keepalived does for misc_path and notify scripts: whitespace separates
 * words, single or double quotes keep spaces, and backslash escapes (\n, \t, \xHH, \\ …) apply.
 */
export function splitScriptWords(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const escapes: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i += 1;
    if (i >= text.length) break;
    let word = '';
    let quote = '';
    while (i < text.length) {
      const c = text[i]!;
      if (c === '\\' && i + 1 < text.length) {
        const n = text[i + 1]!;
        const hex = /^x([0-9a-fA-F]+)/.exec(text.slice(i + 1));
        if (hex) { word += String.fromCharCode(parseInt(hex[1]!, 16) & 0xff); i += 1 + hex[0].length; continue; }
        word += escapes[n] ?? n;
        i += 2;
        continue;
      }
      if (quote) {
        if (c === quote) quote = ''; else word += c;
        i += 1;
        continue;
      }
      if (c === '"' || c === "'") { quote = c; i += 1; continue; }
      if (/\s/.test(c)) break;
      word += c;
      i += 1;
    }
    out.push(word);
  }
  return out;
}
