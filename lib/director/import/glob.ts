// Path globbing for keepalived's `include`: `*`, `?`, `[...]` within a path segment and csh-style
// `{a,b}` alternatives, matched in sorted order as glob(3) returns them. Node 20 has no fs.glob.
import { readdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';

const MAGIC = /[*?[]/;

/** Expands `{a,b}` alternatives (nested allowed) into separate patterns; unbalanced braces stay literal. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i += 1) {
    const c = pattern[i];
    if (c === '{') depth += 1;
    else if (c === '}') {
      depth -= 1;
      if (depth === 0) {
        const head = pattern.slice(0, open);
        const tail = pattern.slice(i + 1);
        const parts: string[] = [];
        let start = open + 1;
        for (const comma of commas) { parts.push(pattern.slice(start, comma)); start = comma + 1; }
        parts.push(pattern.slice(start, i));
        return parts.flatMap((part) => expandBraces(head + part + tail));
      }
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  return [pattern];
}

function segmentRegex(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length; i += 1) {
    const c = segment[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) { source += '\\['; continue; }
      let body = segment.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      source += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else source += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

async function matchSegments(base: string, segments: string[]): Promise<string[]> {
  const [segment, ...rest] = segments;
  if (segment === undefined) return [base];
  if (!MAGIC.test(segment)) return matchSegments(join(base, segment), rest);
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return [];
  }
  const regex = segmentRegex(segment);
  const hidden = segment.startsWith('.');
  const matches = names.filter((name) => regex.test(name) && (hidden || !name.startsWith('.'))).sort();
  const out: string[] = [];
  for (const name of matches) out.push(...await matchSegments(join(base, name), rest));
  return out;
}

/**
 * The existing paths matching `pattern`, resolved against `cwd` when relative. A pattern without
 * wildcards is returned as is (the caller reports a missing file when it opens it).
 */
export async function glob(pattern: string, cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const alternative of expandBraces(pattern)) {
    const absolute = isAbsolute(alternative) ? alternative : resolve(cwd, alternative);
    if (!MAGIC.test(absolute)) { out.push(absolute); continue; }
    const [, ...segments] = absolute.split('/');
    out.push(...await matchSegments('/', segments.filter(Boolean)));
  }
  return out;
}
