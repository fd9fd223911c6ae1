// `ipvs-netlink conns`' usual command lines, read without commander, and its counted text. On
// its own (no imports) so that the bin can read them, and print the counts, before it loads the
// command (lib/cli/head-start.ts).
import type { ConnectionGroupBy } from '../connections';

export interface ConnsOptions {
  netns?: string;
  by?: ConnectionGroupBy;
  state?: string[];
  min?: number;
  top?: number;
  sync?: boolean;
  json?: boolean;
  service?: string;
  resolve?: boolean;
}

export const GROUPS: readonly ConnectionGroupBy[] = ['client', 'destination', 'service', 'state'];

/** A plain decimal from `min` to `max`, else undefined (commander then names the mistake). */
function plainInteger(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value >= min && value <= max ? value : undefined;
}

/**
 * @internal The usual command lines (each option once, well-formed values) read without
 * loading commander; undefined for anything else (--help, a repeat, a mistake), which
 * commander then handles with its messages.
 */
export function plainArgs(argv: readonly string[]): ConnsOptions | undefined {
  const o: ConnsOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (name === '--json' || name === '--sync' || name === '--resolve') {
      const flag = name.slice(2) as 'json' | 'sync' | 'resolve';
      if (eq > 0 || o[flag]) return undefined;
      o[flag] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || value.startsWith('-')) return undefined;
    if (name === '--by' && o.by === undefined && GROUPS.includes(value as ConnectionGroupBy)) {
      o.by = value as ConnectionGroupBy;
    } else if (name === '--state') {
      (o.state ??= []).push(value);
    } else if (name === '--min' && o.min === undefined) {
      if ((o.min = plainInteger(value, 1, Number.MAX_SAFE_INTEGER)) === undefined) return undefined;
    } else if (name === '--top' && o.top === undefined) {
      if ((o.top = plainInteger(value, 1, 2 ** 32 - 1)) === undefined) return undefined;
    } else if (name === '--service' && o.service === undefined) {
      o.service = value;
    } else if (name === '--netns' && o.netns === undefined) {
      o.netns = value;
    } else {
      return undefined;
    }
  }
  return o;
}

/** `conns --by …` as text: most first, the count right-aligned to the largest, then the key. */
export function countLines(counts: ReadonlyArray<{ key: string; count: number }>): string {
  const width = counts.length > 0 ? String(counts[0]!.count).length : 1;
  return counts.map((c) => `${String(c.count).padStart(width)} ${c.key}\n`).join('');
}
